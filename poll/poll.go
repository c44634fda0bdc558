package poll

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/kafka"
	"github.com/soarkafka/soarkafka/parsers"
	"github.com/soarkafka/soarkafka/soar"
)

// Store is what a poll needs of the database.
type Store interface {
	ingest.Repository
	ingest.StateRepository
}

// Parsers binds an asset's parser by name, for that asset only;
// parsers.Service does.
type Parsers interface {
	Bind(ctx context.Context, asset, name string) (*parsers.Bound, error)
}

// Recorder receives what polls do, for metrics; *metrics.Metrics is one.
type Recorder interface {
	PollFinished(asset, kind, status string, d time.Duration)
	Ingested(asset string, messages, containers, artifacts, duplicates int)
	ParserError(asset string)
	DeadLettered(asset string, n int)
	Gap(asset string, partition int32, messages int64)
	Lag(asset string, partition int32, lag int64)
}

type nopRecorder struct{}

func (nopRecorder) PollFinished(string, string, string, time.Duration) {}
func (nopRecorder) Ingested(string, int, int, int, int)                {}
func (nopRecorder) ParserError(string)                                 {}
func (nopRecorder) DeadLettered(string, int)                           {}
func (nopRecorder) Gap(string, int32, int64)                           {}
func (nopRecorder) Lag(string, int32, int64)                           {}

// Fault points a test can stop a poll at (see WithFaultHook): before the
// parser runs on a batch, after it ran and before the batch is stored, and
// after the batch's transaction committed. The store has its own point
// inside the transaction.
const (
	FaultBeforeParse = "before_parse"
	FaultAfterParse  = "after_parse"
	FaultAfterCommit = "after_commit"
)

// Defaults of a Poller.
const (
	// DefaultLeaseTTL is how long a poll's lease lasts without renewal;
	// the poll renews it every third of that. A crashed holder's lease
	// is free again after at most this long.
	DefaultLeaseTTL = 30 * time.Second
	// DefaultLeaseWait is how long a poll waits for the lease another
	// poll of the same asset holds before it fails.
	DefaultLeaseWait = 10 * time.Second
	// DefaultSaveTimeout bounds the store of a batch once its poll is
	// cancelled (server shutdown): a batch read and parsed is stored,
	// not dropped, unless the database does not answer this long.
	DefaultSaveTimeout = 30 * time.Second
	// DefaultPollNowCount is poll now's artifact_count when not given.
	DefaultPollNowCount = 10
	// DefaultBackpressureCheck is how often a poll held back by its
	// Backpressure asks again.
	DefaultBackpressureCheck = 250 * time.Millisecond
	// DefaultContinuousPeriod is how long one record of a continuous poll
	// covers: its counts go to the ingest status and the metrics, its
	// positions to the consumer group, and the topic's partitions are
	// listed again (a partition added is read from then on).
	DefaultContinuousPeriod = time.Minute
	// DefaultContinuousStandby is how often a replica asks for the lease
	// of a continuous asset that another replica polls, so that it takes
	// over within about this long once the other stops.
	DefaultContinuousStandby = 2 * time.Second
	// parseWorkers is how many batches are parsed while the previous one
	// is stored.
	parseWorkers = 2
)

// Backpressure holds polls back while what they stored has not moved on
// downstream (the delivery to a SOAR). A poll asks it before it reads each
// batch; the pipeline may hold a few batches read before the answer
// turned, so the limit is approximate by that much.
type Backpressure interface {
	// Pending returns how many of the asset's stored containers wait
	// downstream, and how many may (limit <= 0: no limit). A poll reads
	// on while pending < limit. cfg is the configuration the poll runs
	// with (an inline configuration has no stored asset to look up).
	Pending(ctx context.Context, asset string, cfg assets.Config) (pending, limit int, err error)
}

// Poller runs polls. It is safe for concurrent use: polls of different
// assets run side by side, polls of one asset one after the other (the
// lease), in one process and across replicas sharing the database.
type Poller struct {
	store       Store
	parsers     Parsers
	logger      *slog.Logger
	rec         Recorder
	replica     string
	leaseTTL    time.Duration
	leaseWait   time.Duration
	saveTimeout time.Duration
	fault       func(point string)
	kafkaOpts   []kgo.Opt
	access      kafka.Access

	backpressure      Backpressure
	backpressureCheck time.Duration
	// outboxWritten is told of each committed batch with outbox rows.
	outboxWritten func(asset string)
	// period is how long one record of a continuous poll covers;
	// standby how often a replica without the lease of a continuous
	// asset tries to take it.
	period  time.Duration
	standby time.Duration
	// status keeps the clients Status asks the log-end offsets with.
	status            *statusClients
	statusClientIdle  time.Duration
	statusClientLimit int
}

// Option configures a Poller.
type Option func(*Poller)

// WithOutboxWritten calls fn with the asset's name after each batch that
// wrote outbox rows (a push asset's) commits, so that its delivery starts
// at once. fn must not block.
func WithOutboxWritten(fn func(asset string)) Option {
	return func(p *Poller) { p.outboxWritten = fn }
}

// WithRecorder sends what polls do to r (metrics); none by default.
func WithRecorder(r Recorder) Option {
	return func(p *Poller) {
		if r != nil {
			p.rec = r
		}
	}
}

// WithReplica names this process in the leases it takes, so the ingest
// status shows which replica polls; host name and process id by default.
func WithReplica(name string) Option { return func(p *Poller) { p.replica = name } }

// WithLease overrides DefaultLeaseTTL and DefaultLeaseWait.
func WithLease(ttl, wait time.Duration) Option {
	return func(p *Poller) { p.leaseTTL, p.leaseWait = ttl, wait }
}

// WithFaultHook calls hook at each fault point; tests stop the process
// there to prove that a crash loses and duplicates nothing.
func WithFaultHook(hook func(point string)) Option { return func(p *Poller) { p.fault = hook } }

// WithAccess connects and reads the assets' files through a (the host and
// file policies); the zero kafka.Access by default.
func WithAccess(a kafka.Access) Option { return func(p *Poller) { p.access = a } }

// WithBackpressure makes every poll but poll now ask b before it reads a
// batch, and wait while b says the asset is too far behind, asking again
// every check (DefaultBackpressureCheck when 0). None by default.
func WithBackpressure(b Backpressure, check time.Duration) Option {
	return func(p *Poller) {
		p.backpressure = b
		if check > 0 {
			p.backpressureCheck = check
		}
	}
}

// WithContinuous overrides DefaultContinuousPeriod and
// DefaultContinuousStandby (0 keeps a default).
func WithContinuous(period, standby time.Duration) Option {
	return func(p *Poller) {
		if period > 0 {
			p.period = period
		}
		if standby > 0 {
			p.standby = standby
		}
	}
}

// WithKafkaOptions adds kgo options to the clients polls build (tests
// shorten timeouts with it).
func WithKafkaOptions(opts ...kgo.Opt) Option {
	return func(p *Poller) { p.kafkaOpts = append(p.kafkaOpts, opts...) }
}

// WithStatusClients overrides DefaultStatusClientIdle and
// DefaultStatusClients: how long a client Status keeps may go unused before
// it is closed, and how many it keeps (0 keeps a default).
func WithStatusClients(idle time.Duration, limit int) Option {
	return func(p *Poller) {
		if idle > 0 {
			p.statusClientIdle = idle
		}
		if limit > 0 {
			p.statusClientLimit = limit
		}
	}
}

