package parsers_test

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/parsers"
	"github.com/soarkafka/soarkafka/parsers/sandbox"
	"github.com/soarkafka/soarkafka/soar"
	"github.com/soarkafka/soarkafka/store"
)

// workerEnv makes the test binary a parser worker.
const workerEnv = "SOARKAFKA_PARSERS_TEST_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		os.Exit(sandbox.WorkerMain(os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// newService returns a parser service over a SQLite store, whose workers
// are this test binary, with the pool settings of cfg.
func newService(t *testing.T, cfg sandbox.PoolConfig) *parsers.Service {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	timeout := cfg.Worker.Timeout
	if timeout == 0 {
		timeout = 20 * time.Second
	}
	cfg.Worker = sandbox.Config{Exe: exe, Env: []string{workerEnv + "=1"}, Timeout: timeout, MemoryLimit: cfg.Worker.MemoryLimit}
	engine := parsers.NewEngine(cfg)
	t.Cleanup(engine.Close)
	db, err := store.Open(t.Context(), testenv.SQLiteURL(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return parsers.NewService(db, engine)
}

// children counts the test process's live child processes: the workers.
func children(t *testing.T) int {
	t.Helper()
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	self, n := strconv.Itoa(os.Getpid()), 0
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 && f[1] == self && f[0] != "Z" {
			n++
		}
	}
	return n
}

func source(body string) string {
	return "package p\n\nimport (\n\t\"errors\"\n\t\"fmt\"\n\t\"strings\"\n\t\"time\"\n\n\t\"github.com/soarkafka/soarkafka/soar\"\n)\n\n" +
		"var _, _, _, _ = errors.New, fmt.Sprint, strings.Repeat, time.Sleep\n\n" +
		"func ParseMessages(topic string, messages []soar.Message) ([]soar.Result, error) {\n" + body + "\n}\n"
}

func messages(texts ...string) []soar.Message {
	var out []soar.Message
	for i, s := range texts {
		out = append(out, soar.Message{Topic: "events", Offset: int64(i), Value: []byte(s), Message: s})
	}
	return out
}

// TestPlaygroundKeepsNoWorkers: 40 playground calls at once, with slightly
// different sources, used to leave dozens of workers behind. They must
// never run more than parser.max_workers at once and leave none.
func TestPlaygroundKeepsNoWorkers(t *testing.T) {
	const cap = 4
	svc := newService(t, sandbox.PoolConfig{MaxWorkers: cap, BusyWait: time.Minute})
	var most int
	var mu sync.Mutex
	done := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			n := children(t)
			mu.Lock()
			most = max(most, n)
			mu.Unlock()
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			out, err := svc.Test(t.Context(), parsers.TestInput{Source: source(fmt.Sprintf("// variant %d\nreturn nil, nil", i)), Messages: messages("m")})
			if err != nil || out.Error != nil {
				t.Errorf("call %d: %v %+v", i, err, out.Error)
			}
		})
	}
	wg.Wait()
	close(done)
	<-watched
	if most > cap {
		t.Errorf("%d workers at once, over parser.max_workers=%d", most, cap)
	}
	if n := children(t); n != 0 {
		t.Errorf("%d workers left after 40 playground calls, want 0", n)
	}
}

// TestBusyIsUnavailable: a call over the cap that waited its turn in vain
// is EUNAVAILABLE (503), not a fault of the parser.
func TestBusyIsUnavailable(t *testing.T) {
	svc := newService(t, sandbox.PoolConfig{MaxWorkers: 1, BusyWait: 200 * time.Millisecond})
	slow := make(chan error, 1)
	go func() {
		_, err := svc.Test(t.Context(), parsers.TestInput{Source: source("time.Sleep(2 * time.Second)\nreturn nil, nil"), Messages: messages("m")})
		slow <- err
	}()
	for children(t) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	_, err := svc.Test(t.Context(), parsers.TestInput{Source: source("return nil, nil"), Messages: messages("m")})
	if soarkafka.ErrorCode(err) != soarkafka.EUNAVAILABLE || !strings.Contains(soarkafka.ErrorMessage(err), "busy") {
		t.Errorf("err %v (code %s), want unavailable: busy", err, soarkafka.ErrorCode(err))
	}
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
}

// seenParser keeps every message in a package variable and returns them
// all, the way a parser leaked one asset's messages into another's.
const seenParser = `package seen

import "github.com/soarkafka/soarkafka/soar"

var seen []string

func ParseMessages(topic string, messages []soar.Message) ([]soar.Result, error) {
	for _, m := range messages {
		seen = append(seen, m.Message)
	}
	var arts []soar.Artifact
	for _, s := range seen {
		arts = append(arts, soar.Artifact{Name: s})
	}
	return []soar.Result{{Container: soar.Container{Name: "c"}, Artifacts: arts}}, nil
}
`

