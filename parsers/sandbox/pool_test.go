package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka/parsers/bundled/defaultparser"
	"github.com/soarkafka/soarkafka/soar"
)

func TestPool(t *testing.T) {
	p := NewPool(PoolConfig{Worker: testConfig(t), MaxBatches: 2, MaxIdle: 1})
	t.Cleanup(func() { p.Close() })
	ctx := context.Background()
	msgs := sampleMessages(3, 10)
	for i := range 3 {
		if _, err := p.Call(ctx, "asset", "default", defaultparser.Source, "events", msgs); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	// Calls 1 and 2 used one worker, recycled after its second batch; call
	// 3 started another, now idle.
	if p.Idle() != 1 {
		t.Errorf("idle %d, want 1", p.Idle())
	}
	// A crash fails the batch and the next call gets a fresh worker.
	loop := body("if len(messages) == 1 {\n\tfor {}\n}\nreturn nil, nil")
	if _, err := p.Call(ctx, "asset", "loop", loop, "events", msgs[:1]); !errors.Is(err, ErrTimeout) {
		t.Fatalf("err %v", err)
	}
	if _, err := p.Call(ctx, "asset", "loop", loop, "events", msgs); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Call(ctx, "asset", "bad", "package p\nimport \"os\"\n"+sig, "events", msgs); err == nil {
		t.Error("pool loaded a refused import")
	}
	p.Close()
	if _, err := p.Call(ctx, "asset", "default", defaultparser.Source, "events", msgs); err == nil {
		t.Error("call on a closed pool")
	}
}

// children returns the pids of the test process's child processes: the
// workers, as the kernel sees them.
func children(t *testing.T) []int {
	t.Helper()
	self := os.Getpid()
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split
		// after its closing parenthesis.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(self) && f[0] != "Z" {
			out = append(out, pid)
		}
	}
	return out
}

