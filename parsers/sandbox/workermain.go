package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"os"
	"regexp"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing/fstest"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/traefik/yaegi/interp"

	"github.com/soarkafka/soarkafka/soar"
)

// EnvMemoryLimit is the environment variable through which a Worker tells
// its child the memory limit, in bytes. WorkerMain applies it to itself as
// RLIMIT_DATA (a hard limit: the kernel refuses memory past it and the Go
// runtime dies with "fatal error: runtime: out of memory") and sets the Go
// soft limit (debug.SetMemoryLimit) at 80 % of it, before it reads any
// script. The child applies the limit rather than the parent (prlimit on
// its pid) so that there is no window in which it runs unlimited and no
// extra dependency; the parent does not send a script before the child has
// confirmed the limit in its ready frame.
const EnvMemoryLimit = "SOARKAFKA_PARSER_WORKER_MEMORY"

// DefaultMemoryLimit is the worker memory limit when none is configured.
const DefaultMemoryLimit = 512 << 20

// minMemoryLimit is the smallest limit a worker accepts, with headroom over
// what a Go process with yaegi needs at start: below that the runtime
// segfaults.
const minMemoryLimit = 192 << 20

// MaxLogSize bounds the parser log (fmt output) returned with each reply
// when Config.MaxLog is not set.
const MaxLogSize = 64 << 10

// MaxErrorText bounds each text of a script fault (the error ParseMessages
// returned, a panic's message, the interpreter's trace) as it leaves the
// worker: a script can make them as large as its memory, and they go on
// into API answers, the ingest status, the database and the log.
const MaxErrorText = 64 << 10

// maxLogLimit is the largest Config.MaxLog.
const maxLogLimit = 1 << 20

// maxTrace bounds what the interpreter writes to its stderr during a call.
const maxTrace = 16 << 10

// BoundText returns s cut to at most max bytes, at a UTF-8 boundary, and
// followed by a marker saying how many bytes were cut; s itself when it
// fits.
func BoundText(s string, max int) string {
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + cutMarker(len(s)-i)
}

// markerRoom is more than cutMarker ever adds: the parent allows it over
// each bound, so that it does not cut a text the worker already cut.
const markerRoom = 64

func cutMarker(n int) string { return fmt.Sprintf("… [cut %d bytes]", n) }

// Bounds of one call's results: a parser that returns more is at fault
// (a runaway loop), not a batch to store.
const (
	MaxContainers = 10_000
	MaxArtifacts  = 200_000
)

// CountProblem says what is over the bounds on containers and artifacts in
// results, or "".
func CountProblem(results []soar.Result) string {
	if len(results) > MaxContainers {
		return fmt.Sprintf("%d containers in one batch, over the limit of %d", len(results), MaxContainers)
	}
	n := 0
	for _, r := range results {
		n += len(r.Artifacts)
	}
	if n > MaxArtifacts {
		return fmt.Sprintf("%d artifacts in one batch, over the limit of %d", n, MaxArtifacts)
	}
	return ""
}

// MaxResultSize bounds the JSON of one call's results.
const MaxResultSize = 64 << 20

// WorkerMain is the parser worker: the hidden subcommand that Config.Exe
// and Config.Args start (e.g. `soarkafka parser-worker`) must call it with
// os.Stdin, os.Stdout and os.Stderr and exit with the code it returns, and
// do nothing else first (no config, no logging to stdout). It applies the
// memory limit from EnvMemoryLimit, then serves one parser: a load, then
// calls, one at a time, until stdin is closed.
//
// When stdout is the process's standard output, WorkerMain moves the
// protocol to a duplicate descriptor and points descriptor 1 at stderr, so
// that nothing a script or the runtime prints can corrupt the protocol.
//
// Before it reads a script, the worker isolates itself (isolateWorker:
// no_new_privs, seccomp, Landlock) and says in its ready frame which layers
// are in force.
func WorkerMain(stdin io.Reader, stdout io.Writer, stderr io.Writer) int {
	return workerMain(stdin, stdout, stderr, workerLayers, nil)
}

