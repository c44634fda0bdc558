package bundled_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/soarkafka/soarkafka/parsers/bundled"
	"github.com/soarkafka/soarkafka/parsers/sandbox"
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
		if err := sandbox.Check(p.Name+".go", p.Source); err != nil {
			t.Errorf("%s: sandbox.Check: %v", p.Name, err)
		}
		if p.Description == "" || p.Parse == nil {
			t.Errorf("%s: incomplete registration", p.Name)
		}
	}
	names := []string{}
	for _, p := range bundled.All() {
		names = append(names, p.Name)
	}
	if strings.Join(names, ",") != "cloudtrail,default,ndjson,ocsf" {
		t.Errorf("bundled parsers %v", names)
	}
	if _, ok := bundled.Get("nope"); ok {
		t.Fatal("unknown parser found")
	}
}

// BenchmarkDefaultNative runs the bundled default parser natively over
// 10,000 messages of ~1 KB in batches of 500 (its target and figures are in
// docs/performance.md). The native path hands Go values on: no JSON.
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
				if _, err := jsonv2.Marshal(res, sandbox.ResultOptions()); err != nil {
					b.Fatal(err)
				}
			}
			n += len(batch)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
}

// envWorker makes this test binary a parser worker, as the app re-execs
// `soarkafka parser-worker`: the bundled sources then run in the sandbox
// exactly as an uploaded parser would.
const envWorker = "BUNDLED_TEST_PARSER_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(envWorker) == "1" {
		os.Exit(sandbox.WorkerMain(os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func startWorker(t testing.TB, name, source string) *sandbox.Worker {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	w, err := sandbox.Start(context.Background(), sandbox.Config{Exe: exe, Env: []string{envWorker + "=1"}, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatalf("start worker: %v", err)
	}
	t.Cleanup(func() { w.Close() })
	if err := w.Load(context.Background(), name, source); err != nil {
		t.Fatalf("load %s in the worker: %v", name, err)
	}
	return w
}

// samples are each parser's testdata files (its seed samples and error
// cases), keyed by file name; the default parser takes any bytes, so it
// gets them all.
func samples(t testing.TB) map[string]map[string][]byte {
	t.Helper()
	out := map[string]map[string][]byte{}
	all := map[string][]byte{}
	for _, name := range []string{"cloudtrail", "ndjson", "ocsf"} {
		out[name] = map[string][]byte{}
		paths, _ := filepath.Glob(filepath.Join(name, "testdata", "*.*"))
		if len(paths) == 0 {
			t.Fatalf("no samples for %s", name)
		}
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			out[name][filepath.Base(p)] = b
			all[name+"/"+filepath.Base(p)] = b
		}
	}
	out["default"] = all
	return out
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func messages(topic string, values ...[]byte) []soar.Message {
	out := make([]soar.Message, len(values))
	for i, v := range values {
		out[i] = soar.Message{Topic: topic, Partition: int32(i % 3), Offset: int64(1000 + i), Key: []byte("k"), Value: v, Message: string(v), Timestamp: time.Unix(1710400000, 0).UTC(), Headers: []soar.Header{{Key: "h", Value: "v"}}}
	}
	return out
}

// withoutTime drops the default parser's container name, which carries the
// current time.
func withoutTime(t testing.TB, parser string, b []byte) string {
	t.Helper()
	if parser != "default" {
		return string(b)
	}
	var res []map[string]any
	if err := jsonv2.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		c := r["container"].(map[string]any)
		if !strings.HasPrefix(c["name"].(string), "Messages ingested from ") {
			t.Errorf("default container name %q", c["name"])
		}
		delete(c, "name")
	}
	out, _ := jsonv2.Marshal(res, sandbox.ResultOptions())
	return string(out)
}

// TestBundledInSandbox runs every bundled parser's Source in a sandbox
// worker on every sample, one message per batch, all good samples in one
// batch, and compressed; the worker's JSON must be the bytes the native
// parser's results encode to, and an error the same text.
func TestBundledInSandbox(t *testing.T) {
	all := samples(t)
	for _, p := range bundled.All() {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			w := startWorker(t, p.Name, p.Source)
			in := all[p.Name]
			batches := map[string][]soar.Message{}
			var good, goodGz [][]byte
			for _, name := range sortedKeys(in) {
				batches[name] = messages("topic-"+p.Name, in[name])
				if !strings.HasPrefix(filepath.Base(name), "bad-") {
					good = append(good, in[name])
					goodGz = append(goodGz, gzipped(in[name]))
				}
			}
			batches["all good samples"] = messages("topic-"+p.Name, good...)
			// The default parser copies values as text: for gzip bytes, not
			// UTF-8, both paths must replace the invalid bytes alike.
			batches["all good samples, gzipped"] = messages("topic-"+p.Name, goodGz...)
			batches["empty batch"] = nil
			errs := 0
			for _, name := range sortedKeys(map[string][]byte(nilKeys(batches))) {
				msgs := batches[name]
				native, nerr := p.Parse("topic-"+p.Name, msgs)
				got, werr := w.Call(context.Background(), "topic-"+p.Name, msgs)
				if nerr != nil {
					errs++
					var se *sandbox.ScriptError
					if !errors.As(werr, &se) || se.Kind != "error" || se.Message != nerr.Error() {
						t.Errorf("%s: native error %q, worker %v", name, nerr, werr)
					}
					continue
				}
				if werr != nil {
					t.Errorf("%s: worker: %v", name, werr)
					continue
				}
				if native == nil {
					native = []soar.Result{}
				}
				want, err := jsonv2.Marshal(native, sandbox.ResultOptions())
				if err != nil {
					t.Fatal(err)
				}
				if g, w := withoutTime(t, p.Name, got.Results), withoutTime(t, p.Name, want); g != w {
					t.Errorf("%s: worker and native differ:\nworker %s\nnative %s", name, g, w)
				}
			}
			t.Logf("%d batches compared, %d of them errors", len(batches), errs)
			if p.Name != "default" && errs == 0 {
				t.Error("no error case compared")
			}
		})
	}
}

