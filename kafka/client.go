// Package kafka owns building franz-go clients from an asset configuration:
// the security protocol, TLS (CA, client certificate, hostname verification)
// and SASL authentication. Nothing outside this package chooses a dialer, a
// SASL mechanism or a TLS setting for a Kafka connection.
//
// SASL mechanisms are chosen from a table keyed by the asset's
// sasl_mechanism (see SASLMechanism); GSSAPI/Kerberos and AWS_MSK_IAM are
// added there as entries, with no change to ClientOptions or NewClient.
package kafka

import (
	"context"
	"fmt"
	"log/slog"
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

// ClientOptions returns the kgo options that connect to the asset's brokers
// as the asset says: seed brokers from hosts, TLS from use_ssl/ca_cert/
// cert_file/key_file, SASL from sasl_mechanism/username/password, client id
// ClientID, the timeouts above, and logging to logger (nil: no logging).
//
// Topic auto-creation is left off (kgo's default): a metadata request from
// these clients never creates a topic.
//
// An error is a *soarkafka.Error with code EINVALID that names the field at
// fault and the fix (an unreadable ca_cert, a key that does not match its
// certificate, an unknown sasl_mechanism).
func ClientOptions(cfg assets.Config, logger *slog.Logger) ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers()...),
		kgo.ClientID(ClientID),
		kgo.DialTimeout(DefaultDialTimeout),
		kgo.RequestTimeoutOverhead(DefaultRequestTimeoutOverhead),
		kgo.RetryTimeout(DefaultRetryTimeout),
	}
	if logger != nil {
		opts = append(opts, kgo.WithLogger(NewLogger(logger)))
	}
	tc, err := TLSConfig(cfg)
	if err != nil {
		return nil, err
	}
	if tc != nil {
		// kgo clones tc per dial and sets ServerName to the broker's host,
		// so every broker the cluster advertises is verified by its name.
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	mech, err := SASLMechanism(cfg)
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
// kgo.DialTimeout). The client connects lazily: an unreachable broker or a
// bad password shows on the first request, not here. The caller closes it.
func NewClient(cfg assets.Config, logger *slog.Logger, extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := ClientOptions(cfg, logger)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka: new client: %w", err)
	}
	return cl, nil
}

// Logger adapts a *slog.Logger to kgo.Logger. kgo's levels map to slog's
// one to one (kgo Info is slog Info). Records carry component=kafka.
//
// kgo's own log lines carry broker ids, addresses, topics and mechanism
// names, never SASL credentials or key material; nothing here adds any.
type Logger struct{ l *slog.Logger }

// NewLogger returns a kgo.Logger that writes to l.
func NewLogger(l *slog.Logger) *Logger { return &Logger{l: l.With("component", "kafka")} }

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

// Log writes one kgo log line.
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
	g.l.Log(context.Background(), l, msg, keyvals...)
}
