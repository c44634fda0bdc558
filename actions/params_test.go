package actions

import (
	"bytes"
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/soarkafka/soarkafka"
)

// fieldsOf turns a parameter map into the Fields a request holds, in key
// order, each value encoded as a SOAR would send it (no HTML escaping).
func fieldsOf(t testing.TB, params map[string]any) Fields {
	t.Helper()
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fields := make(Fields, 0, len(keys))
	for _, k := range keys {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(params[k]); err != nil {
			t.Fatalf("encode parameter %s: %v", k, err)
		}
		fields = append(fields, Field{Name: k, Value: jsontext.Value(bytes.TrimSuffix(b.Bytes(), []byte("\n")))})
	}
	return fields
}

// runParams decodes params for identifier and runs the action, as the web
// layer does: a decoding error is returned with no result.
func runParams(ctx context.Context, t testing.TB, r *Runner, identifier string, target Target, params map[string]any) (*Result, error) {
	t.Helper()
	p, err := r.Decode(identifier, fieldsOf(t, params), nil)
	if err != nil {
		return nil, err
	}
	defer p.Release()
	return r.Run(ctx, target, p)
}

// countingBufs is a Buffers that counts what it lends and gets back.
type countingBufs struct{ lent, back int }

func (b *countingBufs) Get(n int) []byte { b.lent++; return make([]byte, 0, n) }
func (b *countingBufs) Put([]byte)       { b.back++ }

// TestDecodeTakesRawValues: each member is read from its JSON text in one
// pass, with SOAR's leniency, and the payload is a buffer lent by Buffers
// that Release gives back, once.
func TestDecodeTakesRawValues(t *testing.T) {
	t.Parallel()
	r := NewRunner(nil)
	t.Cleanup(r.Close)
	bufs := &countingBufs{}
	fields := Fields{
		{"topic", jsontext.Value(`"alerts"`)},
		{"data", jsontext.Value(`"line one\nline \u00e9"`)},
		{"data_type", jsontext.Value(`"STRING"`)},
		{"timeout", jsontext.Value(`"2.5"`)},
		{"partition", jsontext.Value(`3`)},
		{"headers", jsontext.Value(`{"z": "1", "a": "2", "m": "3"}`)},
		{"unknown", jsontext.Value(`{"kept": "in the echo"}`)},
	}
	params, err := r.Decode(PostData, fields, bufs)
	if err != nil {
		t.Fatal(err)
	}
	p := params.(*PostDataParams)
	if string(p.Data.Bytes()) != "line one\nline é" || p.DataType != "string" || p.Topic != "alerts" ||
		p.Timeout.Seconds() != 2.5 || p.Partition != 3 {
		t.Errorf("decoded %+v (data %q)", p, p.Data.Bytes())
	}
	// Kafka headers are ordered: kept as given.
	var got []string
	for _, h := range p.Headers {
		got = append(got, h.Key+"="+string(h.Value))
	}
	if strings.Join(got, ",") != "z=1,a=2,m=3" {
		t.Errorf("headers = %v, want them in the order given", got)
	}
	if string(p.Echo()["unknown"]) != `{"kept": "in the echo"}` || string(p.Echo()["timeout"]) != `"2.5"` {
		t.Errorf("echo = %v", p.Echo())
	}
	if bufs.lent != 1 || bufs.back != 0 {
		t.Fatalf("lent %d, back %d before Release", bufs.lent, bufs.back)
	}
	p.Release()
	p.Release()
	if bufs.back != 1 || p.Data.Bytes() != nil {
		t.Errorf("after two Releases: back %d, data %q; want the buffer back once", bufs.back, p.Data.Bytes())
	}

	// A bad set gives its buffer back at once.
	bufs = &countingBufs{}
	if _, err := r.Decode(PostData, Fields{{"data", jsontext.Value(`"x"`)}, {"topic", jsontext.Value(`1`)}}, bufs); err == nil {
		t.Fatal("a set with no data_type and a number topic decoded")
	}
	if bufs.lent != bufs.back {
		t.Errorf("bad set: lent %d, back %d", bufs.lent, bufs.back)
	}
}

// TestDecodeOnPoll: on poll's parameters with a SOAR's value types, and
// every bad one named at once.
func TestDecodeOnPoll(t *testing.T) {
	t.Parallel()
	p, err := DecodeOnPoll(Fields{
		{"poll_now", jsontext.Value(`"true"`)}, {"artifact_count", jsontext.Value(`"25"`)},
		{"container_count", jsontext.Value(`4294967295`)}, {"start_time", jsontext.Value(`1700000000000`)},
		{"end_time", jsontext.Value(`""`)}, {"container_id", jsontext.Value(`"ignored"`)},
	})
	if err == nil {
		t.Fatal("container_count 4294967295 (over the 32-bit cap) accepted")
	}
	wantFields(t, err, []string{"container_count"}, "from 0 to 2147483647")
	p, err = DecodeOnPoll(Fields{
		{"poll_now", jsontext.Value(`"true"`)}, {"artifact_count", jsontext.Value(`"25"`)},
		{"container_count", jsontext.Value(`7`)}, {"start_time", jsontext.Value(`1700000000000`)},
		{"end_time", jsontext.Value(`""`)}, {"container_id", jsontext.Value(`"ignored"`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !p.PollNow || p.ArtifactCount != 25 || p.ContainerCount != 7 {
		t.Errorf("decoded %+v", p)
	}
	_, err = DecodeOnPoll(Fields{
		{"poll_now", jsontext.Value(`"maybe"`)}, {"artifact_count", jsontext.Value(`0`)},
		{"container_count", jsontext.Value(`1.5`)}, {"start_time", jsontext.Value(`"noon"`)}, {"end_time", jsontext.Value(`[]`)},
	})
	wantFields(t, err, []string{"poll_now", "artifact_count", "container_count", "start_time", "end_time"}, `"maybe"`)
	var e *soarkafka.Error
	if !strings.Contains(err.Error(), "on poll") || !asError(err, &e) || e.Code != soarkafka.EINVALID {
		t.Errorf("err = %v", err)
	}
}

func asError(err error, e **soarkafka.Error) bool {
	x, ok := err.(*soarkafka.Error)
	*e = x
	return ok
}
