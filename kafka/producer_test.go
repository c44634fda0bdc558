package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/kafka"
)

const producerTestWait = 10 * time.Second

// producerConfig is an asset configuration pointing at the cluster with
// the producer settings given.
func producerConfig(t *testing.T, c *kfake.Cluster, producer map[string]any) assets.Config {
	t.Helper()
	return testenv.KafkaAssetConfig(t, c, producer)
}

// newProducer builds the client the pool would build for cfg, with extra
// options last.
func newProducer(t *testing.T, cfg assets.Config, extra ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := tempAccess(t).NewClient(cfg, nil, append(kafka.ProducerOptions(cfg), extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produceBatch is what one partition of one produce request carried.
type produceBatch struct {
	acks       int16
	topic      string
	partition  int32
	wireBytes  int // what the broker counts against max.message.bytes
	records    int
	codec      int8 // 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd
	producerID int64
}

// produceRecorder records the produce requests the cluster receives
// without answering them itself.
type produceRecorder struct {
	mu      sync.Mutex
	batches []produceBatch
}

func recordProduces(c *kfake.Cluster) *produceRecorder {
	pr := &produceRecorder{}
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.ProduceRequest)
		pr.mu.Lock()
		defer pr.mu.Unlock()
		for _, tp := range r.Topics {
			for _, p := range tp.Partitions {
				var b kmsg.RecordBatch
				if err := b.ReadFrom(p.Records); err != nil {
					panic(err)
				}
				pr.batches = append(pr.batches, produceBatch{
					acks: r.Acks, topic: tp.Topic, partition: p.Partition, wireBytes: len(p.Records),
					records: int(b.NumRecords), codec: int8(b.Attributes & 7), producerID: b.ProducerID,
				})
			}
		}
		return nil, nil, false
	})
	return pr
}

func (pr *produceRecorder) take() []produceBatch {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	out := pr.batches
	pr.batches = nil
	return out
}

// consumeAll reads n records of topic with a consumer of its own.
func consumeAll(t *testing.T, c *kfake.Cluster, topic string, n int) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), producerTestWait)
	defer cancel()
	cl := testenv.KafkaClient(t, c, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consume %s: %d of %d records: %v", topic, len(out), n, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		out = append(out, fs.Records()...)
	}
	if len(out) != n {
		t.Fatalf("topic %s holds %d records, want %d", topic, len(out), n)
	}
	return out
}

func produceSync(t *testing.T, cl *kgo.Client, recs ...*kgo.Record) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), producerTestWait)
	defer cancel()
	return cl.ProduceSync(ctx, recs...).FirstErr()
}

func TestProducerOptionsOnTheWire(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	rec := recordProduces(c)
	cases := []struct {
		producer   map[string]any
		acks       int16
		codec      int8
		idempotent bool
	}{
		{producer: nil, acks: -1, codec: 0, idempotent: true},
		{producer: map[string]any{"acks": "all", "idempotent": false}, acks: -1},
		{producer: map[string]any{"acks": "leader", "idempotent": false}, acks: 1},
		{producer: map[string]any{"acks": "none", "idempotent": false}, acks: 0},
		{producer: map[string]any{"compression": "gzip"}, acks: -1, codec: 1, idempotent: true},
		{producer: map[string]any{"compression": "snappy"}, acks: -1, codec: 2, idempotent: true},
		{producer: map[string]any{"compression": "lz4"}, acks: -1, codec: 3, idempotent: true},
		{producer: map[string]any{"compression": "zstd", "acks": "leader", "idempotent": false}, acks: 1, codec: 4},
	}
	// In turn: the recorder sees one client's requests at a time.
	for i, tc := range cases {
		cl := newProducer(t, producerConfig(t, c, tc.producer))
		value := fmt.Sprintf("case %d %s", i, strings.Repeat("compressible ", 20))
		if err := produceSync(t, cl, &kgo.Record{Topic: "alerts", Value: []byte(value)}); err != nil {
			t.Fatalf("case %d %v: produce: %v", i, tc.producer, err)
		}
		got := rec.take()
		if tc.acks == 0 {
			// Nobody waits for the broker: wait for the record to land.
			consumeAll(t, c, "alerts", i+1)
			got = append(got, rec.take()...)
		}
		if len(got) != 1 {
			t.Fatalf("case %d %v: %d batches sent, want 1: %+v", i, tc.producer, len(got), got)
		}
		b := got[0]
		if b.acks != tc.acks || b.codec != tc.codec || (b.producerID >= 0) != tc.idempotent || b.records != 1 {
			t.Errorf("case %d %v: sent acks %d codec %d producer id %d, want acks %d codec %d idempotent %v",
				i, tc.producer, b.acks, b.codec, b.producerID, tc.acks, tc.codec, tc.idempotent)
		}
		cl.Close()
	}
	recs := consumeAll(t, c, "alerts", len(cases))
	for i, r := range recs {
		if !strings.HasPrefix(string(r.Value), fmt.Sprintf("case %d ", i)) {
			t.Errorf("record %d = %.20q...", i, r.Value)
		}
	}
}