// New returns a Poller storing into store, with the parsers of ps.
func New(store Store, ps Parsers, logger *slog.Logger, opts ...Option) *Poller {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	host, _ := os.Hostname()
	p := &Poller{store: store, parsers: ps, logger: logger, rec: nopRecorder{},
		replica: host + ":" + strconv.Itoa(os.Getpid()), leaseTTL: DefaultLeaseTTL, leaseWait: DefaultLeaseWait,
		saveTimeout: DefaultSaveTimeout, fault: func(string) {}, backpressureCheck: DefaultBackpressureCheck,
		period: DefaultContinuousPeriod, standby: DefaultContinuousStandby,
		statusClientIdle: DefaultStatusClientIdle, statusClientLimit: DefaultStatusClients}
	for _, o := range opts {
		o(p)
	}
	p.status = &statusClients{access: p.access, logger: p.logger, opts: p.kafkaOpts,
		idle: p.statusClientIdle, max: p.statusClientLimit, entries: map[string]*statusClient{}}
	return p
}

// Request is one poll.
type Request struct {
	// Asset is the key the poll's state is kept under: a stored asset's
	// name, or for an inline configuration the SOAR's asset id.
	Asset  string
	Config assets.Config
	// Kind is ingest.PollScheduled, ingest.PollAction or ingest.PollNow.
	Kind string
	// Count is how many messages poll now reads (artifact_count); 0 is
	// DefaultPollNowCount. Other polls read up to ingest.max_messages.
	Count int
	// MaxContainers caps the containers the poll creates
	// (container_count); 0 is no cap.
	MaxContainers int
}

// Why a poll stopped reading, as Result.Stopped.
const (
	StoppedCaughtUp     = "caught_up"       // every partition read to its end at the poll's start
	StoppedMaxMessages  = "max_messages"    // ingest.max_messages (poll now: artifact_count) read
	StoppedTimeout      = "timeout"         // the asset's timeout passed
	StoppedContainerCap = "container_count" // container_count containers created
	StoppedOutOfRange   = "offset_out_of_range"
	StoppedFailed       = "failed"
	StoppedShutdown     = "shutdown"
	// StoppedBackpressure: the poll's time passed while its Backpressure
	// held it back.
	StoppedBackpressure = "backpressure"
	// StoppedPeriod: a continuous poll's record period ended (or a
	// partition needs its positions listed again); it goes on at once.
	StoppedPeriod = "period"
	// StoppedContinuous: an on poll action found the asset polled
	// continuously: what it would read is stored as it comes.
	StoppedContinuous = "continuous"
)

// Result is what a poll did; a failed poll returns what it stored before
// it failed beside its error.
type Result struct {
	Asset  string `json:"asset"`
	Topic  string `json:"topic"`
	Kind   string `json:"kind"`
	Parser string `json:"parser"`

	MessagesRead      int `json:"messages_read"`
	ContainersCreated int `json:"containers_created"`
	ContainersUpdated int `json:"containers_updated"`
	ArtifactsCreated  int `json:"artifacts_created"`
	DuplicatesSkipped int `json:"duplicates_skipped"`
	DeadLettered      int `json:"dead_lettered"`

	Containers []ingest.ContainerRef `json:"-"`
	Partitions []PartitionResult     `json:"partitions"`
	Gaps       []ingest.Gap          `json:"gaps"`
	// Lag is the messages left after the poll, all partitions together.
	Lag int64 `json:"lag"`
	// lagKnown: Lag is what the ingest status would report (Kafka
	// answered, and the poll read from the stored position).
	lagKnown bool
	Stopped  string        `json:"stopped"`
	Warnings []string      `json:"warnings,omitempty"`
	Duration time.Duration `json:"-"`
	// Timing says where the poll's time went.
	Timing Timing `json:"-"`
}

// Timing is the time a poll spent in each stage. The stages overlap (the
// next batch is fetched and parsed while one is stored), so they add up to
// more than the poll's duration; Parse adds up parallel parser calls.
type Timing struct {
	Fetch time.Duration // waiting for Kafka
	Parse time.Duration // parser calls and turning results into containers
	Store time.Duration // database transactions
	Held  time.Duration // waiting for the Backpressure to let the poll read on
}

// PartitionResult is where a poll started and ended on one partition.
type PartitionResult struct {
	Partition int32 `json:"partition"`
	// Start is the first offset the poll read from; End the next offset
	// to read after it (End == Start: nothing read).
	Start int64 `json:"start_offset"`
	End   int64 `json:"end_offset"`
	// LogEnd is the partition's log-end offset when the poll ended, Lag
	// what is left to read: LogEnd - stored position.
	LogEnd int64 `json:"log_end_offset"`
	Lag    int64 `json:"lag"`
}

// PoisonError is a poll stopped at a message its parser fails on, with no
// dead-letter topic to send it to. Everything before the message is stored.
type PoisonError struct {
	Topic     string
	Partition int32
	Offset    int64
	Parser    string
	Err       error
}

func (e *PoisonError) Error() string {
	return fmt.Sprintf("parser %q failed on message %d:%d of topic %s; the poll stopped before it and stored what came before. "+
		"Fix the parser, or set ingest.dead_letter_topic to set such messages aside: %v", e.Parser, e.Partition, e.Offset, e.Topic, e.Err)
}

func (e *PoisonError) Unwrap() error { return e.Err }

// Poll runs one poll. The error is a *soarkafka.Error, a *PoisonError or
// the server's own failure; the result holds what was stored before it.
func (p *Poller) Poll(ctx context.Context, req Request) (*Result, error) {
	if req.Kind == ingest.PollAction && req.Config.Continuous() && req.Config.Ingest.Spread {
		// The replicas' consumer group reads it: there is no lease to
		// find held, and nothing for this poll to do.
		res := &Result{Asset: req.Asset, Topic: req.Config.Topic, Kind: req.Kind, Stopped: StoppedContinuous}
		res.Warnings = append(res.Warnings, fmt.Sprintf("asset %q is polled continuously by the replicas' consumer group (ingest.mode continuous, ingest.spread): its messages are stored as they come, so this poll had nothing to do", req.Asset))
		return res, nil
	}
	res, err := p.recorded(ctx, req, func(res *Result) error { return p.poll(ctx, req, res) })
	if err != nil && req.Kind == ingest.PollAction && isHeldContinuously(err) {
		// What this poll would read is stored as it comes: nothing to
		// do, and nothing failed.
		res.Stopped = StoppedContinuous
		res.Warnings = append(res.Warnings, fmt.Sprintf("asset %q is polled continuously (ingest.mode continuous): its messages are stored as they come, so this poll had nothing to do", req.Asset))
		return res, nil
	}
	return res, err
}

