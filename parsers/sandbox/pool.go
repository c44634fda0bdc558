package sandbox

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/soarkafka/soarkafka/soar"
)

// Pool defaults.
const (
	// DefaultMaxWorkers is the global cap on worker processes: enough for
	// the parse concurrency of a few polls at once on a 2–8 core machine,
	// each worker using one core at most (GOMAXPROCS=1).
	DefaultMaxWorkers = 8
	// DefaultIdleTimeout is how long an idle worker is kept.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultMaxRSS is the resident memory past which a worker is replaced
	// after a call. A worker that loaded a parser and ran ordinary batches
	// holds well under it; one that ran a large payload keeps that memory
	// from the system until it exits.
	DefaultMaxRSS = 128 << 20
	// DefaultBusyWait is how long a call waits for a worker at the cap.
	DefaultBusyWait = 5 * time.Second
)

// PoolConfig configures a Pool.
type PoolConfig struct {
	// Worker says how each worker starts.
	Worker Config
	// MaxWorkers caps the worker processes of the pool, running and idle,
	// for all parsers and assets together, kept or not. Default
	// DefaultMaxWorkers.
	MaxWorkers int
	// MaxBatches is the number of calls after which a worker is replaced.
	// Default 100.
	MaxBatches int
	// MaxIdle is the number of idle workers kept per (scope, parser
	// version). Default 2.
	MaxIdle int
	// IdleTimeout is how long a worker is kept idle before it is stopped.
	// Default DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxMemory is the worker's resident memory (RSS, read from /proc after
	// each call) past which it is replaced. Default DefaultMaxRSS, at most
	// 3/4 of Worker.MemoryLimit.
	MaxMemory int64
	// BusyWait is how long a call waits for a worker when MaxWorkers are
	// running; it then fails with ErrBusy. Default DefaultBusyWait; a
	// context that ends sooner wins.
	BusyWait time.Duration
}

func (c PoolConfig) withDefaults() PoolConfig {
	c.Worker = c.Worker.withDefaults()
	if c.MaxWorkers <= 0 {
		c.MaxWorkers = DefaultMaxWorkers
	}
	if c.MaxBatches <= 0 {
		c.MaxBatches = 100
	}
	if c.MaxIdle <= 0 {
		c.MaxIdle = 2
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MaxMemory <= 0 {
		c.MaxMemory = min(DefaultMaxRSS, c.Worker.MemoryLimit/4*3)
	}
	if c.BusyWait <= 0 {
		c.BusyWait = DefaultBusyWait
	}
	return c
}

// ErrBusy is wrapped by the error of a call that found MaxWorkers workers
// running for BusyWait.
var ErrBusy = errors.New("every parser worker is busy")

// Pool runs parsers in worker processes, at most MaxWorkers of them at any
// time, running and idle together. A worker kept between calls serves one
// scope (an asset) and one parser version (name and source) and nothing
// else, so that what a script keeps in its package variables never reaches
// another asset's results. Call reuses such a worker; CallOnce starts one
// that is never kept (the playground, the sample run at save). A kept
// worker is replaced after MaxBatches calls, when its RSS grows past
// MaxMemory, and after any timeout or crash; it is stopped after
// IdleTimeout idle, and the least recently used idle worker makes room
// when a call needs a new worker at the cap. Over the cap a call waits
// up to BusyWait, then fails with ErrBusy: it never starts more.
// A Pool is safe for concurrent use; concurrent calls for one key use
// several workers.
type Pool struct {
	cfg PoolConfig

	mu     sync.Mutex
	live   int          // worker processes started and not yet closed
	idle   []idleWorker // least recently used first
	freed  chan struct{}
	closed bool

	stop chan struct{}
	done chan struct{}
}

type idleWorker struct {
	key   [sha256.Size]byte
	w     *Worker
	since time.Time
}

// NewPool returns a pool; workers start on first use. Close stops its
// idle-timeout goroutine and its workers.
func NewPool(cfg PoolConfig) *Pool {
	p := &Pool{cfg: cfg.withDefaults(), freed: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go p.evictIdle()
	return p
}

var errPoolClosed = errors.New("parser pool: closed")

// versionKey identifies the workers that may serve a call: the scope (the
// asset) and the parser version.
func versionKey(scope, name, source string) [sha256.Size]byte {
	h := sha256.New()
	for _, s := range []string{scope, name, source} {
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{0})
		h.Write([]byte(s))
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// Call runs a parser's ParseMessages on a batch in a worker that serves
// scope (an asset's name) and that parser version only, starting and
// loading one (under the same deadline) when none is idle. Errors are those
// of Start, Worker.Load and Worker.Call, and ErrBusy.
func (p *Pool) Call(ctx context.Context, scope, name, source, topic string, messages []soar.Message) (CallResult, error) {
	key := versionKey(scope, name, source)
	w, err := p.get(ctx, key, name, source)
	if err != nil {
		return CallResult{}, err
	}
	res, err := w.Call(ctx, topic, messages)
	p.put(key, w, res.Memory)
	return res, err
}

// CallOnce runs a parser on a batch in a worker of its own that is closed
// after the call: nothing it keeps meets another call. It counts against
// MaxWorkers like any other.
func (p *Pool) CallOnce(ctx context.Context, name, source, topic string, messages []soar.Message) (CallResult, error) {
	w, err := p.start(ctx, name, source)
	if err != nil {
		return CallResult{}, err
	}
	defer p.release(w)
	return w.Call(ctx, topic, messages)
}

func (p *Pool) get(ctx context.Context, key [sha256.Size]byte, name, source string) (*Worker, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errPoolClosed
	}
	for i := len(p.idle) - 1; i >= 0; i-- {
		if p.idle[i].key == key {
			w := p.idle[i].w
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			p.mu.Unlock()
			return w, nil
		}
	}
	p.mu.Unlock()
	return p.start(ctx, name, source)
}

// start takes a slot and starts and loads a worker in it.
func (p *Pool) start(ctx context.Context, name, source string) (*Worker, error) {
	if err := p.acquire(ctx); err != nil {
		return nil, err
	}
	w, err := Start(ctx, p.cfg.Worker)
	if err != nil {
		p.freeSlot()
		return nil, err
	}
	if err := w.Load(ctx, name, source); err != nil {
		p.release(w)
		return nil, err
	}
	return w, nil
}

// acquire takes a slot for a new worker: a free one, or that of the least
// recently used idle worker, which it stops first. At the cap with no idle
// worker it waits for one, up to BusyWait.
func (p *Pool) acquire(ctx context.Context) error {
	var timeout <-chan time.Time
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return errPoolClosed
		}
		if p.live < p.cfg.MaxWorkers {
			p.live++
			p.mu.Unlock()
			return nil
		}
		if len(p.idle) > 0 {
			// The slot passes to the caller once the old worker is gone,
			// so the count of processes never exceeds the cap.
			lru := p.idle[0].w
			p.idle = p.idle[1:]
			p.mu.Unlock()
			lru.Close()
			return nil
		}
		freed := p.freed
		p.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(p.cfg.BusyWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-freed:
		case <-ctx.Done():
			return fmt.Errorf("parser pool: waiting for a worker: %w", ctx.Err())
		case <-timeout:
			return fmt.Errorf("parser pool: %w: %d workers running (parser.max_workers) and none free after %s; try again shortly", ErrBusy, p.cfg.MaxWorkers, p.cfg.BusyWait)
		}
	}
}