func TestProducerLinger(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	rec := recordProduces(c)
	cl := newProducer(t, producerConfig(t, c, map[string]any{"linger_ms": 300}))
	// Learn the topic first, so that the records below wait for the
	// linger only.
	if err := produceSync(t, cl, &kgo.Record{Topic: "alerts", Value: []byte("warm-up")}); err != nil {
		t.Fatal(err)
	}
	rec.take()
	// Produce and wait, as post data does (ProduceSync cuts the linger
	// short).
	start := time.Now()
	var wg sync.WaitGroup
	wg.Add(2)
	for _, v := range []string{"a", "b"} {
		cl.Produce(context.Background(), &kgo.Record{Topic: "alerts", Value: []byte(v)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce %s: %v", v, err)
			}
			wg.Done()
		})
	}
	wg.Wait()
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("records sent after %v, want them held for the 300ms linger", d)
	}
	if got := rec.take(); len(got) != 1 || got[0].records != 2 {
		t.Errorf("batches %+v, want both records in one", got)
	}
}

func TestExplicitPartition(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.SeedTopics(3, "alerts"))
	cl := newProducer(t, producerConfig(t, c, nil))

	var recs []*kgo.Record
	for i := range 12 {
		// Explicit: the partition given, whatever the key.
		recs = append(recs, &kgo.Record{Topic: "alerts", Key: []byte("host-1"), Partition: int32(i % 3), Value: fmt.Appendf(nil, "explicit %d", i), Context: kafka.ExplicitPartition})
	}
	for i := range 6 {
		// Not explicit: the key's partition (murmur2, as the Java
		// client), and a Partition set without the context is ignored.
		recs = append(recs, &kgo.Record{Topic: "alerts", Key: fmt.Appendf(nil, "host-%d", i), Partition: 2, Value: fmt.Appendf(nil, "keyed %d", i)})
	}
	if err := produceSync(t, cl, recs...); err != nil {
		t.Fatal(err)
	}
	keyed := kgo.StickyKeyPartitioner(nil).ForTopic("alerts")
	got := consumeAll(t, c, "alerts", len(recs))
	where := map[string]int32{}
	for _, r := range got {
		where[string(r.Value)] = r.Partition
	}
	for i := range 12 {
		if p := where[fmt.Sprintf("explicit %d", i)]; p != int32(i%3) {
			t.Errorf("explicit %d in partition %d, want %d", i, p, i%3)
		}
	}
	for i := range 6 {
		want := int32(keyed.Partition(&kgo.Record{Key: fmt.Appendf(nil, "host-%d", i)}, 3))
		if p := where[fmt.Sprintf("keyed %d", i)]; p != want {
			t.Errorf("keyed %d in partition %d, want the key's %d", i, p, want)
		}
	}
	// Order within a partition is the order produced.
	last := map[int32]int{}
	for _, r := range got {
		var n int
		if _, err := fmt.Sscanf(string(r.Value), "explicit %d", &n); err == nil {
			if prev, ok := last[r.Partition]; ok && n < prev {
				t.Errorf("partition %d: explicit %d after %d", r.Partition, n, prev)
			}
			last[r.Partition] = n
		}
	}

	err := produceSync(t, cl, &kgo.Record{Topic: "alerts", Partition: 3, Value: []byte("x"), Context: kafka.ExplicitPartition})
	if err == nil || !strings.Contains(err.Error(), "invalid record partitioning choice of 3 from 3 available") {
		t.Errorf("partition 3 of 3: err = %v", err)
	}
}

