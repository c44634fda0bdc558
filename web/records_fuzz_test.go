package web

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/produce"
)

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
		if produce.RecordSize(rec) < len(rec.Value) {
			t.Fatalf("%q: RecordSize %d is less than the value's %d bytes", line, produce.RecordSize(rec), len(rec.Value))
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
