package produce

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/kafka"
)

// counts is a Recorder that keeps what it was told.
type counts struct {
	mu               sync.Mutex
	asset            string
	ok, failed, told int
}

func (c *counts) Produced(asset string, ok, failed int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asset, c.ok, c.failed, c.told = asset, c.ok+ok, c.failed+failed, c.told+1
}

// testProducer opens the producer of asset "prod" on a fresh cluster
// (topic "alerts", 2 partitions), with max_message_bytes 2048.
func testProducer(t *testing.T, opts ...Option) (*Producer, *testenv.LogBuffer) {
	t.Helper()
	c := testenv.NewKafka(t, kfake.SeedTopics(2, "alerts"))
	logs := &testenv.LogBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	pool := kafka.NewPool(logger)
	t.Cleanup(pool.Close)
	e := New(logger, pool, opts...)
	cfg := testenv.KafkaAssetConfig(t, c, map[string]any{"max_message_bytes": 2048})
	pr, err := e.Open(context.Background(), "prod", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pr.Close)
	return pr, logs
}

// TestStream checks the stream on its own: every record's outcome comes to
// onResult with its ID (a record with Err and an oversized one fail without
// being sent, an explicit partition is kept), the counts add up, the
// recorder is told once, and every block goes back to its pool.
func TestStream(t *testing.T) {
	t.Parallel()
	rec := &counts{}
	pr, _ := testProducer(t, WithRecorder(rec))
	pool := NewBlockPool(4)
	inBlock := func(v string) (*Block, []byte) {
		b := pool.Get(len(v))
		b.buf = append(b.buf, v...)
		return b, b.buf
	}
	b1, v1 := inBlock(`{"n":1}`)
	b3, v3 := inBlock(strings.Repeat("x", 4096))
	b4, v4 := inBlock(`{"n":4}`)
	blocks := []*Block{b1, b3, b4}
	records := []Record{
		{ID: 1, Topic: "alerts", Value: v1, Block: b1},
		{ID: 2, Err: errors.New("not a JSON object or array")},
		{ID: 3, Topic: "alerts", Value: v3, Block: b3},
		{ID: 4, Topic: "alerts", Value: v4, Block: b4, Partition: 1, Explicit: true},
	}
	var mu sync.Mutex
	got := map[int]Outcome{}
	i := 0
	res := pr.Stream(context.Background(), func() (Record, bool) {
		if i == len(records) {
			return Record{}, false
		}
		i++
		return records[i-1], true
	}, func(o Outcome) {
		mu.Lock()
		defer mu.Unlock()
		got[o.ID] = o
	})
	if res.Records != 4 || res.Succeeded != 2 || res.Failed != 2 || res.Unacked != 0 {
		t.Fatalf("result %+v, want 4 records, 2 succeeded, 2 failed", res)
	}
	if len(got) != 4 {
		t.Fatalf("%d outcomes, want 4: %v", len(got), got)
	}
	if got[1].Err != nil || got[4].Err != nil {
		t.Fatalf("records 1 and 4 failed: %v, %v", got[1].Err, got[4].Err)
	}
	if got[4].Partition != 1 {
		t.Fatalf("record 4 went to partition %d, not the partition it named (1)", got[4].Partition)
	}
	if got[2].Err == nil || got[2].Err.Error() != "not a JSON object or array" {
		t.Fatalf("record 2: %v, want its own error", got[2].Err)
	}
	if got[3].Err == nil || !strings.Contains(got[3].Err.Error(), "over producer.max_message_bytes 2048") {
		t.Fatalf("record 3: %v, want it refused as over max_message_bytes", got[3].Err)
	}
	for _, b := range blocks {
		if n := b.refs.Load(); n != 0 {
			t.Fatalf("a block still holds %d references after the stream", n)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.told != 1 || rec.asset != "prod" || rec.ok != 2 || rec.failed != 2 {
		t.Fatalf("recorder told %d times: asset %q, %d ok, %d failed; want once, prod, 2 ok, 2 failed", rec.told, rec.asset, rec.ok, rec.failed)
	}
}

// TestStreamContainsPanic checks that a panic in onResult, on franz-go's
// goroutine, is logged and contained: the stream ends and the process lives.
func TestStreamContainsPanic(t *testing.T) {
	t.Parallel()
	pr, logs := testProducer(t)
	sent := false
	res := pr.Stream(context.Background(), func() (Record, bool) {
		if sent {
			return Record{}, false
		}
		sent = true
		return Record{ID: 7, Topic: "alerts", Value: []byte(`{}`)}, true
	}, func(o Outcome) {
		if o.Err == nil {
			panic("result writer broke")
		}
	})
	if res.Records != 1 || res.Unacked != 0 {
		t.Fatalf("result %+v, want the one record finished", res)
	}
	if !strings.Contains(logs.String(), "records acknowledgement") {
		t.Fatalf("the panic was not logged: %s", logs.String())
	}
}

// TestSend checks the batch send: outcome i is record i's, with where it
// landed (an explicit partition kept, a timestamp set), and the recorder is
// told the counts once.
func TestSend(t *testing.T) {
	t.Parallel()
	rec := &counts{}
	pr, _ := testProducer(t, WithRecorder(rec))
	ts := time.UnixMilli(1700000000000)
	records := []Record{
		{ID: 10, Topic: "alerts", Value: []byte("a"), Key: []byte("k"), Headers: []Header{{Key: "h", Value: []byte("v")}}},
		{ID: 11, Topic: "alerts", Value: []byte("b"), Partition: 1, Explicit: true, Timestamp: ts},
		{ID: 12, Topic: "alerts", Value: []byte("c"), Partition: 1, Explicit: true},
	}
	out := pr.Send(context.Background(), records, 15*time.Second)
	if len(out) != 3 {
		t.Fatalf("%d outcomes, want 3", len(out))
	}
	for i, o := range out {
		if o.Err != nil || o.ID != records[i].ID {
			t.Fatalf("outcome %d: %+v, want record %d sent", i, o, records[i].ID)
		}
		if o.Timestamp.IsZero() {
			t.Fatalf("outcome %d has no timestamp", i)
		}
	}
	if out[1].Partition != 1 || out[2].Partition != 1 || out[2].Offset != out[1].Offset+1 {
		t.Fatalf("records 11 and 12 at %d/%d and %d/%d, want partition 1, one after the other",
			out[1].Partition, out[1].Offset, out[2].Partition, out[2].Offset)
	}
	if !out[1].Timestamp.Equal(ts) {
		t.Fatalf("record 11's timestamp %v, want %v", out[1].Timestamp, ts)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.told != 1 || rec.ok != 3 || rec.failed != 0 {
		t.Fatalf("recorder told %d times, %d ok, %d failed; want once, 3 ok", rec.told, rec.ok, rec.failed)
	}
}

// TestSendCancelled checks that a cancelled caller gets an outcome for
// every record at once, not a wait for the delivery cap.
func TestSendCancelled(t *testing.T) {
	t.Parallel()
	pr, _ := testProducer(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	out := pr.Send(ctx, []Record{{Topic: "alerts", Value: []byte("a")}}, time.Minute)
	if len(out) != 1 {
		t.Fatalf("%d outcomes, want 1", len(out))
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("Send waited %s after its context ended", time.Since(start))
	}
}

func TestRecordSize(t *testing.T) {
	small := RecordSize(Record{Topic: "alerts", Value: []byte("v")})
	big := RecordSize(Record{Topic: "alerts", Value: bytes.Repeat([]byte("v"), 1001), Key: []byte("k")})
	if small <= 1 || big < small+1000 {
		t.Fatalf("RecordSize: %d for one byte, %d for 1002: not the batch size", small, big)
	}
}

func TestParseTimestamp(t *testing.T) {
	for _, c := range []struct {
		in   any
		want int64 // epoch ms; -1: an error
	}{
		{"2026-11-23T10:00:00Z", 1795428000000},
		{float64(1700000000000), 1700000000000},
		{"1700000000000", 1700000000000},
		{"yesterday", -1},
		{float64(-1), -1},
		{1.5, -1},
		{"10 minutes", -1},
	} {
		got, err := ParseTimestamp(c.in)
		if c.want < 0 {
			if err == nil {
				t.Errorf("ParseTimestamp(%v) = %v, want an error", c.in, got)
			}
			continue
		}
		if err != nil || got.UnixMilli() != c.want {
			t.Errorf("ParseTimestamp(%v) = %v, %v; want %d", c.in, got.UnixMilli(), err, c.want)
		}
	}
}
