// Package deliver owns push delivery: the worker that takes an asset's
// outbox rows (written by the poll's batches in their own transaction)
// and writes their containers and artifacts into the SOAR, in outbox
// order, each once. It knows the SOAR's REST API (Splunk SOAR) and the
// Cortex XSOAR Generic Webhook; it reaches the database only through the
// Store interface, which the store package implements.
package deliver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/ingest"
)

// Store is what a worker needs from the database. *store.DB implements it
// on SQLite and PostgreSQL.
type Store interface {
	AcquireLease(ctx context.Context, asset, holder string, ttl time.Duration) (bool, ingest.Lease, error)
	RenewLease(ctx context.Context, asset, holder string, ttl time.Duration) error
	ReleaseLease(ctx context.Context, asset, holder string) error

	NextDeliveries(ctx context.Context, asset string, limit int) ([]ingest.OutboxRow, error)
	MarkSending(ctx context.Context, id int64) error
	MarkDelivered(ctx context.Context, id, soarContainerID int64) error
	MarkRetry(ctx context.Context, id int64, errText string, next time.Time) error
	MarkDead(ctx context.Context, id int64, errText, answer string) error
	SOARContainerID(ctx context.Context, containerID int64) (int64, bool, error)
	SetSOARContainerID(ctx context.Context, containerID int64, asset string, soarContainerID int64) error
	DeliveryStats(ctx context.Context, asset string) (*ingest.DeliveryStats, error)
	OutboxPending(ctx context.Context, asset string) (int, error)
	PruneDelivered(ctx context.Context, asset string, before time.Time) (int64, error)
	RetryDead(ctx context.Context, asset string) (int64, error)
	ResetDeliveryBackoff(ctx context.Context, asset string) error

	Container(ctx context.Context, id int64) (*ingest.StoredContainer, error)
	DeliveryArtifacts(ctx context.Context, r ingest.OutboxRow) ([]ingest.StoredArtifact, error)
}

// Observer is told what delivery does, for the metrics. Its methods must
// be safe for concurrent use.
type Observer interface {
	// Delivered counts a row delivered; endToEnd is the time from its
	// oldest Kafka message to the SOAR's answer, 0 when unknown.
	Delivered(asset string, endToEnd time.Duration)
	// DeliveryFailed counts a failed attempt: reason is "retry", "auth"
	// or "dead".
	DeliveryFailed(asset, reason string)
	// DeliveryRequest times one HTTP request to the SOAR.
	DeliveryRequest(asset string, d time.Duration)
	// DeliveryPending is the number of rows waiting (pending or sending).
	DeliveryPending(asset string, n int64)
}

// LeaseKey is the lease a worker holds while it delivers an asset's
// outbox: one worker per asset across replicas. Asset names cannot hold
// ':', so it never names an asset's poll lease.
func LeaseKey(asset string) string { return "deliver:" + asset }

// Defaults of the options.
const (
	DefaultBackoffBase = 500 * time.Millisecond
	DefaultBackoffCap  = 60 * time.Second
	DefaultPauseRetry  = 30 * time.Second
	DefaultIdlePoll    = 100 * time.Millisecond
	DefaultLeaseTTL    = 30 * time.Second
	// DefaultKeepDelivered is how long a delivered outbox row is kept
	// (it counts in the delivery status); pruned hourly by the worker
	// that holds the asset's lease.
	DefaultKeepDelivered = 7 * 24 * time.Hour
	// maxRetryAfter bounds a Retry-After a SOAR may give: a wrong header
	// must not stop delivery for days.
	maxRetryAfter = time.Hour
)

// Option changes a worker.
type Option func(*Worker)

// WithBackoff sets the exponential back-off after a failed attempt: full
// jitter over base·2^(attempt-1), at most maxDelay (defaults 500 ms, 60 s).
// A Retry-After from the SOAR wins over it.
func WithBackoff(base, maxDelay time.Duration) Option {
	return func(w *Worker) { w.backoffBase, w.backoffCap = base, maxDelay }
}

// WithPauseRetry sets how often a worker whose token the SOAR refused
// tries again (default 30 s).
func WithPauseRetry(d time.Duration) Option { return func(w *Worker) { w.pauseRetry = d } }

// WithIdlePoll sets how often an idle worker looks at the outbox when
// nobody calls Wake (default 100 ms): the floor of the delivery latency.
func WithIdlePoll(d time.Duration) Option { return func(w *Worker) { w.idlePoll = d } }