// workerMain is WorkerMain with the layers to apply and a hook that runs
// once they are applied: the tests' probe of the layers, one at a time. A
// production worker always applies them all and has no hook.
func workerMain(stdin io.Reader, stdout io.Writer, stderr io.Writer, want Layer, isolated func()) int {
	limit := int64(DefaultMemoryLimit)
	if v := os.Getenv(EnvMemoryLimit); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < minMemoryLimit {
			fmt.Fprintf(stderr, "parser worker: %s=%q: want a number of bytes of at least %d\n", EnvMemoryLimit, v, minMemoryLimit)
			return 2
		}
		limit = n
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_DATA, &syscall.Rlimit{Cur: uint64(limit), Max: uint64(limit)}); err != nil {
		fmt.Fprintf(stderr, "parser worker: set RLIMIT_DATA: %v\n", err)
		return 2
	}
	debug.SetMemoryLimit(limit * 8 / 10)

	// GOGC 400: the worker's live heap is small (the interpreter and one
	// batch) and a batch allocates several times its size, so the default
	// of 100 collects a few times per batch on the worker's one P. The
	// memory limit above still bounds the heap: near it the runtime
	// collects as often as it must, whatever GOGC says.
	debug.SetGCPercent(workerGCPercent)

	out, err := protectStdout(stdout)
	if err != nil {
		fmt.Fprintf(stderr, "parser worker: %v\n", err)
		return 2
	}
	layers, landlockABI, notes := isolateWorker(want)
	if isolated != nil {
		isolated()
	}
	r := bufio.NewReaderSize(stdin, 256<<10)
	if writeFrame(out, kindReady, readyFrame(limit, layers, landlockABI, notes)) != nil {
		return 2
	}

	s := &session{log: &boundedBuffer{max: MaxLogSize}, trace: &boundedBuffer{max: maxTrace}}
	for {
		kind, payload, err := readFrame(r, maxRequest)
		if errors.Is(err, io.EOF) {
			return 0
		}
		if err != nil {
			fmt.Fprintf(stderr, "parser worker: read request: %v\n", err)
			return 2
		}
		var reply []byte
		var fault *scriptFault
		switch kind {
		case kindLoad:
			d := dec{b: payload}
			name, source := d.string(), d.string()
			if len(d.b) > 0 {
				s.log.max = int(min(max(d.int(), 1<<10), maxLogLimit))
			}
			if d.err != nil {
				fmt.Fprintf(stderr, "parser worker: load request: %v\n", d.err)
				return 2
			}
			if fault = s.load(name, source); fault == nil {
				reply = s.okFrame()
			}
		case kindCall:
			topic, msgs, err := decodeCall(payload)
			if err != nil {
				fmt.Fprintf(stderr, "parser worker: call request: %v\n", err)
				return 2
			}
			reply, fault = s.call(topic, msgs)
		default:
			fmt.Fprintf(stderr, "parser worker: unknown request kind %q\n", kind)
			return 2
		}
		if fault != nil {
			err = writeFrame(out, kindError, fault.encode())
		} else {
			_, err = out.Write(reply)
		}
		if err != nil {
			return 2
		}
		s.releaseReply()
		if fault != nil && fault.Broken {
			return 3
		}
	}
}

// workerGCPercent is the worker's GOGC.
const workerGCPercent = 400

// protectStdout returns the protocol writer.
func protectStdout(stdout io.Writer) (io.Writer, error) {
	f, ok := stdout.(*os.File)
	if !ok || f.Fd() != 1 {
		return stdout, nil
	}
	fd, err := syscall.Dup(1)
	if err != nil {
		return nil, fmt.Errorf("dup stdout: %w", err)
	}
	syscall.CloseOnExec(fd)
	if err := syscall.Dup3(2, 1, 0); err != nil {
		return nil, fmt.Errorf("point stdout at stderr: %w", err)
	}
	return os.NewFile(uintptr(fd), "protocol"), nil
}

type parseFunc = func(string, []soar.Message) ([]soar.Result, error)

// session is the one parser a worker serves.
type session struct {
	name       string
	fn         parseFunc
	goroutines int // after the load; a call that leaves more is a fault
	log        *boundedBuffer
	trace      *boundedBuffer
	reply      []byte // the reply frame buffer, reused across calls
}

// okFrame returns an OK reply frame: the log and the memory in use, then
// the results JSON (the rest of the frame) that appendResults writes after
// them.
func (s *session) okFrame() []byte {
	e := newFrame(s.reply)
	e.string(s.log.String())
	e.int(memoryInUse())
	s.reply = e.b
	return e.frame(kindOK)
}

// keepReply is the largest reply buffer a worker keeps between calls.
const keepReply = 8 << 20

func (s *session) releaseReply() {
	if cap(s.reply) > keepReply {
		s.reply = nil
	}
}

// errResultTooLarge stops the JSON encoding of results at MaxResultSize.
var errResultTooLarge = errors.New("result too large")