// recorded runs body as one poll of req: it records what the poll did
// (its record for the ingest status, the metrics, the log), panics
// included, and returns it.
func (p *Poller) recorded(ctx context.Context, req Request, body func(*Result) error) (*Result, error) {
	start := time.Now()
	res := &Result{Asset: req.Asset, Topic: req.Config.Topic, Kind: req.Kind}
	err := p.contained(ctx, req, res, body)
	res.Duration = time.Since(start)
	if err != nil && res.Stopped == "" {
		res.Stopped = StoppedFailed
	}
	if req.Kind == ingest.PollContinuous && isBusy(err) || req.Kind == ingest.PollAction && isHeldContinuously(err) {
		// A replica standing by for the lease of a continuous asset, or
		// an on poll action that has nothing to do: not polls.
		return res, err
	}
	status := ingest.PollSucceeded
	if err != nil {
		status = ingest.PollFailed
	}
	// Metrics first: whoever sees the poll's record (the ingest status) then
	// sees its counts in /metrics too.
	p.rec.PollFinished(req.Asset, req.Kind, status, res.Duration)
	p.rec.Ingested(req.Asset, res.MessagesRead, res.ContainersCreated, res.ArtifactsCreated, res.DuplicatesSkipped)
	if !isBusy(err) { // a poll that never ran leaves the last one's record
		rec := ingest.PollRecord{Asset: req.Asset, Topic: req.Config.Topic, Kind: req.Kind, StartedAt: start,
			Duration: res.Duration, Status: status, MessagesRead: int64(res.MessagesRead),
			ContainersCreated: int64(res.ContainersCreated), ArtifactsCreated: int64(res.ArtifactsCreated),
			DuplicatesSkipped: int64(res.DuplicatesSkipped), DeadLettered: int64(res.DeadLettered), Gaps: int64(len(res.Gaps))}
		if res.lagKnown {
			lag := res.Lag
			rec.Lag = &lag
		}
		if err != nil {
			rec.Error = err.Error()
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.saveTimeout)
		if rerr := p.store.RecordPoll(rctx, rec); rerr != nil {
			p.logger.WarnContext(ctx, "record poll", "asset", req.Asset, "error", rerr)
		}
		cancel()
	}
	level := slog.LevelInfo
	if err != nil {
		level = slog.LevelWarn
	}
	p.logger.Log(ctx, level, "poll finished", "asset", req.Asset, "topic", req.Config.Topic, "kind", req.Kind,
		"messages", res.MessagesRead, "containers_created", res.ContainersCreated, "artifacts_created", res.ArtifactsCreated,
		"duplicates", res.DuplicatesSkipped, "dead_lettered", res.DeadLettered, "gaps", len(res.Gaps), "lag", res.Lag,
		"stopped", res.Stopped, "duration", res.Duration, "held", res.Timing.Held, "error", err)
	return res, err
}

// contained runs body; a panic in it (its deferred steps, the lease's
// release among them, have run) is the poll's error, recorded as its
// failure like any other, and the caller goes on.
func (p *Poller) contained(ctx context.Context, req Request, res *Result, body func(*Result) error) (err error) {
	defer soarkafka.Recover(ctx, p.logger, "poll", func(e *soarkafka.PanicError) { err = e }, "asset", req.Asset, "kind", req.Kind)
	return body(res)
}

// busyError is a poll that did not start: another poll holds the lease.
// It is a *soarkafka.Error ECONFLICT in the chain.
type busyError struct {
	err    *soarkafka.Error
	holder string
}

func newBusyError(l ingest.Lease) *busyError {
	if continuousHolder(l.Holder) {
		return &busyError{holder: l.Holder, err: soarkafka.Errorf(soarkafka.ECONFLICT,
			"asset %q is polled continuously (%s, ingest.mode continuous): its messages are stored as they come, and no other poll of it can run meanwhile; "+
				"read the stored containers, or set ingest.mode to interval for this poll to run", l.Asset, l.Holder)}
	}
	return &busyError{holder: l.Holder, err: soarkafka.Errorf(soarkafka.ECONFLICT, "another poll of asset %q is running (%s, lease until %s); try again when it ends",
		l.Asset, l.Holder, l.Expires.UTC().Format(time.RFC3339))}
}

func (e *busyError) Error() string { return e.err.Error() }
func (e *busyError) Unwrap() error { return e.err }

// isBusy reports a poll that did not run because another held the lease.
func isBusy(err error) bool {
	var busy *busyError
	return errors.As(err, &busy)
}

// isHeldContinuously reports a poll that did not run because a
// continuous poll holds the lease.
func isHeldContinuously(err error) bool {
	var busy *busyError
	return errors.As(err, &busy) && continuousHolder(busy.holder)
}

// continuousSuffix ends the lease holder of a continuous poll, so that the
// other polls of the asset can tell that the lease will not come free.
const continuousSuffix = "/continuous"

func continuousHolder(holder string) bool { return strings.HasSuffix(holder, continuousSuffix) }

func (p *Poller) poll(ctx context.Context, req Request, res *Result) error {
	if req.Asset == "" {
		return soarkafka.Errorf(soarkafka.EINVALID, "poll: no asset to keep the poll's position under")
	}
	holder, err := p.acquire(ctx, req.Asset, req.Kind)
	if err != nil {
		return err
	}
	ctx, release := p.hold(ctx, req.Asset, holder)
	defer release()
	return p.runHeld(ctx, req, res, holder)
}

// hold keeps holder's lease of asset until release, renewing it; the
// context it returns ends, with the reason as its cause, when the lease is
// lost. release gives the lease up.
func (p *Poller) hold(ctx context.Context, asset, holder string) (_ context.Context, release func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	var heartbeat sync.WaitGroup
	heartbeat.Go(func() {
		// Without its heartbeat the poll would lose the lease unnoticed:
		// a panic here ends the poll.
		defer soarkafka.Recover(ctx, p.logger, "poll lease heartbeat", func(e *soarkafka.PanicError) { cancel(e) }, "asset", asset)
		p.heartbeat(ctx, cancel, asset, holder)
	})
	return ctx, func() {
		cancel(nil)
		heartbeat.Wait()
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), p.saveTimeout)
		defer rcancel()
		if err := p.store.ReleaseLease(rctx, asset, holder); err != nil {
			p.logger.WarnContext(ctx, "release poll lease", "asset", asset, "error", err)
		}
	}
}

// runHeld runs a poll whose lease is held: it reads, parses and stores,
// then commits the positions to the consumer group and reports the lag.
func (p *Poller) runHeld(ctx context.Context, req Request, res *Result, holder string) error {
	bound, err := p.parsers.Bind(ctx, req.Asset, req.Config.MessageParser)
	if err != nil {
		return fmt.Errorf("asset %q: message_parser: %w", req.Asset, err)
	}
	res.Parser = bound.Name

	brokerErrs := &brokerErrors{}
	cl, err := p.access.NewClient(req.Config, p.logger, append([]kgo.Opt{
		kgo.WithHooks(brokerErrs),
		// A broker that does not answer fails the poll within the
		// asset's timeout, not after kgo's retries.
		kgo.RetryTimeout(kafka.StepTimeout(req.Config)),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		kgo.FetchMaxWait(500 * time.Millisecond),
		// Bounds memory: a fetch holds at most this much, whatever the
		// topic holds.
		kgo.FetchMaxBytes(16 << 20),
	}, p.kafkaOpts...)...)
	if err != nil {
		return err
	}
	defer cl.Close()

	r := &run{p: p, req: req, res: res, cl: cl, adm: kadm.NewClient(cl), parser: bound, holder: holder, brokerErrs: brokerErrs,
		positions: map[int32]int64{}, starts: map[int32]int64{}, readEnds: map[int32]int64{}}
	err = r.run(ctx)
	if cause := context.Cause(ctx); err != nil && cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause // the lease was lost: say so rather than "context canceled"
	}
	r.finish(ctx, err)
	res.Timing.Parse = time.Duration(r.parseTime.Load())
	return err
}

