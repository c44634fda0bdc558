package ocsf

import (
	"strings"
	"testing"

	"github.com/soarkafka/soarkafka/parsers/bundled/internal/parsertest"

	"github.com/soarkafka/soarkafka/soar"
)

// batch makes one message per value, on partition 0 from offset 100.
func batch(values ...[]byte) []soar.Message { return parsertest.Batch("ocsf-events", values...) }

func files(t testing.TB, names ...string) [][]byte { t.Helper(); return parsertest.Files(t, names...) }

func gz(b []byte) []byte { return parsertest.Gzip(b) }

// Samples written from the OCSF schema (1.1–1.3): Authentication 3002,
// Network Activity 4001 (an array of two), Detection Finding 2004.
func TestGolden(t *testing.T) {
	mixed := []string{"authentication-3002.json", "network-activity-4001-array.json", "detection-finding-2004.json"}
	cases := map[string][]string{
		"authentication":   {"authentication-3002.json"},
		"network-activity": {"network-activity-4001-array.json"},
		"mixed-batch":      mixed,
	}
	parsertest.GoldenCases(t, ParseMessages, "ocsf-events", cases, "mixed-batch")
}

func TestErrors(t *testing.T) {
	ok := files(t, "authentication-3002.json")[0]
	cases := []struct {
		name  string
		value []byte
		want  string
	}{
		{"not JSON", files(t, "bad-not-json.txt")[0], "ocsf: topic ocsf-events message 0:101: value is not JSON"},
		{"not OCSF", files(t, "bad-not-ocsf.json")[0], "message 0:101: not an OCSF event (no numeric class_uid)"},
		{"array element", files(t, "bad-array-element.json")[0], "message 0:101: element 1 is not an OCSF event"},
		{"class_uid text", []byte(`{"class_uid":"Authentication"}`), "message 0:101: not an OCSF event"},
		{"scalar", []byte(`3002`), "message 0:101: value is neither an OCSF event nor an array of them"},
		{"empty", nil, "message 0:101: value is not JSON"},
		{"broken gzip", gz(ok)[:20], "message 0:101: soar: gunzip"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := ParseMessages("ocsf-events", batch(ok, c.value))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q (results %v)", err, c.want, res)
			}
			if res != nil {
				t.Fatalf("results with an error: %v", res)
			}
		})
	}
}

func TestSeverity(t *testing.T) {
	cases := map[string]string{
		`{"class_uid":1}`:                                        "low",
		`{"class_uid":1,"severity_id":0}`:                        "low",
		`{"class_uid":1,"severity_id":2}`:                        "low",
		`{"class_uid":1,"severity_id":3}`:                        "medium",
		`{"class_uid":1,"severity_id":4}`:                        "high",
		`{"class_uid":1,"severity_id":6}`:                        "high",
		`{"class_uid":1,"severity_id":99,"severity":"Critical"}`: "high",
		`{"class_uid":1,"severity_id":99,"severity":"medium"}`:   "medium",
		`{"class_uid":1,"severity_id":99,"severity":"Weird"}`:    "low",
	}
	for ev, want := range cases {
		res, err := ParseMessages("t", batch([]byte(ev)))
		if err != nil {
			t.Fatal(err)
		}
		if got := res[0].Artifacts[0].Severity; got != want || res[0].Container.Severity != want {
			t.Errorf("%s: severity %s (container %s), want %s", ev, got, res[0].Container.Severity, want)
		}
	}
}

// Names and identifiers fall back to ids and coordinates; an empty array
// makes nothing.
func TestFallbacks(t *testing.T) {
	res, err := ParseMessages("t", batch([]byte(`[{"class_uid":4001,"activity_id":6},{"class_uid":4001}]`), []byte(`[]`)))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Container.Name != "OCSF class 4001: activity 6" || res[1].Container.Name != "OCSF class 4001: activity unknown" {
		t.Fatalf("%+v", res)
	}
	if a := res[0].Artifacts[0]; a.SourceDataIdentifier != "0:100:0" || a.Name != "OCSF class 4001: activity 6" || res[0].Container.SourceDataIdentifier != "ocsf:4001:6:0:100:0" {
		t.Errorf("%+v", a)
	}
	if a := res[1].Artifacts[0]; a.SourceDataIdentifier != "0:100:1" {
		t.Errorf("%+v", a)
	}
}

// BenchmarkOCSF parses batches of 500 Detection Findings.
func BenchmarkOCSF(b *testing.B) {
	parsertest.Benchmark(b, ParseMessages, files(b, "detection-finding-2004.json")[0], 500, 0)
}
