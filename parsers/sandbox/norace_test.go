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
