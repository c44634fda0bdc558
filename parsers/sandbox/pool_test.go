package sandbox

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka/parsers/bundled/defaultparser"
)

func TestPool(t *testing.T) {
	p := NewPool(PoolConfig{Worker: testConfig(t), MaxBatches: 2, MaxIdle: 1})
	t.Cleanup(func() { p.Close() })
	ctx := context.Background()
	msgs := sampleMessages(3, 10)
	for i := range 3 {
		if _, err := p.Call(ctx, "default", defaultparser.Source, "events", msgs); err != nil {
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
	if _, err := p.Call(ctx, "loop", loop, "events", msgs[:1]); !errors.Is(err, ErrTimeout) {
		t.Fatalf("err %v", err)
	}
	if _, err := p.Call(ctx, "loop", loop, "events", msgs); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Call(ctx, "bad", "package p\nimport \"os\"\n"+sig, "events", msgs); err == nil {
		t.Error("pool loaded a refused import")
	}
	p.Close()
	if _, err := p.Call(ctx, "default", defaultparser.Source, "events", msgs); err == nil {
		t.Error("call on a closed pool")
	}
}

// BenchmarkWorkerCall: 500 messages of ~1 KB per call through one worker
// running the default parser; reports messages/s and the worker start.
func BenchmarkWorkerCall(b *testing.B) {
	cfg := testConfig(b)
	cfg.Timeout = 30 * time.Second
	var start time.Duration
	const starts = 5
	for range starts {
		w := startWorker(b, cfg)
		start += w.StartDuration()
		w.Close()
	}
	w := startWorker(b, cfg)
	ctx := context.Background()
	t0 := time.Now()
	if err := w.Load(ctx, "default", defaultparser.Source); err != nil {
		b.Fatal(err)
	}
	load := time.Since(t0)
	msgs := sampleMessages(500, 1000)
	var native time.Duration
	t0 = time.Now()
	for range 20 {
		if _, err := defaultparser.ParseMessages("events", msgs); err != nil {
			b.Fatal(err)
		}
	}
	native = time.Since(t0) / 20
	b.ResetTimer()
	for b.Loop() {
		if _, err := w.Call(ctx, "events", msgs); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	perBatch := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(len(msgs))*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(start.Microseconds())/starts/1000, "start-ms")
	b.ReportMetric(float64(load.Microseconds())/1000, "load-ms")
	b.ReportMetric(float64(perBatch.Microseconds())/1000, "ms/batch")
	b.ReportMetric(float64(native.Microseconds())/1000, "native-ms/batch")
}
