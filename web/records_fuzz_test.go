package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/kafka"
)

// FuzzRecordsLines feeds the body of POST /v1/assets/{name}/records to the
// line reader, read in chunks of a fuzzed size, and checks its lines
// against a plain split of the body: each line whole and unchanged (less
// its "\r\n" or "\n"), a line longer than the limit reported as too long
// and nothing of it returned, nothing lost or invented at block edges.
func FuzzRecordsLines(f *testing.F) {
	for _, seed := range []struct {
		body  string
		max   uint16
		chunk uint8
	}{
		{"{\"a\":1}\n{\"b\":2}\n", 64, 0},
		{"{\"a\":1}\r\n\r\n{\"b\":2}", 64, 1},
		{"no newline at all", 4, 3},
		{"\n\n\n", 1, 0},
		{"", 10, 0},
		{"\r", 0, 2},
		{"short\n" + string(bytes.Repeat([]byte("L"), 300)) + "\nafter\r\n", 100, 7},
		{"exactly10!\n0123456789\r\n", 10, 5},
		{"{\"format\":\"ndjson\",\"count\":2}\n{}\n[]\n", 200, 0},
	} {
		f.Add([]byte(seed.body), seed.max, seed.chunk)
	}
	pool := newBlockPool(4)
	f.Fuzz(func(t *testing.T, body []byte, max uint16, chunk uint8) {
		var r io.Reader = bytes.NewReader(body)
		switch {
		case chunk == 1:
			r = iotest.OneByteReader(r)
		case chunk > 1:
			r = &chunkReader{r: r, n: int(chunk)}
		}
		lr := newLineReader(iotest.DataErrReader(r), pool, int(max))
		defer lr.close()
		want := splitLines(body)
		for i := 0; ; i++ {
			line, blk, tooLong, err := lr.next()
			if errors.Is(err, io.EOF) {
				if i != len(want) {
					t.Fatalf("%q (max %d): %d lines, want %d", body, max, i, len(want))
				}
				return
			}
			if err != nil {
				t.Fatalf("line %d: %v", i+1, err)
			}
			if i >= len(want) {
				t.Fatalf("%q (max %d): line %d %q beyond the %d lines of the body", body, max, i+1, line, len(want))
			}
			w := want[i]
			if long := len(w) > int(max); tooLong != long {
				t.Fatalf("%q (max %d): line %d %q: tooLong %v, want %v", body, max, i+1, w, tooLong, long)
			}
			if tooLong {
				if line != nil || blk != nil {
					t.Fatalf("line %d: too long, yet with bytes or a block", i+1)
				}
				continue
			}
			if got := string(line); got != string(bytes.TrimSuffix(w, []byte("\r"))) {
				t.Fatalf("%q (max %d): line %d = %q, want %q", body, max, i+1, got, w)
			}
			blk.release()
		}
	})
}

// splitLines is the oracle: the body's lines as the line reader's contract
// says, each with its "\r" if any (the limit counts it).
func splitLines(body []byte) [][]byte {
	if len(body) == 0 {
		return nil
	}
	lines := bytes.Split(body, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1] // a final newline ends the last line
	}
	return lines
}

// chunkReader reads at most n bytes at a time, as a client's packets come.
type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

// FuzzRecordsLine feeds one NDJSON line of the records endpoint to the
// per-line decoding, in each format: it never panics, an events line is
// sent as is (the full check accepts exactly valid JSON), and an envelope
// gives a record whose topic is valid and whose value is what the envelope
// says.
func FuzzRecordsLine(f *testing.F) {
	for _, seed := range []string{
		`{"_raw":"event 1","host":"h1"}`, `[1,2]`, `plain text`, `{"truncated":`, "{\"bad utf8\":\"\xff\"}",
		`{"format":"ndjson","count":2}`, `{"format":"ndjson","count":2} {"value":1}`, `{"format":"ndjson","count":"x"}`, `{"format":"ndjson","count":2,"size":10,"extra":1}`,
		`{"value":{"a":1},"key":"k","headers":{"h":"v"},"partition":2,"timestamp":"2026-11-23T10:00:00Z","topic":"other"}`,
		`{"value":"text \u00e9","timestamp":1700000000000}`, `{"value":null}`, `{"key":"k"}`, `{"value":1,"partition":-1}`,
		`{"value":1,"topic":"a b"}`, `{"value":1,"timestamp":"yesterday"}`, `{"value":1,"other":2}`, `{"value":1} {"value":2}`,
		`{"value":"\ud800"}`, `{"value":[1,{"b":[]}],"headers":{"h":1}}`, `{"value":1,"partition":99999999999}`,
	} {
		f.Add([]byte(seed), false, false)
		f.Add([]byte(seed), true, false)
	}
	f.Add([]byte(`[1, 2`), false, true)
	f.Fuzz(func(t *testing.T, line []byte, envelope, fullCheck bool) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			return // blank lines are skipped before decoding
		}
		s := &recordStream{topic: "events", envelope: envelope, fullCheck: fullCheck, limit: 1 << 20}
		if s.parseHeader(line) && !json.Valid(line) {
			t.Fatalf("%q: taken for a Cribl header, but it is not one JSON value", line)
		}
		rec, err := s.record(line)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("%q: error with no message", line)
			}
			if !envelope && fullCheck && json.Valid(line) && utf8.Valid(line) {
				t.Fatalf("%q: valid JSON refused by the full check: %v", line, err)
			}
			return
		}
		if msg := soarkafka.TopicNameProblem(rec.Topic); msg != "" {
			t.Fatalf("%q: record for topic %q: %s", line, rec.Topic, msg)
		}
		if kafka.RecordSize(rec) < len(rec.Value) {
			t.Fatalf("%q: RecordSize %d is less than the value's %d bytes", line, kafka.RecordSize(rec), len(rec.Value))
		}
		if !envelope {
			if !bytes.Equal(rec.Value, line) {
				t.Fatalf("%q: events record value %q, want the line", line, rec.Value)
			}
			if fullCheck && !(json.Valid(line) && utf8.Valid(line)) {
				t.Fatalf("%q: invalid JSON accepted by the full check", line)
			}
			return
		}
		var e struct {
			Value     json.RawMessage `json:"value"`
			Partition *int32          `json:"partition"`
		}
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("%q: accepted as an envelope, but it does not decode: %v", line, err)
		}
		var text string
		if json.Unmarshal(e.Value, &text) == nil {
			if string(rec.Value) != text {
				t.Fatalf("%q: value %q, want the string %q", line, rec.Value, text)
			}
		} else {
			var want, got any
			if json.Unmarshal(e.Value, &want) != nil || json.Unmarshal(rec.Value, &got) != nil {
				t.Fatalf("%q: value %q is not the envelope's JSON", line, rec.Value)
			}
		}
		if e.Partition != nil && (*e.Partition < 0 || rec.Partition != *e.Partition) {
			t.Fatalf("%q: partition %d, envelope says %d", line, rec.Partition, *e.Partition)
		}
	})
}
