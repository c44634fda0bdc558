package web_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/parsers"
	"github.com/soarkafka/soarkafka/parsers/sandbox"
	"github.com/soarkafka/soarkafka/poll"
)

// A continuous asset through the API: the rules between its fields, the
// on poll action answering that there is nothing to poll while the
// continuous poll runs, and the ingest status showing the mode and the
// continuous poll's last period.
func TestContinuousAssetThroughTheAPI(t *testing.T) {
	e := newEnv(t, testenv.SQLiteURL(t))
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	base := func(ing map[string]any) map[string]any {
		return map[string]any{"hosts": strings.Join(c.ListenAddrs(), ","), "topic": "alerts", "read_from_beginning": true, "ingest": ing}
	}
	code, out := e.do("POST", "/v1/assets", asset("live", base(map[string]any{"mode": "continuous", "interval": "30s", "enabled": false})))
	if body := fmt.Sprint(out); code != 400 || !strings.Contains(body, "ingest.interval") || !strings.Contains(body, "ingest.enabled") ||
		!strings.Contains(body, "set ingest.mode to interval") {
		t.Fatalf("continuous with an interval, disabled: %d %v; want 400 naming both fields and the fix", code, out)
	}
	if code, out := e.do("POST", "/v1/assets", asset("live", base(map[string]any{"mode": "continuous", "max_batch_wait_ms": 100}))); code != 201 {
		t.Fatalf("create: %d %v", code, out)
	}

	// The scheduler's continuous poll, as another part of the server
	// runs it.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	engine := parsers.NewEngine(sandbox.PoolConfig{Worker: sandbox.Config{Exe: exe, Env: []string{workerEnv + "=1"}, Timeout: 5 * time.Second}})
	t.Cleanup(engine.Close)
	p := poll.New(e.db, parsers.NewService(e.db, engine), nil, poll.WithContinuous(300*time.Millisecond, 0))
	_, st := e.do("GET", "/v1/assets/live/ingest", nil)
	if st["mode"] != "continuous" || st["scheduled"] != false {
		t.Fatalf("status before polling %v", st)
	}
	cfg, err := assets.Decode(base(map[string]any{"mode": "continuous", "max_batch_wait_ms": 100}), assets.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- p.Continuous(ctx, poll.Request{Asset: "live", Config: cfg})
	}()
	t.Cleanup(func() { cancel(); <-done })
	produceAlerts(t, c, 0, 0, 7)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, st = e.do("GET", "/v1/assets/live/ingest", nil)
		if last, _ := st["last_poll"].(map[string]any); last != nil && last["kind"] == "continuous" && last["status"] == "success" && st["lag"] == 0.0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %v, want a continuous period recorded and lag 0", st)
		}
		time.Sleep(50 * time.Millisecond)
	}

	code, out = e.do("POST", "/v1/actions/on_poll", map[string]any{"asset": "live"})
	if code != 200 || out["status"] != "success" || !strings.Contains(fmt.Sprint(out["message"]), "polled continuously") {
		t.Fatalf("on poll of a continuous asset: %d %v", code, out)
	}
	if sum := out["summary"].(map[string]any); sum["stopped"] != "continuous" || sum["messages_read"] != 0.0 {
		t.Fatalf("on poll summary %v", sum)
	}
}
