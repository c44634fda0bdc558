// Package app is the composition root: the typed server configuration (read
// by viper from file, environment and flags), the command line, and the
// lifecycle that wires the store, the assets, the actions and the web layer
// together. Nothing imports app.
package app

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/audit"
	"github.com/soarkafka/soarkafka/kafka"
)

// Config is the server configuration. Every key follows one naming rule:
// the YAML key `dev_broker.addr` is SOARKAFKA_DEV_BROKER_ADDR in the
// environment and --dev-broker-addr on the command line.
type Config struct {
	Listen          string        `mapstructure:"listen"`
	DataDir         string        `mapstructure:"data_dir"`
	DatabaseURL     string        `mapstructure:"database_url"`
	APIToken        string        `mapstructure:"api_token"`
	SecretKey       string        `mapstructure:"secret_key"`
	MaxBodyBytes    int64         `mapstructure:"max_body_bytes"`
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
	LogLevel        string        `mapstructure:"log_level"`
	LogFormat       string        `mapstructure:"log_format"`
	DevBroker       DevBroker     `mapstructure:"dev_broker"`
	Parser          Parser        `mapstructure:"parser"`
	Metrics         MetricsConfig `mapstructure:"metrics"`
	Scheduler       Scheduler     `mapstructure:"scheduler"`
	ReplicaName     string        `mapstructure:"replica_name"`
	Server          ServerLimits  `mapstructure:"server"`
	Network         Network       `mapstructure:"network"`
	Files           Files         `mapstructure:"files"`
	Audit           Audit         `mapstructure:"audit"`
	Console         ConsoleConfig `mapstructure:"console"`
}

// Audit configures the trail of changes made through the API.
type Audit struct {
	// Retention is how long an event is kept.
	Retention time.Duration `mapstructure:"retention"`
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []string `mapstructure:"trusted_proxies"`
}

// ConsoleConfig configures the web console's sign-in.
type ConsoleConfig struct {
	// Password signs a person in to the console besides the API token;
	// empty: only the token does.
	Password string `mapstructure:"password"`
	// IdleTimeout ends a console session this long after its last request.
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
}

// ServerLimits bound what clients can hold of the server at the HTTP edge.
type ServerLimits struct {
	// MaxConnections is the most connections served at once; more wait
	// in the listen queue until one closes.
	MaxConnections int `mapstructure:"max_connections"`
	// ReadTimeout is how long a request body may take to arrive in full
	// (the records endpoint excepted).
	ReadTimeout time.Duration `mapstructure:"read_timeout"`
	// IdleReadTimeout is how long the records endpoint waits for more of a
	// streamed body.
	IdleReadTimeout time.Duration `mapstructure:"idle_read_timeout"`
	// BodyMemoryBudget is how many bytes of request bodies are handled at
	// once; BodyWait how long one waits for room before a 503.
	BodyMemoryBudget int64         `mapstructure:"body_memory_budget"`
	BodyWait         time.Duration `mapstructure:"body_wait"`
}

// Network limits the hosts the Kafka clients of assets may connect to (see
// kafka.HostPolicy for the grammar of entries).
type Network struct {
	AllowedHosts []string `mapstructure:"allowed_hosts"`
	DeniedHosts  []string `mapstructure:"denied_hosts"`
}

// Files limits the files the path fields of assets may name.
type Files struct {
	AllowedDirs []string `mapstructure:"allowed_dirs"`
}

// Access is what the configuration lets assets reach: the host policy of
// network.* and the file policy of files.allowed_dirs.
func (c Config) Access() (kafka.Access, error) {
	hosts, herr := kafka.NewHostPolicy(c.Network.AllowedHosts, c.Network.DeniedHosts)
	files, ferr := kafka.NewFilePolicy(c.Files.AllowedDirs)
	if err := errors.Join(herr, ferr); err != nil {
		return kafka.Access{}, err
	}
	return kafka.Access{Hosts: hosts, Files: files}, nil
}

// MetricsConfig configures the /metrics endpoint.
type MetricsConfig struct {
	// Public serves /metrics without the API token, for a Prometheus
	// scraper inside a trusted network; off, it needs the token like
	// every /v1 route.
	Public bool `mapstructure:"public"`
}

// Scheduler configures the polls the server runs by itself.
type Scheduler struct {
	Enabled bool `mapstructure:"enabled"`
}

