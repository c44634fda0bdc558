//go:build !race

package sandbox

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// oom is how a worker dies of its memory limit: the runtime says
// "runtime: out of memory", or "out of memory allocating heap arena
// metadata" when the limit hits while it maps a new arena.
const oom = `fatal error: (runtime: )?out of memory`

const raceEnabled = false

// Not under -race: ThreadSanitizer's shadow of a 72 MiB result exceeds the
// worker's RLIMIT_DATA. make test runs this package without -race too.
// TestWorkerResultTooLarge: the JSON encoding of the results stops at
// MaxResultSize, a script fault that leaves the worker usable.
func TestWorkerResultTooLarge(t *testing.T) {
	cfg := testConfig(t)
	cfg.Timeout = 30 * time.Second
	w := startWorker(t, cfg)
	ctx := context.Background()
	// 12 MiB of zero bytes, each written as \u0000: 72 MiB of JSON.
	if err := w.Load(ctx, "p.go", body("return []soar.Result{{Container: soar.Container{Name: string(make([]byte, 12<<20))}}}, nil")); err != nil {
		t.Fatal(err)
	}
	_, err := w.Call(ctx, "events", nil)
	var script *ScriptError
	if !errors.As(err, &script) || script.Kind != faultResult || !strings.Contains(err.Error(), "p.go: result over the limit of 67108864 bytes") {
		t.Fatalf("err %v", err)
	}
	if !w.Alive() {
		t.Error("worker gone after a result fault")
	}
}

// Not under -race: the 200 MiB the script keeps, with ThreadSanitizer's
// shadow, is near the worker's RLIMIT_DATA.
// TestPoolRecyclesByRSS: a worker whose resident memory grew past
// MaxMemory is stopped after its call; one that stays under is kept.
func TestPoolRecyclesByRSS(t *testing.T) {
	cfg := testConfig(t)
	cfg.Timeout = 20 * time.Second
	p := NewPool(PoolConfig{Worker: cfg, MaxMemory: 140 << 20})
	t.Cleanup(func() { p.Close() })
	ctx := context.Background()
	src := "package parser\nimport (\n\t\"bytes\"\n\t\"github.com/soarkafka/soarkafka/soar\"\n)\nvar keep []byte\n" +
		"func ParseMessages(topic string, messages []soar.Message) ([]soar.Result, error) {\n" +
		"\tif len(messages) == 2 { keep = bytes.Repeat([]byte(\"x\"), 200<<20) }\n\treturn nil, nil\n}\n"
	if _, err := p.Call(ctx, "a", "big.go", src, "events", sampleMessages(1, 10)); err != nil {
		t.Fatal(err)
	}
	pids := idlePids(p)
	if len(pids) != 1 {
		t.Fatalf("idle %v, want the worker kept", pids)
	}
	p.mu.Lock()
	small := rss(p.idle[0].w)
	p.mu.Unlock()
	t.Logf("RSS of a worker after a small batch: %d MiB", small>>20)
	if small <= 0 || small > 140<<20 {
		t.Fatalf("RSS of a fresh worker %d, want between 0 and 140 MiB", small)
	}
	if _, err := p.Call(ctx, "a", "big.go", src, "events", sampleMessages(2, 10)); err != nil {
		t.Fatal(err)
	}
	if p.Idle() != 0 || processExists(pids[0]) || p.Workers() != 0 {
		t.Errorf("worker %d with 200 MiB resident still there (idle %d, exists %v)", pids[0], p.Idle(), processExists(pids[0]))
	}
}
