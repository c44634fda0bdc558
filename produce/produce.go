// Package produce owns producing records to an asset's topic: the one loop
// that hands records to a pooled producer and awaits their
// acknowledgements, as a batch (post data) or as a stream (the NDJSON
// records endpoint), with the explanations of failed sends, and the pooled
// blocks and line reader that let a streamed record's value be the bytes it
// was read into. Callers build Records; only this package and kafka see
// franz-go.
package produce

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/kafka"
)

// Header is one record header. It is franz-go's own type, so that a list of
// records sharing one header slice (post data) is handed over without a
// copy per record.
type Header = kgo.RecordHeader

// Record is one record to produce.
type Record struct {
	Topic   string
	Key     []byte // nil: no key
	Value   []byte
	Headers []Header
	// Partition is used when Explicit is set; otherwise the producer's
	// partitioner chooses.
	Partition int32
	Explicit  bool
	Timestamp time.Time // zero: the time it is produced

	// ID comes back in the record's Outcome (a stream's line number).
	ID int
	// Err, in a stream, makes the record a failure without sending it (a
	// line that is no record), so that its result comes in order with the
	// others.
	Err error
	// Block, in a stream, holds Value; it is released once the record is
	// finished.
	Block *Block
}

// Outcome is what became of one record: Err, or where it was written.
type Outcome struct {
	ID        int
	Err       error
	Partition int32
	Offset    int64
	Timestamp time.Time
}

// Recorder counts produced messages per asset; *metrics.Metrics is one.
type Recorder interface {
	Produced(asset string, ok, failed int)
}

// DefaultDeliveryWait is the default of WithDeliveryWait: longer than the
// producer's retries take, short of a SOAR action's own timeout.
const DefaultDeliveryWait = time.Minute

// Engine produces through a pool of producers, one per asset.
type Engine struct {
	pool         *kafka.Pool
	logger       *slog.Logger
	deliveryWait time.Duration
	recorder     Recorder
}

// Option configures an Engine.
type Option func(*Engine)

// WithDeliveryWait caps how long a send is awaited when no wait is given,
// overriding DefaultDeliveryWait. Past it, a record is reported as
// unacknowledged (it may still be written).
func WithDeliveryWait(d time.Duration) Option { return func(e *Engine) { e.deliveryWait = d } }

// WithRecorder counts what is produced with rec (metrics).
func WithRecorder(rec Recorder) Option { return func(e *Engine) { e.recorder = rec } }

// New returns an Engine producing through pool, which the caller owns (and
// closes).
func New(logger *slog.Logger, pool *kafka.Pool, opts ...Option) *Engine {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{pool: pool, logger: logger, deliveryWait: DefaultDeliveryWait}
	for _, o := range opts {
		o(e)
	}
	return e
}

// DeliveryWait is the cap on waiting for acknowledgements when no wait is
// given.
func (e *Engine) DeliveryWait() time.Duration { return e.deliveryWait }

// Producer is an asset's pooled producer, held until Close.
type Producer struct {
	e       *Engine
	asset   string
	cl      *kgo.Client
	release func()
	limit   int64
}

// Open takes the producer of asset ("" for an inline configuration) with
// configuration cfg from the pool, building it if needed. Close gives it
// back.
func (e *Engine) Open(ctx context.Context, asset string, cfg assets.Config) (*Producer, error) {
	cl, release, err := e.pool.Acquire(ctx, asset, cfg)
	if err != nil {
		return nil, err
	}
	return &Producer{e: e, asset: asset, cl: cl, release: release, limit: cfg.Producer.MaxMessageBytes}, nil
}

// Close gives the producer back to the pool.
func (p *Producer) Close() { p.release() }

func (p *Producer) record(ok, failed int) {
	if p.e.recorder != nil {
		p.e.recorder.Produced(p.asset, ok, failed)
	}
}

// kgoRecord lays r out in kr.
func kgoRecord(kr *kgo.Record, r *Record) {
	*kr = kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: r.Headers, Timestamp: r.Timestamp}
	if r.Explicit {
		kr.Partition = r.Partition
		kr.Context = kafka.ExplicitPartition
	}
}

// RecordSize is the size of a batch holding only r, as the producer and the
// broker count it against max.message.bytes.
func RecordSize(r Record) int {
	var kr kgo.Record
	kgoRecord(&kr, &r)
	return kafka.RecordSize(&kr)
}

