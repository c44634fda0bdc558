package sandbox

import (
	"bufio"
	"context"
	"errors"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// envTestWorker makes the test binary a parser worker: the tests re-exec
// themselves as the app re-execs `soarkafka parser-worker`.
const envTestWorker = "SANDBOX_TEST_WORKER"

// envTestWorkerProfile, only in test workers, names a file for a CPU profile
// of the worker process, written when the worker ends normally (its stdin
// closed: see stopGracefully). Set it in Config.Env, e.g. from
// BenchmarkWorkerCall's -worker-cpuprofile flag. WorkerMain itself has no
// such hook: a production worker never writes files.
const envTestWorkerProfile = "SANDBOX_TEST_WORKER_CPUPROFILE"

// envTestUnboundedWorker makes the test binary a worker that does not
// bound its fault texts, as a worker a script subverted might not: the
// parent must bound them itself.
const envTestUnboundedWorker = "SANDBOX_TEST_UNBOUNDED_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(envTestUnboundedWorker) == "1" {
		os.Exit(unboundedWorkerMain())
	}
	if os.Getenv(envTestWorker) == "1" {
		os.Exit(testWorkerMain())
	}
	os.Exit(m.Run())
}

// unboundedWorkerMain speaks the protocol: ready, a load answered OK, then
// every call answered with a fault of 1 MiB texts and a 1 MiB log.
func unboundedWorkerMain() int {
	limit, _ := strconv.ParseInt(os.Getenv(EnvMemoryLimit), 10, 64)
	var ready enc
	ready.int(limit)
	if writeFrame(os.Stdout, kindReady, ready.b) != nil {
		return 2
	}
	r := bufio.NewReader(os.Stdin)
	for {
		kind, _, err := readFrame(r, maxRequest)
		if err != nil {
			return 0
		}
		if kind == kindLoad {
			var ok enc
			ok.string("")
			ok.int(0)
			writeFrame(os.Stdout, kindOK, ok.b)
			continue
		}
		big := strings.Repeat("x", 1<<20)
		var e enc
		for _, s := range []string{faultReturned, big, big, big} {
			e.string(s)
		}
		e.uint(0)
		writeFrame(os.Stdout, kindError, e.b)
	}
}

func testWorkerMain() int {
	if path := os.Getenv(envTestWorkerProfile); path != "" {
		f, err := os.Create(path)
		if err != nil {
			os.Stderr.WriteString("worker profile: " + err.Error() + "\n")
			return 2
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			os.Stderr.WriteString("worker profile: " + err.Error() + "\n")
			return 2
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	return WorkerMain(os.Stdin, os.Stdout, os.Stderr)
}

// stopGracefully closes the worker's stdin and waits for it to exit on its
// own (so that a test worker writes its profile), then closes it.
func stopGracefully(t testing.TB, w *Worker) {
	t.Helper()
	w.mu.Lock()
	w.stdin.Close()
	w.mu.Unlock()
	select {
	case <-w.exited:
	case <-time.After(10 * time.Second):
		t.Error("worker did not exit after its stdin was closed")
	}
	w.Close()
}

// testConfig starts workers from the test binary with a short deadline.
func testConfig(t testing.TB) Config {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		Exe:         exe,
		Env:         []string{envTestWorker + "=1"},
		MemoryLimit: DefaultMemoryLimit,
		Timeout:     2 * time.Second,
	}
}

func startWorker(t testing.TB, cfg Config) *Worker {
	t.Helper()
	w, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// assertGone checks that the worker's process group no longer exists: no
// leftover CPU burner.
func assertGone(t testing.TB, w *Worker) {
	t.Helper()
	if w.Alive() {
		t.Errorf("worker %d still marked alive", w.pid)
	}
	if _, err := os.Stat("/proc/" + itoa(w.pid)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("worker process %d still exists (stat: %v)", w.pid, err)
	}
	if err := syscall.Kill(-w.pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("worker process group %d still exists (kill 0: %v)", w.pid, err)
	}
}

func itoa(n int) string {
	b := []byte{}
	for n > 0 || len(b) == 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}