// TestAssetsDoNotShareWorkers: asset B's batch, then the playground, run
// after asset A's through the path polls use, see nothing of A's messages.
func TestAssetsDoNotShareWorkers(t *testing.T) {
	svc := newService(t, sandbox.PoolConfig{})
	ctx := t.Context()
	if _, err := svc.Create(ctx, parsers.Input{Name: "seen", Source: seenParser}); err != nil {
		t.Fatal(err)
	}
	run := func(asset string, msgs ...string) string {
		t.Helper()
		b, err := svc.Bind(ctx, asset, "seen")
		if err != nil {
			t.Fatal(err)
		}
		r, err := b.Run(ctx, "events", messages(msgs...))
		if err != nil {
			t.Fatal(err)
		}
		return string(r.Results)
	}
	if got := run("a", "a-secret-1", "a-secret-2"); !strings.Contains(got, "a-secret-2") {
		t.Fatalf("asset a: %s", got)
	}
	if got := run("b", "b-1"); strings.Contains(got, "a-secret") || !strings.Contains(got, "b-1") {
		t.Errorf("asset b's results hold asset a's messages: %s", got)
	}
	out, err := svc.Test(ctx, parsers.TestInput{Name: "seen", Messages: messages("play-1")})
	if err != nil || out.Run == nil {
		t.Fatalf("playground: %v %+v", err, out)
	}
	if got := string(out.Run.Results); strings.Contains(got, "a-secret") || strings.Contains(got, "b-1") {
		t.Errorf("the playground's results hold an asset's messages: %s", got)
	}
	if got := run("a", "a-3"); !strings.Contains(got, "a-secret-1") {
		t.Errorf("asset a's next batch did not reuse its worker: %s", got)
	}
}

// TestScriptTextsBounded: a 20 MB error, a 50 MB panic and a 20 MB log
// come back cut to their bounds, saying how much was cut, from the
// playground and from a poll's run alike.
func TestScriptTextsBounded(t *testing.T) {
	// 2 GiB and a minute: under -race, ThreadSanitizer's shadow of the
	// 50 MB message counts against the worker's RLIMIT_DATA, and a loaded
	// machine formats it slowly.
	svc := newService(t, sandbox.PoolConfig{Worker: sandbox.Config{MemoryLimit: 2 << 30, Timeout: time.Minute}})
	ctx := t.Context()
	const bound = sandbox.MaxErrorText + 200 // the message's prefix, the marker
	for _, tc := range []struct {
		name, body string
		kind       string
		size       int
	}{
		{"error", `return nil, errors.New(strings.Repeat("e", 20<<20))`, "error", 20 << 20},
		{"panic", `panic(strings.Repeat("p", 50<<20))`, "panic", 50 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := svc.Test(ctx, parsers.TestInput{Source: source(tc.body), Messages: messages("m")})
			if err != nil || out.Error == nil {
				t.Fatalf("%v %+v", err, out)
			}
			re := out.Error
			if re.Kind != tc.kind || len(re.Message) > bound || len(re.Trace) > bound || len(re.Log) > bound {
				t.Errorf("kind %s, message %d bytes, trace %d, log %d: want each under %d", re.Kind, len(re.Message), len(re.Trace), len(re.Log), bound)
			}
			// Cut: everything past MaxErrorText of the worker's text
			// (its message is the script's text and a short prefix).
			i := strings.LastIndex(re.Message, "[cut ")
			if i < 0 {
				t.Fatalf("message does not say it was cut: …%s", re.Message[max(0, len(re.Message)-80):])
			}
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(re.Message[i:], "[cut "), " bytes]"))
			if err != nil || n < tc.size-sandbox.MaxErrorText || n > tc.size {
				t.Errorf("marker %q: want about %d bytes cut", re.Message[i:], tc.size-sandbox.MaxErrorText)
			}

			if _, err := svc.Create(ctx, parsers.Input{Name: "big" + tc.name, Source: source("if messages[0].Message != \"boom\" { return nil, nil }\n" + tc.body)}); err != nil {
				t.Fatal(err)
			}
			b, err := svc.Bind(ctx, "a", "big"+tc.name)
			if err != nil {
				t.Fatal(err)
			}
			_, err = b.Run(ctx, "events", messages("boom"))
			if err == nil || len(err.Error()) > bound+200 || !strings.Contains(err.Error(), "[cut ") {
				t.Errorf("poll run's error: %d bytes, want under %d and cut: %.300v", len(fmt.Sprint(err)), bound+200, err)
			}
			if re := parsers.DescribeError(err); re == nil || len(re.Message) > bound+200 {
				t.Errorf("RunError %+v", re)
			}
		})
	}
	out, err := svc.Test(ctx, parsers.TestInput{Source: source(`fmt.Print(strings.Repeat("l", 20<<20))` + "\nreturn nil, nil"), Messages: messages("m")})
	if err != nil || out.Run == nil {
		t.Fatalf("%v %+v", err, out)
	}
	if want := fmt.Sprintf("… [cut %d bytes]\n", 20<<20-sandbox.MaxLogSize); len(out.Run.Log) > sandbox.MaxLogSize+100 || !strings.HasSuffix(out.Run.Log, want) {
		t.Errorf("log of %d bytes ending %q, want %q", len(out.Run.Log), out.Run.Log[max(0, len(out.Run.Log)-40):], want)
	}
}

// A user parser cannot take a name a route of the API or the console
// uses for something else: it could never be opened there.
func TestReservedParserNames(t *testing.T) {
	svc := newService(t, sandbox.PoolConfig{})
	for _, name := range []string{"test", "new", "playground", "default"} {
		_, err := svc.Create(t.Context(), parsers.Input{Name: name, Source: seenParser})
		if soarkafka.ErrorCode(err) != soarkafka.ECONFLICT || !strings.Contains(err.Error(), "reserved word") {
			t.Errorf("create %q: %v, want a conflict naming the reserved word", name, err)
		}
	}
}
