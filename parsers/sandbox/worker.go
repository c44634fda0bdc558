package sandbox

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/soarkafka/soarkafka/soar"
)

// DefaultTimeout is the deadline of one worker request when none is set.
const DefaultTimeout = 10 * time.Second

// Config says how to start a parser worker.
type Config struct {
	// Exe is the binary to run, normally os.Executable().
	Exe string
	// Args are its arguments: the hidden subcommand that calls WorkerMain,
	// e.g. []string{"parser-worker"}.
	Args []string
	// MemoryLimit is the worker's RLIMIT_DATA in bytes (not RLIMIT_AS,
	// which a Go process exceeds at start). Default DefaultMemoryLimit;
	// at least 192 MiB.
	MemoryLimit int64
	// Timeout is the deadline of each request, the start and the load
	// included. Default DefaultTimeout. A context deadline that comes
	// sooner wins.
	Timeout time.Duration
	// Env is added to the child's environment, which is otherwise only
	// GOMAXPROCS=1 and the memory limit: nothing of the server's
	// environment (secrets) is inherited.
	Env []string
	// MaxLog bounds the script's fmt output returned with each call, in
	// bytes; what is over it is cut, and a marker says how much. Default
	// MaxLogSize; at most 1 MiB.
	MaxLog int
}

func (c Config) withDefaults() Config {
	if c.MemoryLimit == 0 {
		c.MemoryLimit = DefaultMemoryLimit
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxLog <= 0 {
		c.MaxLog = MaxLogSize
	}
	c.MaxLog = min(c.MaxLog, maxLogLimit)
	return c
}

// ErrTimeout is wrapped by the error of a request that passed its deadline
// (Config.Timeout); the worker was killed.
var ErrTimeout = errors.New("deadline passed")

// ErrWorkerGone is returned by a request to a worker that was killed, died
// or was closed.
var ErrWorkerGone = errors.New("parser worker is gone")

// ScriptError is a fault of the script that the worker reported: a
// compile error, a panic, an error returned by ParseMessages, a result that
// does not encode. Message carries the script position when there is one
// ("p.go:12:3: panic: ..."). After a load error the worker is gone; after a
// call error it can be used again.
type ScriptError struct {
	Parser  string
	Kind    string // "compile", "panic", "error" (returned by ParseMessages) or "result"
	Message string
	Trace   string // what the interpreter wrote to its stderr: panic positions
	Log     string // the script's fmt output before the fault
}

func (e *ScriptError) Error() string {
	switch e.Kind {
	case faultReturned:
		return fmt.Sprintf("parser %q: ParseMessages returned an error: %s", e.Parser, e.Message)
	case faultCompile:
		return fmt.Sprintf("parser %q: load: %s", e.Parser, e.Message)
	}
	return fmt.Sprintf("parser %q: %s", e.Parser, e.Message)
}

// CrashError is a worker that was killed at its deadline, died (out of
// memory, a fatal runtime error, a panic in a script goroutine) or broke
// the protocol. The worker process group is gone.
type CrashError struct {
	Parser string
	Op     string // "start", "load" or "call"
	Err    error  // ErrTimeout, the context's error, or how the process ended
	Stderr string // the first lines of the worker's stderr
}

func (e *CrashError) Error() string {
	s := fmt.Sprintf("parser %q: worker killed during %s: %v", e.Parser, e.Op, e.Err)
	if e.Stderr != "" {
		s += ": " + e.Stderr
	}
	return s
}

func (e *CrashError) Unwrap() error { return e.Err }

// CallResult is what a call returns.
type CallResult struct {
	// Results is the []soar.Result as JSON, encoded by the worker: a JSON
	// array of {"container": {...}, "artifacts": [...]}.
	Results json.RawMessage
	// Log is the script's fmt output, at most Config.MaxLog bytes and a
	// marker saying how much was cut.
	Log string
	// Duration is the round trip.
	Duration time.Duration
	// Memory is what the worker's runtime held from the system after the
	// call, for recycling.
	Memory int64
}

// Worker is one child process serving one parser, one request at a time
// (requests from several goroutines wait their turn). Any deadline, crash
// or load error kills it for good: start another.
type Worker struct {
	cfg       Config
	cmd       *exec.Cmd
	pid       int
	dir       string
	stdin     *os.File
	stdout    *os.File
	br        *bufio.Reader
	stderr    *boundedBuffer
	stderrEOF chan struct{}
	exited    chan struct{}
	waitErr   error
	startTime time.Duration

	mu     sync.Mutex // one request at a time; guards the fields below
	reqBuf []byte     // the call request frame buffer, reused
	name   string
	loaded bool
	calls  int
	gone   error // why the worker is gone

	killOnce sync.Once
}

// Start starts a worker and waits until it has applied its memory limit.
func Start(ctx context.Context, cfg Config) (*Worker, error) {
	cfg = cfg.withDefaults()
	if cfg.Exe == "" {
		return nil, errors.New("parser worker: Config.Exe is empty")
	}
	if cfg.MemoryLimit < minMemoryLimit {
		return nil, fmt.Errorf("parser worker: memory limit %d under the minimum of %d bytes", cfg.MemoryLimit, minMemoryLimit)
	}
	begin := time.Now()
	dir, err := os.MkdirTemp("", "soarkafka-parser-")
	if err != nil {
		return nil, fmt.Errorf("parser worker: %w", err)
	}
	var files []*os.File // the child's ends, closed once it has them
	pipe := func() (r, w *os.File) {
		if err != nil {
			return nil, nil
		}
		r, w, err = os.Pipe()
		return r, w
	}
	inR, inW := pipe()
	outR, outW := pipe()
	errR, errW := pipe()
	files = append(files, inR, outW, errW)
	cleanup := func() {
		for _, f := range []*os.File{inR, inW, outR, outW, errR, errW} {
			if f != nil {
				f.Close()
			}
		}
		os.RemoveAll(dir)
	}
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("parser worker: %w", err)
	}
	cmd := exec.Command(cfg.Exe, cfg.Args...)
	cmd.Dir = dir
	cmd.Env = append([]string{
		"GOMAXPROCS=1",
		EnvMemoryLimit + "=" + strconv.FormatInt(cfg.MemoryLimit, 10),
		"TMPDIR=" + dir,
	}, cfg.Env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	// Pdeathsig: the child dies with the server (strictly: with the OS
	// thread that started it, which the Go runtime does not end while the
	// process runs). Setpgid: a kill of the group takes anything with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		cleanup()
		return nil, fmt.Errorf("parser worker: start %s: %w", cfg.Exe, err)
	}
	for _, f := range files {
		f.Close()
	}
	growPipe(inW)
	growPipe(outR)
	w := &Worker{
		cfg: cfg, cmd: cmd, pid: cmd.Process.Pid, dir: dir,
		stdin: inW, stdout: outR,
		br:        bufio.NewReaderSize(outR, 256<<10),
		stderr:    &boundedBuffer{max: 8 << 10},
		stderrEOF: make(chan struct{}),
		exited:    make(chan struct{}),
	}
	go func() {
		defer close(w.stderrEOF)
		_, _ = io.Copy(w.stderr, errR)
		errR.Close()
	}()
	go func() {
		w.waitErr = cmd.Wait()
		close(w.exited)
	}()

	w.mu.Lock()
	defer w.mu.Unlock()
	kind, payload, err := w.exchange(ctx, "start", nil)
	if err != nil {
		return nil, err
	}
	d := dec{b: payload}
	limit := d.int()
	if kind != kindReady || d.err != nil || limit != cfg.MemoryLimit {
		return nil, w.crash("start", fmt.Errorf("unexpected ready frame (memory limit %d, want %d)", limit, cfg.MemoryLimit))
	}
	w.startTime = time.Since(begin)
	return w, nil
}