// Continuous polls an asset without end, as one poll that reads the topic
// as messages come and stores a batch when it holds ingest.batch_size
// messages or its oldest has waited ingest.max_batch_wait_ms, with the
// guarantees of every poll (one transaction per batch with its positions,
// gaps, dead letters, the lease fencing each write). It holds the asset's
// lease throughout, and records itself as one poll per period (a record,
// the metrics, the consumer group's positions), each continuing where the
// last stopped.
//
// It returns nil when ctx ends (what it read is stored or left unread,
// never half stored), the lease's loss or a failed period's error, or at
// once an ECONFLICT when another poll holds the lease.
func (p *Poller) Continuous(ctx context.Context, req Request) error {
	req.Kind = ingest.PollContinuous
	if req.Asset == "" {
		return soarkafka.Errorf(soarkafka.EINVALID, "poll: no asset to keep the poll's position under")
	}
	holder, err := p.acquire(ctx, req.Asset, req.Kind)
	if err != nil {
		return err
	}
	hctx, release := p.hold(ctx, req.Asset, holder)
	defer release()
	p.logger.InfoContext(ctx, "continuous poll started", "asset", req.Asset, "topic", req.Config.Topic, "holder", holder)
	defer p.logger.InfoContext(ctx, "continuous poll stopped", "asset", req.Asset, "topic", req.Config.Topic, "holder", holder)
	for {
		_, err := p.recorded(hctx, req, func(res *Result) error {
			err := p.runHeld(hctx, req, res, holder)
			if err != nil && ctx.Err() != nil {
				// Stopped (shutdown, the asset changed): what was read is
				// stored or left for the next poll; the period ended well.
				res.Stopped = StoppedShutdown
				return nil
			}
			return err
		})
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			return err
		case hctx.Err() != nil:
			return context.Cause(hctx) // the lease was lost between periods
		}
	}
}

// RecordFailure records a failed poll of asset that did not get to run
// (its configuration cannot be used, or it panicked before Poll), so that
// the asset's ingest status says why.
func (p *Poller) RecordFailure(ctx context.Context, asset, topic, kind string, err error) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.saveTimeout)
	defer cancel()
	rec := ingest.PollRecord{Asset: asset, Topic: topic, Kind: kind, StartedAt: time.Now(), Status: ingest.PollFailed, Error: err.Error()}
	if rerr := p.store.RecordPoll(rctx, rec); rerr != nil {
		p.logger.WarnContext(ctx, "record poll", "asset", asset, "error", rerr)
	}
	p.rec.PollFinished(asset, kind, ingest.PollFailed, 0)
}

// acquire takes the asset's lease, waiting up to leaseWait for another
// poll of the asset to end.
func (p *Poller) acquire(ctx context.Context, asset, kind string) (string, error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	holder := p.replica + "/" + hex.EncodeToString(b[:])
	if kind == ingest.PollContinuous {
		holder += continuousSuffix
	}
	deadline := time.Now().Add(p.leaseWait)
	for {
		ok, current, err := p.store.AcquireLease(ctx, asset, holder, p.leaseTTL)
		if err != nil {
			return "", fmt.Errorf("asset %q: take the poll lease: %w", asset, err)
		}
		if ok {
			return holder, nil
		}
		if time.Now().After(deadline) || kind == ingest.PollScheduled || kind == ingest.PollContinuous || continuousHolder(current.Holder) {
			// A scheduled poll does not wait: another replica polls the
			// asset this turn. A continuous poll's lease does not come
			// free by waiting.
			return "", newBusyError(current)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// heartbeat renews the lease until ctx ends; losing it cancels the poll.
func (p *Poller) heartbeat(ctx context.Context, cancel context.CancelCauseFunc, asset, holder string) {
	t := time.NewTicker(p.leaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := p.store.RenewLease(ctx, asset, holder, p.leaseTTL)
		if err == nil || ctx.Err() != nil {
			continue
		}
		if soarkafka.ErrorCode(err) == soarkafka.ECONFLICT {
			cancel(&soarkafka.Error{Code: soarkafka.ECONFLICT, Message: fmt.Sprintf(
				"asset %q: this poll lost its lease (it could not renew it for %s); another poll took over, and what this one stored stays stored", asset, p.leaseTTL)})
			return
		}
		p.logger.WarnContext(ctx, "renew poll lease", "asset", asset, "error", err)
	}
}

// run is the state of one poll.
type run struct {
	p      *Poller
	req    Request
	res    *Result
	cl     *kgo.Client
	adm    *kadm.Client
	parser *parsers.Bound
	holder string

	// starts and positions are the first offset read and the next offset
	// to read per partition; positions move as batches are stored.
	starts    map[int32]int64
	positions map[int32]int64
	// pending are positions and gaps stored with the first batch (or on
	// their own when nothing is read): the start of a first poll, of a
	// new partition, or past a gap.
	pendingOffsets map[int32]int64
	pendingGaps    []ingest.Gap
	containers     map[int64]int // id: index in res.Containers
	// readEnds is the next offset past the messages stored (or, for poll
	// now, parsed and stored) per partition.
	readEnds map[int32]int64
	// brokerErrs notes failed fetches: kgo retries them without a word,
	// so a poll that timed out can tell a quiet topic from a broker that
	// stopped answering.
	brokerErrs *brokerErrors
	// fetchStopped is why the fetcher stopped (it runs in its own
	// goroutine; Result.Stopped is set from it once it ended).
	fetchStopped string
	// parseTime adds up the parse workers' time (Timing.Parse).
	parseTime atomic.Int64
	// epochs fences the batches of a partition of an asset spread over
	// replicas (Batch.Epochs); nil otherwise.
	epochs map[int32]int64
}

func (r *run) pollNow() bool { return r.req.Kind == ingest.PollNow }

func (r *run) continuous() bool { return r.req.Kind == ingest.PollContinuous }

func (r *run) run(ctx context.Context) error {
	topic := r.req.Config.Topic
	startOffsets, endOffsets, err := r.listOffsets(ctx)
	if err != nil {
		return err
	}
	stored := map[int32]int64{}
	if !r.pollNow() {
		if stored, err = r.p.store.Offsets(ctx, r.req.Asset, topic); err != nil {
			return err
		}
	}
	r.pendingOffsets = map[int32]int64{}
	ends := map[int32]int64{}
	for part, logEnd := range endOffsets {
		logStart := startOffsets[part]
		ends[part] = logEnd
		from := logStart
		switch pos, ok := stored[part]; {
		case r.pollNow():
		case !ok && len(stored) == 0 && !r.req.Config.ReadFromBeginning:
			from = logEnd // a first poll that starts at the latest
			r.pendingOffsets[part] = from
		case !ok:
			// A first poll from the beginning, or a partition added
			// since the last poll: all of it is new.
			r.pendingOffsets[part] = from
		case pos < logStart:
			gap := ingest.Gap{Partition: part, From: pos, To: logStart - 1, Count: logStart - pos}
			if r.req.Config.Ingest.OnOffsetOutOfRange == assets.OffsetOutOfRangeFail {
				r.res.Stopped = StoppedOutOfRange
				return soarkafka.Errorf(soarkafka.EUNAVAILABLE,
					"asset %q: partition %d of topic %s: the stored position %d is no longer on the broker (the log starts at %d; retention deleted %d messages before they were ingested). "+
						"ingest.on_offset_out_of_range is fail; set it to earliest to continue from the earliest offset and record the gap",
					r.req.Asset, part, topic, pos, logStart, gap.Count)
			}
			r.pendingGaps = append(r.pendingGaps, gap)
			r.pendingOffsets[part] = from
		case pos > logEnd:
			r.res.Stopped = StoppedOutOfRange
			return soarkafka.Errorf(soarkafka.EUNAVAILABLE,
				"asset %q: partition %d of topic %s: the stored position %d is past the log end %d; the topic was probably deleted and created again. "+
					"Ingest it under a new asset name to start over", r.req.Asset, part, topic, pos, logEnd)
		default:
			from = pos
		}
		r.starts[part] = from
		r.positions[part] = from
	}
	if r.pollNow() {
		r.positions = stored // poll now moves no position
	}

	limit := int(r.req.Config.Ingest.MaxMessages)
	switch {
	case r.pollNow():
		limit = r.req.Count
		if limit <= 0 {
			limit = DefaultPollNowCount
		}
	case r.continuous():
		limit = math.MaxInt
		if len(r.pendingOffsets) > 0 || len(r.pendingGaps) > 0 {
			// Stored before waiting for messages, not with the first
			// batch: a quiet topic may bring none for a long time, and
			// a restart meanwhile must not start at a later "latest".
			if err := r.save(ctx, nil, nil, nil); err != nil {
				return err
			}
		}
	}
	err = r.pipeline(ctx, ends, limit)
	if err == nil && (len(r.pendingOffsets) > 0 || len(r.pendingGaps) > 0) {
		// Nothing was stored, but a start position or a gap must be:
		// a first poll at the latest offset must not start at a later
		// "latest" next time, and a gap must not go unrecorded.
		err = r.save(ctx, nil, nil, nil)
	}
	return err
}

// listOffsets returns each partition's log start and end.
func (r *run) listOffsets(ctx context.Context) (starts, ends map[int32]int64, err error) {
	topic := r.req.Config.Topic
	lctx, cancel := context.WithTimeout(ctx, kafka.StepTimeout(r.req.Config))
	defer cancel()
	so, err := r.adm.ListStartOffsets(lctx, topic)
	if err == nil {
		err = so.Error()
	}
	if err != nil {
		return nil, nil, topicError(r.req.Asset, topic, err)
	}
	eo, err := r.adm.ListEndOffsets(lctx, topic)
	if err == nil {
		err = eo.Error()
	}
	if err != nil {
		return nil, nil, topicError(r.req.Asset, topic, err)
	}
	starts, ends = map[int32]int64{}, map[int32]int64{}
	so.Each(func(o kadm.ListedOffset) { starts[o.Partition] = o.Offset })
	eo.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset })
	if len(ends) == 0 {
		return nil, nil, soarkafka.Errorf(soarkafka.ENOTFOUND, "asset %q: topic %s does not exist or has no partitions", r.req.Asset, topic)
	}
	return starts, ends, nil
}

func topicError(asset, topic string, err error) error {
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return soarkafka.Errorf(soarkafka.ENOTFOUND, "asset %q: topic %s does not exist; create it or fix the asset's topic", asset, topic)
	}
	return &soarkafka.Error{Code: soarkafka.EUNAVAILABLE, Message: fmt.Sprintf("asset %q: list the offsets of topic %s: %v", asset, topic, err)}
}

