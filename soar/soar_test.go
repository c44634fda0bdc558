package soar_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/soarkafka/soarkafka/soar"
)

func TestMarshalMergesExtra(t *testing.T) {
	c := soar.Container{Name: "c", RunAutomation: soar.Bool(false), Extra: map[string]any{"owner_id": 3, "name": "loses"}}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"name":"c","owner_id":3,"run_automation":false}` {
		t.Fatalf("container %s", b)
	}
	a := soar.Artifact{CEF: map[string]any{"sourceAddress": "10.0.0.1"}, CEFTypes: map[string][]string{"sourceAddress": {"ip"}}}
	b, _ = json.Marshal(a)
	if string(b) != `{"cef":{"sourceAddress":"10.0.0.1"},"cef_types":{"sourceAddress":["ip"]}}` {
		t.Fatalf("artifact %s", b)
	}
	// A Result in a slice marshals its parts through their methods too.
	b, _ = json.Marshal([]soar.Result{{Container: soar.Container{Extra: map[string]any{"k": "v"}}}})
	if string(b) != `[{"container":{"k":"v"},"artifacts":null}]` {
		t.Fatalf("result %s", b)
	}
}

func TestMessage(t *testing.T) {
	m := soar.Message{Partition: 3, Offset: 1234567890123, Headers: []soar.Header{{"a", "1"}, {"a", "2"}, {"b", ""}}}
	if m.SourceID() != "3:1234567890123" {
		t.Fatal(m.SourceID())
	}
	if v, ok := m.Header("a"); !ok || v != "1" {
		t.Fatalf("first a: %q %v", v, ok)
	}
	if v, ok := m.Header("b"); !ok || v != "" {
		t.Fatalf("b: %q %v", v, ok)
	}
	if _, ok := m.Header("c"); ok {
		t.Fatal("c found")
	}
}

func TestJSONAndGet(t *testing.T) {
	m, err := soar.JSON([]byte(`{"Records":[{"eventName":"GetObject","n":12345678901234567890,"ok":true,"user":{"arn":"arn:x"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"Records.0.eventName": "GetObject", "Records.0.n": "12345678901234567890", "Records.0.ok": "true",
		"Records.0.user.arn": "arn:x", "Records.1.eventName": "", "Records.x": "", "Records.0.user": "", "nope": ""} {
		if got := soar.GetString(m, path); got != want {
			t.Errorf("GetString(%q) = %q, want %q", path, got, want)
		}
	}
	if _, ok := soar.Get(m, "Records.0.user"); !ok {
		t.Error("object not found")
	}
	for _, bad := range []string{`[1]`, `{"a":1} {"b":2}`, `{`, ``} {
		if _, err := soar.JSON([]byte(bad)); err == nil {
			t.Errorf("JSON(%q) accepted", bad)
		}
	}
	if v, err := soar.DecodeJSON([]byte(`[1, "x"]`)); err != nil || len(v.([]any)) != 2 {
		t.Fatalf("DecodeJSON: %v %v", v, err)
	}
}

func TestGunzipBounded(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(bytes.Repeat([]byte("a"), 10000))
	zw.Close()
	if !soar.IsGzip(buf.Bytes()) || soar.IsGzip([]byte("{}")) {
		t.Fatal("IsGzip")
	}
	out, err := soar.Gunzip(buf.Bytes(), 10000)
	if err != nil || len(out) != 10000 {
		t.Fatalf("at the limit: %d %v", len(out), err)
	}
	if _, err := soar.Gunzip(buf.Bytes(), 9999); !errors.Is(err, soar.ErrTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
	if _, err := soar.Gunzip([]byte("not gzip"), 0); err == nil {
		t.Fatal("garbage accepted")
	}
}

func TestTruncateCountsCharacters(t *testing.T) {
	for _, tt := range []struct {
		s    string
		n    int
		want string
	}{{"héllo", 2, "hé"}, {"日本語", 5, "日本語"}, {"abc", 0, ""}, {"", 3, ""}, {strings.Repeat("é", 150), 100, strings.Repeat("é", 100)}} {
		if got := soar.Truncate(tt.s, tt.n); got != tt.want {
			t.Errorf("Truncate(%q, %d) = %q", tt.s, tt.n, got)
		}
	}
}

// JSON v2 (soarkafka's encoder) and encoding/json (a parser author's) write
// the same bodies, Extra and its clashes with modelled fields included.
func TestMarshalV1AndV2Agree(t *testing.T) {
	results := []soar.Result{
		{Container: soar.Container{Name: "c", Tags: []string{"x"}, RunAutomation: soar.Bool(true)},
			Artifacts: []soar.Artifact{{Name: "a", CEF: map[string]any{"act": "x", "n": 1.5}}, {}}},
		{Container: soar.Container{Name: "set wins", Extra: map[string]any{"name": "loses", "label": "extra fills an unset field", "owner": "o"}},
			Artifacts: []soar.Artifact{{Extra: map[string]any{"cef": map[string]any{"from": "extra"}, "container_id": 5}}}},
		// Extra without a clash takes the fast path: inlined, not nested.
		{Container: soar.Container{Name: "fast", Extra: map[string]any{"owner_id": 7}},
			Artifacts: []soar.Artifact{{Name: "a", Extra: map[string]any{"type": "event", "ingest": map[string]any{"n": 1}}}}},
	}
	v1, err := json.Marshal(results)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := jsonv2.Marshal(results, jsonv2.Deterministic(true))
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	json.Unmarshal(v1, &a)
	json.Unmarshal(v2, &b)
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Fatalf("encoding/json %s\nJSON v2       %s", ja, jb)
	}
	if !strings.Contains(string(ja), `"label":"extra fills an unset field"`) || strings.Contains(string(ja), "loses") ||
		!strings.Contains(string(jb), `"owner_id":7`) || strings.Contains(string(jb), "Extra") {
		t.Fatalf("Extra rules: %s", ja)
	}
}
