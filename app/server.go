package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/net/netutil"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/actions"
	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/audit"
	"github.com/soarkafka/soarkafka/console"
	"github.com/soarkafka/soarkafka/deliver"
	"github.com/soarkafka/soarkafka/devbroker"
	"github.com/soarkafka/soarkafka/metrics"
	"github.com/soarkafka/soarkafka/parsers"
	"github.com/soarkafka/soarkafka/parsers/sandbox"
	"github.com/soarkafka/soarkafka/poll"
	"github.com/soarkafka/soarkafka/store"
	"github.com/soarkafka/soarkafka/web"
)

// Server is a running soarkafka: its store, its optional development
// broker and its HTTP listener. Build it with NewServer, run it with Run,
// which closes everything when its context ends.
type Server struct {
	cfg    Config
	logger *slog.Logger
	db     *store.DB
	broker *devbroker.Broker
	runner *actions.Runner
	poller *poll.Poller
	assets *assets.Service
	engine *parsers.Engine
	// metrics is this server's own registry, served on /metrics.
	metrics *metrics.Metrics
	// scheduler polls the scheduled assets; nil when scheduler.enabled
	// is false.
	scheduler *poll.Scheduler
	// delivery runs a push worker per asset in push mode.
	delivery *deliver.Service
	ln       net.Listener
	http     *http.Server
}

// NewServer opens the store (migrating it), loads or creates the secret key
// and API token, starts the development broker when asked, and binds the
// listener. On error, whatever was opened is closed.
func NewServer(ctx context.Context, cfg Config, logger *slog.Logger) (s *Server, err error) {
	s = &Server{cfg: cfg, logger: logger}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data_dir %s: %w", cfg.DataDir, err)
	}
	key, err := secretKey(cfg, logger)
	if err != nil {
		return nil, err
	}
	sealer, err := assets.NewSealer(key)
	if err != nil {
		return nil, fmt.Errorf("secret_key: %w", err)
	}
	token, err := apiToken(cfg, logger)
	if err != nil {
		return nil, err
	}

	if s.db, err = store.Open(ctx, cfg.DatabaseURL, logger); err != nil {
		return nil, fmt.Errorf("database_url: %w", err)
	}
	if err := s.db.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("migrate database: %w", err)
	}

	if cfg.DevBroker.Enabled {
		s.broker, err = devbroker.Start(ctx, devbroker.Config{
			Addr:       cfg.DevBroker.Addr,
			DataDir:    filepath.Join(cfg.DataDir, "devbroker"),
			Partitions: cfg.DevBroker.Partitions,
		}, logger)
		if err != nil {
			return nil, fmt.Errorf("dev broker: %w", err)
		}
	}

	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("locate the binary for parser workers: %w", err)
	}
	s.engine = parsers.NewEngine(poolConfig(cfg.Parser, exe, logger))
	s.metrics = metrics.New(metrics.WithLogger(logger))
	if cfg.Metrics.Public {
		logger.Info("/metrics is served without the API token (metrics.public)")
	}
	parserService := parsers.NewService(s.db, s.engine)
	assetService := assets.NewService(s.db, sealer, assets.WithParsers(parserService), assets.WithLogger(logger))
	s.assets = assetService
	s.delivery = deliver.NewService(s.db, assetService, logger, deliver.WithObserver(s.metrics))
	pollOpts := []poll.Option{poll.WithRecorder(s.metrics),
		// A push asset's worker starts on each batch as it commits.
		poll.WithOutboxWritten(s.delivery.Wake),
		// A push asset's polls wait while delivery.max_pending of its
		// containers wait for the SOAR.
		poll.WithBackpressure(deliver.Backpressure{Store: s.db}, 0)}
	if cfg.ReplicaName != "" {
		pollOpts = append(pollOpts, poll.WithReplica(cfg.ReplicaName))
	}
	access, err := cfg.Access()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if access.Files == nil {
		logger.Info("files.allowed_dirs is empty: assets must give TLS material, keytabs and krb5.conf inline, not as file paths")
	}
	pollOpts = append(pollOpts, poll.WithAccess(access))
	parserService.UseLiveSample(assetService, access, logger)
	poller := poll.New(s.db, parserService, logger, pollOpts...)
	s.poller = poller
	s.runner = actions.NewRunner(logger, actions.WithPoller(poller), actions.WithProduceRecorder(s.metrics), actions.WithAccess(access))
	if cfg.Scheduler.Enabled {
		s.scheduler = poll.NewScheduler(poller, assetService, logger, 0)
	}
	s.subscribeAssetChanges()
	// Validated with the configuration.
	trusted, _ := audit.ParseTrustedProxies(cfg.Audit.TrustedProxies)
	// One recorder for the API's changes and the console's.
	recorder := audit.NewRecorder(s.db, logger, cfg.Audit.Retention, trusted)
	handler := web.NewHandler(web.Options{
		Audit:        recorder,
		Poller:       poller,
		Logger:       logger,
		Assets:       assetService,
		Parsers:      parserService,
		Runner:       s.runner,
		Store:        s.db,
		Ingest:       s.db,
		Delivery:     s.delivery,
		APIToken:     token,
		MaxBodyBytes: cfg.MaxBodyBytes,
		Version:      Version(),
		// Prometheus on /metrics, behind the token unless metrics.public.
		Metrics:          s.metrics.Handler(),
		MetricsPublic:    cfg.Metrics.Public,
		ReadTimeout:      cfg.Server.ReadTimeout,
		IdleReadTimeout:  cfg.Server.IdleReadTimeout,
		BodyMemoryBudget: cfg.Server.BodyMemoryBudget,
		BodyWait:         cfg.Server.BodyWait,
		// The web console at "/": signed in with the API token (or
		// console.password); its sessions are kept in the store, so
		// every replica on the database knows them.
		Console: console.New(console.Options{
			Logger:      logger,
			Assets:      assetService,
			Ingest:      poller,
			Delivery:    s.delivery,
			Parsers:     parserService,
			AssetEditor: assetService,
			Audit:       recorder,
			AuditTrail:  s.db,
			Actions:     s.runner,
			Containers:  s.db,
			APIToken:    token,
			Password:    cfg.Console.Password,
			IdleTimeout: cfg.Console.IdleTimeout,
			Sessions:    s.db,
			Version:     Version(),
		}),
	})
	if s.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	// Past the cap, connections wait in the listen queue: each one held
	// costs a goroutine and buffers, and clients that hold many would
	// otherwise take the server's memory and file descriptors.
	s.ln = netutil.LimitListener(s.ln, cfg.Server.MaxConnections)
	s.http = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Addr is the address the API listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Metrics is what the server exposes on /metrics: the recorder to give the