// Parser configures the sandbox that runs user parsers.
type Parser struct {
	MemoryLimitMB int64         `mapstructure:"memory_limit_mb"`
	Timeout       time.Duration `mapstructure:"timeout"`
	// The worker pool's bounds (see sandbox.PoolConfig).
	MaxWorkers        int           `mapstructure:"max_workers"`
	WorkerIdleTimeout time.Duration `mapstructure:"worker_idle_timeout"`
	MaxWorkerRSSMB    int64         `mapstructure:"max_worker_rss_mb"`
	BusyWait          time.Duration `mapstructure:"busy_wait"`
	WorkerUID         int64         `mapstructure:"worker_uid"`
	WorkerGID         int64         `mapstructure:"worker_gid"`
}

// DevBroker configures the in-process development broker.
type DevBroker struct {
	Enabled    bool   `mapstructure:"enabled"`
	Addr       string `mapstructure:"addr"`
	Partitions int    `mapstructure:"partitions"`
}

// setting is one configuration key: its default and its help text. The
// table drives the viper defaults, the flags and the reference in docs/api.md.
type setting struct {
	key   string
	def   any
	help  string
	empty string // what an empty default means, for the reference table
}

var settings = []setting{
	{"listen", "127.0.0.1:8080", "address the HTTP API listens on", ""},
	{"data_dir", "./data", "directory for the SQLite database, the generated secret key and API token, and the dev broker's data", ""},
	{"database_url", "", "`sqlite://<path>` or `postgres://user@host:port/db`", "`sqlite://<data_dir>/soarkafka.db`"},
	{"api_token", "", "token the REST API requires (header `ph-auth-token` or `Authorization: Bearer`), at least 16 characters", "generated into `<data_dir>/api-token` on first start"},
	{"secret_key", "", "32-byte key (base64 or hex) that encrypts asset secrets at rest; every replica must use the same", "generated into `<data_dir>/secret.key` on first start"},
	{"max_body_bytes", int64(10 << 20), "largest request body accepted; larger gets 413", ""},
	{"shutdown_timeout", 30 * time.Second, "how long a SIGTERM waits for running requests", ""},
	{"log_level", "info", "`debug`, `info`, `warn` or `error`", ""},
	{"log_format", "text", "`text` or `json`", ""},
	{"dev_broker.enabled", false, "start the in-process development Kafka broker (also `--dev-broker`)", ""},
	{"dev_broker.addr", "127.0.0.1:9092", "address of the development broker", ""},
	{"dev_broker.partitions", 1, "partitions of topics the development broker creates on first use", ""},
	{"parser.memory_limit_mb", int64(512), "memory limit (RLIMIT_DATA) of each parser worker process, in MiB", ""},
	{"parser.timeout", 10 * time.Second, "deadline of each parser call (load included); the worker is killed past it", ""},
	{"parser.max_workers", 8, "most parser worker processes at once, running and idle, for every parser, asset and playground call together", ""},
	{"parser.worker_idle_timeout", 60 * time.Second, "how long an idle parser worker is kept for its asset before it is stopped", ""},
	{"parser.max_worker_rss_mb", int64(128), "resident memory (RSS) in MiB past which a parser worker is replaced after its call", ""},
	{"parser.busy_wait", 5 * time.Second, "how long a parser call waits for a worker when `parser.max_workers` are running; then it fails with 503", ""},
	{"parser.worker_uid", int64(65534), "user id a parser worker drops to when the server runs as root (not 0); ignored otherwise", ""},
	{"parser.worker_gid", int64(65534), "group id a parser worker drops to when the server runs as root (not 0); ignored otherwise", ""},
	{"scheduler.enabled", true, "poll every asset whose `ingest.interval` is set, at that interval, and every asset whose `ingest.mode` is `continuous`, without pause; replicas sharing PostgreSQL may all run it (a lease makes one of them poll each turn, or poll a continuous asset while the others stand by)", ""},
	{"replica_name", "", "name of this process in poll leases, as the ingest status and logs show who polls", "host name and process id"},
	{"server.max_connections", 1024, "most HTTP connections served at once; more wait in the listen queue until one closes", ""},
	{"server.read_timeout", time.Minute, "time a request body may take to arrive in full (all routes but the records endpoint); past it the request is refused and its connection closed", ""},
	{"server.idle_read_timeout", time.Minute, "time the records endpoint waits for more of a streamed body before it ends the stream", ""},
	{"server.body_memory_budget", int64(64 << 20), "bytes of request bodies (by declared length; a chunked one counts as `max_body_bytes`) handled at once; a body larger than the budget is handled alone", ""},
	{"server.body_wait", 2 * time.Second, "how long a body waits for room in `server.body_memory_budget` before it is answered 503 with `Retry-After`", ""},
	{"network.allowed_hosts", []string{}, "hosts the Kafka clients of assets may connect to (brokers in `hosts`, brokers a cluster advertises, Kerberos KDCs): comma-separated `host`, `*.domain`, address or CIDR, each optionally with `:port` (`10.0.0.0/8:9092`, `[::1]:9092`); see docs/security.md", "empty: every host not denied"},
	{"network.denied_hosts", []string{}, "hosts no Kafka client of an asset may connect to, same grammar; checked against the address actually connected to, and wins over `network.allowed_hosts`; deny `169.254.169.254` and loopback in production", "empty: none denied"},
	{"files.allowed_dirs", []string{}, "absolute directories whose files the path fields of assets (`ca_cert`, `cert_file`, `key_file`, `kerberos.krb5_conf` as a path, `kerberos.keytab_path`, `kerberos.ccache_path`) may name, symbolic links resolved", "empty: every file path refused; inline PEM, keytab and krb5.conf text only"},
	{"audit.retention", 365 * 24 * time.Hour, "how long the audit trail keeps an event (pruned at most hourly, as changes are recorded)", ""},
	{"audit.trusted_proxies", []string{}, "addresses or CIDR ranges of reverse proxies whose `X-Forwarded-For` names the client address the audit trail records", "empty: the peer's address, always; `X-Forwarded-For` ignored"},
	{"console.password", "", "password that signs a person in to the web console, besides the API token; at least 12 characters; give it in the config file or the environment, not on the command line", "empty: the API token only"},
	{"console.idle_timeout", 30 * time.Minute, "a console session ends this long after its last request, or up to a minute later (1m to 24h; last seen is written at most once a minute); the assets list's own refresh does not count as activity", ""},
	{"metrics.public", false, "serve `/metrics` (Prometheus) without the API token, for a scraper inside a trusted network; when false it needs the token like every `/v1` route", ""},
}

