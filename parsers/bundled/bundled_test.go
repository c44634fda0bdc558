package bundled_test

import (
	"encoding/json"
	"go/ast"

	"go/parser"
	"go/printer"
	"go/token"
	"regexp"
	"strings"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/soarkafka/soarkafka/parsers/bundled"
	"github.com/soarkafka/soarkafka/soar"
)

func msgs(values ...string) []soar.Message {
	out := make([]soar.Message, len(values))
	for i, v := range values {
		out[i] = soar.Message{Topic: "alerts", Partition: int32(i % 2), Offset: int64(100 + i), Value: []byte(v), Message: v}
	}
	return out
}

// The default parser is kafka_parser.py: checked field by field on the
// JSON bodies it yields.
func TestDefaultParser(t *testing.T) {
	p, ok := bundled.Get("default")
	if !ok {
		t.Fatal("no default parser")
	}
	long := strings.Repeat("é", 120)
	before := time.Now().UTC().Truncate(time.Second)
	res, err := p.Parse("alerts", msgs(`{"a": 1}`, long, "last"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(res)
	var got []map[string]any
	json.Unmarshal(b, &got)
	if len(got) != 1 {
		t.Fatalf("%d results, want 1 container per batch", len(got))
	}
	c := got[0]["container"].(map[string]any)
	name := regexp.MustCompile(`^Messages ingested from alerts at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)$`).FindStringSubmatch(c["name"].(string))
	if name == nil {
		t.Fatalf("container name %q", c["name"])
	}
	if ts, _ := time.Parse("2006-01-02 15:04:05", name[1]); ts.Before(before) || ts.After(time.Now().UTC()) {
		t.Fatalf("container time %s not now", name[1])
	}
	if c["description"] != "Some messages from Kafka" || c["run_automation"] != false || len(c) != 3 {
		t.Fatalf("container %v", c)
	}
	arts := got[0]["artifacts"].([]any)
	want := []map[string]any{
		{"name": `{"a": 1}`, "source_data_identifier": "0:100", "cef": map[string]any{"message": `{"a": 1}`}, "run_automation": false},
		{"name": strings.Repeat("é", 100), "source_data_identifier": "1:101", "cef": map[string]any{"message": long}, "run_automation": false},
		{"name": "last", "source_data_identifier": "0:102", "cef": map[string]any{"message": "last"}},
	}
	wb, _ := json.Marshal(want)
	ab, _ := json.Marshal(arts)
	if string(ab) != string(wb) {
		t.Fatalf("artifacts\n got %s\nwant %s", ab, wb)
	}
}

// The source each bundled parser carries is the code compiled in: a
// package defining ParseMessages, importing nothing the sandbox refuses
// to load.
func TestBundledSources(t *testing.T) {
	for _, p := range bundled.All() {
		f, err := parser.ParseFile(token.NewFileSet(), p.Name+".go", p.Source, 0)
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		var sig string
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == "ParseMessages" && fd.Recv == nil {
				var b strings.Builder
				printer.Fprint(&b, token.NewFileSet(), fd.Type)
				sig = b.String()
			}
		}
		if sig != "func(topic string, messages []soar.Message) ([]soar.Result, error)" {
			t.Errorf("%s: ParseMessages is %q, not the contract's signature", p.Name, sig)
		}
		for _, imp := range f.Imports {
			if path := strings.Trim(imp.Path.Value, `"`); path == "embed" || path == "os" {
				t.Errorf("%s imports %s", p.Name, path)
			}
		}
		if p.Description == "" || p.Parse == nil {
			t.Errorf("%s: incomplete registration", p.Name)
		}
	}
	if _, ok := bundled.Get("nope"); ok {
		t.Fatal("unknown parser found")
	}
}

// BenchmarkDefaultNative runs the bundled default parser natively over
// 10,000 messages of ~1 KB in batches of 500 (issue target: 500,000
// messages/s). The native path hands Go values on: no JSON.
// BenchmarkDefaultNativeJSON adds the JSON encoding of the results (JSON
// v2, through soar's MarshalJSONTo), the form the sandbox path returns, for
// comparison.
func BenchmarkDefaultNative(b *testing.B)     { benchDefault(b, false) }
func BenchmarkDefaultNativeJSON(b *testing.B) { benchDefault(b, true) }

func benchDefault(b *testing.B, encode bool) {
	p, _ := bundled.Get("default")
	value := `{"eventName":"GetObject","pad":"` + strings.Repeat("x", 980) + `"}`
	batch := make([]soar.Message, 500)
	for i := range batch {
		batch[i] = soar.Message{Topic: "t", Partition: 0, Offset: int64(i), Value: []byte(value), Message: value}
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for range 20 { // 20 x 500 = 10,000 messages
			res, err := p.Parse("t", batch)
			if err != nil {
				b.Fatal(err)
			}
			if encode {
				if _, err := jsonv2.Marshal(res); err != nil {
					b.Fatal(err)
				}
			}
			n += len(batch)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
}