// WithLeaseTTL sets the lease's lifetime (default 30 s; renewed every
// third of it): how long a crashed replica's asset waits for another.
func WithLeaseTTL(d time.Duration) Option { return func(w *Worker) { w.leaseTTL = d } }

// WithKeepDelivered sets how long delivered outbox rows are kept
// (default DefaultKeepDelivered).
func WithKeepDelivered(d time.Duration) Option { return func(w *Worker) { w.keepDelivered = d } }

// WithHolder names the worker in the lease (default: host, process and a
// random part).
func WithHolder(h string) Option { return func(w *Worker) { w.holder = h } }

// WithLogger sets the logger (default: none).
func WithLogger(l *slog.Logger) Option { return func(w *Worker) { w.logger = l } }

// WithObserver sets what is told of deliveries (the metrics).
func WithObserver(o Observer) Option { return func(w *Worker) { w.observer = o } }

// Fault points a test can stop a worker at (WithFaultHook): a row marked
// sending before any request; the SOAR's answer to the last request
// received, the row not yet marked delivered; and between two requests of
// one row (its container made, some artifacts not yet sent).
const (
	FaultBeforeRequest = "before_request"
	FaultAfterAnswer   = "after_answer"
	FaultMidArtifacts  = "mid_artifacts"
)

// WithFaultHook calls hook at the fault points. Tests kill the process
// there to prove a crash loses and duplicates nothing; it is not for
// production use.
func WithFaultHook(hook func(point string)) Option { return func(w *Worker) { w.fault = hook } }

// Status is where a worker stands.
type Status struct {
	// Leased says this worker holds the asset's delivery lease; false
	// while another replica delivers the asset (Holder names it).
	Leased bool
	Holder string
	// Paused says the SOAR refused the token: the worker tries again
	// every 30 s, and Message says what to fix.
	Paused  bool
	Message string
	// LastError is the last failed attempt's error, empty after a
	// success.
	LastError string
}

// Worker delivers one asset's outbox. Run it in one goroutine; Status
// and Wake are safe to call from any.
type Worker struct {
	asset  string
	cfg    assets.Config
	store  Store
	target target

	backoffBase, backoffCap time.Duration
	pauseRetry, idlePoll    time.Duration
	leaseTTL                time.Duration
	keepDelivered           time.Duration
	// pruned is when delivered rows were last pruned.
	pruned   time.Time
	holder   string
	logger   *slog.Logger
	observer Observer
	fault    func(point string)

	wake chan struct{}

	mu     sync.Mutex
	status Status
}

// New returns the worker of asset, whose configuration is cfg (in push
// mode). The configuration is fixed: when the asset changes, stop the
// worker and start another.
func New(asset string, cfg assets.Config, st Store, opts ...Option) (*Worker, error) {
	if !cfg.Push() {
		return nil, soarkafka.Errorf(soarkafka.EINVALID, "asset %q: delivery.mode is %q: only a push asset is delivered", asset, cfg.Delivery.Mode)
	}
	w := &Worker{asset: asset, cfg: cfg, store: st,
		backoffBase: DefaultBackoffBase, backoffCap: DefaultBackoffCap, pauseRetry: DefaultPauseRetry,
		idlePoll: DefaultIdlePoll, leaseTTL: DefaultLeaseTTL, keepDelivered: DefaultKeepDelivered, logger: slog.New(slog.DiscardHandler),
		wake: make(chan struct{}, 1), fault: func(string) {}}
	for _, o := range opts {
		o(w)
	}
	if w.holder == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		rand.Read(b)
		w.holder = host + "/" + strconv.Itoa(os.Getpid()) + "/deliver-" + hex.EncodeToString(b)
	}
	w.logger = w.logger.With("component", "deliver", "asset", asset)
	c, err := newClient(w, cfg.Delivery)
	if err != nil {
		return nil, err
	}
	switch cfg.Delivery.Target {
	case assets.TargetXSOARWebhook:
		w.target = &xsoarWebhook{c: c, w: w}
	default:
		w.target = &splunkSOAR{c: c, w: w}
	}
	return w, nil
}

// Status returns where the worker stands.
func (w *Worker) Status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.status
}

func (w *Worker) setStatus(f func(*Status)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f(&w.status)
}