// limitedAppender appends what is written to it up to max bytes in all.
type limitedAppender struct {
	b    []byte
	max  int
	over bool
}

func (a *limitedAppender) Write(p []byte) (int, error) {
	if len(a.b)+len(p) > a.max {
		a.over = true
		return 0, errResultTooLarge
	}
	a.b = append(a.b, p...)
	return len(p), nil
}

var safeName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}$`)

// fileName is the script's name in positions: the parser's name when it is
// a plain file name.
func fileName(name string) string {
	if !safeName.MatchString(name) || strings.HasPrefix(name, ".") {
		return "parser.go"
	}
	if !strings.HasSuffix(name, ".go") {
		name += ".go"
	}
	return name
}

func (s *session) load(name, source string) (fault *scriptFault) {
	s.log.Reset()
	s.trace.Reset()
	if s.fn != nil {
		return &scriptFault{Kind: faultCompile, Message: "a worker loads one parser", Broken: true}
	}
	file := fileName(name)
	s.name = file
	f, err := parser.ParseFile(token.NewFileSet(), file, source, parser.PackageClauseOnly)
	if err != nil {
		return &scriptFault{Kind: faultCompile, Message: err.Error(), Broken: true}
	}
	before := runtime.NumGoroutine()
	defer func() {
		if p := recover(); p != nil {
			fault = &scriptFault{
				Kind:    faultCompile,
				Message: fmt.Sprintf("%s: the parser interpreter crashed compiling the script: %v%s", file, p, compilerPanicHint(p)),
				Trace:   s.trace.String(), Log: s.log.String(), Broken: true,
			}
		}
	}()
	i := interp.New(interp.Options{
		GoPath:               "",
		SourcecodeFilesystem: fstest.MapFS{file: &fstest.MapFile{Data: []byte(source), Mode: 0o444}},
		Stdout:               s.log,
		Stderr:               s.trace,
		Args:                 []string{},
		Env:                  []string{},
	})
	if err := i.Use(interpreterSymbols()); err != nil {
		return &scriptFault{Kind: faultCompile, Message: "load symbols: " + err.Error(), Broken: true}
	}
	if _, err := i.EvalPath(file); err != nil {
		return &scriptFault{Kind: faultCompile, Message: err.Error(), Trace: s.trace.String(), Log: s.log.String(), Broken: true}
	}
	v, err := i.Eval(f.Name.Name + ".ParseMessages")
	if err != nil {
		return &scriptFault{Kind: faultCompile, Message: fmt.Sprintf("%s: ParseMessages: %v", file, err), Log: s.log.String(), Broken: true}
	}
	fn, ok := v.Interface().(parseFunc)
	if !ok {
		return &scriptFault{Kind: faultCompile, Message: fmt.Sprintf("%s: ParseMessages has type %s; want %s", file, v.Type(), Signature), Log: s.log.String(), Broken: true}
	}
	if n := runtime.NumGoroutine(); n > before {
		return &scriptFault{Kind: faultPanic, Message: fmt.Sprintf("%s: the script left %d goroutine(s) running after its load", file, n-before), Log: s.log.String(), Broken: true}
	}
	s.fn, s.goroutines = fn, runtime.NumGoroutine()
	return nil
}

func compilerPanicHint(p any) string {
	if strings.Contains(fmt.Sprint(p), "nil type") {
		return " (range over an integer or a function is not supported by the parser interpreter)"
	}
	return " (an undefined package or type is a likely cause)"
}

func (s *session) call(topic string, msgs []soar.Message) (res []byte, fault *scriptFault) {
	s.log.Reset()
	s.trace.Reset()
	if s.fn == nil {
		return nil, &scriptFault{Kind: faultCompile, Message: "no parser loaded", Broken: true}
	}
	results, err, panicked := s.run(topic, msgs)
	if n := runtime.NumGoroutine(); n > s.goroutines {
		return nil, &scriptFault{Kind: faultPanic, Message: fmt.Sprintf("%s: the script left %d goroutine(s) running after the call", s.name, n-s.goroutines), Log: s.log.String(), Broken: true}
	}
	if panicked != nil {
		trace := s.trace.String()
		msg := fmt.Sprintf("panic: %v", panicked)
		if pos := scriptPosition(trace, s.name); pos != "" {
			msg = pos + ": " + msg
		} else {
			msg = s.name + ": " + msg
		}
		return nil, &scriptFault{Kind: faultPanic, Message: msg, Trace: trace, Log: s.log.String()}
	}
	if err != nil {
		return nil, &scriptFault{Kind: faultReturned, Message: err.Error(), Log: s.log.String()}
	}
	if msg := CountProblem(results); msg != "" {
		return nil, &scriptFault{Kind: faultResult, Message: s.name + ": " + msg, Log: s.log.String()}
	}
	if results == nil {
		results = []soar.Result{}
	}
	// The results are encoded straight into the reply frame, after the log
	// and the memory in use, and the encoding stops at MaxResultSize.
	// JSON v2: soar's types encode through MarshalJSONTo, twice as fast as
	// encoding/json's path; Deterministic so the same input gives the same
	// bytes.
	frame := s.okFrame()
	a := &limitedAppender{b: frame, max: len(frame) + MaxResultSize}
	err = jsonv2.MarshalWrite(a, results, ResultOptions())
	s.reply = a.b
	if a.over {
		return nil, &scriptFault{Kind: faultResult, Message: fmt.Sprintf("%s: result over the limit of %d bytes", s.name, MaxResultSize), Log: s.log.String()}
	}
	if err != nil {
		return nil, &scriptFault{Kind: faultResult, Message: fmt.Sprintf("%s: malformed result: %s", s.name, locateBadValue(results, err)), Log: s.log.String()}
	}
	e := enc{b: a.b}
	return e.frame(kindOK), nil
}

func (s *session) run(topic string, msgs []soar.Message) (results []soar.Result, err error, panicked any) {
	defer func() {
		if p := recover(); p != nil {
			panicked = p
			if p == nil {
				panicked = "nil"
			}
		}
	}()
	results, err = s.fn(topic, msgs)
	return results, err, nil
}

// scriptPosition returns the first "file:line:col" of the script in what
// the interpreter wrote to its stderr.
func scriptPosition(trace, file string) string {
	for _, line := range strings.Split(trace, "\n") {
		i := strings.Index(line, file+":")
		if i < 0 {
			continue
		}
		pos := line[i:]
		if j := strings.Index(pos, ": "); j > 0 {
			pos = pos[:j]
		}
		return pos
	}
	return ""
}

// locateBadValue names the first result and artifact that do not encode.
func locateBadValue(results []soar.Result, err error) string {
	for i, r := range results {
		if _, e := jsonv2.Marshal(r.Container, ResultOptions()); e != nil {
			return fmt.Sprintf("result %d: container: %v", i, e)
		}
		for j, a := range r.Artifacts {
			if _, e := jsonv2.Marshal(a, ResultOptions()); e != nil {
				return fmt.Sprintf("result %d: artifact %d: %v", i, j, e)
			}
		}
	}
	return err.Error()
}

var memSamples = []metrics.Sample{
	{Name: "/memory/classes/total:bytes"},
	{Name: "/memory/classes/heap/released:bytes"},
}

// memoryInUse is the memory the Go runtime holds from the system.
func memoryInUse() int64 {
	metrics.Read(memSamples)
	var total, released uint64
	if memSamples[0].Value.Kind() == metrics.KindUint64 {
		total = memSamples[0].Value.Uint64()
	}
	if memSamples[1].Value.Kind() == metrics.KindUint64 {
		released = memSamples[1].Value.Uint64()
	}
	return int64(total - released)
}

// boundedBuffer keeps the first max bytes written to it, and counts the
// rest. Script goroutines could write concurrently, hence the lock.
type boundedBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
	cut int64 // bytes written past max
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	room := b.max - len(b.buf)
	if len(p) > room {
		room = max(room, 0)
		b.buf = append(b.buf, p[:room]...)
		b.cut += int64(len(p) - room)
		return len(p), nil
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// String is what was kept, and when more was written, a marker saying how
// much was cut.
func (b *boundedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cut > 0 {
		return string(b.buf) + "\n" + cutMarker(int(b.cut)) + "\n"
	}
	return string(b.buf)
}

func (b *boundedBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf, b.cut = b.buf[:0], 0
}

// readyFrame is the payload of the worker's ready frame: the memory limit it
// applied, its pid, and the isolation layers in force (Start reads it).
func readyFrame(limit int64, layers Layer, landlockABI int, notes []string) []byte {
	var ready enc
	ready.int(limit)
	ready.int(int64(os.Getpid()))
	ready.int(int64(layers))
	ready.int(int64(landlockABI))
	ready.string(strings.Join(notes, "\n"))
	return ready.b
}
