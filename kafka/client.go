// Package kafka owns building franz-go clients from an asset configuration:
// the security protocol, TLS (CA, client certificate, hostname verification)
// and SASL authentication. Nothing outside this package chooses a dialer, a
// SASL mechanism or a TLS setting for a Kafka connection, nor dials,
// handshakes or encodes a Kafka request itself: test connectivity's
// probing steps are Access.Probe, which reports typed Steps for the caller
// to word.
//
// SASL mechanisms are chosen from a table keyed by the asset's
// sasl_mechanism (see SASLMechanism); GSSAPI/Kerberos and AWS_MSK_IAM are
// added there as entries, with no change to ClientOptions or NewClient.
package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/soarkafka/soarkafka/assets"
)

// Defaults of the clients this package builds. Callers override them by
// passing their own kgo options after ClientOptions (later options win).
const (
	// ClientID is the client id sent with every request, so broker logs
	// and quotas show which connections are ours. kgo's default is "kgo".
	ClientID = "soarkafka"

	// DefaultDialTimeout bounds a TCP connect plus TLS handshake to one
	// broker. kgo's default is the same 10s; it is set explicitly so the
	// bound does not move under us with a kgo upgrade.
	DefaultDialTimeout = 10 * time.Second

	// DefaultRequestTimeoutOverhead bounds a request without its own
	// timeout field (metadata, SASL, list offsets), and is added on top
	// of the timeout of requests that have one (produce, fetch). A
	// broker that accepts a connection and never answers costs this
	// long, then the connection is killed. kgo's default is 10s.
	DefaultRequestTimeoutOverhead = 10 * time.Second

	// DefaultRetryTimeout bounds how long a request is retried on
	// retryable errors before its error is returned. kgo's default is
	// 30s for most requests (unbounded for group joins); an action wants
	// an answer within the SOAR's own action timeout.
	DefaultRetryTimeout = 30 * time.Second
)

// Access is what this server lets an asset's configuration reach: the
// hosts its clients may connect to (network.allowed_hosts and
// network.denied_hosts) and the directories its path fields may name
// (files.allowed_dirs). Every client, dial and file read of this package
// goes through one; the zero value allows every host and no file path.
type Access struct {
	Hosts *HostPolicy
	Files *FilePolicy
}

// MinStepTimeout is the least StepTimeout: a TLS and SASL login over a
// wide-area link takes more than the shortest asset timeout allowed.
const MinStepTimeout = time.Second

// StepTimeout bounds each network step of a client for the asset: a dial
// with its TLS handshake, a request without its own timeout, and in polls
// and samples the retries of one request. It is the asset's timeout, at
// least MinStepTimeout and at most DefaultDialTimeout, so an action against
// a broker that does not answer ends within its asset's timeout.
func StepTimeout(cfg assets.Config) time.Duration {
	d := cfg.PollTimeout()
	if d <= 0 {
		return DefaultDialTimeout
	}
	return min(max(d, MinStepTimeout), DefaultDialTimeout)
}

// ClientOptions returns the kgo options that connect to the asset's brokers
// as the asset says: seed brokers from hosts, TLS from use_ssl/ca_cert/
// cert_file/key_file, SASL from sasl_mechanism/username/password, client id
// ClientID, the timeouts above (the dial and request overhead bounded by
// StepTimeout), and logging to logger (nil: no logging).
//
// Every connection is dialled by this package: through the host policy,
// with the TLS handshake bounded by StepTimeout and worded for a port that
// does not speak TLS, and read so that a peer that is not a Kafka broker
// fails with NotKafkaError without any of its bytes showing. A caller's
// kgo.DialTimeout has no effect; a context deadline on a request bounds
// its dials too.
//
// Topic auto-creation is left off (kgo's default): a metadata request from
// these clients never creates a topic.
//
// An error is a *soarkafka.Error with code EINVALID that names the field at
// fault and the fix (an unusable ca_cert, a key that does not match its
// certificate, an unknown sasl_mechanism).
func (a Access) ClientOptions(cfg assets.Config, logger *slog.Logger) ([]kgo.Opt, error) {
	step := StepTimeout(cfg)
	tc, err := a.TLSConfig(cfg)
	if err != nil {
		return nil, err
	}
	plaintext := assets.ProtocolPlaintext
	if cfg.SASL() {
		plaintext = assets.ProtocolSASLPlaintext
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers()...),
		kgo.ClientID(ClientID),
		// The dialer clones tc per dial and sets ServerName to the
		// broker's host, so every broker the cluster advertises is
		// verified by its name.
		kgo.Dialer(a.brokerDialer(tc, plaintext, step)),
		kgo.RequestTimeoutOverhead(step),
		kgo.RetryTimeout(DefaultRetryTimeout),
	}
	if logger != nil {
		l := NewLogger(logger)
		opts = append(opts, kgo.WithLogger(l), kgo.WithHooks(l))
	}
	mech, err := a.SASLMechanism(cfg)
	if err != nil {
		return nil, err
	}
	if mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}
	return opts, nil
}