// poller and post data.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// BrokerAddr is the development broker's address, "" when it is off.
func (s *Server) BrokerAddr() string {
	if s.broker == nil {
		return ""
	}
	return s.broker.Addr()
}

// Run serves until ctx ends, then shuts down gracefully: running requests
// get shutdown_timeout to finish, then the broker and the store close.
func (s *Server) Run(ctx context.Context) error {
	defer s.close()
	s.logger.Info("soarkafka listening", "addr", s.Addr(), "version", Version(), "database", redactDatabaseURL(s.cfg.DatabaseURL))
	errc := make(chan error, 1)
	go func() {
		// net/http stops a handler's panic itself; this is for Serve's own.
		defer soarkafka.Recover(ctx, s.logger, "http server", func(e *soarkafka.PanicError) { errc <- e })
		errc <- s.http.Serve(s.ln)
	}()
	schedCtx, stopScheduler := context.WithCancel(context.WithoutCancel(ctx))
	defer stopScheduler()
	schedDone := make(chan struct{})
	if s.scheduler != nil {
		go func() {
			defer close(schedDone)
			// The scheduler contains every asset's panics; this is for its
			// own: without it the API would keep serving, so it is logged
			// and the polls stop until a restart.
			defer soarkafka.Recover(ctx, s.logger, "scheduler", nil)
			s.scheduler.Run(schedCtx)
		}()
	} else {
		close(schedDone)
	}
	deliveryCtx, stopDelivery := context.WithCancel(context.WithoutCancel(ctx))
	defer stopDelivery()
	deliveryDone := make(chan struct{})
	go func() {
		defer close(deliveryDone)
		// Each worker contains its own panics; this is for the service's.
		defer soarkafka.Recover(ctx, s.logger, "delivery", nil)
		s.delivery.Run(deliveryCtx)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	s.logger.Info("shutting down", "timeout", s.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	// Scheduled polls stop reading and store the batch they hold; its
	// transaction ends either way, so no half batch is ever left.
	stopScheduler()
	select {
	case <-schedDone:
	case <-sctx.Done():
		s.logger.Warn("scheduled polls did not stop within shutdown_timeout; their uncommitted batches are read again by the next poll")
	}
	// Requests in flight to the SOAR are cancelled; their rows stay
	// marked sending and are checked against the SOAR by the next worker.
	stopDelivery()
	select {
	case <-deliveryDone:
	case <-sctx.Done():
		s.logger.Warn("push delivery did not stop within shutdown_timeout")
	}
	if err := s.http.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http server: %w", err)
	}
	s.logger.Info("stopped")
	return nil
}

func (s *Server) close() {
	if s.ln != nil {
		_ = s.ln.Close()
	}
	if s.poller != nil {
		s.poller.Close() // the clients the ingest status keeps
	}
	if s.runner != nil {
		s.runner.Close() // flushes pooled producers while the broker is still up
	}
	if s.engine != nil {
		s.engine.Close()
	}
	if s.broker != nil {
		if err := s.broker.Close(); err != nil {
			s.logger.Error("close dev broker", "err", err)
		}
	}
	if s.db != nil {
		if err := s.db.Close(); err != nil {
			s.logger.Error("close store", "err", err)
		}
	}
}

// secretKey returns the key that seals asset secrets: secret_key when set,
// else the data directory's secret.key, created on first start.
func secretKey(cfg Config, logger *slog.Logger) ([]byte, error) {
	if cfg.SecretKey != "" {
		return assets.ParseKey(cfg.SecretKey)
	}
	path := filepath.Join(cfg.DataDir, "secret.key")
	created, content, err := readOrCreate(path, func() (string, error) {
		k, err := assets.NewKey()
		return base64.StdEncoding.EncodeToString(k), err
	})
	if err != nil {
		return nil, fmt.Errorf("secret_key: %w", err)
	}
	if created {
		logger.Warn("generated a secret key for asset secrets; back it up, and give every replica the same secret_key", "path", path)
		if !strings.HasPrefix(cfg.DatabaseURL, "sqlite:") {
			logger.Warn("the database is shared but the secret key is local: set secret_key on every replica")
		}
	}
	key, err := assets.ParseKey(content)
	if err != nil {
		return nil, fmt.Errorf("secret_key: %s: %w", path, err)
	}
	return key, nil
}

// apiToken returns the API token: api_token when set, else the data
// directory's api-token, created on first start.
func apiToken(cfg Config, logger *slog.Logger) (string, error) {
	if cfg.APIToken != "" {
		return cfg.APIToken, nil
	}
	path := filepath.Join(cfg.DataDir, "api-token")
	created, tok, err := readOrCreate(path, func() (string, error) {
		b := make([]byte, 24)
		_, err := rand.Read(b)
		return base64.RawURLEncoding.EncodeToString(b), err
	})
	if err != nil {
		return "", fmt.Errorf("api_token: %w", err)
	}
	tok = strings.TrimSpace(tok)
	if len(tok) < 16 {
		return "", fmt.Errorf("api_token: %s holds %d characters; use at least 16", path, len(tok))
	}
	if created {
		logger.Info("generated an API token", "path", path)
	}
	return tok, nil
}

// readOrCreate returns the content of path, creating it first with mode
// 0600 from gen when it does not exist. O_EXCL makes two processes starting
// at once agree on one value.
func readOrCreate(path string, gen func() (string, error)) (created bool, content string, err error) {
	if b, err := os.ReadFile(path); err == nil {
		return false, string(b), nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, "", err
	}
	v, err := gen()
	if err != nil {
		return false, "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		b, err := os.ReadFile(path)
		return false, string(b), err
	} else if err != nil {
		return false, "", err
	}
	if _, err := io.WriteString(f, v+"\n"); err != nil {
		f.Close()
		return false, "", err
	}
	return true, v, f.Close()
}

// redactDatabaseURL hides a password in a database URL for logs.
func redactDatabaseURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		if user, _, hasPass := strings.Cut(rest[:at], ":"); hasPass {
			return scheme + "://" + user + ":xxxxx@" + rest[at+1:]
		}
	}
	return u
}

// poolConfig is the parser worker pool as the parser.* keys set it.
func poolConfig(c Parser, exe string, logger *slog.Logger) sandbox.PoolConfig {
	return sandbox.PoolConfig{
		Worker: sandbox.Config{
			Exe: exe, Args: []string{"parser-worker"},
			MemoryLimit: c.MemoryLimitMB << 20, Timeout: c.Timeout,
			UID: uint32(c.WorkerUID), GID: uint32(c.WorkerGID), Logger: logger,
		},
		MaxWorkers:  c.MaxWorkers,
		IdleTimeout: c.WorkerIdleTimeout,
		MaxMemory:   c.MaxWorkerRSSMB << 20,
		BusyWait:    c.BusyWait,
	}
}
