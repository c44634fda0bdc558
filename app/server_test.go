package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/parsers/bundled"
	"github.com/soarkafka/soarkafka/parsers/sandbox"
	"github.com/soarkafka/soarkafka/soar"
	"github.com/soarkafka/soarkafka/store"
)

// When the test binary is started with this variable set, it runs the
// soarkafka command line instead of the tests: the subprocess tests below
// use it to signal a real process.
func TestMain(m *testing.M) {
	// Parser workers start as "<binary> parser-worker" with a minimal
	// environment: here, the binary is this test binary.
	if os.Getenv("SOARKAFKA_TEST_MAIN") == "1" || (len(os.Args) > 1 && os.Args[1] == "parser-worker") {
		os.Exit(Main(context.Background(), os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func testConfig(t *testing.T, dir string) Config {
	t.Helper()
	c, err := LoadConfig("", flags(t, "--listen=127.0.0.1:0", "--data-dir="+dir, "--dev-broker", "--dev-broker-addr=127.0.0.1:0", "--shutdown-timeout=5s"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startWithToken starts a server on a fresh data directory (SQLite, the
// dev broker) and returns it, its base URL and the API token it generated.
func startWithToken(t *testing.T) (s *Server, base, token string) {
	t.Helper()
	dir := t.TempDir()
	s, _, _ = startServer(t, testConfig(t, dir))
	b, err := os.ReadFile(filepath.Join(dir, "api-token"))
	if err != nil {
		t.Fatal(err)
	}
	return s, "http://" + s.Addr(), strings.TrimSpace(string(b))
}

func startServer(t *testing.T, cfg Config) (*Server, context.CancelFunc, chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := NewServer(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return s, cancel, done
}

func call(t *testing.T, method, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("ph-auth-token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

// The README's walk-through against the embedded defaults: a generated
// token, an asset on the dev broker, a message, test connectivity; then a
// restart keeps the asset, the token, the key and the broker's data.
func TestServerWalkThrough(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	s, cancel, done := startServer(t, cfg)
	base := "http://" + s.Addr()

	tokenBytes, err := os.ReadFile(filepath.Join(dir, "api-token"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tokenBytes))
	for _, f := range []string{"api-token", "secret.key"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v mode %v, want 0600", f, err, fi.Mode())
		}
	}

	if code, _ := call(t, "GET", base+"/v1/assets", "", ""); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	body := `{"name": "dev", "config": {"hosts": "` + s.BrokerAddr() + `", "topic": "alerts", "sasl_mechanism": "", "password": ""}}`
	if code, out := call(t, "POST", base+"/v1/assets", token, body); code != 201 {
		t.Fatalf("create: %d %v", code, out)
	}

	// Post data creates the topic on the dev broker, as in the README.
	post := `{"asset": "dev", "parameters": {"data_type": "JSON", "topic": "alerts", "timeout": 5, "data": "[{\"alert\": \"test 1\"}, {\"alert\": \"test 2\"}]"}}`
	code, out := call(t, "POST", base+"/v1/actions/post_data", token, post)
	if code != 200 || out["status"] != "success" || len(out["data"].([]any)) != 2 {
		t.Fatalf("post data: %d %v", code, out)
	}

	code, out = call(t, "POST", base+"/v1/actions/test_connectivity", token, `{"asset": "dev"}`)
	if code != 200 || out["status"] != "success" {
		t.Fatalf("test connectivity: %d %v", code, out)
	}
	// The two messages are on the topic.
	topic := out["data"].([]any)[len(out["data"].([]any))-1].(map[string]any)
	if p := topic["partitions"].([]any)[0].(map[string]any); p["latest_offset"] != float64(2) {
		t.Fatalf("topic after post data: %v", topic)
	}

	// Graceful stop, then a restart on the same data directory.
	brokerAddr := s.BrokerAddr()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	done <- nil // the cleanup reads done once more
	cfg.DevBroker.Addr = brokerAddr
	s2, _, _ := startServer(t, cfg)
	base = "http://" + s2.Addr()
	if code, out := call(t, "GET", base+"/v1/assets/dev", token, ""); code != 200 || out["name"] != "dev" {
		t.Fatalf("asset lost across restart: %d %v", code, out)
	}
	code, out = call(t, "POST", base+"/v1/actions/test_connectivity", token, `{"asset": "dev"}`)
	if code != 200 || out["status"] != "success" {
		t.Fatalf("test connectivity after restart (topic kept by the dev broker): %d %v", code, out)
	}
}

func TestServerRefusesWrongSecretKey(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.DevBroker.Enabled = false
	s, cancel, done := startServer(t, cfg)
	token, _ := os.ReadFile(filepath.Join(dir, "api-token"))
	body := `{"name": "p", "config": {"hosts": "127.0.0.1:1", "topic": "t", "sasl_mechanism": "PLAIN", "username": "u", "password": "pw-123"}}`
	if code, out := call(t, "POST", "http://"+s.Addr()+"/v1/assets", strings.TrimSpace(string(token)), body); code != 201 {
		t.Fatalf("%d %v", code, out)
	}
	cancel()
	<-done
	done <- nil

	cfg.SecretKey = "0000000000000000000000000000000000000000000000000000000000000000"
	s2, _, _ := startServer(t, cfg)
	code, out := call(t, "POST", "http://"+s2.Addr()+"/v1/actions/test_connectivity", strings.TrimSpace(string(token)), `{"asset": "p"}`)
	if code != 500 {
		t.Fatalf("wrong key: %d %v", code, out)
	}
}

func TestMainVersionAndBadConfig(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Main(context.Background(), []string{"version"}, nil, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "soarkafka ") {
		t.Fatalf("version: %d %q %q", code, out.String(), errOut.String())
	}
	out.Reset()
	code := Main(context.Background(), []string{"serve", "--data-dir", t.TempDir()}, []string{"SOARKAFKA_LISTEN=nope"}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), `listen: "nope" is not host:port`) {
		t.Fatalf("bad config: %d %q", code, errOut.String())
	}
}

func TestMigrateCommand(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if code := Main(context.Background(), []string{"migrate", "--data-dir", dir}, nil, &out, &errOut); code != 0 {
		t.Fatalf("migrate: %d %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "is up to date") {
		t.Fatalf("migrate output %q", out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "soarkafka.db")); err != nil {
		t.Fatal(err)
	}
}

// A real process stops cleanly on SIGTERM.
func TestServeStopsOnSIGTERM(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "serve", "--listen=127.0.0.1:0", "--data-dir="+t.TempDir(), "--log-format=json")
	cmd.Env = append(os.Environ(), "SOARKAFKA_TEST_MAIN=1")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	sc := bufio.NewScanner(stderr)
	var addr string
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "soarkafka listening" {
			addr = line["addr"].(string)
			break
		}
	}
	if addr == "" {
		t.Fatal("server never said it was listening")
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var rest strings.Builder
	for sc.Scan() {
		rest.WriteString(sc.Text() + "\n")
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, rest.String())
	}
	if !strings.Contains(rest.String(), `"msg":"stopped"`) {
		t.Fatalf("no clean stop logged:\n%s", rest.String())
	}
}

// The binary runs parser workers through its hidden parser-worker
// subcommand: the bundled default parser gives the same artifacts there as
// natively.
func TestParserWorkerSubcommand(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w, err := sandbox.Start(ctx, sandbox.Config{Exe: exe, Args: []string{"parser-worker"}, Env: []string{"SOARKAFKA_TEST_MAIN=1"}, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	// The real subcommand isolates itself: seccomp is on any Linux kernel
	// the server supports.
	if iso := w.Isolation(); iso.Active&(sandbox.LayerSeccomp|sandbox.LayerNoNewPrivs) != sandbox.LayerSeccomp|sandbox.LayerNoNewPrivs {
		t.Errorf("worker isolation %s", iso)
	}
	def, _ := bundled.Get("default")
	if err := w.Load(ctx, "default.go", def.Source); err != nil {
		t.Fatal(err)
	}
	msgs := []soar.Message{{Topic: "t", Partition: 1, Offset: 7, Value: []byte("hello"), Message: "hello"}}
	res, err := w.Call(ctx, "t", msgs)
	if err != nil {
		t.Fatal(err)
	}
	native, _ := def.Parse("t", msgs)
	want, _ := json.Marshal(native[0].Artifacts)
	var got []struct {
		Artifacts json.RawMessage `json:"artifacts"`
	}
	if err := json.Unmarshal(res.Results, &got); err != nil || len(got) != 1 {
		t.Fatalf("results %s: %v", res.Results, err)
	}
	if string(got[0].Artifacts) != string(want) {
		t.Fatalf("worker artifacts %s, native %s", got[0].Artifacts, want)
	}
}

// soarkafka parser test runs a parser file on an NDJSON file of messages in
// the sandbox and prints what it creates; a failing parser fails the command.
func TestParserTestCommand(t *testing.T) {
	dir := t.TempDir()
	def, _ := bundled.Get("default")
	parser := filepath.Join(dir, "p.go")
	msgs := filepath.Join(dir, "sample.ndjson")
	os.WriteFile(parser, []byte(def.Source), 0o600)
	os.WriteFile(msgs, []byte("{\"a\": 1}\n\nsecond message\n"), 0o600)
	var out, errOut bytes.Buffer
	if code := Main(context.Background(), []string{"parser", "test", "--file", parser, "--messages", msgs, "--topic", "alerts"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s %s", code, out.String(), errOut.String())
	}
	var res struct {
		Messages int `json:"messages"`
		Run      struct {
			Results []struct {
				Container map[string]any   `json:"container"`
				Artifacts []map[string]any `json:"artifacts"`
			} `json:"results"`
		} `json:"run"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.Messages != 2 || len(res.Run.Results[0].Artifacts) != 2 {
		t.Fatalf("output %s: %v", out.String(), err)
	}
	if a := res.Run.Results[0].Artifacts[1]; a["source_data_identifier"] != "0:1" || a["name"] != "second message" {
		t.Fatalf("artifact %v", a)
	}

	os.WriteFile(parser, []byte(strings.Replace(def.Source, `"time"`, `"os"`, 1)), 0o600)
	out.Reset()
	errOut.Reset()
	if code := Main(context.Background(), []string{"parser", "test", "--file", parser, "--messages", msgs}, nil, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), `p.go:`) || !strings.Contains(out.String(), `"kind": "check"`) {
		t.Fatalf("refused import: exit %d: %s %s", code, out.String(), errOut.String())
	}
}

// The server polls a scheduled asset by itself, and what it ingests is
// served by the containers API and counted in /metrics.
func TestServerSchedulesPollsAndServesContainers(t *testing.T) {
	s, base, token := startWithToken(t)

	body := `{"name": "sched", "config": {"hosts": "` + s.BrokerAddr() + `", "topic": "alerts", "read_from_beginning": true, "ingest": {"interval": "1s"}}}`
	if code, out := call(t, "POST", base+"/v1/assets", token, body); code != 201 {
		t.Fatalf("create: %d %v", code, out)
	}
	post := `{"asset": "sched", "parameters": {"data_type": "JSON", "topic": "alerts", "timeout": 5, "data": "[{\"alert\": \"one\"}, {\"alert\": \"two\"}, {\"alert\": \"three\"}]"}}`
	if code, out := call(t, "POST", base+"/v1/actions/post_data", token, post); code != 200 || out["status"] != "success" {
		t.Fatalf("post data: %d %v", code, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, out := call(t, "GET", base+"/v1/artifacts?asset=sched", token, "")
		if code == 200 && out["count"] == 3.0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the scheduler did not ingest the 3 messages in 20s: %d %v", code, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The poll records itself once it ends, after its batches.
	var code int
	var out map[string]any
	for {
		code, out = call(t, "GET", base+"/v1/assets/sched/ingest", token, "")
		if last, _ := out["last_poll"].(map[string]any); code == 200 && last != nil {
			if out["lag"] != 0.0 || out["scheduled"] != true || last["kind"] != "scheduled" || last["status"] != "success" {
				t.Fatalf("ingest status: %d %v", code, out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no poll recorded in the ingest status: %d %v", code, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	code, out = call(t, "GET", base+"/v1/containers?asset=sched", token, "")
	if n, _ := out["count"].(float64); code != 200 || n < 1 {
		t.Fatalf("containers: %d %v", code, out)
	}
	req, _ := http.NewRequest("GET", base+"/metrics", nil)
	req.Header.Set("ph-auth-token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`soarkafka_ingest_artifacts_created_total{asset="sched"} 3`, `soarkafka_produce_messages_total{asset="sched",result="ok"} 3`} {
		if !strings.Contains(string(raw), want) {
			t.Fatalf("metrics lack %s:\n%s", want, raw)
		}
	}
}

// Past server.max_connections a connection waits until one closes.
func TestServerCapsConnections(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Server.MaxConnections = 2
	s, _, _ := startServer(t, cfg)
	get := func(c net.Conn, br *bufio.Reader, within time.Duration) (*http.Response, error) {
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
			return nil, err
		}
		_ = c.SetReadDeadline(time.Now().Add(within))
		resp, err := http.ReadResponse(br, nil)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
		}
		return resp, err
	}
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if resp, err := get(c, bufio.NewReader(c), 10*time.Second); err != nil || resp.StatusCode != 200 {
			t.Fatalf("within the cap: %v", err)
		}
		held = append(held, c) // kept alive, so still counted
	}
	third, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	br := bufio.NewReader(third)
	if resp, err := get(third, br, 500*time.Millisecond); err == nil {
		t.Fatalf("a third connection was served past the cap of 2: %d", resp.StatusCode)
	}
	held[0].Close()
	_ = third.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the waiting connection was not served once another closed: %v", err)
	}
}

// A server whose database holds assets that crash gokrb5's krb5.conf
// parser (stored beneath the API, as an older version accepted them: a
// realm "R }", a krb5.conf realm block on one line) starts, stays up past
// their scheduled polls, names each broken asset in its log and ingest
// status, and lets the API delete them. Before, the process died at every
// start, before the API could delete anything.
func TestServerStartsWithBrokenAssets(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if code := Main(context.Background(), []string{"migrate", "--data-dir", dir}, nil, &out, &errOut); code != 0 {
		t.Fatalf("migrate: %d %s", code, errOut.String())
	}
	db, err := store.Open(t.Context(), "sqlite://"+filepath.Join(dir, "soarkafka.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	broken := map[string]map[string]any{
		"broken-realm": {"principal": "alice", "password": "pw", "realm": "R }", "kdc": "x"},
		"broken-conf":  {"principal": "alice", "password": "pw", "krb5_conf": "[realms]\nR = { kdc = x }\n"},
	}
	for name, krb := range broken {
		if err := db.CreateAsset(t.Context(), &assets.Asset{Name: name, Config: map[string]any{
			"hosts": "127.0.0.1:1", "topic": "alerts", "use_kerberos": true,
			"ingest": map[string]any{"interval": "1s"}, "kerberos": krb}}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const token = "start-up-token-0123456789"
	cmd := exec.Command(exe, "serve", "--listen=127.0.0.1:0", "--data-dir="+dir, "--log-format=json")
	cmd.Env = append(os.Environ(), "SOARKAFKA_TEST_MAIN=1", "SOARKAFKA_API_TOKEN="+token)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	exited := make(chan error, 1)
	addrc := make(chan string, 1)
	var mu sync.Mutex
	var logged strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			mu.Lock()
			logged.WriteString(sc.Text() + "\n")
			mu.Unlock()
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "soarkafka listening" {
				addrc <- line["addr"].(string)
			}
		}
		exited <- cmd.Wait()
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-exited:
		t.Fatalf("server exited at start: %v\n%s", err, logged.String())
	case <-time.After(20 * time.Second):
		t.Fatal("server never said it was listening")
	}
	base := "http://" + addr

	// Each broken asset is named in the log, and in its ingest status.
	deadline := time.Now().Add(20 * time.Second)
	for name := range broken {
		for {
			mu.Lock()
			log := logged.String()
			mu.Unlock()
			if strings.Contains(log, `"asset":"`+name+`"`) && strings.Contains(log, "asset cannot be used") {
				break
			}
			select {
			case err := <-exited:
				t.Fatalf("server died: %v\n%s", err, log)
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not reported in the log:\n%s", name, log)
			}
		}
		// The failed turn is recorded just after the log line: wait for it.
		for {
			code, st := call(t, "GET", base+"/v1/assets/"+name+"/ingest", token, "")
			last, _ := st["last_poll"].(map[string]any)
			if code == 200 && strings.Contains(fmt.Sprint(st["config_error"]), "kerberos.") && last != nil && last["status"] == "failed" &&
				strings.Contains(fmt.Sprint(last["error"]), `asset "`+name+`" cannot be used`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s ingest status: %d %v", name, code, st)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// Past several scheduled turns, the process is up and answers.
	time.Sleep(2 * time.Second)
	select {
	case err := <-exited:
		t.Fatalf("server died: %v\n%s", err, logged.String())
	default:
	}
	for name := range broken {
		if code, out := call(t, "DELETE", base+"/v1/assets/"+name, token, ""); code != 204 {
			t.Fatalf("delete %s: %d %v", name, code, out)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logged.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("server did not stop on SIGTERM")
	}
}
