package sandbox

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"

	"github.com/soarkafka/soarkafka/soar"
)

// PoolConfig configures a Pool.
type PoolConfig struct {
	// Worker says how each worker starts.
	Worker Config
	// MaxBatches is the number of calls after which a worker is replaced.
	// Default 100.
	MaxBatches int
	// MaxIdle is the number of idle workers kept per parser version.
	// Default 2.
	MaxIdle int
	// MaxMemory is the worker memory (as reported after a call) past which
	// it is replaced. Default 3/4 of Worker.MemoryLimit.
	MaxMemory int64
}

// Pool keeps loaded workers per parser version (name and source), reuses
// them across batches, one call at a time each, and replaces a worker after
// MaxBatches calls, when its memory grows past MaxMemory, and after any
// timeout or crash. A Pool is safe for concurrent use; concurrent calls for
// one parser use several workers.
type Pool struct {
	cfg    PoolConfig
	mu     sync.Mutex
	idle   map[[sha256.Size]byte][]*Worker
	closed bool
}

// NewPool returns a pool; workers start on first use.
func NewPool(cfg PoolConfig) *Pool {
	cfg.Worker = cfg.Worker.withDefaults()
	if cfg.MaxBatches <= 0 {
		cfg.MaxBatches = 100
	}
	if cfg.MaxIdle <= 0 {
		cfg.MaxIdle = 2
	}
	if cfg.MaxMemory <= 0 {
		cfg.MaxMemory = cfg.Worker.MemoryLimit / 4 * 3
	}
	return &Pool{cfg: cfg, idle: map[[sha256.Size]byte][]*Worker{}}
}

var errPoolClosed = errors.New("parser pool: closed")

func versionKey(name, source string) [sha256.Size]byte {
	return sha256.Sum256([]byte(name + "\x00" + source))
}

// Call runs a parser's ParseMessages on a batch in a worker loaded with
// that parser, starting and loading one (under the same deadline) when none
// is idle. Errors are those of Start, Worker.Load and Worker.Call.
func (p *Pool) Call(ctx context.Context, name, source, topic string, messages []soar.Message) (CallResult, error) {
	key := versionKey(name, source)
	w, err := p.get(ctx, key, name, source)
	if err != nil {
		return CallResult{}, err
	}
	res, err := w.Call(ctx, topic, messages)
	p.put(key, w, res.Memory)
	return res, err
}

func (p *Pool) get(ctx context.Context, key [sha256.Size]byte, name, source string) (*Worker, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errPoolClosed
	}
	if ws := p.idle[key]; len(ws) > 0 {
		w := ws[len(ws)-1]
		p.idle[key] = ws[:len(ws)-1]
		p.mu.Unlock()
		return w, nil
	}
	p.mu.Unlock()
	w, err := Start(ctx, p.cfg.Worker)
	if err != nil {
		return nil, err
	}
	if err := w.Load(ctx, name, source); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

func (p *Pool) put(key [sha256.Size]byte, w *Worker, mem int64) {
	if !w.Alive() || w.Calls() >= p.cfg.MaxBatches || mem > p.cfg.MaxMemory {
		w.Close()
		return
	}
	p.mu.Lock()
	if p.closed || len(p.idle[key]) >= p.cfg.MaxIdle {
		p.mu.Unlock()
		w.Close()
		return
	}
	p.idle[key] = append(p.idle[key], w)
	p.mu.Unlock()
}

// Idle is the number of idle workers, all versions together.
func (p *Pool) Idle() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, ws := range p.idle {
		n += len(ws)
	}
	return n
}

// Close kills the idle workers; workers in use are killed when their call
// returns. Safe to call more than once.
func (p *Pool) Close() error {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = map[[sha256.Size]byte][]*Worker{}, true
	p.mu.Unlock()
	for _, ws := range idle {
		for _, w := range ws {
			w.Close()
		}
	}
	return nil
}
