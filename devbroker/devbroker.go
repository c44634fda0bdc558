// Package devbroker owns the in-process development Kafka broker that
// `soarkafka serve --dev-broker` starts, so that a newcomer can try the
// product without installing Kafka. It wraps franz-go's kfake: one broker,
// listening on exactly the configured address, creating topics on first use
// (for old clients too) and, given a data directory, keeping topics and
// records across restarts. Nothing about kfake leaks past this package.
package devbroker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DefaultAddr is the address the broker listens on when Config.Addr is
// empty: Kafka's usual port, on loopback only.
const DefaultAddr = "127.0.0.1:9092"

// Config configures the development broker. The zero value is a usable
// in-memory broker on DefaultAddr.
type Config struct {
	// Addr is the host:port to listen on (config key dev_broker.addr),
	// DefaultAddr if empty. Port 0 picks a free port; Broker.Addr reports
	// it. A host of 0.0.0.0, :: or empty listens on every interface but
	// advertises 127.0.0.1 to clients, so only clients on this machine can
	// produce and consume.
	Addr string

	// DataDir is the directory the broker keeps its topics, records and
	// consumer group offsets in, created if needed; empty keeps everything
	// in memory and loses it on Close. Only one broker may use a directory
	// at a time.
	DataDir string

	// Partitions is how many partitions a topic gets when the broker
	// creates it on first use (config key dev_broker.partitions), 1 if 0.
	// Topics already in DataDir keep their own count.
	Partitions int
}

// Broker is a running development broker. Its lifecycle is Close: the
// context given to Start bounds only the start itself.
type Broker struct {
	cluster *kfake.Cluster
	addr    string
	logger  *slog.Logger
	klog    *kfakeLogger

	closeOnce sync.Once
	closeErr  error
}

// Start starts the broker and returns once it accepts connections. ctx bounds
// only the start (binding the address); cancelling it afterwards stops
// nothing, call Close. A nil logger discards the logs.
//
// Records are written to DataDir as they are produced but not fsynced one by
// one (kfake's SyncWrites is off): a crash of soarkafka loses nothing that
// was acknowledged, a crash of the machine may lose the last moments of
// writes, which is the right trade for a development broker (and is real
// Kafka's default too). Close flushes and saves everything.
func Start(ctx context.Context, cfg Config, logger *slog.Logger) (*Broker, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("starting dev broker: %w", err)
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = 1
	}
	if cfg.Partitions < 0 {
		return nil, fmt.Errorf("dev_broker.partitions %d: must be at least 1", cfg.Partitions)
	}
	_, portStr, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("dev_broker.addr %q: not host:port (e.g. %s): %w", cfg.Addr, DefaultAddr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("dev_broker.addr %q: port must be a number from 0 to 65535", cfg.Addr)
	}

	// kfake listens on 127.0.0.1:<port> and advertises whatever address its
	// listener reports. We listen on the configured host instead and report
	// an address clients can dial, so the host:port in Metadata responses
	// is the listener's real one even with port 0.
	var listenErr error
	listen := func(network, _ string) (net.Listener, error) {
		ln, err := new(net.ListenConfig).Listen(ctx, network, cfg.Addr)
		if err != nil {
			listenErr = err
			return nil, err
		}
		return advertisedListener{Listener: ln, addr: dialable(ln.Addr())}, nil
	}

	klog := &kfakeLogger{logger: logger}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port), // one port, one broker; the listener above binds it
		kfake.ListenFn(listen),
		kfake.ClusterID("soarkafka-dev"),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(cfg.Partitions),
		kfake.WithLogger(klog),
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		if listenErr != nil {
			return nil, listenError(cfg.Addr, listenErr)
		}
		if cfg.DataDir != "" {
			return nil, fmt.Errorf("starting dev broker with data dir %s: %w", cfg.DataDir, err)
		}
		return nil, fmt.Errorf("starting dev broker: %w", err)
	}

	b := &Broker{cluster: cluster, logger: logger, klog: klog}
	b.addr = cluster.ListenAddrs()[0]
	cluster.ControlKey(int16(kmsg.Metadata), b.autoCreate)

	if host, _, _ := net.SplitHostPort(cfg.Addr); host == "" || net.ParseIP(host).IsUnspecified() {
		logger.Warn("dev broker listens on every interface but advertises loopback; clients on other machines can connect but not produce or consume",
			"listen", cfg.Addr, "addr", b.addr)
	}
	logger.Info("dev broker started", "addr", b.addr, "data_dir", cfg.DataDir)
	return b, nil
}

// Addr returns the host:port clients bootstrap from, with the real port when
// Config.Addr asked for port 0.
func (b *Broker) Addr() string { return b.addr }