// watchChildren samples the number of child processes until stop is
// called, which returns the most seen at once.
func watchChildren(t *testing.T) (stop func() int) {
	done := make(chan struct{})
	most := make(chan int)
	go func() {
		n := 0
		for {
			n = max(n, len(children(t)))
			select {
			case <-done:
				most <- n
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	return func() int { close(done); return <-most }
}

// TestPoolCapsWorkers: 40 playground calls with
// slightly different sources, at once, never have more than MaxWorkers
// processes alive and leave none; 40 kept calls for different assets
// leave at most MaxWorkers.
func TestPoolCapsWorkers(t *testing.T) {
	const cap = 3
	cfg := testConfig(t)
	cfg.Timeout = 30 * time.Second // 80 worker starts on a busy machine
	p := NewPool(PoolConfig{Worker: cfg, MaxWorkers: cap, BusyWait: 5 * time.Minute})
	t.Cleanup(func() { p.Close() })
	ctx := context.Background()
	msgs := sampleMessages(3, 10)
	run := func(call func(i int) error) {
		stop := watchChildren(t)
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := range 40 {
			wg.Go(func() { errs <- call(i) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if most := stop(); most > cap {
			t.Errorf("%d worker processes at once, over the cap of %d", most, cap)
		}
	}
	run(func(i int) error {
		_, err := p.CallOnce(ctx, "p.go", body(fmt.Sprintf("// version %d\nreturn nil, nil", i)), "events", msgs)
		return err
	})
	if n := len(children(t)); n != 0 || p.Workers() != 0 {
		t.Errorf("after 40 playground calls: %d processes, pool counts %d; want none kept", n, p.Workers())
	}
	run(func(i int) error {
		_, err := p.Call(ctx, fmt.Sprintf("asset-%d", i), "p.go", body(fmt.Sprintf("// version %d\nreturn nil, nil", i%7)), "events", msgs)
		return err
	})
	if n := len(children(t)); n > cap || p.Workers() > cap || p.Idle() > cap {
		t.Errorf("after 40 kept calls: %d processes, pool counts %d (%d idle); want at most %d", n, p.Workers(), p.Idle(), cap)
	}
	p.Close()
	if n := len(children(t)); n != 0 {
		t.Errorf("%d processes after Close", n)
	}
}

// idlePids returns the pids of the idle workers, least recently used
// first.
func idlePids(p *Pool) []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int
	for _, iw := range p.idle {
		out = append(out, iw.w.pid)
	}
	return out
}

func processExists(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

func TestPoolStopsIdleWorkers(t *testing.T) {
	p := NewPool(PoolConfig{Worker: testConfig(t), IdleTimeout: 300 * time.Millisecond})
	t.Cleanup(func() { p.Close() })
	if _, err := p.Call(context.Background(), "a", "default", defaultparser.Source, "events", sampleMessages(1, 10)); err != nil {
		t.Fatal(err)
	}
	pids := idlePids(p)
	if len(pids) != 1 || !processExists(pids[0]) {
		t.Fatalf("idle workers %v, want one alive", pids)
	}
	deadline := time.Now().Add(5 * time.Second)
	// The worker is reaped before its slot is freed, so the count may
	// trail the process by a moment: wait for all three.
	for p.Idle() > 0 || processExists(pids[0]) || p.Workers() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("5s after an idle timeout of 300ms: worker %d exists %v, idle %d, pool counts %d workers",
				pids[0], processExists(pids[0]), p.Idle(), p.Workers())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPoolEvictsLeastRecentlyUsed: at the cap, a call that needs a new
// worker stops the idle worker used least recently, not another.
func TestPoolEvictsLeastRecentlyUsed(t *testing.T) {
	p := NewPool(PoolConfig{Worker: testConfig(t), MaxWorkers: 2, BusyWait: 100 * time.Millisecond})
	t.Cleanup(func() { p.Close() })
	ctx := context.Background()
	msgs := sampleMessages(1, 10)
	call := func(asset string) {
		t.Helper()
		if _, err := p.Call(ctx, asset, "default", defaultparser.Source, "events", msgs); err != nil {
			t.Fatalf("asset %s: %v", asset, err)
		}
	}
	call("a")
	a := idlePids(p)[0]
	call("b")
	b := idlePids(p)[1]
	call("a") // a is now the most recently used
	if got := idlePids(p); len(got) != 2 || got[0] != b || got[1] != a {
		t.Fatalf("idle %v, want [b=%d a=%d]", got, b, a)
	}
	call("c")
	got := idlePids(p)
	if len(got) != 2 || got[0] != a || processExists(b) {
		t.Fatalf("idle %v after c; want a (%d) kept and b (%d) stopped (b exists: %v)", got, a, b, processExists(b))
	}
	if n := len(children(t)); n != 2 {
		t.Errorf("%d processes, want 2", n)
	}
}

// TestPoolBusy: over the cap a call waits BusyWait, honouring its context,
// then fails with ErrBusy; a worker freed in time serves it.
func TestPoolBusy(t *testing.T) {
	slow := body("time.Sleep(1500 * time.Millisecond)\nreturn nil, nil")
	msgs := sampleMessages(1, 10)
	ctx := context.Background()
	busy := func(wait time.Duration) (*Pool, chan error) {
		p := NewPool(PoolConfig{Worker: testConfig(t), MaxWorkers: 1, BusyWait: wait})
		t.Cleanup(func() { p.Close() })
		done := make(chan error, 1)
		go func() {
			_, err := p.CallOnce(ctx, "slow.go", slow, "events", msgs)
			done <- err
		}()
		for p.Workers() == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		return p, done
	}

	p, done := busy(300 * time.Millisecond)
	start := time.Now()
	_, err := p.Call(ctx, "a", "default", defaultparser.Source, "events", msgs)
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "busy") || !strings.Contains(err.Error(), "parser.max_workers") {
		t.Fatalf("err %v, want ErrBusy naming the setting", err)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > time.Second {
		t.Errorf("failed after %s, want after the busy wait of 300ms", d)
	}
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := p.CallOnce(cctx, "default", defaultparser.Source, "events", msgs); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 250*time.Millisecond {
		t.Errorf("err %v after %s, want the context's deadline, soon", err, time.Since(start))
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := len(children(t)); n != 0 {
		t.Errorf("%d processes, want 0", n)
	}

	p, done = busy(10 * time.Second)
	if _, err := p.Call(ctx, "a", "default", defaultparser.Source, "events", msgs); err != nil {
		t.Fatalf("a call waiting for a freed worker: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// seenParser keeps every message it was given in a package variable and
// returns them all: a parser that, in a shared worker, leaked one asset's
// messages into another's artifacts.
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

func textMessages(texts ...string) []soar.Message {
	var out []soar.Message
	for i, s := range texts {
		out = append(out, soar.Message{Topic: "events", Offset: int64(i), Value: []byte(s), Message: s})
	}
	return out
}

// TestPoolWorkerServesOneAsset: a kept worker serves one asset; another
// asset, and a call that is not kept, never see what it kept.
func TestPoolWorkerServesOneAsset(t *testing.T) {
	p := NewPool(PoolConfig{Worker: testConfig(t)})
	t.Cleanup(func() { p.Close() })
	ctx := context.Background()
	res, err := p.Call(ctx, "asset-a", "seen.go", seenParser, "events", textMessages("secret-of-a"))
	if err != nil || !strings.Contains(string(res.Results), "secret-of-a") {
		t.Fatalf("asset a: %s, %v", res.Results, err)
	}
	res, err = p.Call(ctx, "asset-b", "seen.go", seenParser, "events", textMessages("b-1"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(res.Results), "secret-of-a") || !strings.Contains(string(res.Results), "b-1") {
		t.Errorf("asset b's results %s: want b-1 only", res.Results)
	}
	res, err = p.CallOnce(ctx, "seen.go", seenParser, "events", textMessages("play"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(res.Results), "secret-of-a") || strings.Contains(string(res.Results), "b-1") {
		t.Errorf("playground results %s: want play only", res.Results)
	}
	// The same asset keeps its worker (and what the script kept).
	res, err = p.Call(ctx, "asset-a", "seen.go", seenParser, "events", textMessages("a-2"))
	if err != nil || !strings.Contains(string(res.Results), "secret-of-a") {
		t.Errorf("asset a's second batch %s, %v: want its worker reused", res.Results, err)
	}
}