// flagName is a key's command-line flag: dots and underscores become dashes.
func flagName(key string) string { return strings.NewReplacer(".", "-", "_", "-").Replace(key) }

// envName is a key's environment variable.
func envName(key string) string {
	return "SOARKAFKA_" + strings.ToUpper(strings.NewReplacer(".", "_").Replace(key))
}

// addFlags registers a flag for every setting on fs.
func addFlags(fs *pflag.FlagSet) {
	for _, s := range settings {
		help := s.help + " (" + envName(s.key) + ")"
		switch d := s.def.(type) {
		case string:
			fs.String(flagName(s.key), d, help)
		case bool:
			fs.Bool(flagName(s.key), d, help)
		case int:
			fs.Int(flagName(s.key), d, help)
		case int64:
			fs.Int64(flagName(s.key), d, help)
		case time.Duration:
			fs.Duration(flagName(s.key), d, help)
		case []string:
			fs.StringSlice(flagName(s.key), d, help)
		}
	}
	fs.Bool("dev-broker", false, "shorthand for --dev-broker-enabled")
}

// LoadConfig reads the configuration with precedence flags > environment >
// file > defaults, and validates it. file may be empty. env is the process
// environment as os.Environ returns it (injected so tests do not touch the
// real one).
func LoadConfig(file string, fs *pflag.FlagSet, env []string) (Config, error) {
	v := viper.New()
	for _, s := range settings {
		v.SetDefault(s.key, s.def)
	}
	if file != "" {
		v.SetConfigFile(file)
		if err := v.ReadInConfig(); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", file, err)
		}
	}
	// Environment: looked up from the injected list, key by key, so the
	// rule is the same for every key and nothing reads os.Getenv.
	envMap := map[string]string{}
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok {
			envMap[k] = val
		}
	}
	for _, s := range settings {
		if val, ok := envMap[envName(s.key)]; ok {
			v.Set(s.key, val)
		}
	}
	if fs != nil {
		for _, s := range settings {
			if f := fs.Lookup(flagName(s.key)); f != nil && f.Changed {
				if sv, ok := f.Value.(pflag.SliceValue); ok {
					v.Set(s.key, sv.GetSlice())
				} else {
					v.Set(s.key, f.Value.String())
				}
			}
		}
		if f := fs.Lookup("dev-broker"); f != nil && f.Changed {
			v.Set("dev_broker.enabled", f.Value.String())
		}
	}

	var c Config
	err := v.Unmarshal(&c, func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true
		dc.WeaklyTypedInput = true
	})
	if err != nil {
		return Config{}, fmt.Errorf("config: %s", unmarshalMessage(err))
	}
	if err := c.validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// unmarshalMessage turns mapstructure's messages into ones naming the key.
