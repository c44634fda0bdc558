package poll

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/kafka"
)

const (
	// DefaultStatusClientIdle is how long a status client may go unused
	// before it is closed: long enough to outlive the console's refresh of
	// the assets list, short enough not to hold connections to the
	// brokers of assets nobody looks at.
	DefaultStatusClientIdle = 2 * time.Minute
	// DefaultStatusClients bounds the status clients kept open; past it
	// the least recently used is closed.
	DefaultStatusClients = 256
)

// statusClients keeps one Kafka client per asset for Status, so that the
// console's assets list, which asks every asset's log-end offsets on each
// load, costs a round trip per asset and not a connection set-up (TCP,
// TLS, SASL, ApiVersions, metadata). A client is keyed by the asset's name
// and its connection settings: a changed setting gets a new client and the
// old one is closed. A client whose request failed is dropped, so that the
// next Status dials anew and shows a repaired broker or credential at once.
// A client in use when it is replaced, evicted or dropped is closed when
// its last user releases it.
type statusClients struct {
	access kafka.Access
	logger *slog.Logger
	opts   []kgo.Opt
	idle   time.Duration
	max    int

	mu      sync.Mutex
	entries map[string]*statusClient
	closed  bool
	// stop and done belong to the idle sweeper, started with the first
	// client so that a Poller that never asks a status runs no goroutine.
	stop chan struct{}
	done chan struct{}
}

type statusClient struct {
	key         string
	fingerprint string
	client      *kgo.Client
	refs        int
	lastUsed    time.Time
	retired     bool // replaced, evicted, dropped or closed: close at refs 0
	shared      bool // false: built after Close, closed on release
}

// connectionFingerprint identifies the settings a client is built from:
// hosts, timeout, TLS, SASL, Kerberos, AWS IAM. The topic and the ingest,
// producer and delivery blocks do not change how a client connects, so
// editing them keeps the client.
func connectionFingerprint(cfg assets.Config) string {
	cfg.Topic, cfg.MessageParser, cfg.ReadFromBeginning = "", "", false
	cfg.Producer, cfg.Ingest, cfg.Delivery = assets.Producer{}, assets.Ingest{}, assets.Delivery{}
	return kafka.Fingerprint(cfg)
}

// acquire returns the client for asset built from cfg; the caller passes it
// to release once its request is done.
func (s *statusClients) acquire(asset string, cfg assets.Config) (*statusClient, error) {
	fp := connectionFingerprint(cfg)
	s.mu.Lock()
	if e, ok := s.entries[asset]; ok && e.fingerprint == fp {
		e.refs++
		e.lastUsed = time.Now()
		s.mu.Unlock()
		return e, nil
	}
	s.mu.Unlock()

	// Built outside the lock: NewClient reads TLS files and keytabs.
	cl, err := s.access.NewClient(cfg, s.logger, s.opts...)
	if err != nil {
		return nil, err
	}
	e := &statusClient{key: asset, fingerprint: fp, client: cl, refs: 1, lastUsed: time.Now(), shared: true}

	var toClose []*kgo.Client
	defer func() { closeClients(toClose) }()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		// Shutting down: the request is still answered, by a client of
		// its own.
		e.shared = false
		return e, nil
	}
	if old, ok := s.entries[asset]; ok {
		if old.fingerprint == fp { // another request built it meanwhile
			toClose = append(toClose, cl)
			old.refs++
			old.lastUsed = time.Now()
			return old, nil
		}
		toClose = s.retireLocked(old, toClose)
	}
	s.entries[asset] = e
	if len(s.entries) > s.max {
		toClose = s.retireLocked(s.leastRecentlyUsedLocked(), toClose)
	}
	if s.done == nil {
		s.stop, s.done = make(chan struct{}), make(chan struct{})
		go s.sweep(s.stop, s.done)
	}
	return e, nil
}

// release ends a request on e; failed drops e so that the next request
// dials anew.
func (s *statusClients) release(e *statusClient, failed bool) {
	if !e.shared {
		e.client.Close()
		return
	}
	var toClose []*kgo.Client
	s.mu.Lock()
	e.refs--
	e.lastUsed = time.Now()
	if failed && !e.retired {
		s.logger.Debug("status client dropped after a failed request", "asset", e.key)
		toClose = s.retireLocked(e, toClose)
	} else if e.retired && e.refs == 0 {
		toClose = append(toClose, e.client)
	}
	s.mu.Unlock()
	closeClients(toClose)
}

// retireLocked removes e from the cache; its client is appended to toClose
// when no request uses it, else closed by the last release.
func (s *statusClients) retireLocked(e *statusClient, toClose []*kgo.Client) []*kgo.Client {
	if s.entries[e.key] == e {
		delete(s.entries, e.key)
	}
	e.retired = true
	if e.refs == 0 {
		toClose = append(toClose, e.client)
	}
	return toClose
}

// leastRecentlyUsedLocked is the entry used longest ago; a scan is cheap at
// the few hundred entries the cache holds.
func (s *statusClients) leastRecentlyUsedLocked() *statusClient {
	var lru *statusClient
	for _, e := range s.entries {
		if lru == nil || e.lastUsed.Before(lru.lastUsed) {
			lru = e
		}
	}
	return lru
}

func (s *statusClients) sweep(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(max(s.idle/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		s.sweepOnce()
	}
}

// sweepOnce closes the clients idle for the idle time; a panic in it is
// logged and the next tick sweeps again.
func (s *statusClients) sweepOnce() {
	defer soarkafka.Recover(context.Background(), s.logger, "status client sweep", nil)
	var toClose []*kgo.Client
	s.mu.Lock()
	now := time.Now()
	for _, e := range s.entries {
		if e.refs == 0 && now.Sub(e.lastUsed) >= s.idle {
			toClose = s.retireLocked(e, toClose)
		}
	}
	s.mu.Unlock()
	closeClients(toClose)
}

// close closes every client not in use (the others when released) and
// stops the sweeper. Safe to call twice.
func (s *statusClients) close() {
	var toClose []*kgo.Client
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	for _, e := range s.entries {
		toClose = s.retireLocked(e, toClose)
	}
	stop, done := s.stop, s.done
	s.mu.Unlock()
	if done != nil {
		close(stop)
		<-done
	}
	closeClients(toClose)
}

func closeClients(cls []*kgo.Client) {
	for _, cl := range cls {
		cl.Close()
	}
}

// brokerAnswered reports whether err is an error code a broker answered
// with on a working connection (an unknown topic, a topic the principal may
// not describe), which a new connection would not change; a refused login
// is not one of them.
func brokerAnswered(err error) bool {
	var ke *kerr.Error
	return errors.As(err, &ke) && !kafka.IsLoginFailure(err)
}