// Pid is the worker's process id (also its process group id).
func (w *Worker) Pid() int { return w.pid }

// StartDuration is how long Start took.
func (w *Worker) StartDuration() time.Duration { return w.startTime }

// Calls is the number of calls the worker has served.
func (w *Worker) Calls() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.calls
}

// Alive reports whether the worker can take requests.
func (w *Worker) Alive() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.gone == nil
}

// Load checks the source (Check) and loads it into the worker, running the
// script's init functions, within the deadline. A worker loads one parser;
// after a load error (other than a *CheckError) it is gone.
func (w *Worker) Load(ctx context.Context, name, source string) error {
	if err := Check(name, source); err != nil {
		return err
	}
	return w.load(ctx, name, source)
}

// load loads without Check: the tests use it to reach the worker's own
// defences.
func (w *Worker) load(ctx context.Context, name, source string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.loaded {
		return fmt.Errorf("parser worker: already serving parser %q", w.name)
	}
	w.name, w.loaded = name, true
	e := newFrame(nil)
	e.string(name)
	e.string(source)
	e.int(int64(w.cfg.MaxLog))
	_, _, _, err := w.request(ctx, "load", e.frame(kindLoad))
	return err
}

// Call runs ParseMessages on a batch within the deadline.
func (w *Worker) Call(ctx context.Context, topic string, messages []soar.Message) (CallResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.loaded && w.gone == nil {
		return CallResult{}, errors.New("parser worker: no parser loaded")
	}
	begin := time.Now()
	w.reqBuf = encodeCallFrame(w.reqBuf, topic, messages)
	log, results, mem, err := w.request(ctx, "call", w.reqBuf)
	if cap(w.reqBuf) > keepRequest {
		w.reqBuf = nil
	}
	w.calls++
	if err != nil {
		return CallResult{Log: log}, err
	}
	return CallResult{Results: results, Log: log, Duration: time.Since(begin), Memory: mem}, nil
}

// keepRequest is the largest request buffer a Worker keeps between calls.
const keepRequest = 8 << 20

