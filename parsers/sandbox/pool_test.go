package sandbox

import (
	"context"
	"errors"
	"testing"

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