// job is one batch on its way from the fetcher through a parse worker to
// the store, in fetch order.
type job struct {
	msgs []soar.Message
	done chan parsed
}

type parsed struct {
	containers []ingest.Container
	err        error
}

var errStop = errors.New("poll stopped")

// pipeline reads up to limit messages, parsing a batch while the previous
// one is stored; batches are stored in the order they were read.
func (r *run) pipeline(ctx context.Context, ends map[int32]int64, limit int) error {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	order := make(chan *job, parseWorkers+1)
	jobs := make(chan *job, parseWorkers)
	var fetchErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(order)
		defer close(jobs)
		defer soarkafka.Recover(ctx, r.p.logger, "poll fetch", func(e *soarkafka.PanicError) { fetchErr = e }, "asset", r.req.Asset)
		fetchErr = r.fetch(pctx, ends, limit, func(msgs []soar.Message) bool {
			j := &job{msgs: msgs, done: make(chan parsed, 1)}
			select {
			case order <- j:
			case <-pctx.Done():
				return false
			}
			select {
			case jobs <- j:
			case <-pctx.Done():
				return false
			}
			return true
		})
	})
	for range parseWorkers {
		wg.Go(func() {
			for j := range jobs {
				j.done <- r.containedParse(pctx, j.msgs)
			}
		})
	}
	var err error
	for j := range order {
		var pr parsed
		select {
		case pr = <-j.done:
		case <-pctx.Done():
		}
		if pctx.Err() != nil && err == nil {
			err = context.Cause(pctx)
		}
		if err == nil {
			err = r.process(ctx, j.msgs, pr)
		}
		if err != nil {
			cancel() // stop reading and parsing; drain what is queued
		}
	}
	wg.Wait()
	if r.res.Stopped == "" {
		r.res.Stopped = r.fetchStopped
	}
	if errors.Is(err, errStop) {
		return nil
	}
	if err != nil {
		return err
	}
	if fetchErr != nil && ctx.Err() == nil {
		return fetchErr
	}
	if ctx.Err() != nil {
		r.res.Stopped = StoppedShutdown
		return context.Cause(ctx)
	}
	return nil
}

// fetch reads the topic from r.starts and emits batches of at most
// ingest.batch_size until every partition reached its end at the poll's
// start, limit messages were read, or the asset's timeout passed. A
// continuing poll emits batches as they arrive; poll now reads first and
// emits the chosen messages at the end.
func (r *run) fetch(ctx context.Context, ends map[int32]int64, limit int, emit func([]soar.Message) bool) error {
	if r.continuous() {
		return r.fetchContinuous(ctx, emit)
	}
	remaining := r.consume(ends)
	if len(remaining) == 0 {
		r.fetchStopped = StoppedCaughtUp
		return nil
	}
	readCtx, cancel := context.WithTimeout(ctx, r.req.Config.PollTimeout())
	defer cancel()
	if r.pollNow() {
		return r.fetchNow(ctx, readCtx, ends, remaining, limit, emit)
	}
	return r.fetchOn(ctx, readCtx, ends, remaining, limit, emit)
}

// consume starts consuming every partition that has messages before its
// end, and returns those partitions.
func (r *run) consume(ends map[int32]int64) (remaining map[int32]bool) {
	offsets := map[int32]kgo.Offset{}
	remaining = map[int32]bool{}
	for part, from := range r.starts {
		if from < ends[part] {
			offsets[part] = kgo.NewOffset().At(from)
			remaining[part] = true
		}
	}
	if len(offsets) > 0 {
		r.cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{r.req.Config.Topic: offsets})
	}
	return remaining
}