// request sends a request frame and decodes its reply: the log, the memory
// in use, then the results JSON, the rest of the frame (not copied again:
// CallResult.Results is a slice of the frame). Held: w.mu.
func (w *Worker) request(ctx context.Context, op string, frame []byte) (log string, results []byte, mem int64, err error) {
	rk, reply, err := w.exchange(ctx, op, frame)
	if err != nil {
		return "", nil, 0, err
	}
	switch rk {
	case kindOK:
		d := dec{b: reply}
		log, mem = d.string(), d.int()
		if d.err == nil {
			return BoundText(log, w.cfg.MaxLog+markerRoom), d.b, mem, nil
		}
	case kindError:
		f, derr := decodeFault(reply)
		if derr == nil {
			// The worker bounds these; a worker that does not (a
			// script that subverted it) is bounded here all the same.
			f.Message = BoundText(f.Message, MaxErrorText+markerRoom)
			f.Trace = BoundText(f.Trace, MaxErrorText+markerRoom)
			f.Log = BoundText(f.Log, w.cfg.MaxLog+markerRoom)
			if f.Broken {
				w.crash(op, errors.New("the worker ended after a script fault"))
			}
			return f.Log, nil, 0, &ScriptError{Parser: w.name, Kind: f.Kind, Message: f.Message, Trace: f.Trace, Log: f.Log}
		}
	}
	return "", nil, 0, w.crash(op, fmt.Errorf("malformed reply frame %q", rk))
}

// exchange writes a request frame (none when nil), in one Write, and reads
// one frame, within the deadline. Any failure kills the worker. Held: w.mu.
func (w *Worker) exchange(ctx context.Context, op string, frame []byte) (byte, []byte, error) {
	if w.gone != nil {
		return 0, nil, fmt.Errorf("parser %q: %w (%v)", w.name, ErrWorkerGone, w.gone)
	}
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	deadline := time.Now().Add(w.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = w.stdin.SetWriteDeadline(deadline)
	_ = w.stdout.SetReadDeadline(deadline)
	stop := context.AfterFunc(ctx, func() {
		_ = w.stdin.SetWriteDeadline(time.Unix(1, 0))
		_ = w.stdout.SetReadDeadline(time.Unix(1, 0))
	})
	defer stop()
	var err error
	if frame != nil {
		_, err = w.stdin.Write(frame)
	}
	var rk byte
	var reply []byte
	if err == nil {
		rk, reply, err = readFrame(w.br, MaxResultSize+w.cfg.MaxLog+2*MaxErrorText+1<<10)
	}
	if err == nil {
		return rk, reply, nil
	}
	switch {
	case ctx.Err() != nil:
		err = ctx.Err()
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = fmt.Errorf("%w (%s)", ErrTimeout, w.cfg.Timeout)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.EPIPE):
		err = nil // the worker died: its exit status says how
	}
	return 0, nil, w.crash(op, err)
}

// pipeSize is the capacity asked for the request and reply pipes (Linux
// allows up to /proc/sys/fs/pipe-max-size, 1 MiB by default, unprivileged):
// a 500-message batch of 1 KB messages then crosses in one write instead of
// sixteen 64 KiB rounds that each wake the other side.
const pipeSize = 1 << 20

const fSetPipeSz = 1031 // F_SETPIPE_SZ

// growPipe enlarges a pipe, best effort: on failure (a user over the
// kernel's pipe-user-pages limits) the pipe keeps its default size, only
// slower.
func growPipe(f *os.File) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_, _, _ = syscall.Syscall(syscall.SYS_FCNTL, fd, fSetPipeSz, pipeSize)
	})
}

// crash kills the worker and returns the error that says why. Held: w.mu.
func (w *Worker) crash(op string, cause error) error {
	w.kill()
	if cause == nil {
		if w.waitErr != nil {
			cause = w.waitErr
		} else {
			cause = errors.New("worker exited")
		}
	}
	err := &CrashError{Parser: w.name, Op: op, Err: cause, Stderr: firstLines(w.stderr.String())}
	w.gone = err
	return err
}

// kill ends the process group and waits for the process and its stderr.
func (w *Worker) kill() {
	w.killOnce.Do(func() {
		_ = syscall.Kill(-w.pid, syscall.SIGKILL)
		<-w.exited
		select {
		case <-w.stderrEOF:
		case <-time.After(time.Second):
		}
		w.stdin.Close()
		w.stdout.Close()
		os.RemoveAll(w.dir)
	})
}

// Close kills the worker (it has nothing to flush) and waits for it. It is
// safe to call more than once and concurrently with a request, which then
// fails.
func (w *Worker) Close() error {
	w.kill()
	if w.mu.TryLock() {
		if w.gone == nil {
			w.gone = errors.New("closed")
		}
		w.mu.Unlock()
	}
	return nil
}

// firstLines returns the head of a worker's stderr: up to the first blank
// line (before a goroutine dump), at most 5 lines.
func firstLines(s string) string {
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if strings.TrimSpace(line) == "" || len(out) == 5 {
			break
		}
		out = append(out, line)
	}
	r := strings.Join(out, "; ")
	if len(r) > 1000 {
		r = r[:1000] + "…"
	}
	return r
}
