package ndjson

import (
	"strings"
	"testing"

	"github.com/soarkafka/soarkafka/parsers/bundled/internal/parsertest"

	"github.com/soarkafka/soarkafka/soar"
)

// batch makes one message per value, on partition 0 from offset 100.
func batch(values ...[]byte) []soar.Message { return parsertest.Batch("cribl", values...) }

func files(t testing.TB, names ...string) [][]byte { t.Helper(); return parsertest.Files(t, names...) }

func gz(b []byte) []byte { return parsertest.Gzip(b) }

// The Cribl seed record (header count fixed to its two lines) and a plain
// NDJSON value, alone and together, with exact expected results.
func TestGolden(t *testing.T) {
	cases := map[string][]string{
		"cribl-record": {"cribl-record.ndjson"},
		"plain":        {"plain.ndjson"},
		"mixed-batch":  {"cribl-record.ndjson", "plain.ndjson"},
	}
	// Compressed, as Cribl sends by default, the mixed batch gives the same
	// results.
	parsertest.GoldenCases(t, ParseMessages, "cribl", cases, "mixed-batch")
}

func TestErrors(t *testing.T) {
	ok := files(t, "plain.ndjson")[0]
	cases := []struct {
		name  string
		value []byte
		want  string
	}{
		// The seed's sample elides six events with "...".
		{"seed sample verbatim", files(t, "bad-cribl-seed-verbatim.ndjson")[0], "ndjson: topic cribl message 0:101: line 4: not a JSON object"},
		{"header count", files(t, "bad-cribl-count.ndjson")[0], "ndjson: topic cribl message 0:101: Cribl header says 8 events, the record holds 2"},
		{"header count, gzipped", gz(files(t, "bad-cribl-count.ndjson")[0]), "message 0:101: Cribl header says 8 events, the record holds 2"},
		{"header count not a number", []byte(`{"format":"ndjson","count":"x"}` + "\n{}\n"), `message 0:101: Cribl header count "x" is not a number`},
		{"header with no events", []byte(`{"format":"ndjson","count":1,"size":3}`), "message 0:101: Cribl header says 1 events, the record holds 0"},
		{"broken line", files(t, "bad-line.ndjson")[0], "message 0:101: line 3: not a JSON object"},
		{"array line", files(t, "bad-not-object.ndjson")[0], "message 0:101: line 2: not a JSON object"},
		{"two values on a line", []byte(`{"a":1} {"b":2}`), "message 0:101: line 1: not a JSON object"},
		{"broken gzip", gz(ok)[:15], "message 0:101: soar: gunzip"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := ParseMessages("cribl", batch(ok, c.value))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q (results %v)", err, c.want, res)
			}
			if res != nil {
				t.Fatalf("results with an error: %v", res)
			}
		})
	}
}

// Empty values, blank lines and a consistent header with no events make
// no container; an event that only looks like a header after the first
// line is an event.
func TestEdges(t *testing.T) {
	res, err := ParseMessages("t", batch([]byte(""), []byte("\n \r\n"), []byte(`{"format":"ndjson","count":0,"size":0}`+"\n")))
	if err != nil || res == nil || len(res) != 0 {
		t.Fatalf("%v, %v", res, err)
	}
	res, err = ParseMessages("t", batch([]byte(`{"_raw":"x"}`+"\n"+`{"format":"ndjson","count":5}`)))
	if err != nil || len(res) != 1 || len(res[0].Artifacts) != 2 || res[0].Artifacts[1].SourceDataIdentifier != "0:100:2" {
		t.Fatalf("%+v, %v", res, err)
	}
	if res[0].Artifacts[0].Name != "x" || res[0].Artifacts[1].Name != `{"count":5,"format":"ndjson"}` {
		t.Errorf("names %q %q", res[0].Artifacts[0].Name, res[0].Artifacts[1].Name)
	}
	res, err = ParseMessages("t", batch([]byte(`{"_time":"1e300"}`+"\n"+`{"_time":"-1.5"}`)))
	if err != nil || res[0].Artifacts[0].CEF["rt"] != "1e300" || res[0].Artifacts[1].CEF["rt"] != int64(-1500) {
		t.Fatalf("%+v, %v", res, err)
	}
}

// BenchmarkNDJSON parses batches of 100 Cribl records of two events.
func BenchmarkNDJSON(b *testing.B) {
	parsertest.Benchmark(b, ParseMessages, files(b, "cribl-record.ndjson")[0], 100, 2)
}