// Wake tells the worker that rows may be waiting (a batch was stored), so
// it looks at once instead of at its next idle poll.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends: it takes the asset's delivery lease
// (waiting while another replica holds it), delivers while it holds it,
// and releases it on return. Failures are retried, never returned; the
// error is ctx's.
func (w *Worker) Run(ctx context.Context) error {
	key := LeaseKey(w.asset)
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := w.store.ReleaseLease(rctx, key, w.holder); err != nil {
			w.logger.Warn("release the delivery lease", "error", err)
		}
		w.setStatus(func(s *Status) { s.Leased = false })
	}()
	for {
		ok, cur, err := w.store.AcquireLease(ctx, key, w.holder, w.leaseTTL)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			w.logger.Warn("take the delivery lease", "error", err)
		case !ok:
			w.setStatus(func(s *Status) { s.Leased, s.Holder = false, cur.Holder })
		default:
			w.setStatus(func(s *Status) { s.Leased, s.Holder = true, w.holder })
			err := w.deliverLeased(ctx)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			w.logger.Warn("delivery stopped; taking the lease again", "error", err)
			w.setStatus(func(s *Status) { s.Leased = false })
		}
		if !sleep(ctx, w.leaseTTL/3) {
			return ctx.Err()
		}
	}
}

// result is a delivered, retried or dead row, back from its goroutine.
type result struct {
	row  ingest.OutboxRow
	kind string // "", "retry", "auth", "dead", "stop", "store"
	err  error
}

// deliverLeased runs rows while the worker holds the lease: up to
// concurrency containers at once, never two rows of one container. It
// returns when ctx ends or the lease is lost; in-flight requests are
// cancelled then, and their rows stay sending, to be checked by whoever
// takes the asset next.
func (w *Worker) deliverLeased(ctx context.Context) error {
	conc := int(w.cfg.Delivery.Concurrency)
	dctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	results := make(chan result, conc)
	inflight := map[int64]bool{} // container ids
	renew := time.NewTicker(w.leaseTTL / 3)
	defer renew.Stop()
	var pausedUntil time.Time
	for {
		if limit := conc - len(inflight); limit > 0 && !time.Now().Before(pausedUntil) {
			if w.isPaused() {
				// One row probes whether the token works again.
				limit = min(limit, 1-len(inflight))
			}
			if limit > 0 {
				rows, err := w.store.NextDeliveries(ctx, w.asset, conc+len(inflight))
				if err != nil {
					return err
				}
				for _, r := range rows {
					if limit == 0 {
						break
					}
					if inflight[r.ContainerID] {
						continue
					}
					inflight[r.ContainerID] = true
					limit--
					wg.Add(1)
					go func() {
						defer wg.Done()
						results <- w.deliverRow(dctx, r)
					}()
				}
			}
		}
		idle := time.NewTimer(w.idlePoll)
		select {
		case res := <-results:
			delete(inflight, res.row.ContainerID)
			if res.kind == "auth" {
				pausedUntil = time.Now().Add(w.pauseRetry)
			}
			if res.kind == "store" {
				// The database failed (or the row changed under us):
				// wait a little rather than spin on it.
				w.logger.Warn("delivery: store", "row", res.row.ID, "error", res.err)
				pausedUntil = time.Now().Add(10 * w.idlePoll)
			}
		case <-renew.C:
			if err := w.store.RenewLease(ctx, LeaseKey(w.asset), w.holder, w.leaseTTL); err != nil {
				idle.Stop()
				return err
			}
			if time.Since(w.pruned) >= time.Hour {
				w.pruned = time.Now()
				if n, err := w.store.PruneDelivered(ctx, w.asset, time.Now().Add(-w.keepDelivered)); err != nil {
					w.logger.Warn("delivery: prune delivered outbox rows", "error", err)
				} else if n > 0 {
					w.logger.Info("delivery: pruned delivered outbox rows", "rows", n, "older_than", w.keepDelivered)
				}
			}
			if w.observer != nil {
				// Only the waiting rows: the stats' counts read every
				// delivered row too, which only grows.
				if n, err := w.store.OutboxPending(ctx, w.asset); err == nil {
					w.observer.DeliveryPending(w.asset, int64(n))
				}
			}
		case <-w.wake:
		case <-idle.C:
		case <-ctx.Done():
			idle.Stop()
			return ctx.Err()
		}
		idle.Stop()
	}
}

func (w *Worker) isPaused() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.status.Paused
}

