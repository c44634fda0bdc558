package deliver

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/assets"
)

// Assets is what the delivery service reads of the assets; the assets
// service implements it.
type Assets interface {
	List(ctx context.Context) ([]*assets.View, error)
	Resolve(ctx context.Context, name string) (assets.Config, *assets.Asset, error)
}

// DefaultResync is how often the service reads the assets again even when
// told of no change: a change made through another replica is announced
// only there.
const DefaultResync = 10 * time.Second

// Service runs one worker per asset in push mode, and stops it when the
// asset goes back to pull, changes (a new worker starts with the new
// configuration) or is deleted.
type Service struct {
	store   Store
	assets  Assets
	logger  *slog.Logger
	opts    []Option
	resync  time.Duration
	changed chan struct{}

	mu      sync.Mutex
	workers map[string]*running
}

type running struct {
	w           *Worker
	id, version int64
	cancel      context.CancelFunc
	done        chan struct{}
}

// NewService returns the service; opts apply to every worker it starts.
func NewService(st Store, as Assets, logger *slog.Logger, opts ...Option) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{store: st, assets: as, logger: logger, opts: append([]Option{WithLogger(logger)}, opts...),
		resync: DefaultResync, changed: make(chan struct{}, 1), workers: map[string]*running{}}
}

// Changed tells the service that assets changed: it reads them again at
// once. It never blocks.
func (s *Service) Changed() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Wake tells the asset's worker that rows wait.
func (s *Service) Wake(asset string) {
	s.mu.Lock()
	r := s.workers[asset]
	s.mu.Unlock()
	if r != nil {
		r.w.Wake()
	}
}

// Run keeps the workers in step with the assets until ctx ends, then
// stops them all (their leases are released).
func (s *Service) Run(ctx context.Context) {
	defer s.stopAll()
	t := time.NewTicker(s.resync)
	defer t.Stop()
	for {
		s.sync(ctx)
		select {
		case <-ctx.Done():
			return
		case <-s.changed:
		case <-t.C:
		}
	}
}

// sync starts the workers of the push assets that have none (or one of an
// older version) and stops the others.
func (s *Service) sync(ctx context.Context) {
	views, err := s.assets.List(ctx)
	if err != nil {
		s.logger.Warn("delivery: list the assets", "error", err)
		return
	}
	want := map[string]bool{}
	for _, v := range views {
		cfg, a, err := s.assets.Resolve(ctx, v.Name)
		if err != nil {
			if soarkafka.ErrorCode(err) != soarkafka.ENOTFOUND {
				s.logger.Warn("delivery: read the asset", "asset", v.Name, "error", err)
			}
			continue
		}
		if !cfg.Push() {
			continue
		}
		want[v.Name] = true
		s.mu.Lock()
		cur := s.workers[v.Name]
		s.mu.Unlock()
		if cur != nil && cur.id == a.ID && cur.version == a.Version {
			continue
		}
		if cur != nil {
			s.stop(v.Name)
			// The settings changed: whatever failed under the old ones is
			// worth trying again now, not at its back-off.
			if err := s.store.ResetDeliveryBackoff(ctx, v.Name); err != nil {
				s.logger.Warn("delivery: reset the back-off", "asset", v.Name, "error", err)
			}
		}
		s.start(ctx, v.Name, cfg, a)
	}
	s.mu.Lock()
	var gone []string
	for name := range s.workers {
		if !want[name] {
			gone = append(gone, name)
		}
	}
	s.mu.Unlock()
	for _, name := range gone {
		s.stop(name)
	}
}