// release closes a worker and frees its slot.
func (p *Pool) release(w *Worker) {
	w.Close()
	p.freeSlot()
}

func (p *Pool) freeSlot() {
	p.mu.Lock()
	p.live--
	p.wake()
	p.mu.Unlock()
}

// wake tells the calls waiting for a slot to look again. Held: p.mu.
func (p *Pool) wake() {
	close(p.freed)
	p.freed = make(chan struct{})
}

// put keeps a worker idle, or closes it. reported is the memory the worker
// said it holds, used when its RSS cannot be read.
func (p *Pool) put(key [sha256.Size]byte, w *Worker, reported int64) {
	mem := rss(w)
	if mem == 0 {
		mem = reported
	}
	if !w.Alive() || w.Calls() >= p.cfg.MaxBatches || mem > p.cfg.MaxMemory {
		p.release(w)
		return
	}
	p.mu.Lock()
	n := 0
	for _, iw := range p.idle {
		if iw.key == key {
			n++
		}
	}
	if p.closed || n >= p.cfg.MaxIdle {
		p.mu.Unlock()
		p.release(w)
		return
	}
	p.idle = append(p.idle, idleWorker{key: key, w: w, since: time.Now()})
	p.wake() // a waiting call may take this worker's slot
	p.mu.Unlock()
}

// evictIdle stops workers idle for longer than IdleTimeout, checking every
// quarter of it, until Close.
func (p *Pool) evictIdle() {
	defer close(p.done)
	t := time.NewTicker(max(p.cfg.IdleTimeout/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			p.mu.Lock()
			n := 0
			for n < len(p.idle) && now.Sub(p.idle[n].since) >= p.cfg.IdleTimeout {
				n++
			}
			old := append([]idleWorker(nil), p.idle[:n]...)
			p.idle = p.idle[n:]
			p.mu.Unlock()
			for _, iw := range old {
				p.release(iw.w)
			}
		}
	}
}

// Idle is the number of idle workers, all versions together.
func (p *Pool) Idle() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// Workers is the number of worker processes, running and idle.
func (p *Pool) Workers() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.live
}

// Close stops the idle-timeout goroutine and kills the idle workers;
// workers in use are killed when their call returns. Safe to call more
// than once.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	idle := p.idle
	p.idle, p.closed = nil, true
	p.wake()
	p.mu.Unlock()
	close(p.stop)
	<-p.done
	for _, iw := range idle {
		p.release(iw.w)
	}
	return nil
}

// rss is a worker's resident memory as the kernel counts it, read by the
// parent rather than reported by the worker; 0 when it cannot be read (the
// process is gone, or /proc is not mounted).
func rss(w *Worker) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(w.pid) + "/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}
