package poll

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/ingest"
)

// Assets lists the stored assets and opens their configurations;
// assets.Service does.
type Assets interface {
	List(ctx context.Context) ([]*assets.View, error)
	Resolve(ctx context.Context, name string) (assets.Config, *assets.Asset, error)
}

// DefaultRescan is how often the scheduler reads the assets again, so that
// creating, editing, enabling or disabling one takes effect without a
// restart (Wake makes it immediate).
const DefaultRescan = 5 * time.Second

// Scheduler polls every asset whose ingest.interval is set and
// ingest.enabled is true, at its interval with up to a tenth of it as
// jitter, so that replicas and assets do not all poll at the same instant;
// and every asset whose ingest.mode is continuous without pause.
// Replicas sharing a database each run a scheduler; the poll lease makes
// one of them poll an asset while the others skip that turn, or, for a
// continuous asset, stand by to take over when it stops.
type Scheduler struct {
	poller *Poller
	assets Assets
	logger *slog.Logger
	rescan time.Duration
	wake   chan struct{}

	mu    sync.Mutex
	tasks map[string]*task
	// broken holds the version of each asset whose stored configuration
	// cannot be used, so it is reported once per version, not at every
	// rescan. Only sync touches it.
	broken map[string]int64
}

// task is one scheduled asset: its loop, and the configuration version it
// runs with.
type task struct {
	version int64
	cfg     assets.Config
	cancel  context.CancelFunc
	done    chan struct{}
}

// NewScheduler returns a scheduler over the stored assets; Run starts it.
// rescan 0 is DefaultRescan.
func NewScheduler(p *Poller, a Assets, logger *slog.Logger, rescan time.Duration) *Scheduler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if rescan <= 0 {
		rescan = DefaultRescan
	}
	return &Scheduler{poller: p, assets: a, logger: logger, rescan: rescan, wake: make(chan struct{}, 1), tasks: map[string]*task{}, broken: map[string]int64{}}
}

// Wake makes the scheduler read the assets now (an asset was created,
// changed or deleted).
func (s *Scheduler) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Scheduled returns the names of the assets the scheduler polls, at an
// interval or continuously (a continuous asset is listed while this
// replica polls it or stands by for it).
func (s *Scheduler) Scheduled() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.tasks))
	for n := range s.tasks {
		names = append(names, n)
	}
	return names
}