func (s *Service) start(ctx context.Context, name string, cfg assets.Config, a *assets.Asset) {
	w, err := New(name, cfg, s.store, s.opts...)
	if err != nil {
		s.logger.Warn("delivery: cannot start the worker", "asset", name, "error", err)
		return
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &running{w: w, id: a.ID, version: a.Version, cancel: cancel, done: make(chan struct{})}
	s.mu.Lock()
	s.workers[name] = r
	s.mu.Unlock()
	s.logger.Info("delivery started", "asset", name, "target", cfg.Delivery.Target)
	go func() {
		defer close(r.done)
		// A worker's panic stops that asset's delivery only; the service
		// starts it again at its next sync.
		defer soarkafka.Recover(wctx, s.logger, "delivery worker", func(*soarkafka.PanicError) {
			s.mu.Lock()
			if s.workers[name] == r {
				delete(s.workers, name)
			}
			s.mu.Unlock()
		}, "asset", name)
		_ = w.Run(wctx)
	}()
}

func (s *Service) stop(name string) {
	s.mu.Lock()
	r := s.workers[name]
	delete(s.workers, name)
	s.mu.Unlock()
	if r == nil {
		return
	}
	r.cancel()
	<-r.done
	s.logger.Info("delivery stopped", "asset", name)
}

func (s *Service) stopAll() {
	s.mu.Lock()
	names := make([]string, 0, len(s.workers))
	for n := range s.workers {
		names = append(names, n)
	}
	s.mu.Unlock()
	for _, n := range names {
		s.stop(n)
	}
}

// Report is where an asset's push delivery stands, for the API.
type Report struct {
	Asset     string `json:"asset"`
	Mode      string `json:"mode"`
	Target    string `json:"target"`
	Pending   int64  `json:"pending"`
	Sending   int64  `json:"sending"`
	Delivered int64  `json:"delivered"`
	Dead      int64  `json:"dead_lettered"`
	LastError string `json:"last_error,omitempty"`
	// OldestPendingSeconds is the age of the oldest container waiting,
	// 0 when none waits.
	OldestPendingSeconds float64 `json:"oldest_pending_seconds"`
	// Worker is "running" (this replica delivers), "paused" (the SOAR
	// refused the token; Message says what to fix), "standby" (another
	// replica holds the delivery lease), "starting", or "stopped" (pull
	// mode, or this server runs no delivery).
	Worker  string `json:"worker"`
	Holder  string `json:"holder,omitempty"`
	Message string `json:"message,omitempty"`
}

// Report returns where the asset's delivery stands; an unknown asset is
// ENOTFOUND.
func (s *Service) Report(ctx context.Context, asset string) (*Report, error) {
	cfg, _, err := s.assets.Resolve(ctx, asset)
	if err != nil {
		return nil, err
	}
	st, err := s.store.DeliveryStats(ctx, asset)
	if err != nil {
		return nil, err
	}
	rep := &Report{Asset: asset, Mode: cfg.Delivery.Mode, Target: cfg.Delivery.Target, Pending: st.Pending, Sending: st.Sending,
		Delivered: st.Delivered, Dead: st.Dead, LastError: st.LastError, Worker: "stopped"}
	if !st.OldestPending.IsZero() {
		rep.OldestPendingSeconds = time.Since(st.OldestPending).Seconds()
	}
	s.mu.Lock()
	r := s.workers[asset]
	s.mu.Unlock()
	if r != nil {
		ws := r.w.Status()
		rep.Holder, rep.Message = ws.Holder, ws.Message
		switch {
		case ws.Paused:
			rep.Worker = "paused"
		case ws.Leased:
			rep.Worker = "running"
		case ws.Holder != "":
			rep.Worker = "standby"
		default:
			rep.Worker = "starting"
		}
	} else if cfg.Push() {
		rep.Worker = "starting"
	}
	return rep, nil
}

// RetryDead puts the asset's dead letters back in the outbox and wakes
// its worker; it returns how many. An unknown asset is ENOTFOUND.
func (s *Service) RetryDead(ctx context.Context, asset string) (int64, error) {
	if _, _, err := s.assets.Resolve(ctx, asset); err != nil {
		return 0, err
	}
	n, err := s.store.RetryDead(ctx, asset)
	if err != nil {
		return 0, err
	}
	s.Wake(asset)
	return n, nil
}