// fetchOn is the fetch of a continuing poll: each batch is emitted as it
// is read, and the poll stops at limit messages.
func (r *run) fetchOn(ctx, readCtx context.Context, ends map[int32]int64, remaining map[int32]bool, limit int, emit func([]soar.Message) bool) error {
	cfg := r.req.Config
	batchSize := int(cfg.Ingest.BatchSize)
	lastProgress := time.Now() // the last fetch that brought messages
	read := 0
	for len(remaining) > 0 && read < limit {
		if !r.admit(readCtx) {
			if ctx.Err() == nil {
				r.fetchStopped = StoppedBackpressure
			}
			return nil
		}
		fs, done, err := r.pollRecords(ctx, readCtx, min(batchSize, limit-read), remaining)
		if done {
			return err
		}
		var msgs []soar.Message
		fs.EachRecord(func(rec *kgo.Record) {
			if !remaining[rec.Partition] {
				return
			}
			msgs = append(msgs, kafka.MessageOf(rec))
			reached(rec, ends, remaining)
		})
		if readCtx.Err() != nil && len(msgs) == 0 {
			break
		}
		if len(msgs) > 0 {
			lastProgress = time.Now()
			read += len(msgs)
			r.res.MessagesRead += len(msgs)
			if !emit(msgs) {
				return nil
			}
		}
	}
	switch {
	case read >= limit:
		r.fetchStopped = StoppedMaxMessages
	case len(remaining) == 0:
		r.fetchStopped = StoppedCaughtUp
	default:
		r.fetchStopped = StoppedTimeout
		if err := r.brokerErrs.since(lastProgress); err != nil {
			// The broker failed the fetches and the poll ran out of
			// time: what was read before is stored, the position stays
			// there, and the next poll resumes from it.
			r.fetchStopped = StoppedFailed
			return &soarkafka.Error{Code: soarkafka.EUNAVAILABLE, Message: fmt.Sprintf(
				"asset %q: reading topic %s failed within the asset's timeout (%s): %v; what was read before is stored and the next poll resumes there",
				r.req.Asset, cfg.Topic, cfg.PollTimeout(), err)}
		}
	}
	return nil
}

// fetchContinuous is the fetch of a continuous poll: it reads every
// partition from r.starts as messages come, and emits a batch when it
// holds ingest.batch_size messages or its first message was read
// ingest.max_batch_wait_ms ago. It ends with the poll's period, or early
// when retention deleted the next messages of a partition (the next
// period records the gap).
func (r *run) fetchContinuous(ctx context.Context, emit func([]soar.Message) bool) error {
	cfg := r.req.Config
	consuming := map[int32]bool{}
	offsets := map[int32]kgo.Offset{}
	for part, from := range r.starts {
		offsets[part] = kgo.NewOffset().At(from)
		consuming[part] = true
	}
	r.cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{cfg.Topic: offsets})
	readCtx, cancel := context.WithTimeout(ctx, r.p.period)
	defer cancel()

	batchSize := int(cfg.Ingest.BatchSize)
	wait := cfg.MaxBatchWait()
	var batch []soar.Message
	var due time.Time          // when the batch is emitted, full or not
	lastProgress := time.Now() // the last fetch that brought messages
	flush := func() bool {
		if len(batch) == 0 {
			return true
		}
		msgs := batch
		batch = nil
		return emit(msgs)
	}
	r.fetchStopped = StoppedPeriod
	for readCtx.Err() == nil {
		// Held back between batches only: a batch begun is emitted by
		// its due time.
		if len(batch) == 0 && !r.admit(readCtx) {
			break
		}
		fctx, fcancel := readCtx, context.CancelFunc(func() {})
		if len(batch) > 0 {
			fctx, fcancel = context.WithDeadline(readCtx, due)
		}
		parts := len(consuming)
		fs, done, err := r.pollRecords(ctx, fctx, batchSize-len(batch), consuming)
		fcancel()
		if done {
			if err != nil {
				flush() // what was read before the failure is stored
			}
			return err
		}
		n := 0
		fs.EachRecord(func(rec *kgo.Record) {
			if !consuming[rec.Partition] {
				return
			}
			if len(batch) == 0 {
				due = time.Now().Add(wait)
			}
			batch = append(batch, kafka.MessageOf(rec))
			n++
		})
		if n > 0 {
			lastProgress = time.Now()
			r.res.MessagesRead += n
		}
		if len(batch) >= batchSize || len(batch) > 0 && !time.Now().Before(due) {
			if !flush() {
				return nil
			}
		}
		if len(consuming) < parts {
			break // a partition's next messages were deleted: the next period records the gap
		}
	}
	if !flush() {
		return nil
	}
	// kgo retries a failing broker without a word: a period that brought
	// nothing while the broker failed lately fails, so that the ingest
	// status says so, and the next period resumes at the stored position.
	window := time.Now().Add(-cfg.PollTimeout()) // a failure older than that may be over
	if lastProgress.After(window) {
		window = lastProgress
	}
	if err := r.brokerErrs.since(window); err != nil && ctx.Err() == nil {
		r.fetchStopped = StoppedFailed
		return &soarkafka.Error{Code: soarkafka.EUNAVAILABLE, Message: fmt.Sprintf(
			"asset %q: reading topic %s failed (%v); what was read before is stored and the continuous poll resumes there",
			r.req.Asset, cfg.Topic, err)}
	}
	return nil
}