func nilKeys(m map[string][]soar.Message) map[string][]byte {
	out := make(map[string][]byte, len(m))
	for k := range m {
		out[k] = nil
	}
	return out
}

// FuzzBundledParsers feeds arbitrary bytes, as is and gzipped, as message
// values to every bundled parser natively: an error or results that encode,
// never a panic. The default parser copies the value's text as is, so a
// value that is not UTF-8 gives results JSON v2 refuses to encode: it is
// only checked for panics.
func FuzzBundledParsers(f *testing.F) {
	for _, in := range samples(f) {
		for _, k := range sortedKeys(in) {
			f.Add(in[k])
		}
	}
	f.Add([]byte(`{"format":"ndjson","count":1}` + "\n" + `{"_time":"NaN"}`))
	f.Add([]byte(`{"Records":[{"eventName":"a","eventSource":"b","eventTime":"2024-01-01T00:00:00Z","userIdentity":"x"}]}`))
	f.Add([]byte(`[{"class_uid":1,"observables":[{"type_id":2,"value":"x"},{"type_id":8,"value":"y"},null],"file":{"hashes":[null,{"value":1}]}}]`))
	parsers := bundled.All()
	f.Fuzz(func(t *testing.T, value []byte) {
		for _, v := range [][]byte{value, gzipped(value)} {
			msgs := messages("fuzz", v, v)
			for _, p := range parsers {
				res, err := p.Parse("fuzz", msgs)
				if err != nil {
					if res != nil {
						t.Fatalf("%s: results with an error", p.Name)
					}
					continue
				}
				if _, err := jsonv2.Marshal(res, sandbox.ResultOptions()); err != nil {
					t.Fatalf("%s: results do not encode: %v", p.Name, err)
				}
			}
		}
	})
}
