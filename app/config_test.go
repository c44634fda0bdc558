package app

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/soarkafka/soarkafka/store"
)

func flags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	addFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "soarkafka.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigDefaults(t *testing.T) {
	c, err := LoadConfig("", flags(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8080" || c.DataDir != "./data" || c.DatabaseURL != "sqlite://./data/soarkafka.db" {
		t.Fatalf("defaults: %+v", c)
	}
	if c.DevBroker.Enabled || c.DevBroker.Addr != "127.0.0.1:9092" || c.MaxBodyBytes != 10<<20 || c.ShutdownTimeout != 30*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
	if (c.Server != ServerLimits{MaxConnections: 1024, ReadTimeout: time.Minute, IdleReadTimeout: time.Minute, BodyMemoryBudget: 64 << 20, BodyWait: 2 * time.Second}) {
		t.Fatalf("server defaults: %+v", c.Server)
	}
}

// Precedence is flags > environment > file > defaults, and one naming rule
// links the three: dev_broker.addr, SOARKAFKA_DEV_BROKER_ADDR, --dev-broker-addr.
func TestConfigPrecedence(t *testing.T) {
	file := writeFile(t, "listen: 127.0.0.1:1111\ndata_dir: /tmp/fromfile\ndev_broker:\n  addr: 127.0.0.1:1000\n  enabled: true\nlog_level: debug\n")
	env := []string{"SOARKAFKA_DEV_BROKER_ADDR=127.0.0.1:2000", "SOARKAFKA_LISTEN=127.0.0.1:2222", "OTHER=x"}

	c, err := LoadConfig(file, flags(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.DevBroker.Addr != "127.0.0.1:1000" || c.Listen != "127.0.0.1:1111" || !c.DevBroker.Enabled || c.LogLevel != "debug" {
		t.Fatalf("file: %+v", c)
	}
	if c.DatabaseURL != "sqlite:///tmp/fromfile/soarkafka.db" {
		t.Fatalf("database_url not derived from data_dir: %s", c.DatabaseURL)
	}

	c, err = LoadConfig(file, flags(t), env)
	if err != nil {
		t.Fatal(err)
	}
	if c.DevBroker.Addr != "127.0.0.1:2000" || c.Listen != "127.0.0.1:2222" || c.DataDir != "/tmp/fromfile" {
		t.Fatalf("env over file: %+v", c)
	}

	c, err = LoadConfig(file, flags(t, "--dev-broker-addr=127.0.0.1:3000", "--shutdown-timeout=5s"), env)
	if err != nil {
		t.Fatal(err)
	}
	if c.DevBroker.Addr != "127.0.0.1:3000" || c.Listen != "127.0.0.1:2222" || c.ShutdownTimeout != 5*time.Second {
		t.Fatalf("flags over env: %+v", c)
	}
}

func TestConfigDevBrokerShorthand(t *testing.T) {
	c, err := LoadConfig("", flags(t, "--dev-broker"), nil)
	if err != nil || !c.DevBroker.Enabled {
		t.Fatalf("--dev-broker: %+v %v", c.DevBroker, err)
	}
	c, err = LoadConfig("", flags(t), []string{"SOARKAFKA_DEV_BROKER_ENABLED=true", "SOARKAFKA_API_TOKEN=0123456789abcdef", "SOARKAFKA_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test"})
	if err != nil || !c.DevBroker.Enabled || c.APIToken != "0123456789abcdef" || !strings.HasPrefix(c.DatabaseURL, "postgres://") {
		t.Fatalf("env: %+v %v", c, err)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  []string
		args []string
		want []string
	}{
		{"listen", "", []string{"SOARKAFKA_LISTEN=8080"}, nil, []string{`listen: "8080" is not host:port`}},
		{"dev broker addr", "", nil, []string{"--dev-broker-addr=nope"}, []string{"dev_broker.addr:"}},
		{"database scheme", "", []string{"SOARKAFKA_DATABASE_URL=mysql://x/y"}, nil, []string{`database_url: scheme "mysql" not supported`}},
		{"sqlite parameters", "", []string{"SOARKAFKA_DATABASE_URL=sqlite://db.sqlite?mode=memory"}, nil, []string{"database_url: want sqlite://<path to a file>, without parameters"}},
		{"sqlite memory", "", []string{"SOARKAFKA_DATABASE_URL=sqlite://:memory:"}, nil, []string{"database_url: want sqlite://<path to a file>"}},
		{"data dir with ?", "", []string{"SOARKAFKA_DATA_DIR=/srv/what?"}, nil, []string{`data_dir: "/srv/what?" holds a '?'`}},
		{"short token", "", []string{"SOARKAFKA_API_TOKEN=short"}, nil, []string{"api_token: too short"}},
		{"secret key", "", []string{"SOARKAFKA_SECRET_KEY=abc"}, nil, []string{"secret_key:"}},
		{"body limit", "", nil, []string{"--max-body-bytes=10"}, []string{"max_body_bytes: 10 is too small"}},
		{"log level", "", []string{"SOARKAFKA_LOG_LEVEL=loud"}, nil, []string{`log_level: "loud"`}},
		{"duration", "", []string{"SOARKAFKA_SHUTDOWN_TIMEOUT=soon"}, nil, []string{"shutdown_timeout"}},
		{"unknown file key", "listne: x\n", nil, nil, []string{"unknown keys: listne"}},
		{"server limits", "server:\n  max_connections: 0\n  read_timeout: 10ms\n  idle_read_timeout: 0s\n  body_wait: -1s\n", nil, nil,
			[]string{"server.max_connections: 0: must be at least 1", "server.read_timeout: 10ms is too short", "server.idle_read_timeout: 0s is too short", "server.body_wait: -1s"}},
		{"audit", "audit:\n  retention: 10m\n  trusted_proxies: [10.0.0.0/8, proxy.example.com]\n", nil, nil,
			[]string{"audit.retention: 10m0s is too short", `audit.trusted_proxies: "proxy.example.com" is neither`}},
		{"small budget", "", []string{"SOARKAFKA_SERVER_BODY_MEMORY_BUDGET=1000"}, nil, []string{"server.body_memory_budget: 1000 is too small"}},
		{"parser worker as root", "", []string{"SOARKAFKA_PARSER_WORKER_UID=0"}, []string{"--parser-worker-gid=-1"}, []string{"parser.worker_uid: 0 is not an unprivileged id", "parser.worker_gid: -1 is not"}},
		{"console password", "", []string{"SOARKAFKA_CONSOLE_PASSWORD=short-pw"}, nil, []string{"console.password: too short (8 characters); use at least 12"}},
		{"console idle timeout", "console:\n  idle_timeout: 10s\n", nil, nil, []string{"console.idle_timeout: 10s: use 1m to 24h"}},
		{"console idle timeout long", "", nil, []string{"--console-idle-timeout=48h"}, []string{"console.idle_timeout: 48h0m0s: use 1m to 24h"}},
		{"several at once", "", []string{"SOARKAFKA_LOG_FORMAT=xml", "SOARKAFKA_DEV_BROKER_PARTITIONS=0"}, nil, []string{"log_format:", "dev_broker.partitions:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := ""
			if tt.file != "" {
				file = writeFile(t, tt.file)
			}
			_, err := LoadConfig(file, flags(t, tt.args...), tt.env)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// The console's settings: defaults, and a password that is never in an
// error message.
func TestConfigConsole(t *testing.T) {
	c, err := LoadConfig("", flags(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Console.Password != "" || c.Console.IdleTimeout != 30*time.Minute {
		t.Fatalf("console defaults: %+v", c.Console)
	}
	c, err = LoadConfig("", flags(t), []string{"SOARKAFKA_CONSOLE_PASSWORD=a long enough one", "SOARKAFKA_CONSOLE_IDLE_TIMEOUT=5m"})
	if err != nil || c.Console.Password != "a long enough one" || c.Console.IdleTimeout != 5*time.Minute {
		t.Fatalf("console settings: %v %+v", err, c.Console)
	}
	_, err = LoadConfig("", flags(t), []string{"SOARKAFKA_CONSOLE_PASSWORD=hunter2"})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("a short password: %v, want an error without the password", err)
	}
}

func TestConfigMissingFile(t *testing.T) {
	_, err := LoadConfig(filepath.Join(t.TempDir(), "nope.yaml"), flags(t), nil)
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("error %v should name the file", err)
	}
}

// TestDocTablesAreGenerated checks that every generated table of the docs
// (the asset fields and the configuration keys, wherever generatedDocs puts
// them) says what the code says now.
func TestDocTablesAreGenerated(t *testing.T) {
	docs, err := RenderDocs("..")
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) == 0 {
		t.Fatal("no generated tables found")
	}
	for file, want := range docs {
		b, err := os.ReadFile(filepath.Join("..", filepath.FromSlash(file)))
		if err != nil {
			t.Fatal(err)
		}
		if want != string(b) {
			t.Errorf("%s: generated tables are stale: run `make readme`", file)
		}
	}
}

// TestRenderDocsNeedsItsMarkers checks that a table whose markers went
// missing (a doc rewritten without them) is an error, not silently skipped.
func TestRenderDocsNeedsItsMarkers(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	doc := "# API\n<!-- asset-fields:begin -->\nold\n<!-- asset-fields:end -->\n"
	if err := os.WriteFile(filepath.Join(root, "docs", "api.md"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := RenderDocs(root)
	if err == nil || !strings.Contains(err.Error(), "config-keys:begin") {
		t.Fatalf("error %v should name the missing config-keys markers", err)
	}
	doc += "<!-- config-keys:begin -->\n<!-- config-keys:end -->\n"
	if err := os.WriteFile(filepath.Join(root, "docs", "api.md"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	docs, err := RenderDocs(root)
	if err != nil {
		t.Fatal(err)
	}
	got := docs["docs/api.md"]
	if strings.Contains(got, "\nold\n") || !strings.Contains(got, "| `hosts` |") || !strings.Contains(got, "| `listen` |") {
		t.Fatalf("tables not rendered:\n%s", got)
	}
}

func TestRedactDatabaseURL(t *testing.T) {
	if got := redactDatabaseURL("postgres://u:secret@h:5432/db"); strings.Contains(got, "secret") || !strings.Contains(got, "u:xxxxx@h") {
		t.Fatal(got)
	}
	if got := redactDatabaseURL("sqlite://data/x.db"); got != "sqlite://data/x.db" {
		t.Fatal(got)
	}
}

// metrics.public is off by default, and follows the one naming rule: file
// key, SOARKAFKA_METRICS_PUBLIC, --metrics-public.
func TestConfigMetricsPublic(t *testing.T) {
	c, err := LoadConfig("", flags(t), nil)
	if err != nil || c.Metrics.Public {
		t.Fatalf("default: %+v %v", c.Metrics, err)
	}
	file := writeFile(t, "metrics:\n  public: true\n")
	if c, err = LoadConfig(file, flags(t), nil); err != nil || !c.Metrics.Public {
		t.Fatalf("file: %+v %v", c.Metrics, err)
	}
	if c, err = LoadConfig(file, flags(t), []string{"SOARKAFKA_METRICS_PUBLIC=false"}); err != nil || c.Metrics.Public {
		t.Fatalf("env over file: %+v %v", c.Metrics, err)
	}
	if c, err = LoadConfig("", flags(t), []string{"SOARKAFKA_METRICS_PUBLIC=true"}); err != nil || !c.Metrics.Public {
		t.Fatalf("env: %+v %v", c.Metrics, err)
	}
	if c, err = LoadConfig("", flags(t, "--metrics-public"), []string{"SOARKAFKA_METRICS_PUBLIC=false"}); err != nil || !c.Metrics.Public {
		t.Fatalf("flag over env: %+v %v", c.Metrics, err)
	}
	if _, err = LoadConfig("", flags(t), []string{"SOARKAFKA_METRICS_PUBLIC=maybe"}); err == nil || !strings.Contains(err.Error(), "metrics.public") {
		t.Fatalf("bad value: %v", err)
	}
	if !strings.Contains(ConfigReference(), "| `metrics.public` | `SOARKAFKA_METRICS_PUBLIC` | `--metrics-public` | `false` |") {
		t.Fatal("metrics.public missing from the README's reference")
	}
}

// A running server serves its own metrics on /metrics: behind the API
// token by default, open with metrics.public.
func TestServerMetricsEndpoint(t *testing.T) {
	get := func(t *testing.T, url, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		if token != "" {
			req.Header.Set("ph-auth-token", token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	const line = `soarkafka_produce_messages_total{asset="dev",result="ok"} 2` + "\n"
	for _, public := range []bool{false, true} {
		dir := t.TempDir()
		cfg := testConfig(t, dir)
		cfg.DevBroker.Enabled = false
		cfg.Metrics.Public = public
		s, _, _ := startServer(t, cfg)
		tok, err := os.ReadFile(filepath.Join(dir, "api-token"))
		if err != nil {
			t.Fatal(err)
		}
		s.Metrics().Produced("dev", 2, 0)
		url := "http://" + s.Addr() + "/metrics"

		code, body := get(t, url, "")
		if public && (code != 200 || !strings.Contains(body, line)) {
			t.Errorf("public, no token: %d\n%s", code, body)
		}
		if !public && (code != 401 || strings.Contains(body, "soarkafka_")) {
			t.Errorf("private, no token: %d %s", code, body)
		}
		code, body = get(t, url, strings.TrimSpace(string(tok)))
		if code != 200 || !strings.Contains(body, line) || !strings.Contains(body, "\nprocess_cpu_seconds_total ") {
			t.Errorf("public %v, with the token: %d\n%s", public, code, body)
		}
	}
}

// A data_dir with spaces, relative or absolute, gives a database_url that
// validates again as given and that the store opens: a SQLite URL is a file
// path, not a URL whose first folder is a host (a fuzz input found it).
func TestConfigDataDirWithSpaces(t *testing.T) {
	for _, dir := range []string{"0 0", filepath.Join(t.TempDir(), "my data")} {
		c, err := LoadConfig("", flags(t, "--data-dir="+dir), nil)
		if err != nil {
			t.Fatalf("data_dir %q: %v", dir, err)
		}
		again, err := LoadConfig("", flags(t, "--data-dir="+dir), []string{"SOARKAFKA_DATABASE_URL=" + c.DatabaseURL})
		if err != nil || again.DatabaseURL != c.DatabaseURL {
			t.Fatalf("data_dir %q: its database_url %q given back: %v, %q", dir, c.DatabaseURL, err, again.DatabaseURL)
		}
		if filepath.IsAbs(dir) {
			db, err := store.Open(t.Context(), c.DatabaseURL, nil)
			if err != nil {
				t.Fatalf("open %s: %v", c.DatabaseURL, err)
			}
			db.Close()
		}
	}
}
