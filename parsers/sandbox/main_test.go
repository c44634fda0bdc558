package sandbox

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"
)

// envTestWorker makes the test binary a parser worker: the tests re-exec
// themselves as the app re-execs `soarkafka parser-worker`.
const envTestWorker = "SANDBOX_TEST_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(envTestWorker) == "1" {
		os.Exit(WorkerMain(os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
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