// deliverRow sends one row and records its outcome in the outbox.
func (w *Worker) deliverRow(ctx context.Context, r ingest.OutboxRow) (res result) {
	res.row = r
	defer func() {
		// A panic here (a bug, or a body the SOAR client chokes on) must
		// not take the server down: the row is retried later.
		if p := recover(); p != nil {
			w.logger.Error("delivery panicked", "row", r.ID, "panic", p)
			res.kind, res.err = "store", fmt.Errorf("delivery of outbox row %d panicked: %v", r.ID, p)
		}
	}()
	// A row sent before (it was found sending, or failed after a part of
	// its artifacts went through) may have reached the SOAR in part:
	// what is there is checked before anything is sent again.
	check := r.State == ingest.OutboxSending || r.Attempts > 0
	if err := w.store.MarkSending(ctx, r.ID); err != nil {
		return result{row: r, kind: "store", err: err}
	}
	attempt := r.Attempts + 1
	c, err := w.store.Container(ctx, r.ContainerID)
	if soarkafka.ErrorCode(err) == soarkafka.ENOTFOUND {
		return result{row: r} // deleted: its outbox rows went with it
	} else if err != nil {
		return w.settle(ctx, r, attempt, &failure{kind: "retry", msg: err.Error()})
	}
	arts, err := w.store.DeliveryArtifacts(ctx, r)
	if err != nil {
		return w.settle(ctx, r, attempt, &failure{kind: "retry", msg: err.Error()})
	}
	w.fault(FaultBeforeRequest)
	soarID, err := w.target.send(ctx, r, c, arts, check)
	if err == nil {
		w.fault(FaultAfterAnswer)
	}
	if ctx.Err() != nil {
		// Stopping: the row stays sending, and is checked next time.
		return result{row: r, kind: "stop", err: ctx.Err()}
	}
	if err != nil {
		var f *failure
		if !errors.As(err, &f) {
			f = &failure{kind: "retry", msg: err.Error()}
		}
		return w.settle(ctx, r, attempt, f)
	}
	if err := w.store.MarkDelivered(ctx, r.ID, soarID); err != nil {
		return result{row: r, kind: "store", err: err}
	}
	if w.observer != nil {
		var e2e time.Duration
		if !r.MessageTime.IsZero() {
			e2e = time.Since(r.MessageTime)
		}
		w.observer.Delivered(w.asset, e2e)
	}
	w.setStatus(func(s *Status) {
		if s.Paused {
			w.logger.Info("the SOAR accepts the token again; delivery resumed")
		}
		s.Paused, s.Message, s.LastError = false, "", ""
	})
	return result{row: r}
}

// settle records a failed attempt: a retry at its back-off, a pause, or a
// dead letter.
func (w *Worker) settle(ctx context.Context, r ingest.OutboxRow, attempt int, f *failure) result {
	if w.observer != nil {
		w.observer.DeliveryFailed(w.asset, f.kind)
	}
	msg := f.msg
	w.setStatus(func(s *Status) { s.LastError = msg })
	var err error
	switch f.kind {
	case "auth":
		w.setStatus(func(s *Status) { s.Paused, s.Message = true, msg })
		w.logger.Warn("delivery paused", "reason", msg)
		err = w.store.MarkRetry(ctx, r.ID, msg, time.Now().Add(w.pauseRetry))
	case "dead":
		w.logger.Warn("delivery dead letter", "row", r.ID, "container", r.ContainerID, "reason", msg)
		err = w.store.MarkDead(ctx, r.ID, msg, f.answer)
	default:
		d := w.backoff(attempt, f.retryAfter)
		w.logger.Info("delivery failed; retrying", "row", r.ID, "in", d, "reason", msg)
		err = w.store.MarkRetry(ctx, r.ID, msg, time.Now().Add(d))
	}
	if err != nil {
		return result{row: r, kind: "store", err: err}
	}
	return result{row: r, kind: f.kind, err: f}
}

// backoff is the wait before attempt+1: the SOAR's Retry-After when it
// gave one, else full jitter over base·2^(attempt-1) capped, so that many
// workers failing together do not come back together.
func (w *Worker) backoff(attempt int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return min(retryAfter, maxRetryAfter)
	}
	d := w.backoffCap
	if attempt-1 < 32 {
		if e := w.backoffBase << (attempt - 1); e > 0 && e < d {
			d = e
		}
	}
	if d <= 0 {
		return 0
	}
	return mrand.N(d + 1)
}

// sleep waits d or until ctx ends, and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