func TestRecordSize(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	rec := recordProduces(c)
	hdrs := func(n, size int) []kgo.RecordHeader {
		var hs []kgo.RecordHeader
		for i := range n {
			hs = append(hs, kgo.RecordHeader{Key: fmt.Sprintf("h%d", i), Value: make([]byte, size)})
		}
		return hs
	}
	records := []*kgo.Record{
		{Value: nil},
		{Value: []byte("v")},
		{Key: []byte{}, Value: []byte("empty key")},
		{Key: []byte("key"), Value: []byte("value")},
		{Value: make([]byte, 63)}, // varint lengths change size at 64
		{Value: make([]byte, 64)},
		{Value: make([]byte, 8191)}, // and at 8192
		{Value: make([]byte, 8192)},
		{Key: make([]byte, 100), Value: make([]byte, 1000), Headers: hdrs(3, 70)},
		{Value: make([]byte, 70000), Headers: hdrs(200, 1)},
		{Value: []byte("stamped"), Timestamp: time.Now().Add(-24 * time.Hour)},
		{Value: make([]byte, 600)},
		{Key: make([]byte, 64), Value: make([]byte, 600), Headers: hdrs(1, 64)},
	}
	cfg := producerConfig(t, c, map[string]any{"acks": "leader", "idempotent": false})
	base := newProducer(t, cfg)
	for i, r := range records {
		size := kafka.RecordSize(r)
		if min := len(r.Key) + len(r.Value) + 61; size < min {
			t.Errorf("record %d: size %d under the bytes it holds plus a batch header (%d)", i, size, min)
		}
		// The broker counts a batch of only this record as RecordSize
		// less kgo's 4-byte length prefix.
		r.Topic = "alerts"
		if err := produceSync(t, base, r); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if got := rec.take(); len(got) != 1 || got[0].wireBytes != size-4 || got[0].records != 1 {
			t.Errorf("record %d: broker saw batches %+v, want one of %d bytes", i, got, size-4)
		}
		if size-1 < 512 { // kgo's smallest batch limit
			continue
		}
		// The producer takes a record of exactly its batch limit...
		cl := newProducer(t, cfg, kgo.ProducerBatchMaxBytes(int32(size)))
		r1 := &kgo.Record{Topic: "alerts", Key: r.Key, Value: r.Value, Headers: r.Headers}
		if err := produceSync(t, cl, r1); err != nil {
			t.Errorf("record %d of size %d, batch limit %d: %v", i, size, size, err)
		}
		rec.take()
		// ...and refuses it itself with one byte less.
		cl = newProducer(t, cfg, kgo.ProducerBatchMaxBytes(int32(size-1)))
		r2 := &kgo.Record{Topic: "alerts", Key: r.Key, Value: r.Value, Headers: r.Headers}
		if err := produceSync(t, cl, r2); !errors.Is(err, kerr.MessageTooLarge) {
			t.Errorf("record %d of size %d, batch limit %d: err = %v, want MESSAGE_TOO_LARGE", i, size, size-1, err)
		}
		if got := rec.take(); len(got) != 0 {
			t.Errorf("record %d: an over-limit record reached the broker: %+v", i, got)
		}
	}
}

// ---- the pool ----

func newPool(t *testing.T, opts ...kafka.PoolOption) (*kafka.Pool, *testenv.LogBuffer) {
	t.Helper()
	logs := &testenv.LogBuffer{}
	p := kafka.NewPool(logs.Logger(), opts...)
	t.Cleanup(p.Close)
	return p, logs
}