// Send produces the records and waits for each one's acknowledgement, up to
// wait (the engine's delivery wait when 0); records still unacknowledged
// then are reported as such. Outcome i is record i's.
//
// Records are produced under a context that is never cancelled: kgo fails a
// whole batch when its first record's context ends, and batches of a pooled
// client mix records of concurrent callers. wait and ctx bound our wait, not
// the record.
func (p *Producer) Send(ctx context.Context, records []Record, wait time.Duration) []Outcome {
	logger := p.e.logger
	krs := make([]kgo.Record, len(records)) // one allocation for the list
	for i := range records {
		kgoRecord(&krs[i], &records[i])
	}
	out := make([]Outcome, len(records))
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := make([]bool, len(records))
	handed := make([]bool, len(records)) // given to the producer (it may write them)
	var stop atomic.Bool
	wg.Add(len(records))
	pctx := context.WithoutCancel(ctx)
	// Records are handed over from a goroutine of their own: Produce blocks
	// while the client's buffer is full, and a broker that takes nothing
	// must not hold the caller past its wait. Once the wait ends, the
	// records not yet handed over are not sent at all.
	//
	// A panic there (or in a promise, on kgo's goroutine) fails the records
	// not yet acknowledged, not the process.
	var handErr *soarkafka.PanicError
	handFailed := make(chan struct{})
	go func() {
		defer soarkafka.Recover(ctx, logger, "post data hand-off", func(e *soarkafka.PanicError) {
			mu.Lock()
			handErr = e
			mu.Unlock()
			close(handFailed)
		})
		for i := range krs {
			if stop.Load() {
				for range krs[i:] {
					wg.Done()
				}
				return
			}
			mu.Lock()
			handed[i] = true
			mu.Unlock()
			p.cl.Produce(pctx, &krs[i], func(rec *kgo.Record, err error) {
				defer wg.Done()
				defer soarkafka.Recover(ctx, logger, "post data acknowledgement", func(e *soarkafka.PanicError) {
					mu.Lock()
					out[i].Err, done[i] = e, true
					mu.Unlock()
				})
				mu.Lock()
				defer mu.Unlock()
				out[i] = Outcome{ID: records[i].ID, Err: produceError(err, rec), Partition: rec.Partition, Offset: rec.Offset, Timestamp: rec.Timestamp}
				done[i] = true
			})
		}
	}()
	all := make(chan struct{})
	// After a hand-off panic this goroutine waits for records that never
	// come; it is the one thing such a panic leaks.
	go func() { wg.Wait(); close(all) }()
	if wait <= 0 {
		wait = p.e.deliveryWait
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-all:
	case <-t.C:
	case <-ctx.Done():
	case <-handFailed:
	}
	stop.Store(true)
	mu.Lock()
	defer mu.Unlock()
	// A copy: promises still pending write into out after we return.
	snapshot := make([]Outcome, len(out))
	copy(snapshot, out)
	failed := 0
	for i := range snapshot {
		snapshot[i].ID = records[i].ID
		switch {
		case done[i]:
		case handErr != nil:
			snapshot[i].Err = fmt.Errorf("not acknowledged: %w", handErr)
		case !handed[i]:
			snapshot[i].Err = fmt.Errorf("not sent: the producer could not take it within %s (its buffer stayed full: the brokers are not taking records)", wait)
		case ctx.Err() != nil:
			snapshot[i].Err = errors.New("the request ended before the broker acknowledged (the message may still be written)")
		case p.e.pool.ConnectError(p.cl) != nil:
			// The producer never got a connection: nothing was written.
			snapshot[i].Err = fmt.Errorf("no acknowledgement within %s: the producer cannot connect: %w", wait, p.e.pool.ConnectError(p.cl))
		default:
			snapshot[i].Err = fmt.Errorf("no acknowledgement within %s (the message may still be written)", wait)
		}
		if snapshot[i].Err != nil {
			failed++
		}
	}
	p.record(len(records)-failed, failed)
	return snapshot
}

// StreamResult is the count of a stream's records once it ended.
type StreamResult struct {
	Records   int // records next gave, sent or not
	Succeeded int
	Failed    int
	// Unacked records were still unacknowledged when the wait (Wait) ended;
	// they may still be written, and their results are not reported.
	Unacked int
	Wait    time.Duration
}

