package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/soarkafka/soarkafka/app"
)

// serverChildCommand is the hidden subcommand under which the bench
// re-executes itself as the server when asked for a server CPU profile,
// or when bin is selfServer.
const serverChildCommand = "server-child"

// selfServer, given as the server binary, runs the bench's own binary as
// the server (it embeds app.Main): no build, which the bench's tests use.
const selfServer = "self"

// server is a soarkafka server running as its own process, so that its
// peak RSS is its own.
type server struct {
	name  string
	cmd   *exec.Cmd
	addr  string
	token string
	http  *http.Client

	mu   sync.Mutex
	tail []string // last stderr lines, for errors
	done chan struct{}
}

// buildServer builds cmd/soarkafka into dir and returns the binary's path.
func buildServer(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "soarkafka")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/soarkafka/soarkafka/cmd/soarkafka")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/soarkafka (run the bench from the module, or pass -server-bin): %v\n%s", err, out)
	}
	return bin, nil
}

// startServer runs `soarkafka serve` on a free loopback port with its own
// data directory under dir and waits for it to listen. With cpuProfile set
// the bench re-executes itself as the server, profiling it; with bin
// selfServer too, without a profile.
func startServer(ctx context.Context, name, bin, dir, cpuProfile string, maxBody int64, extra ...string) (*server, error) {
	dataDir := filepath.Join(dir, name)
	token := "bench-token-0123456789abcdef"
	args := []string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--api-token", token,
		"--log-format", "json", "--log-level", "info", "--max-body-bytes", strconv.FormatInt(maxBody, 10)}
	args = append(args, extra...)
	var cmd *exec.Cmd
	if cpuProfile != "" || bin == selfServer {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		profile := cpuProfile
		if profile == "" {
			profile = "-"
		}
		cmd = exec.Command(self, append([]string{serverChildCommand, profile}, args...)...)
	} else {
		cmd = exec.Command(bin, args...)
	}
	// The server's settings are the flags above, not the caller's
	// environment.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SOARKAFKA_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start server: %w", err)
	}
	s := &server{name: name, cmd: cmd, token: token, done: make(chan struct{})}
	addrc := make(chan string, 1)
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			// Per-request lines are the bulk; keep only what is not one.
			if bytes.Contains(line, []byte(`"msg":"request"`)) {
				continue
			}
			var l struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(line, &l) == nil && l.Msg == "soarkafka listening" {
				addrc <- l.Addr
			}
			s.mu.Lock()
			s.tail = append(s.tail, string(line))
			if len(s.tail) > 20 {
				s.tail = s.tail[1:]
			}
			s.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	select {
	case s.addr = <-addrc:
	case <-s.done:
		_ = cmd.Wait()
		return nil, fmt.Errorf("server exited before listening:\n%s", s.logTail())
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("server did not listen within 30s:\n%s", s.logTail())
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, ctx.Err()
	}
	s.http = &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: 4,
		DisableCompression:  true,
		WriteBufferSize:     256 << 10,
		ReadBufferSize:      64 << 10,
	}}
	return s, nil
}

func (s *server) logTail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.tail, "\n")
}

func (s *server) url(path string) string { return "http://" + s.addr + path }

// do sends a request with the API token and returns the response.
func (s *server) do(ctx context.Context, method, path, contentType string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.url(path), body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("ph-auth-token", s.token)
	req.Header.Set("Content-Type", contentType)
	return s.http.Do(req)
}

// createAsset stores the bench asset pointing at the broker.
func (s *server) createAsset(ctx context.Context, brokers, topic string) error {
	body, _ := json.Marshal(map[string]any{
		"name": "bench",
		"config": map[string]any{
			"hosts": brokers,
			"topic": topic,
			"producer": map[string]any{"acks": "all", "idempotent": true, "compression": "none",
				"linger_ms": 0, "max_message_bytes": maxMessageBytes},
		},
	})
	resp, err := s.do(ctx, http.MethodPost, "/v1/assets", "application/json", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("create asset: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("create asset: %s: %s", resp.Status, b)
	}
	return nil
}

// peakRSS is the process's peak resident set so far, in bytes (VmHWM).
func (s *server) peakRSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc/<pid>/status")
}

// rss is the process's resident set now, in bytes (VmRSS).
func (s *server) rss() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc/<pid>/status")
}

// stop reads the peak RSS (VmHWM), sends SIGTERM and waits for the
// graceful exit.
//
// The rusage of the exited child is no measure: Go starts children with
// vfork semantics (CLONE_VM), and Linux carries the high-water mark of the
// mm replaced at exec, the bench's own, into the child's ru_maxrss.
func (s *server) stop() (int64, error) {
	if s.http != nil {
		s.http.CloseIdleConnections()
	}
	hwm, hwmErr := s.peakRSS()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	waited := make(chan error, 1)
	go func() { <-s.done; waited <- s.cmd.Wait() }()
	var err error
	select {
	case err = <-waited:
	case <-time.After(40 * time.Second):
		_ = s.cmd.Process.Kill()
		err = fmt.Errorf("server %s did not stop within 40s of SIGTERM", s.name)
		<-waited
	}
	if err != nil {
		return hwm, fmt.Errorf("%v\n%s", err, s.logTail())
	}
	return hwm, hwmErr
}

// fail stops the server after err and returns err with the server's last
// log lines and how it ended.
func (s *server) fail(err error) error {
	_, stopErr := s.stop()
	state := "stopped"
	if stopErr != nil {
		state = stopErr.Error()
	} else if ps := s.cmd.ProcessState; ps != nil {
		state = ps.String()
	}
	return fmt.Errorf("%w\nserver %s: %s; last log lines:\n%s", err, s.name, state, s.logTail())
}

// serverChild runs the server in this process under a CPU profile written
// to args[0] when the server stops (SIGTERM), none when args[0] is "-".
// args[1:] are soarkafka's.
func serverChild(args []string) int {
	if args[0] == "-" {
		return app.Main(context.Background(), args[1:], os.Environ(), os.Stdout, os.Stderr)
	}
	f, err := os.Create(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	defer pprof.StopCPUProfile()
	return app.Main(context.Background(), args[1:], os.Environ(), os.Stdout, os.Stderr)
}

// cpuTime is the CPU time (user + system) process pid has used so far,
// from /proc/<pid>/stat (clock ticks of 1/100 s, Linux's USER_HZ).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses: state is
	// the first, utime the 12th and stime the 13th.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// cpuMeter measures the CPU the server and the bench process use over a
// run.
type cpuMeter struct {
	pid       int
	srv, self time.Duration
	start     time.Time
}

func meterCPU(s *server) *cpuMeter {
	return &cpuMeter{pid: s.cmd.Process.Pid, srv: cpuTime(s.cmd.Process.Pid), self: cpuTime(os.Getpid()), start: time.Now()}
}

// String reports the cores each process kept busy since the meter began.
func (m *cpuMeter) String() string {
	wall := time.Since(m.start).Seconds()
	return fmt.Sprintf("CPU: server %.2f cores, bench (client + kfake) %.2f cores",
		(cpuTime(m.pid)-m.srv).Seconds()/wall, (cpuTime(os.Getpid())-m.self).Seconds()/wall)
}