// Close stops the broker and, with a DataDir, saves its state; it returns an
// error if saving failed. It is safe to call more than once and from several
// goroutines; later calls return the first call's result.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		b.klog.startClose()
		b.cluster.Close()
		b.closeErr = b.klog.endClose()
		if b.closeErr != nil {
			b.logger.Error("dev broker stopped", "addr", b.addr, "err", b.closeErr)
			return
		}
		b.logger.Info("dev broker stopped", "addr", b.addr)
	})
	return b.closeErr
}

// autoCreate is a Metadata control that makes topic auto-creation behave as
// on a real broker, then lets kfake answer the request as usual.
//
// Metadata v0–v3 have no AllowAutoTopicCreation field: a real broker creates
// the topics they name (auto.create.topics.enable), and older clients such
// as kafka-python 2.0.x rely on it, but kfake reads the missing field as
// false. Metadata v0 also has no null topic list: an empty one means every
// topic, which kfake reads as none.
//
// We create the topics through the cluster's CreateTopic rather than let the
// Metadata handler do it, because that path saves the topic to DataDir at
// once; the handler's creation is saved only on Close, so a crash would lose
// the topic and every record produced to it.
func (b *Broker) autoCreate(kreq kmsg.Request) (kmsg.Response, error, bool) {
	b.cluster.KeepControl()
	req, ok := kreq.(*kmsg.MetadataRequest)
	if !ok {
		return nil, nil, false
	}
	if req.Version < 4 && len(req.Topics) > 0 {
		req.AllowAutoTopicCreation = true
	}
	if req.Version == 0 && len(req.Topics) == 0 {
		req.Topics = nil
	}
	if !req.AllowAutoTopicCreation {
		return nil, nil, false
	}
	for _, rt := range req.Topics {
		if rt.Topic == nil || *rt.Topic == "" {
			continue
		}
		err := b.cluster.CreateTopic(*rt.Topic, -1, nil)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			// kfake's own handling still answers the client; we only lose
			// the early save.
			b.logger.Warn("dev broker: creating topic on first use", "topic", *rt.Topic, "err", err)
		}
	}
	return nil, nil, false
}

// listenError names the config key and the address, and the likely fix.
func listenError(addr string, err error) error {
	// Drop net.OpError's "listen tcp <addr>:" and os.SyscallError's
	// "bind:" prefixes; we say which address ourselves.
	var se *os.SyscallError
	var oe *net.OpError
	switch {
	case errors.As(err, &se):
		err = se.Err
	case errors.As(err, &oe):
		err = oe.Err
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("dev_broker.addr %s: %w (is Kafka or another soarkafka running? stop it or choose another port)", addr, err)
	}
	return fmt.Errorf("dev_broker.addr %s: %w", addr, err)
}

// advertisedListener reports addr as its address: kfake advertises the
// listener's address to clients in Metadata responses.
type advertisedListener struct {
	net.Listener
	addr net.Addr
}

func (l advertisedListener) Addr() net.Addr { return l.addr }

// dialable returns a listener's address as a client can dial it: an
// unspecified IP (every interface) becomes 127.0.0.1.
func dialable(a net.Addr) net.Addr {
	ta, ok := a.(*net.TCPAddr)
	if !ok || !ta.IP.IsUnspecified() {
		return a
	}
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: ta.Port}
}

// kfakeLogger routes kfake's logs into slog. kfake logs every request at
// info, so its info and debug lines go to slog's debug level and below:
// quiet unless the server runs at debug. While Close runs it also keeps the
// errors kfake logs, which is how kfake reports a failed save.
type kfakeLogger struct {
	logger *slog.Logger

	mu        sync.Mutex
	closing   bool
	closeErrs []error
}

func (l *kfakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	var sl slog.Level
	switch level {
	case kfake.LogLevelError:
		sl = slog.LevelError
		l.mu.Lock()
		if l.closing {
			l.closeErrs = append(l.closeErrs, fmt.Errorf(format, args...))
		}
		l.mu.Unlock()
	case kfake.LogLevelWarn:
		sl = slog.LevelWarn
	case kfake.LogLevelInfo:
		sl = slog.LevelDebug
	default:
		sl = slog.LevelDebug - 4
	}
	ctx := context.Background()
	if !l.logger.Enabled(ctx, sl) {
		return
	}
	l.logger.Log(ctx, sl, "dev broker: "+fmt.Sprintf(format, args...))
}

func (l *kfakeLogger) startClose() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closing = true
}

func (l *kfakeLogger) endClose() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closing = false
	if len(l.closeErrs) == 0 {
		return nil
	}
	return fmt.Errorf("closing dev broker: saving state: %w", errors.Join(l.closeErrs...))
}