// Run schedules polls until ctx ends, then waits for the running polls:
// each stores the batch it holds (its transaction ends) and stops reading.
func (s *Scheduler) Run(ctx context.Context) {
	t := time.NewTicker(s.rescan)
	defer t.Stop()
	for {
		s.sync(ctx)
		select {
		case <-ctx.Done():
			s.stopAll()
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

// sync starts, restarts and stops asset loops to match the stored assets.
// A panic in it is logged and the next rescan tries again: the scheduler
// outlives any one asset.
func (s *Scheduler) sync(ctx context.Context) {
	defer soarkafka.Recover(ctx, s.logger, "scheduler rescan", nil)
	views, err := s.assets.List(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.logger.WarnContext(ctx, "scheduler: list assets", "error", err)
		}
		return
	}
	want := map[string]bool{}
	listed := map[string]bool{}
	for _, v := range views {
		listed[v.Name] = true
		cfg, a, err := s.resolve(ctx, v)
		if err != nil {
			var pe *soarkafka.PanicError
			switch {
			case ctx.Err() != nil || soarkafka.ErrorCode(err) == soarkafka.ENOTFOUND: // stopping, or deleted meanwhile
			case soarkafka.ErrorCode(err) == soarkafka.EINVALID || errors.As(err, &pe):
				s.reportBroken(ctx, v, err)
			default: // the store or the key: maybe passing, said at each rescan
				s.logger.WarnContext(ctx, "scheduler: open asset", "asset", v.Name, "error", err)
			}
			continue
		}
		delete(s.broken, v.Name)
		if !cfg.Scheduled() && !cfg.Continuous() {
			continue
		}
		want[v.Name] = true
		s.mu.Lock()
		cur := s.tasks[v.Name]
		s.mu.Unlock()
		if cur != nil && cur.version == a.Version {
			continue
		}
		if cur != nil {
			s.stop(v.Name, cur) // edited: restart with the new configuration
		}
		s.start(ctx, v.Name, a.Version, cfg)
	}
	for name := range s.broken {
		if !listed[name] {
			delete(s.broken, name) // deleted
		}
	}
	s.mu.Lock()
	var gone []string
	for name := range s.tasks {
		if !want[name] {
			gone = append(gone, name)
		}
	}
	s.mu.Unlock()
	for _, name := range gone {
		s.mu.Lock()
		t := s.tasks[name]
		s.mu.Unlock()
		s.stop(name, t)
	}
}

// resolve opens an asset's configuration; a panic doing so is the asset's
// error, not the scheduler's end.
func (s *Scheduler) resolve(ctx context.Context, v *assets.View) (cfg assets.Config, a *assets.Asset, err error) {
	defer soarkafka.Recover(ctx, s.logger, "open asset", func(e *soarkafka.PanicError) { err = e }, "asset", v.Name)
	return s.assets.Resolve(ctx, v.Name)
}

// reportBroken says, once per version of the asset, that its stored
// configuration cannot be used: in the log and in its ingest status (a
// failed poll whose error names the fields), so the asset is found and
// fixed through the API while every other asset goes on.
func (s *Scheduler) reportBroken(ctx context.Context, v *assets.View, err error) {
	if ver, ok := s.broken[v.Name]; ok && ver == v.Version {
		return
	}
	s.broken[v.Name] = v.Version
	s.logger.ErrorContext(ctx, "scheduler: asset cannot be used; fix it with PUT /v1/assets/{name} or delete it, the other assets go on",
		"asset", v.Name, "version", v.Version, "error", err)
	// A scheduled asset's ingest status also shows the turn it misses
	// (its config_error shows either way).
	ing, _ := v.Config["ingest"].(map[string]any)
	kind := ingest.PollScheduled
	if mode, _ := ing["mode"].(string); strings.EqualFold(mode, assets.IngestContinuous) {
		kind = ingest.PollContinuous
	} else if interval, _ := ing["interval"].(string); interval == "" {
		return
	}
	if ing["enabled"] == false {
		return
	}
	topic, _ := v.Config["topic"].(string)
	s.poller.RecordFailure(ctx, v.Name, topic, kind,
		fmt.Errorf("asset %q cannot be used: %w; fix it with PUT /v1/assets/%s or delete it", v.Name, err, v.Name))
}

func (s *Scheduler) start(ctx context.Context, name string, version int64, cfg assets.Config) {
	tctx, cancel := context.WithCancel(ctx)
	t := &task{version: version, cfg: cfg, cancel: cancel, done: make(chan struct{})}
	s.mu.Lock()
	s.tasks[name] = t
	s.mu.Unlock()
	if cfg.Continuous() {
		s.logger.InfoContext(ctx, "scheduler: polling asset continuously", "asset", name, "max_batch_wait", cfg.MaxBatchWait())
	} else {
		s.logger.InfoContext(ctx, "scheduler: polling asset", "asset", name, "interval", cfg.PollInterval())
	}
	go func() {
		defer close(t.done)
		if cfg.Continuous() {
			s.continuous(tctx, name, cfg)
			return
		}
		s.loop(tctx, name, cfg)
	}()
}

// stop ends an asset's loop and waits for its running poll.
func (s *Scheduler) stop(name string, t *task) {
	t.cancel()
	<-t.done
	s.mu.Lock()
	if s.tasks[name] == t {
		delete(s.tasks, name)
	}
	s.mu.Unlock()
}

func (s *Scheduler) stopAll() {
	s.mu.Lock()
	tasks := make(map[string]*task, len(s.tasks))
	for n, t := range s.tasks {
		tasks[n] = t
		t.cancel()
	}
	s.mu.Unlock()
	for n, t := range tasks {
		s.stop(n, t)
	}
}

// loop polls one asset at its interval: the first poll after a jitter, the
// next ones an interval after the previous one started.
func (s *Scheduler) loop(ctx context.Context, name string, cfg assets.Config) {
	interval := cfg.PollInterval()
	jitter := func() time.Duration { return time.Duration(rand.Int64N(int64(interval/10) + 1)) }
	timer := time.NewTimer(jitter())
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		started := time.Now()
		err := s.pollOnce(ctx, name, cfg)
		if err != nil && ctx.Err() == nil && !isBusy(err) {
			s.logger.WarnContext(ctx, "scheduled poll failed", "asset", name, "error", err)
		}
		timer.Reset(max(time.Until(started.Add(interval)), 0) + jitter())
	}
}

// pollOnce runs one scheduled poll. Poll records its own failures, panics
// included; a panic outside it is recorded here, and the loop goes on to
// the next turn either way.
func (s *Scheduler) pollOnce(ctx context.Context, name string, cfg assets.Config) (err error) {
	defer soarkafka.Recover(ctx, s.logger, "scheduled poll", func(e *soarkafka.PanicError) {
		err = e
		s.poller.RecordFailure(ctx, name, cfg.Topic, ingest.PollScheduled, e)
	}, "asset", name)
	_, err = s.poller.Poll(ctx, Request{Asset: name, Config: cfg, Kind: ingest.PollScheduled})
	return err
}

// maxContinuousBackoff bounds the wait before a continuous poll that
// failed starts again.
const maxContinuousBackoff = 30 * time.Second

// continuous runs the continuous poll of one asset until ctx ends: while
// another replica holds the lease it asks again every standby period; after
// a failure (the broker, a poison message without a dead-letter topic, the
// lease lost) it starts again after a back-off that doubles up to
// maxContinuousBackoff, so a lasting failure is recorded now and then, not
// in a tight loop.
func (s *Scheduler) continuous(ctx context.Context, name string, cfg assets.Config) {
	standby := s.poller.standby
	backoff := standby
	for {
		started := time.Now()
		err := s.continuousOnce(ctx, name, cfg)
		if ctx.Err() != nil {
			return
		}
		wait := standby + time.Duration(rand.Int64N(int64(standby/10)+1))
		switch {
		case isBusy(err):
			backoff = standby
		case err != nil:
			if time.Since(started) > maxContinuousBackoff {
				backoff = standby // it ran a while: a new failure, not the same one again
			}
			s.logger.WarnContext(ctx, "continuous poll failed; it starts again after a pause", "asset", name, "pause", backoff, "error", err)
			wait = backoff
			backoff = min(2*backoff, maxContinuousBackoff)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// continuousOnce runs the continuous poll until it ends; a panic outside
// its periods (which record their own) is recorded here.
func (s *Scheduler) continuousOnce(ctx context.Context, name string, cfg assets.Config) (err error) {
	defer soarkafka.Recover(ctx, s.logger, "continuous poll", func(e *soarkafka.PanicError) {
		err = e
		s.poller.RecordFailure(ctx, name, cfg.Topic, ingest.PollContinuous, e)
	}, "asset", name)
	req := Request{Asset: name, Config: cfg, Kind: ingest.PollContinuous}
	if cfg.Ingest.Spread {
		return s.poller.Spread(ctx, req)
	}
	return s.poller.Continuous(ctx, req)
}
