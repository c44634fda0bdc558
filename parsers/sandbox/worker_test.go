package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka/parsers/bundled/defaultparser"
	"github.com/soarkafka/soarkafka/soar"
)

func sampleMessages(n, size int) []soar.Message {
	msgs := make([]soar.Message, n)
	value := strings.Repeat("x", size)
	for i := range msgs {
		msgs[i] = soar.Message{
			Topic: "events", Partition: 3, Offset: int64(100 + i),
			Key:       []byte("k"),
			Value:     []byte(`{"n":` + itoa(i) + `,"pad":"` + value + `"}`),
			Headers:   []soar.Header{{Key: "h", Value: "v"}},
			Timestamp: time.Unix(1700000000, int64(i)).UTC(),
		}
		msgs[i].Message = string(msgs[i].Value)
	}
	return msgs
}

func TestProtocolCallRoundTrip(t *testing.T) {
	in := append(sampleMessages(3, 10), soar.Message{Topic: "t", Partition: -1, Offset: -5, Value: []byte{}})
	topic, out, err := decodeCall(encodeCall("events", in))
	if err != nil || topic != "events" {
		t.Fatal(topic, err)
	}
	a, _ := json.Marshal(in)
	b, _ := json.Marshal(out)
	if string(a) != string(b) || out[0].Key == nil || out[3].Key != nil || out[3].Value == nil {
		t.Errorf("round trip:\n %s\n %s", a, b)
	}
	if _, _, err := decodeCall(encodeCall("events", in)[:20]); err == nil {
		t.Error("truncated request decoded")
	}
}

// TestWorkerDefaultParser runs the bundled default parser's source in a
// worker and compares with the same parser compiled natively.
func TestWorkerDefaultParser(t *testing.T) {
	w := startWorker(t, testConfig(t))
	ctx := context.Background()
	if err := w.Load(ctx, "default", defaultparser.Source); err != nil {
		t.Fatal(err)
	}
	msgs := sampleMessages(5, 150)
	for range 2 { // the worker serves several batches
		res, err := w.Call(ctx, "events", msgs)
		if err != nil {
			t.Fatal(err)
		}
		native, err := defaultparser.ParseMessages("events", msgs)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(native)
		var got, exp []map[string]any
		if err := json.Unmarshal(res.Results, &got); err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal(want, &exp)
		for _, r := range append(got, exp...) {
			c := r["container"].(map[string]any)
			if !strings.HasPrefix(c["name"].(string), "Messages ingested from events at ") {
				t.Errorf("container name %q", c["name"])
			}
			delete(c, "name") // carries the time
		}
		g, _ := json.Marshal(got)
		e, _ := json.Marshal(exp)
		if string(g) != string(e) {
			t.Errorf("worker result differs from native:\n%s\n%s", g, e)
		}
	}
	if w.Calls() != 2 || !w.Alive() {
		t.Errorf("calls %d alive %v", w.Calls(), w.Alive())
	}
}

func TestWorkerLogAndStdout(t *testing.T) {
	cfg := testConfig(t)
	cfg.Timeout = 10 * time.Second // 100,000 interpreted prints, slow under -race on a busy machine
	w := startWorker(t, cfg)
	ctx := context.Background()
	src := `package parser
import (
	"fmt"
	"github.com/soarkafka/soarkafka/soar"
)
func init() { fmt.Println("loaded") }
func ParseMessages(topic string, messages []soar.Message) ([]soar.Result, error) {
	println("to stderr, not the protocol")
	print("raw print")
	for _, m := range messages { fmt.Printf("%s@%s\n", m.SourceID(), m.Timestamp.Format("2006")) }
	for i := 0; i < 100000; i++ { fmt.Print("spam ") }
	return []soar.Result{{Container: soar.Container{Name: "c", Extra: map[string]any{"ingest": 1}}}}, nil
}`
	if err := w.Load(ctx, "logger", src); err != nil {
		t.Fatal(err)
	}
	res, err := w.Call(ctx, "events", sampleMessages(2, 1))
	if err != nil {
		t.Fatal(err)
	}
	// The log is cut at MaxLogSize, and says how much was cut.
	head := "to stderr, not the protocol\nraw print3:100@2023\n3:101@2023\n"
	cut := fmt.Sprintf("\n… [cut %d bytes]\n", len(head)+5*100000-MaxLogSize)
	if !strings.HasPrefix(res.Log, head+"spam ") || !strings.HasSuffix(res.Log, cut) || len(res.Log) != MaxLogSize+len(cut) {
		t.Errorf("log %q…%q (%d bytes)", res.Log[:min(len(res.Log), 60)], res.Log[max(0, len(res.Log)-40):], len(res.Log))
	}
	if string(res.Results) != `[{"container":{"name":"c","ingest":1},"artifacts":[]}]` {
		t.Errorf("results %s", res.Results)
	}
}