// NewClient returns a kgo client for the asset: ClientOptions followed by
// extra, so extra overrides the defaults (e.g. kgo.ConsumeTopics,
// kgo.RetryTimeout). The client connects lazily: an unreachable broker or a
// bad password shows on the first request, not here. The caller closes it.
func (a Access) NewClient(cfg assets.Config, logger *slog.Logger, extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := a.ClientOptions(cfg, logger)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka: new client: %w", err)
	}
	return cl, nil
}

// DefaultLogRepeatWindow is how long a client's Logger holds back a line
// (info and above) it has just written before writing it again: a client that
// cannot connect or log in retries every few seconds, each time with the
// same lines.
const DefaultLogRepeatWindow = time.Minute

// maxHeldLines bounds the distinct lines a Logger remembers; past it, new
// lines are written as they come.
const maxHeldLines = 64

// Logger adapts a *slog.Logger to kgo.Logger. kgo's levels map to slog's
// one to one (kgo Info is slog Info). Records carry component=kafka.
//
// An info, warning or error line identical to one written less than the
// repeat window ago (same level, message and values) is counted rather
// than written; the
// next time it comes after the window, or when the client closes, one line
// says how often it repeated ("repeated": N). One Logger serves one client
// (it is a kgo.HookClientClosed), so each client's lines are counted apart.
//
// kgo's own log lines carry broker ids, addresses, topics and mechanism
// names, never SASL credentials or key material; nothing here adds any.
type Logger struct {
	l      *slog.Logger
	window time.Duration
	now    func() time.Time

	mu   sync.Mutex
	held map[string]*heldLine
}

type heldLine struct {
	level    slog.Level
	msg      string
	keyvals  []any
	since    time.Time
	repeated int
}

// NewLogger returns a kgo.Logger that writes to l.
func NewLogger(l *slog.Logger) *Logger {
	return &Logger{l: l.With("component", "kafka"), window: DefaultLogRepeatWindow, now: time.Now, held: map[string]*heldLine{}}
}

// Level reports the most verbose kgo level the slog handler is enabled for,
// so kgo skips building log lines nobody keeps.
func (g *Logger) Level() kgo.LogLevel {
	ctx := context.Background()
	switch {
	case g.l.Enabled(ctx, slog.LevelDebug):
		return kgo.LogLevelDebug
	case g.l.Enabled(ctx, slog.LevelInfo):
		return kgo.LogLevelInfo
	case g.l.Enabled(ctx, slog.LevelWarn):
		return kgo.LogLevelWarn
	case g.l.Enabled(ctx, slog.LevelError):
		return kgo.LogLevelError
	}
	return kgo.LogLevelNone
}

// Log writes one kgo log line, or counts it as a repeat.
func (g *Logger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	var l slog.Level
	switch level {
	case kgo.LogLevelError:
		l = slog.LevelError
	case kgo.LogLevelWarn:
		l = slog.LevelWarn
	case kgo.LogLevelInfo:
		l = slog.LevelInfo
	case kgo.LogLevelDebug:
		l = slog.LevelDebug
	default:
		return
	}
	if l < slog.LevelInfo { // debug is asked for, repeats and all
		g.l.Log(context.Background(), l, msg, keyvals...)
		return
	}
	key := fmt.Sprint(l, msg, keyvals)
	now := g.now()
	g.mu.Lock()
	h, ok := g.held[key]
	var summary *heldLine
	switch {
	case ok && now.Sub(h.since) < g.window:
		h.repeated++
		g.mu.Unlock()
		return
	case ok:
		if h.repeated > 0 {
			summary = &heldLine{level: h.level, msg: h.msg, keyvals: h.keyvals, repeated: h.repeated}
		}
		h.since, h.repeated = now, 0
	default:
		g.evictLocked(now)
		if len(g.held) < maxHeldLines {
			g.held[key] = &heldLine{level: l, msg: msg, keyvals: keyvals, since: now}
		}
	}
	g.mu.Unlock()
	if summary != nil {
		g.writeSummary(summary)
	}
	g.l.Log(context.Background(), l, msg, keyvals...)
}

// evictLocked forgets lines whose window passed without a repeat, and
// writes nothing: a line with repeats is summarised when it comes again or
// when the client closes.
func (g *Logger) evictLocked(now time.Time) {
	if len(g.held) < maxHeldLines {
		return
	}
	for k, h := range g.held {
		if h.repeated == 0 && now.Sub(h.since) >= g.window {
			delete(g.held, k)
		}
	}
}

func (g *Logger) writeSummary(h *heldLine) {
	g.l.Log(context.Background(), h.level, h.msg, append(append([]any{}, h.keyvals...), "repeated", h.repeated, "window", g.window.String())...)
}

// Flush writes the repeat count of every line held back, and forgets them.
func (g *Logger) Flush() {
	g.mu.Lock()
	var out []*heldLine
	for _, h := range g.held {
		if h.repeated > 0 {
			out = append(out, h)
		}
	}
	g.held = map[string]*heldLine{}
	g.mu.Unlock()
	for _, h := range out {
		g.writeSummary(h)
	}
}

// OnClientClosed implements kgo.HookClientClosed: the client's repeats are
// told when it closes.
func (g *Logger) OnClientClosed(*kgo.Client) { g.Flush() }