// admit waits while the poller's Backpressure says the asset is too far
// behind downstream, asking again every backpressureCheck. It returns
// false when ctx ended while the poll was held back. A Backpressure that
// cannot answer lets the poll go on, with a warning: the database it would
// count in is the one the next batch goes to, whose own failure then fails
// the poll plainly.
func (r *run) admit(ctx context.Context) bool {
	bp := r.p.backpressure
	if bp == nil || r.pollNow() {
		return true
	}
	var since time.Time // when this wait began; zero while not held
	defer func() {
		if !since.IsZero() {
			r.res.Timing.Held += time.Since(since)
		}
	}()
	for {
		if ctx.Err() != nil {
			// Not held: the caller's read sees ctx's end itself.
			return since.IsZero()
		}
		pending, limit, err := bp.Pending(ctx, r.req.Asset, r.req.Config)
		if ctx.Err() != nil {
			return since.IsZero()
		}
		switch {
		case err != nil:
			r.res.Warnings = append(r.res.Warnings, fmt.Sprintf("backpressure could not be checked, the poll read on: %v", err))
			r.p.logger.WarnContext(ctx, "poll backpressure", "asset", r.req.Asset, "error", err)
			return true
		case limit <= 0 || pending < limit:
			if !since.IsZero() {
				r.p.logger.InfoContext(ctx, "poll resumes after backpressure", "asset", r.req.Asset, "pending", pending, "limit", limit, "held", time.Since(since))
			}
			return true
		case since.IsZero():
			since = time.Now()
			r.p.logger.InfoContext(ctx, "poll held back: too many stored containers wait downstream", "asset", r.req.Asset, "pending", pending, "limit", limit)
		}
		t := time.NewTimer(r.p.backpressureCheck)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// fetchNow is the fetch of poll now: it reads up to limit messages per
// partition, keeps the first limit by partition then offset (the same
// ones on every call, as if read "from the beginning"), and emits them
// in batches once reading ended.
func (r *run) fetchNow(ctx, readCtx context.Context, ends map[int32]int64, remaining map[int32]bool, limit int, emit func([]soar.Message) bool) error {
	batchSize := int(r.req.Config.Ingest.BatchSize)
	var msgs []soar.Message
	perPartition := map[int32]int{}
	for len(remaining) > 0 {
		fs, done, err := r.pollRecords(ctx, readCtx, batchSize, remaining)
		if done {
			return err
		}
		fs.EachRecord(func(rec *kgo.Record) {
			if !remaining[rec.Partition] {
				return
			}
			if perPartition[rec.Partition] < limit {
				perPartition[rec.Partition]++
				msgs = append(msgs, kafka.MessageOf(rec))
			}
			if perPartition[rec.Partition] >= limit {
				delete(remaining, rec.Partition)
			}
			reached(rec, ends, remaining)
		})
		if readCtx.Err() != nil {
			break
		}
	}
	sort.Slice(msgs, func(i, j int) bool {
		a, b := msgs[i], msgs[j]
		return a.Partition < b.Partition || a.Partition == b.Partition && a.Offset < b.Offset
	})
	if len(msgs) > limit {
		msgs = msgs[:limit]
	}
	r.fetchStopped = StoppedMaxMessages
	if len(msgs) < limit {
		r.fetchStopped = StoppedCaughtUp
		if len(remaining) > 0 {
			r.fetchStopped = StoppedTimeout
		}
	}
	r.res.MessagesRead = len(msgs)
	for len(msgs) > 0 {
		n := min(batchSize, len(msgs))
		if !emit(msgs[:n:n]) {
			return nil
		}
		msgs = msgs[n:]
	}
	return nil
}

// pollRecords fetches up to max records and handles the partitions'
// errors. done says the fetch must end: with err, or with nil when the
// poll was cancelled.
func (r *run) pollRecords(ctx, readCtx context.Context, max int, remaining map[int32]bool) (fs kgo.Fetches, done bool, err error) {
	t0 := time.Now()
	fs = r.cl.PollRecords(readCtx, max)
	r.res.Timing.Fetch += time.Since(t0)
	if ctx.Err() != nil {
		return nil, true, nil
	}
	var ferr error
	fs.EachError(func(t string, part int32, err error) {
		switch {
		case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		case errors.Is(err, kerr.OffsetOutOfRange):
			// Retention deleted the next messages while this poll
			// ran; the next poll records the gap and goes on.
			delete(remaining, part)
			r.res.Warnings = append(r.res.Warnings, fmt.Sprintf(
				"partition %d: the next messages were deleted by retention during the poll; the next poll records the gap", part))
			r.cl.PauseFetchPartitions(map[string][]int32{t: {part}})
		default:
			ferr = &soarkafka.Error{Code: soarkafka.EUNAVAILABLE, Message: fmt.Sprintf(
				"asset %q: read partition %d of topic %s: %v", r.req.Asset, part, t, err)}
		}
	})
	if ferr != nil {
		return nil, true, ferr
	}
	return fs, false, nil
}

// reached drops rec's partition from remaining once rec is the last
// message before the partition's end at the poll's start.
func reached(rec *kgo.Record, ends map[int32]int64, remaining map[int32]bool) {
	if rec.Offset+1 >= ends[rec.Partition] {
		delete(remaining, rec.Partition)
	}
}

// containedParse is parse on a worker goroutine: a panic there (the
// parsers' own code, the conversion of their results) is the batch's
// error, the server's and not the parser's, so the poll fails on it rather
// than taking the message for poison.
func (r *run) containedParse(ctx context.Context, msgs []soar.Message) (pr parsed) {
	defer soarkafka.Recover(ctx, r.p.logger, "parse batch", func(e *soarkafka.PanicError) { pr = parsed{err: e} }, "asset", r.req.Asset)
	return r.parse(ctx, msgs)
}

// parse runs the parser on a batch and turns its results into containers.
func (r *run) parse(ctx context.Context, msgs []soar.Message) parsed {
	r.p.fault(FaultBeforeParse)
	t0 := time.Now()
	defer func() { r.parseTime.Add(int64(time.Since(t0))) }()
	pctx, cancel := context.WithTimeout(ctx, r.req.Config.ParserDeadline())
	defer cancel()
	containers, err := r.parser.Containers(pctx, r.req.Config.Topic, msgs)
	if err != nil {
		return parsed{err: err}
	}
	return parsed{containers: containers}
}

// process stores a parsed batch, or finds the message(s) its parser fails
// on by splitting it in halves, and the batch prefix that keeps the poll
// within container_count.
func (r *run) process(ctx context.Context, msgs []soar.Message, pr parsed) error {
	if pr.err != nil {
		if !parsers.IsParserFailure(pr.err) {
			return pr.err // the server's own failure, not the parser's
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if len(msgs) == 1 {
			return r.poison(ctx, msgs[0], pr.err)
		}
		return r.halves(ctx, msgs)
	}
	if max := r.req.MaxContainers; max > 0 && r.res.ContainersCreated+len(pr.containers) > max {
		if len(msgs) > 1 {
			return r.halves(ctx, msgs)
		}
		if r.res.ContainersCreated >= max || len(pr.containers) > max {
			r.res.Stopped = StoppedContainerCap
			return errStop
		}
	}
	r.p.fault(FaultAfterParse)
	if err := r.save(ctx, msgs, pr.containers, nil); err != nil {
		return err
	}
	if max := r.req.MaxContainers; max > 0 && r.res.ContainersCreated >= max {
		r.res.Stopped = StoppedContainerCap
		return errStop
	}
	return nil
}

func (r *run) halves(ctx context.Context, msgs []soar.Message) error {
	half := len(msgs) / 2
	if err := r.process(ctx, msgs[:half], r.parse(ctx, msgs[:half])); err != nil {
		return err
	}
	return r.process(ctx, msgs[half:], r.parse(ctx, msgs[half:]))
}

// poison handles a message the parser fails on by itself: dead-lettered
// when the asset names a topic for it, else the poll stops before it.
func (r *run) poison(ctx context.Context, m soar.Message, perr error) error {
	r.p.rec.ParserError(r.req.Asset)
	dlt := r.req.Config.Ingest.DeadLetterTopic
	if dlt == "" || r.pollNow() {
		return &PoisonError{Topic: r.req.Config.Topic, Partition: m.Partition, Offset: m.Offset, Parser: r.parser.Name, Err: perr}
	}
	msg := perr.Error()
	if re := parsers.DescribeError(perr); re != nil {
		msg = re.Message
	}
	if err := r.deadLetter(ctx, dlt, m, msg); err != nil {
		return err
	}
	dl := ingest.DeadLetter{Partition: m.Partition, Offset: m.Offset, Topic: dlt, Parser: r.parser.Name, Error: msg}
	if err := r.save(ctx, []soar.Message{m}, nil, []ingest.DeadLetter{dl}); err != nil {
		return err
	}
	r.res.DeadLettered++
	r.p.rec.DeadLettered(r.req.Asset, 1)
	return nil
}

// Headers a dead-lettered record carries beside its own.
const (
	HeaderSourceTopic     = "soarkafka.source.topic"
	HeaderSourcePartition = "soarkafka.source.partition"
	HeaderSourceOffset    = "soarkafka.source.offset"
	HeaderParser          = "soarkafka.parser"
	HeaderError           = "soarkafka.error"
	HeaderAsset           = "soarkafka.asset"
)

// deadLetter produces m to topic and waits for the broker's
// acknowledgement: the position moves past m only once it is there.
func (r *run) deadLetter(ctx context.Context, topic string, m soar.Message, msg string) error {
	rec := &kgo.Record{Topic: topic, Key: m.Key, Value: m.Value, Timestamp: m.Timestamp}
	for _, h := range m.Headers {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h.Key, Value: []byte(h.Value)})
	}
	rec.Headers = append(rec.Headers,
		kgo.RecordHeader{Key: HeaderSourceTopic, Value: []byte(m.Topic)},
		kgo.RecordHeader{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(int(m.Partition)))},
		kgo.RecordHeader{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
		kgo.RecordHeader{Key: HeaderParser, Value: []byte(r.parser.Name)},
		kgo.RecordHeader{Key: HeaderError, Value: []byte(soar.Truncate(msg, 4096))},
		kgo.RecordHeader{Key: HeaderAsset, Value: []byte(r.req.Asset)},
	)
	pctx, cancel := context.WithTimeout(ctx, kafka.DefaultRetryTimeout)
	defer cancel()
	if err := r.cl.ProduceSync(pctx, rec).FirstErr(); err != nil {
		return &soarkafka.Error{Code: soarkafka.EUNAVAILABLE, Message: fmt.Sprintf(
			"asset %q: message %d:%d failed the parser and could not be produced to the dead-letter topic %s (%v); the poll stopped before it. "+
				"Check that the topic exists and the asset may write to it", r.req.Asset, m.Partition, m.Offset, topic, err)}
	}
	return nil
}

// save stores one batch with the positions past msgs, and the pending
// start positions and gaps with the first batch.
func (r *run) save(ctx context.Context, msgs []soar.Message, containers []ingest.Container, dead []ingest.DeadLetter) error {
	// BodiesValid: Bound.Containers decoded every body with a validating
	// JSON decoder or encoded it from values, in the parse workers.
	b := &ingest.Batch{Asset: r.req.Asset, Topic: r.req.Config.Topic, Containers: containers, DeadLetters: dead, LeaseHolder: r.holder,
		ContainerLabel: r.req.Config.Ingest.ContainerLabel, BodiesValid: true, Outbox: r.req.Config.Push(), Epochs: r.epochs}
	if b.Outbox {
		for _, m := range msgs {
			if !m.Timestamp.IsZero() && (b.MessageTime.IsZero() || m.Timestamp.Before(b.MessageTime)) {
				b.MessageTime = m.Timestamp
			}
		}
	}
	if !r.pollNow() {
		next := map[int32]int64{}
		for part, off := range r.pendingOffsets {
			next[part] = off
		}
		for _, m := range msgs {
			if m.Offset+1 > next[m.Partition] {
				next[m.Partition] = m.Offset + 1
			}
		}
		for part, off := range next {
			b.Offsets = append(b.Offsets, ingest.Offset{Partition: part, Next: off})
		}
		sort.Slice(b.Offsets, func(i, j int) bool { return b.Offsets[i].Partition < b.Offsets[j].Partition })
		b.Gaps = r.pendingGaps
	}
	// A batch read and parsed is stored even when the poll is being
	// cancelled (shutdown): the transaction ends either way, and storing
	// it saves reading and parsing it again.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.p.saveTimeout)
	defer cancel()
	t0 := time.Now()
	out, err := r.p.store.SaveBatch(sctx, b)
	r.res.Timing.Store += time.Since(t0)
	if err != nil {
		if soarkafka.ErrorCode(err) == soarkafka.EINVALID {
			// The store refused the parser's output: a parser error
			// for this batch, not the store's.
			return fmt.Errorf("asset %q: parser %q returned containers the store refuses: %w", r.req.Asset, r.parser.Name, err)
		}
		return err
	}
	r.p.fault(FaultAfterCommit)
	if b.Outbox && len(out.Containers) > 0 && r.p.outboxWritten != nil {
		// Delivery need not wait for the poll's end (a continuous poll
		// ends a period a minute) nor its next look at the outbox.
		r.p.outboxWritten(r.req.Asset)
	}
	for _, m := range msgs {
		r.readEnds[m.Partition] = max(r.readEnds[m.Partition], m.Offset+1)
	}
	for _, o := range b.Offsets {
		r.positions[o.Partition] = max(r.positions[o.Partition], o.Next)
	}
	for _, g := range b.Gaps {
		r.res.Gaps = append(r.res.Gaps, g)
		r.p.rec.Gap(r.req.Asset, g.Partition, g.Count)
	}
	r.pendingOffsets, r.pendingGaps = nil, nil
	r.res.ContainersCreated += out.ContainersCreated
	r.res.ContainersUpdated += out.ContainersUpdated
	r.res.ArtifactsCreated += out.ArtifactsCreated
	r.res.DuplicatesSkipped += out.DuplicatesSkipped
	if r.containers == nil {
		r.containers = map[int64]int{}
	}
	for _, c := range out.Containers {
		if k, ok := r.containers[c.ID]; ok {
			r.res.Containers[k].Artifacts += c.Artifacts
			continue
		}
		r.containers[c.ID] = len(r.res.Containers)
		r.res.Containers = append(r.res.Containers, c)
	}
	return nil
}

// finish commits the stored positions to the asset's consumer group and
// reports each partition's lag, after the poll's batches are stored.
func (r *run) finish(ctx context.Context, pollErr error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	topic := r.req.Config.Topic
	if !r.pollNow() && len(r.positions) > 0 {
		offs := kadm.Offsets{}
		for part, next := range r.positions {
			offs.Add(kadm.Offset{Topic: topic, Partition: part, At: next, LeaderEpoch: -1})
		}
		group := r.req.Config.GroupID(r.req.Asset)
		resp, err := r.adm.CommitOffsets(ctx, group, offs)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			r.res.Warnings = append(r.res.Warnings, fmt.Sprintf(
				"stored, but committing the positions to consumer group %s failed (Kafka tools show a stale lag until the next poll): %v", group, err))
		}
	}
	eo, err := r.adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = eo.Error()
	}
	if err != nil {
		if pollErr == nil {
			r.res.Warnings = append(r.res.Warnings, fmt.Sprintf("could not read the log-end offsets for the lag: %v", err))
		}
		return
	}
	parts := make([]int32, 0)
	eo.Each(func(o kadm.ListedOffset) { parts = append(parts, o.Partition) })
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	r.res.Lag = 0
	// A poll stopped before it knew where a partition stands (shutdown,
	// a failure before its first fetch) counts that partition from 0: its
	// lag is not the asset's.
	known := true
	for _, part := range parts {
		o, _ := eo.Lookup(topic, part)
		start, started := r.starts[part]
		pos, ok := r.positions[part]
		known = known && (started || ok)
		if !ok {
			pos = start // nothing stored yet: what is left counts from here
		}
		if !started {
			start = pos
		}
		lag := max(o.Offset-pos, 0)
		end, read := r.readEnds[part]
		if !read {
			end = start
		}
		r.res.Partitions = append(r.res.Partitions, PartitionResult{Partition: part, Start: start, End: end, LogEnd: o.Offset, Lag: lag})
		r.res.Lag += lag
		if !r.pollNow() {
			r.p.rec.Lag(r.req.Asset, part, lag)
		}
	}
	// Poll now reads from the beginning and leaves the position: its lag
	// is not the asset's.
	r.res.lagKnown = known && !r.pollNow()
}

// brokerErrors is a kgo hook that keeps the last failed fetch.
type brokerErrors struct {
	mu   sync.Mutex
	err  error
	when time.Time
}

// OnBrokerE2E implements kgo.HookBrokerE2E.
func (b *brokerErrors) OnBrokerE2E(meta kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	if key != int16(kmsg.Fetch) {
		return
	}
	if err := e2e.Err(); err != nil {
		b.mu.Lock()
		b.err, b.when = fmt.Errorf("broker %s: %w", net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port))), err), time.Now()
		b.mu.Unlock()
	}
}

// since returns the last failed fetch after t, or nil.
func (b *brokerErrors) since(t time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil && b.when.After(t) {
		return b.err
	}
	return nil
}