const head = "package parser\n\nimport (\n\t\"encoding/json\"\n\t\"time\"\n\t\"github.com/soarkafka/soarkafka/soar\"\n)\n\nvar _ = time.Now\nvar _ = json.Marshal\n" // ParseMessages on line 11

func body(s string) string {
	return head + "func ParseMessages(topic string, messages []soar.Message) ([]soar.Result, error) {\n" + s + "\n}\n"
}

// TestWorkerFaults runs every failure mode of the sandbox: each stops
// within the deadline, as an error that says what happened, and a killed
// worker is gone with its process group.
func TestWorkerFaults(t *testing.T) {
	tests := []struct {
		name      string
		src       string
		unchecked bool     // bypass Check, to reach the worker's own defences
		loadFails bool     // the load fails, not the call
		crash     bool     // the worker is killed (else a ScriptError)
		want      []string // substrings of the error
	}{
		{name: "for ever", src: body("for {}"), crash: true, want: []string{"during call", "deadline passed"}},
		{name: "init never returns", src: body("return nil, nil") + "func init() { for {} }\n", loadFails: true, crash: true, want: []string{"during load", "deadline passed"}},
		{name: "sleep", src: body("time.Sleep(time.Hour); return nil, nil"), crash: true, want: []string{"deadline passed"}},
		{name: "huge allocation", src: body("b := make([]byte, 2<<30); b[1<<30] = 1; return nil, nil"), crash: true, want: []string{oom}},
		{name: "growth without bound", src: body("var keep [][]byte\nfor { keep = append(keep, make([]byte, 1<<20)) }"), crash: true, want: []string{oom}},
		{name: "goroutine outlives the call", unchecked: true, src: body("go func() { for {} }()\nreturn nil, nil"), want: []string{"left 1 goroutine(s) running"}},
		{name: "compiler panic", src: body("var x foo.Bar; _ = x; return nil, nil"), loadFails: true, want: []string{"load:", "crashed compiling"}},
		{name: "time.AfterFunc", unchecked: true, src: "package p\nimport (\n\t\"time\"\n\t\"github.com/soarkafka/soarkafka/soar\"\n)\nfunc ParseMessages(topic string, messages []soar.Message) ([]soar.Result, error) {\n\ttime.AfterFunc(time.Hour, func() { for {} })\n\treturn nil, nil\n}\n", loadFails: true, want: []string{"AfterFunc"}},
		{name: "range over int", unchecked: true, src: body("for i := range 3 { _ = i }; return nil, nil"), loadFails: true, want: []string{"not supported by the parser interpreter"}},
		{name: "compile error", src: body("return undefinedThing, nil"), loadFails: true, want: []string{"p.go:12:8", "undefined"}},
		{name: "panic", src: body("if len(messages) > 0 {\n\tpanic(\"boom\")\n}\nreturn nil, nil"), want: []string{`p\.go:1[23]:\d+: panic`, "panic: boom"}},
		{name: "index out of range", src: body("var a []int\n_ = a[len(messages)]\nreturn nil, nil"), want: []string{`p\.go:1[23]:\d+: panic`, "index out of range"}},
		{name: "nil map write", src: body("var m map[string]int\nm[\"x\"] = 1\nreturn nil, nil"), want: []string{`p\.go:1[23]:\d+: panic`, "nil map"}},
		{name: "returned error", src: body("return nil, &json.UnsupportedValueError{Str: \"bad input\"}"), want: []string{"returned an error: json: unsupported value: bad input"}},
		{name: "channel in CEF", src: body("return []soar.Result{{Artifacts: []soar.Artifact{{}, {CEF: map[string]any{\"c\": make(chan int)}}}}}, nil"), want: []string{"malformed result: result 0: artifact 1", `(cannot|unable to) marshal from Go chan int within "/cef/c"`}},
		{name: "func in Data", src: body("return []soar.Result{{Container: soar.Container{Data: map[string]any{\"f\": func() {}}}}}, nil"), want: []string{"result 0: container", `(cannot|unable to) marshal from Go func\(\) within "/data/f"`}},
		{name: "too many containers", src: body("rs := make([]soar.Result, 10001)\n\treturn rs, nil"), want: []string{"10001 containers in one batch, over the limit of 10000"}},
		{name: "too many artifacts", src: body("return []soar.Result{{Artifacts: make([]soar.Artifact, 200001)}}, nil"), want: []string{"200001 artifacts in one batch, over the limit of 200000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t)
			w := startWorker(t, cfg)
			ctx := context.Background()
			begin := time.Now()
			var err error
			if tt.unchecked {
				if Check("p.go", tt.src) == nil {
					t.Error("Check accepts the source the test bypasses it for")
				}
				err = w.load(ctx, "p.go", tt.src)
			} else {
				err = w.Load(ctx, "p.go", tt.src)
			}
			if (err != nil) != tt.loadFails {
				t.Fatalf("load error %v, want failure %v", err, tt.loadFails)
			}
			if err == nil {
				_, err = w.Call(ctx, "events", sampleMessages(2, 10))
			}
			elapsed := time.Since(begin)
			if err == nil {
				t.Fatal("no error")
			}
			t.Logf("%s: %v", elapsed.Round(time.Millisecond), err)
			if elapsed > cfg.Timeout+time.Second {
				t.Errorf("stopped after %s, deadline %s", elapsed, cfg.Timeout)
			}
			for _, s := range tt.want {
				if !regexp.MustCompile(s).MatchString(err.Error()) && !strings.Contains(err.Error(), s) {
					t.Errorf("error does not contain %q", s)
				}
			}
			var crash *CrashError
			var script *ScriptError
			switch {
			case tt.crash:
				if !errors.As(err, &crash) {
					t.Errorf("want a *CrashError, got %T", err)
				}
				if strings.Contains(err.Error(), "deadline") && !errors.Is(err, ErrTimeout) {
					t.Error("not ErrTimeout")
				}
			case !errors.As(err, &script):
				t.Errorf("want a *ScriptError, got %T", err)
			}
			if tt.crash || tt.loadFails || tt.unchecked {
				assertGone(t, w)
				if _, err := w.Call(ctx, "events", nil); !errors.Is(err, ErrWorkerGone) {
					t.Errorf("call on a dead worker: %v", err)
				}
				return
			}
			// A script fault in a call leaves the worker usable. Under -race,
			// 200,001 artifacts and ThreadSanitizer's shadow memory overrun
			// the worker's limit on the next call: the run without -race
			// (make test) checks that one.
			if raceEnabled && tt.name == "too many artifacts" {
				return
			}
			if _, err := w.Call(ctx, "events", nil); err != nil && !errors.As(err, &script) || !w.Alive() {
				t.Errorf("call after a script fault: %v", err)
			}
		})
	}
}

