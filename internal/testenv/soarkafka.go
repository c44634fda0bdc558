package testenv

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Soarkafka is a soarkafka server process started by a test, on its
// embedded defaults (SQLite in a temporary directory, the development
// broker), with loopback ports of its own.
type Soarkafka struct {
	URL     string // http://host:port
	Broker  string // the development broker's host:port
	Token   string // the API token
	DataDir string

	mu   sync.Mutex
	logs strings.Builder
}

// StartSoarkafka runs exe as `soarkafka serve --dev-broker` and waits until
// it listens. exe is a test binary whose TestMain runs app.Main when
// SOARKAFKA_TEST_MAIN=1 (as app's tests do), so no separate build is
// needed. args are added to the command line (flags such as
// --dev-broker-partitions=3). The process is killed when the test ends.
func StartSoarkafka(t testing.TB, exe string, args ...string) *Soarkafka {
	t.Helper()
	s := &Soarkafka{DataDir: t.TempDir(), Token: "test-token-" + randomHex(12)}
	cmd := exec.Command(exe, append([]string{"serve", "--listen=127.0.0.1:0", "--data-dir=" + s.DataDir,
		"--dev-broker", "--dev-broker-addr=127.0.0.1:0", "--log-format=json"}, args...)...)
	cmd.Env = append(os.Environ(), "SOARKAFKA_TEST_MAIN=1", "SOARKAFKA_API_TOKEN="+s.Token)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: start soarkafka: %v", err)
	}
	exited := make(chan error, 1)
	listening, broker := make(chan string, 1), make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			s.mu.Lock()
			s.logs.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				continue
			}
			switch line.Msg {
			case "soarkafka listening":
				listening <- line.Addr
			case "dev broker started":
				broker <- line.Addr
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("soarkafka's log:\n%s", s.Logs())
		}
	})
	timeout := time.After(30 * time.Second)
	for s.URL == "" || s.Broker == "" {
		select {
		case addr := <-listening:
			s.URL = "http://" + addr
		case addr := <-broker:
			s.Broker = addr
		case err := <-exited:
			t.Fatalf("testenv: soarkafka exited at start: %v\n%s", err, s.Logs())
		case <-timeout:
			t.Fatalf("testenv: soarkafka did not start within 30s\n%s", s.Logs())
		}
	}
	return s
}

// Logs is what the server has logged so far (JSON lines).
func (s *Soarkafka) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// Python returns the path of Debian's python3 with the requests package,
// which the platform apps' tests run (scripts/test-deps.sh installs both).
// Without them the test skips, saying what to install; under CI=true it
// fails instead.
func Python(t testing.TB) string {
	t.Helper()
	const python = "/usr/bin/python3"
	out, err := exec.Command(python, "-c", "import requests").CombinedOutput()
	if err == nil {
		return python
	}
	msg := "testenv: " + python + " with requests is needed (apt-get install python3 python3-requests, or run scripts/test-deps.sh): " +
		strings.TrimSpace(err.Error()+" "+string(out))
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// Replica is a soarkafka server process a test starts on a database and
// brokers of its own choosing (StartReplica), as one of several replicas.
type Replica struct {
	URL string // http://host:port
	Cmd *exec.Cmd

	mu     sync.Mutex
	logs   strings.Builder
	exited chan struct{}
	err    error
}

// StartReplica runs exe as `soarkafka serve` with args added to the command
// line and env to the environment, and waits until it listens. exe is a
// test binary whose TestMain runs app.Main when SOARKAFKA_TEST_MAIN=1. The
// process is stopped when the test ends (resumed first if a test paused
// it with SIGSTOP).
func StartReplica(t testing.TB, exe string, env []string, args ...string) *Replica {
	t.Helper()
	r := &Replica{exited: make(chan struct{})}
	cmd := exec.Command(exe, append([]string{"serve", "--listen=127.0.0.1:0", "--log-format=json"}, args...)...)
	cmd.Env = append(append(os.Environ(), "SOARKAFKA_TEST_MAIN=1"), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: start soarkafka: %v", err)
	}
	r.Cmd = cmd
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			r.mu.Lock()
			r.logs.WriteString(sc.Text() + "\n")
			r.mu.Unlock()
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "soarkafka listening" {
				listening <- line.Addr
			}
		}
		r.err = cmd.Wait()
		close(r.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		r.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("replica's log (last 20000 bytes):\n%s", tail(r.Logs(), 20000))
		}
	})
	select {
	case addr := <-listening:
		r.URL = "http://" + addr
	case <-r.exited:
		t.Fatalf("testenv: soarkafka exited at start: %v\n%s", r.err, r.Logs())
	case <-time.After(30 * time.Second):
		t.Fatalf("testenv: soarkafka did not start within 30s\n%s", r.Logs())
	}
	return r
}

// Stop interrupts the process and waits for it to exit, killing it after
// timeout; it returns how it exited. Safe to call more than once.
func (r *Replica) Stop(timeout time.Duration) error {
	_ = r.Cmd.Process.Signal(os.Interrupt)
	select {
	case <-r.exited:
	case <-time.After(timeout):
		_ = r.Cmd.Process.Kill()
		<-r.exited
	}
	return r.err
}

// Exited is closed once the process exited.
func (r *Replica) Exited() <-chan struct{} { return r.exited }

// Logs is what the process has logged so far (JSON lines).
func (r *Replica) Logs() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.logs.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