// Stream produces the records next gives until it reports none, calling
// onResult with each one's outcome as it comes (from the producer's
// goroutines, so onResult serialises what it writes), then waits for the
// acknowledgements still pending, up to the engine's delivery wait. A
// record over the producer's max_message_bytes, or with Err set, is a
// failure without being sent. Memory stays bounded: Produce blocks while
// the producer's buffer is full, which holds next back.
func (p *Producer) Stream(ctx context.Context, next func() (Record, bool), onResult func(Outcome)) StreamResult {
	// Records outlive a cancelled request in kgo's buffer; see Send for
	// why they are never produced under a cancellable context.
	pctx := context.WithoutCancel(ctx)
	logger := p.e.logger
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		records   int // the calling goroutine's alone
		succeeded int
		failed    int
	)
	fail := func(id int, err error) {
		mu.Lock()
		failed++
		mu.Unlock()
		onResult(Outcome{ID: id, Err: err})
	}
	for {
		r, ok := next()
		if !ok {
			break
		}
		records++
		if r.Err != nil {
			r.Block.Release()
			fail(r.ID, r.Err)
			continue
		}
		kr := new(kgo.Record)
		kgoRecord(kr, &r)
		if size := kafka.RecordSize(kr); int64(size) > p.limit {
			r.Block.Release()
			fail(r.ID, fmt.Errorf("record is %d bytes, over producer.max_message_bytes %d", size, p.limit))
			continue
		}
		id, blk := r.ID, r.Block
		wg.Add(1)
		p.cl.Produce(pctx, kr, func(kr *kgo.Record, err error) {
			defer wg.Done()
			defer blk.Release() // the value may be in blk
			// On kgo's goroutine: a panic would end the process.
			defer soarkafka.Recover(ctx, logger, "records acknowledgement", nil, "line", id)
			if err != nil {
				fail(id, produceError(err, kr))
				return
			}
			mu.Lock()
			succeeded++
			mu.Unlock()
			onResult(Outcome{ID: id, Partition: kr.Partition, Offset: kr.Offset, Timestamp: kr.Timestamp})
		})
	}
	// Wait for every acknowledgement, up to the delivery wait; records
	// still pending then are counted as unacknowledged.
	res := StreamResult{Wait: p.e.deliveryWait}
	acked := make(chan struct{})
	go func() { wg.Wait(); close(acked) }()
	t := time.NewTimer(p.e.deliveryWait)
	defer t.Stop()
	select {
	case <-acked:
	case <-t.C:
		mu.Lock()
		res.Unacked = records - succeeded - failed
		mu.Unlock()
	}
	mu.Lock()
	res.Records, res.Succeeded, res.Failed = records, succeeded, failed
	mu.Unlock()
	p.record(res.Succeeded, res.Failed)
	return res
}

// produceError explains a failed send with what to do about it.
func produceError(err error, rec *kgo.Record) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		return fmt.Errorf("topic %q does not exist and the broker does not create topics automatically; create it first (%w)", rec.Topic, err)
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return fmt.Errorf("the broker rejected the %d-byte message as too large; the topic's max.message.bytes is below it (%w)", kafka.RecordSize(rec), err)
	case errors.Is(err, kerr.TopicAuthorizationFailed):
		return fmt.Errorf("not allowed to write to topic %q; grant the user WRITE on it (%w)", rec.Topic, err)
	case strings.Contains(err.Error(), "invalid record partitioning choice"):
		return fmt.Errorf("partition %d does not exist in topic %q (%w)", rec.Partition, rec.Topic, err)
	}
	return err
}

// ParseTimestamp reads a record timestamp: RFC 3339 text or epoch
// milliseconds (Kafka's unit), given as a JSON number or a string holding
// one (SOAR forms).
func ParseTimestamp(v any) (time.Time, error) {
	if s, ok := v.(string); ok {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t, nil
		}
	}
	if n, ok := soarkafka.JSONNumber(v); ok && n == math.Trunc(n) && n >= 0 && n < 1e15 {
		return time.UnixMilli(int64(n)), nil
	}
	return time.Time{}, fmt.Errorf("%v is neither RFC 3339 (2026-11-23T10:00:00Z) nor epoch milliseconds", v)
}