func TestWorkerContextCancel(t *testing.T) {
	w := startWorker(t, testConfig(t))
	if err := w.Load(context.Background(), "p.go", body("for {}")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	begin := time.Now()
	_, err := w.Call(ctx, "events", nil)
	if !errors.Is(err, context.Canceled) || time.Since(begin) > time.Second {
		t.Fatalf("err %v after %s", err, time.Since(begin))
	}
	assertGone(t, w)
}

func TestWorkerRefusesBadConfig(t *testing.T) {
	cfg := testConfig(t)
	cfg.MemoryLimit = 64 << 20
	if _, err := Start(context.Background(), cfg); err == nil {
		t.Error("started under the minimum memory limit")
	}
	cfg = testConfig(t)
	cfg.Exe = "/nonexistent"
	if _, err := Start(context.Background(), cfg); err == nil {
		t.Error("started a missing binary")
	}
}

func TestWorkerCheckBeforeLoad(t *testing.T) {
	w := startWorker(t, testConfig(t))
	err := w.Load(context.Background(), "p.go", "package p\nimport \"os\"\n"+sig)
	var ce *CheckError
	if !errors.As(err, &ce) || !w.Alive() {
		t.Fatalf("err %v alive %v", err, w.Alive())
	}
}

func TestBoundText(t *testing.T) {
	tests := []struct {
		s    string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"0123456789abc", 10, "0123456789… [cut 3 bytes]"},
		{"aé", 2, "a… [cut 2 bytes]"}, // not inside a UTF-8 sequence
	}
	for _, tc := range tests {
		if got := BoundText(tc.s, tc.max); got != tc.want {
			t.Errorf("BoundText(%q, %d) = %q, want %q", tc.s, tc.max, got, tc.want)
		}
	}
}

// TestWorkerBoundsFaultsItself: a worker that sends unbounded texts (a
// subverted one) has them bounded by the parent all the same.
func TestWorkerBoundsFaultsItself(t *testing.T) {
	cfg := testConfig(t)
	cfg.Env = []string{envTestUnboundedWorker + "=1"}
	w := startWorker(t, cfg)
	ctx := context.Background()
	if err := w.Load(ctx, "p.go", body("return nil, nil")); err != nil {
		t.Fatal(err)
	}
	_, err := w.Call(ctx, "events", nil)
	var se *ScriptError
	if !errors.As(err, &se) {
		t.Fatalf("err %v", err)
	}
	for name, s := range map[string]string{"message": se.Message, "trace": se.Trace} {
		if len(s) > MaxErrorText+2*markerRoom || !strings.HasSuffix(s, "bytes]") {
			t.Errorf("%s of %d bytes, want at most %d and cut", name, len(s), MaxErrorText+2*markerRoom)
		}
	}
	if len(se.Log) > MaxLogSize+2*markerRoom || !strings.HasSuffix(se.Log, "bytes]") {
		t.Errorf("log of %d bytes, want at most %d and cut", len(se.Log), MaxLogSize+2*markerRoom)
	}
}