func unmarshalMessage(err error) string {
	msg := err.Error()
	msg = strings.ReplaceAll(msg, "decoding failed due to the following error(s):\n\n", "")
	msg = strings.ReplaceAll(msg, "'' has invalid keys: ", "unknown keys: ")
	return strings.TrimSpace(msg)
}

// validate checks every key and reports all bad ones at once.
func (c *Config) validate() error {
	var problems []string
	bad := func(key, format string, args ...any) {
		problems = append(problems, key+": "+fmt.Sprintf(format, args...))
	}
	if msg := hostPortProblem(c.Listen); msg != "" {
		bad("listen", "%s", msg)
	}
	if strings.TrimSpace(c.DataDir) == "" {
		bad("data_dir", "must not be empty")
	}
	scheme, path, _ := strings.Cut(c.DatabaseURL, "://")
	if c.DatabaseURL == "" {
		if strings.ContainsRune(c.DataDir, '?') {
			bad("data_dir", "%q holds a '?', which the SQLite database's path (data_dir/soarkafka.db) cannot; choose another directory, or set database_url", c.DataDir)
		}
		c.DatabaseURL = "sqlite://" + strings.TrimSuffix(filepath.ToSlash(c.DataDir), "/") + "/soarkafka.db"
	} else if strings.EqualFold(scheme, "sqlite") {
		// A file path, not a URL to parse: a relative path's first
		// folder is no host, and a path may hold spaces (store.Open reads
		// it the same way).
		if path == "" || path == ":memory:" || strings.ContainsRune(path, '?') {
			bad("database_url", "want sqlite://<path to a file>, without parameters (the server sets the pragmas)")
		}
	} else if u, err := url.Parse(c.DatabaseURL); err != nil {
		bad("database_url", "not a URL: %v", redactURLError(err))
	} else if u.Scheme != "sqlite" && u.Scheme != "postgres" && u.Scheme != "postgresql" {
		bad("database_url", "scheme %q not supported; use sqlite://<path> or postgres://user@host:port/db", u.Scheme)
	}
	if c.APIToken != "" && len(c.APIToken) < 16 {
		bad("api_token", "too short (%d characters); use at least 16, e.g. from: head -c 24 /dev/urandom | base64", len(c.APIToken))
	}
	if c.SecretKey != "" {
		if _, err := assets.ParseKey(c.SecretKey); err != nil {
			bad("secret_key", "%v", err)
		}
	}
	if c.MaxBodyBytes < 1024 {
		bad("max_body_bytes", "%d is too small; use at least 1024", c.MaxBodyBytes)
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown_timeout", "must be positive (e.g. 30s)")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "%q is not one of debug, info, warn, error", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log_format", "%q is not one of text, json", c.LogFormat)
	}
	if msg := hostPortProblem(c.DevBroker.Addr); msg != "" {
		bad("dev_broker.addr", "%s", msg)
	}
	if c.Parser.MemoryLimitMB < 256 {
		bad("parser.memory_limit_mb", "%d is too small; a parser worker needs at least 256", c.Parser.MemoryLimitMB)
	} else if c.Parser.MemoryLimitMB > maxParserMemoryMB {
		// In bytes (<< 20) a larger value would wrap around to a
		// negative limit.
		bad("parser.memory_limit_mb", "%d is too large; give at most %d (1 TiB)", c.Parser.MemoryLimitMB, maxParserMemoryMB)
	}
	if c.Parser.Timeout < 100*time.Millisecond {
		bad("parser.timeout", "%s is too short; use at least 100ms", c.Parser.Timeout)
	}
	if c.Audit.Retention < time.Hour {
		bad("audit.retention", "%s is too short; keep events at least 1h (e.g. 8760h, a year)", c.Audit.Retention)
	}
	if _, err := audit.ParseTrustedProxies(c.Audit.TrustedProxies); err != nil {
		bad("audit.trusted_proxies", "%v; give addresses or CIDR ranges such as 10.0.0.0/8", err)
	}
	if c.Server.MaxConnections < 1 {
		bad("server.max_connections", "%d: must be at least 1", c.Server.MaxConnections)
	}
	if c.Server.ReadTimeout < time.Second {
		bad("server.read_timeout", "%s is too short; use at least 1s", c.Server.ReadTimeout)
	}
	if c.Server.IdleReadTimeout < time.Second {
		bad("server.idle_read_timeout", "%s is too short; use at least 1s", c.Server.IdleReadTimeout)
	}
	if c.Server.BodyMemoryBudget < 1<<20 {
		bad("server.body_memory_budget", "%d is too small; use at least 1048576 (1 MiB)", c.Server.BodyMemoryBudget)
	}
	if c.Server.BodyWait < 0 {
		bad("server.body_wait", "%s: must not be negative", c.Server.BodyWait)
	}
	if c.Parser.MaxWorkers < 1 || c.Parser.MaxWorkers > 1024 {
		bad("parser.max_workers", "%d: use 1 to 1024 (each worker is a process of up to parser.memory_limit_mb)", c.Parser.MaxWorkers)
	}
	if c.Parser.WorkerIdleTimeout < time.Second {
		bad("parser.worker_idle_timeout", "%s is too short; use at least 1s", c.Parser.WorkerIdleTimeout)
	}
	if c.Parser.MaxWorkerRSSMB < 32 || c.Parser.MaxWorkerRSSMB > c.Parser.MemoryLimitMB {
		bad("parser.max_worker_rss_mb", "%d: use at least 32 and at most parser.memory_limit_mb (%d)", c.Parser.MaxWorkerRSSMB, c.Parser.MemoryLimitMB)
	}
	if c.Parser.BusyWait < 10*time.Millisecond || c.Parser.BusyWait > 5*time.Minute {
		bad("parser.busy_wait", "%s: use 10ms to 5m", c.Parser.BusyWait)
	}
	// Lists from the environment come comma-separated; spaces around
	// entries are not part of them.
	for _, list := range []*[]string{&c.Network.AllowedHosts, &c.Network.DeniedHosts, &c.Files.AllowedDirs} {
		var kept []string
		for _, e := range *list {
			if e = strings.TrimSpace(e); e != "" {
				kept = append(kept, e)
			}
		}
		*list = kept
	}
	if _, err := c.Access(); err != nil {
		problems = append(problems, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	for _, id := range []struct {
		key string
		v   int64
	}{{"parser.worker_uid", c.Parser.WorkerUID}, {"parser.worker_gid", c.Parser.WorkerGID}} {
		if id.v < 1 || id.v > 4294967294 {
			bad(id.key, "%d is not an unprivileged id; use one from 1 to 4294967294 (default 65534, nobody)", id.v)
		}
	}
	if c.Console.Password != "" && len(c.Console.Password) < 12 {
		bad("console.password", "too short (%d characters); use at least 12, or leave it empty to sign in with the API token", len(c.Console.Password))
	}
	if c.Console.IdleTimeout < time.Minute || c.Console.IdleTimeout > 24*time.Hour {
		bad("console.idle_timeout", "%s: use 1m to 24h (default 30m)", c.Console.IdleTimeout)
	}
	if c.DevBroker.Partitions < 1 {
		bad("dev_broker.partitions", "%d: must be at least 1", c.DevBroker.Partitions)
	}
	if len(problems) == 0 {
		return nil
	}
	sort.Strings(problems)
	return errors.New("config: " + strings.Join(problems, "; "))
}

// maxParserMemoryMB bounds parser.memory_limit_mb: 1 TiB.
const maxParserMemoryMB = 1 << 20

func hostPortProblem(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("%q is not host:port (e.g. 127.0.0.1:8080)", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Sprintf("%q: port must be a number from 0 to 65535", addr)
	}
	return ""
}

// redactURLError keeps a password in a database URL out of messages.
func redactURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return "malformed"
}

// ConfigReference renders the configuration keys as the table of docs/api.md.
func ConfigReference() string {
	var b strings.Builder
	b.WriteString("| key (YAML) | environment | flag | default | meaning |\n| --- | --- | --- | --- | --- |\n")
	for _, s := range settings {
		def := fmt.Sprintf("`%v`", s.def)
		if s.empty != "" {
			def = s.empty
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | `--%s` | %s | %s |\n", s.key, envName(s.key), flagName(s.key), def, s.help)
	}
	return b.String()
}