func acquire(t *testing.T, p *kafka.Pool, key string, cfg assets.Config) (*kgo.Client, func()) {
	t.Helper()
	cl, release, err := p.Acquire(context.Background(), key, cfg)
	if err != nil {
		t.Fatalf("Acquire(%q): %v", key, err)
	}
	return cl, release
}

// isClosed reports whether a kgo client was closed: its produce fails at
// once with ErrClientClosed.
func isClosed(cl *kgo.Client) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	return errors.Is(cl.ProduceSync(ctx, &kgo.Record{Topic: "probe", Value: []byte("x")}).FirstErr(), kgo.ErrClientClosed)
}

func waitClosed(t *testing.T, cl *kgo.Client, what string) {
	t.Helper()
	deadline := time.Now().Add(producerTestWait)
	for !isClosed(cl) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: client not closed after %v", what, producerTestWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wantUsable produces one record with cl and checks it was acknowledged.
func wantUsable(t *testing.T, cl *kgo.Client, what string) {
	t.Helper()
	if err := produceSync(t, cl, &kgo.Record{Topic: "alerts", Value: []byte(what)}); err != nil {
		t.Fatalf("%s: produce: %v", what, err)
	}
}

func TestPoolReuse(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	p, _ := newPool(t)
	cfg := producerConfig(t, c, nil)

	a, releaseA := acquire(t, p, "prod", cfg)
	b, releaseB := acquire(t, p, "prod", cfg)
	if a != b {
		t.Error("two acquires of one asset gave two clients")
	}
	releaseA()
	releaseA() // safe twice
	releaseB()
	if p.Len() != 1 {
		t.Errorf("Len = %d, want 1", p.Len())
	}
	wantUsable(t, a, "released, still pooled")
	other, releaseOther := acquire(t, p, "staging", cfg)
	defer releaseOther()
	if other == a || p.Len() != 2 {
		t.Errorf("another asset shares the client (%v) or Len = %d, want 2", other == a, p.Len())
	}

	// A changed configuration: a new client, the old one closed.
	changed := producerConfig(t, c, map[string]any{"linger_ms": 1})
	n, releaseN := acquire(t, p, "prod", changed)
	defer releaseN()
	if n == a || p.Len() != 2 {
		t.Errorf("changed configuration: same client %v, Len %d", n == a, p.Len())
	}
	waitClosed(t, a, "replaced, idle")
	wantUsable(t, n, "new client")
}

func TestPoolEvictInUse(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	p, _ := newPool(t)
	cfg := producerConfig(t, c, nil)

	held, release := acquire(t, p, "prod", cfg)
	p.Evict("prod")
	if p.Len() != 0 {
		t.Errorf("Len = %d after Evict, want 0", p.Len())
	}
	// The action using it finishes its sends.
	wantUsable(t, held, "evicted, in use")
	if isClosed(held) {
		t.Fatal("client closed while in use")
	}
	// The next acquire gets a new client.
	fresh, releaseFresh := acquire(t, p, "prod", cfg)
	defer releaseFresh()
	if fresh == held {
		t.Error("an evicted client was handed out again")
	}
	release()
	waitClosed(t, held, "evicted, released")
	wantUsable(t, fresh, "fresh")

	// Replaced while in use: the same.
	changed := producerConfig(t, c, map[string]any{"compression": "gzip"})
	repl, releaseRepl := acquire(t, p, "prod", changed)
	defer releaseRepl()
	if repl == fresh {
		t.Fatal("changed configuration kept the client")
	}
	wantUsable(t, fresh, "replaced, in use")
	releaseFresh()
	waitClosed(t, fresh, "replaced, released")
	p.Evict("unknown") // no-op
}

func TestPoolIdleTimeout(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	p, _ := newPool(t, kafka.WithIdleTimeout(100*time.Millisecond))
	cfg := producerConfig(t, c, nil)

	// In use for longer than the idle timeout: kept.
	held, release := acquire(t, p, "busy", cfg)
	time.Sleep(300 * time.Millisecond)
	if p.Len() != 1 {
		t.Fatalf("Len = %d: a client in use was closed as idle", p.Len())
	}
	wantUsable(t, held, "in use past the idle timeout")
	release()

	deadline := time.Now().Add(producerTestWait)
	for p.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("idle client never dropped")
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitClosed(t, held, "idle")
}

func TestPoolClose(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	p, _ := newPool(t)
	cfg := producerConfig(t, c, nil)
	idle, releaseIdle := acquire(t, p, "idle", cfg)
	releaseIdle()
	busy, releaseBusy := acquire(t, p, "busy", cfg)

	p.Close()
	p.Close() // safe twice
	if p.Len() != 0 {
		t.Errorf("Len = %d after Close", p.Len())
	}
	if !isClosed(idle) {
		t.Error("Close left an idle client open")
	}
	wantUsable(t, busy, "in use at Close")
	releaseBusy()
	waitClosed(t, busy, "released after Close")
	if _, _, err := p.Acquire(context.Background(), "idle", cfg); err == nil {
		t.Error("Acquire after Close succeeded")
	}
}

func TestPoolInlineConfigurations(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	p, logs := newPool(t)
	cfg := producerConfig(t, c, nil)
	a, ra := acquire(t, p, "", cfg)
	b, rb := acquire(t, p, "", cfg)
	defer ra()
	defer rb()
	if a != b || p.Len() != 1 {
		t.Errorf("equal inline configurations: shared %v, Len %d", a == b, p.Len())
	}
	// Another inline configuration does not replace the first.
	d, rd := acquire(t, p, "", producerConfig(t, c, map[string]any{"acks": "leader", "idempotent": false}))
	defer rd()
	if d == a || p.Len() != 2 {
		t.Errorf("different inline configurations: shared %v, Len %d", d == a, p.Len())
	}
	wantUsable(t, a, "inline")
	if strings.Contains(logs.String(), kafka.Fingerprint(cfg)) {
		t.Error("the log shows an inline configuration's fingerprint")
	}
	if !strings.Contains(logs.String(), "producer created") {
		t.Error("no log of the producers created")
	}
}

func TestPoolConcurrentAcquire(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	p, _ := newPool(t)
	cfg := producerConfig(t, c, nil)
	const n = 16
	clients := make([]*kgo.Client, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			cl, release, err := p.Acquire(context.Background(), "prod", cfg)
			if err != nil {
				t.Errorf("Acquire: %v", err)
				return
			}
			defer release()
			clients[i] = cl
			if err := produceSync(t, cl, &kgo.Record{Topic: "alerts", Value: fmt.Appendf(nil, "%d", i)}); err != nil {
				t.Errorf("goroutine %d: produce: %v", i, err)
			}
		})
	}
	wg.Wait()
	for i := range clients {
		if clients[i] != clients[0] {
			t.Fatalf("goroutine %d got another client", i)
		}
	}
	if p.Len() != 1 {
		t.Errorf("Len = %d, want 1", p.Len())
	}
	consumeAll(t, c, "alerts", n)
}

func TestFingerprint(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t)
	base := kafka.Fingerprint(producerConfig(t, c, nil))
	if base != kafka.Fingerprint(producerConfig(t, c, nil)) {
		t.Error("equal configurations differ")
	}
	for _, producer := range []map[string]any{
		{"linger_ms": 1}, {"compression": "lz4"}, {"max_message_bytes": 2048}, {"acks": "leader", "idempotent": false},
	} {
		if kafka.Fingerprint(producerConfig(t, c, producer)) == base {
			t.Errorf("producer %v: same fingerprint", producer)
		}
	}
	cfg := producerConfig(t, c, nil)
	cfg.Password = "changed"
	if kafka.Fingerprint(cfg) == base {
		t.Error("a changed password gives the same fingerprint")
	}
	if strings.Contains(kafka.Fingerprint(cfg), "changed") || len(base) != 64 {
		t.Errorf("fingerprint %q: want a hex SHA-256", base)
	}
}
