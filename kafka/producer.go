package kafka

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/assets"
)

// ProducerOptions returns the kgo options of the asset's producer settings.
//
// Producers ask for topic auto-creation in their metadata requests, as the
// Java client does, so that the broker's own policy
// (auto.create.topics.enable) decides; a broker that does not create topics
// answers UNKNOWN_TOPIC_OR_PARTITION, which fails the send after kgo's
// unknown-topic retries.
func ProducerOptions(cfg assets.Config) []kgo.Opt {
	p := cfg.Producer
	opts := []kgo.Opt{
		kgo.AllowAutoTopicCreation(),
		kgo.ProducerLinger(time.Duration(p.LingerMS) * time.Millisecond),
		// A batch holds at least one record, so the batch limit is the
		// record limit; the record check before sending gives the clearer
		// message (see RecordSize).
		kgo.ProducerBatchMaxBytes(int32(p.MaxMessageBytes)),
		// Not RecordDeliveryTimeout: kgo measures it from the record's
		// timestamp, so a user-given timestamp in the past would fail the
		// record at once, and with it every record buffered for that
		// partition, other actions' included. Retries bound failures.
		kgo.RecordRetries(DefaultRecordRetries),
		kgo.UnknownTopicRetries(2),
		// A topic that failed to load once stays in the client's
		// metadata requests, which then come at most every min age
		// (kgo's default 5s): the next post to a missing topic waited
		// two such rounds, ~10s, to learn it is missing.
		kgo.MetadataMinAge(time.Second),
		kgo.RecordPartitioner(explicitPartitioner{kgo.StickyKeyPartitioner(nil)}),
		// Bound what a client holds in memory, whatever the size of its
		// records: Produce blocks (backpressure) past either limit.
		kgo.MaxBufferedRecords(DefaultMaxBufferedRecords),
		kgo.MaxBufferedBytes(int(max(DefaultMaxBufferedBytes, 2*p.MaxMessageBytes))),
	}
	switch p.Acks {
	case assets.AcksLeader:
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()))
	case assets.AcksNone:
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()))
	default:
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	}
	if !p.Idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	switch p.Compression {
	case "gzip":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.GzipCompression()))
	case "snappy":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.SnappyCompression()))
	case "lz4":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.Lz4Compression()))
	case "zstd":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	default:
		opts = append(opts, kgo.ProducerBatchCompression(kgo.NoCompression()))
	}
	return opts
}

type explicitKey struct{}

// ExplicitPartition is the context a record carries (this very value, not
// one derived from it) when its Partition was chosen by the user; the producers of this package send such records to
// that partition and let kgo's default partitioner (murmur2 of the key, as
// the Java client; sticky without a key) choose for the others.
var ExplicitPartition = context.WithValue(context.Background(), explicitKey{}, true)

// isExplicit reports whether r's Context is ExplicitPartition itself. It
// compares, rather than looking the key up: kgo gives a record without a
// Context the one it was produced under, and looking a key up in a request's
// context walks its whole chain, once per record.
func isExplicit(r *kgo.Record) bool {
	return r.Context == ExplicitPartition
}

type explicitPartitioner struct{ base kgo.Partitioner }

func (p explicitPartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	return &explicitTopicPartitioner{base: p.base.ForTopic(topic)}
}

type explicitTopicPartitioner struct{ base kgo.TopicPartitioner }

func (p *explicitTopicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	return isExplicit(r) || p.base.RequiresConsistency(r)
}

func (p *explicitTopicPartitioner) Partition(r *kgo.Record, n int) int {
	if isExplicit(r) {
		return int(r.Partition) // out of range: kgo fails the record
	}
	return p.base.Partition(r, n)
}

// OnNewBatch keeps the sticky partitioner sticky (KIP-480).
func (p *explicitTopicPartitioner) OnNewBatch() {
	if nb, ok := p.base.(kgo.TopicPartitionerOnNewBatch); ok {
		nb.OnNewBatch()
	}
}

// Limits of what one producer buffers before Produce blocks; the byte limit
// grows to twice producer.max_message_bytes, so the largest record allowed
// always fits.
const (
	DefaultMaxBufferedRecords = 10000
	DefaultMaxBufferedBytes   = 16 << 20
)

// DefaultRecordRetries bounds how often a batch is sent again after a
// failure (about 20 s of kgo's back-off) before its records fail. An
// idempotent batch whose outcome is unknown (sent, no answer) is retried
// past it: failing it could write it twice.
const DefaultRecordRetries = 10

// RecordSize is the size of a batch holding only r, as the producer counts
// it against its batch limit (ProducerBatchMaxBytes, our max_message_bytes):
// key, value and headers plus the record and batch framing. It is what Kafka
// counts against max.message.bytes, plus the 4-byte length prefix kgo
// counts too, so a record within the limit is never refused by kgo itself.
// Counting key, value and headers alone let a record within the limit be
// refused by kgo with MESSAGE_TOO_LARGE, reported as the broker's doing.
func RecordSize(r *kgo.Record) int {
	l := 1 + // attributes
		1 + // timestamp delta: 0 for a batch's first record
		1 + // offset delta: 0
		kbin.VarintLen(int32(len(r.Key))) + len(r.Key) +
		kbin.VarintLen(int32(len(r.Value))) + len(r.Value) +
		kbin.VarintLen(int32(len(r.Headers)))
	for _, h := range r.Headers {
		l += kbin.VarintLen(int32(len(h.Key))) + len(h.Key) +
			kbin.VarintLen(int32(len(h.Value))) + len(h.Value)
	}
	return recordBatchOverhead + kbin.VarintLen(int32(l)) + l
}

// recordBatchOverhead is the wire size of a record batch with no records
// (61 bytes) and its 4-byte length prefix in a produce request, as kgo
// counts it.
const recordBatchOverhead = 4 + 61

// DefaultIdleTimeout is how long a pooled producer may go unused before the
// pool closes it.
const DefaultIdleTimeout = 5 * time.Minute

// Pool keeps one producer client per asset, so that post data costs a round
// trip and not a connection set-up (TCP, TLS, SASL, metadata) per action. A
// client is created on first use, rebuilt when the asset's configuration
// changes, and closed when the asset is evicted, when it has been idle for
// the idle timeout, or when the pool closes. A client being replaced or
// evicted while actions use it is closed when the last of them releases it.
type Pool struct {
	logger  *slog.Logger
	access  Access
	idle    time.Duration
	now     func() time.Time
	mu      sync.Mutex
	entries map[string]*poolEntry
	// watches are the connection watches of the clients not yet closed,
	// retired ones included, for ConnectError.
	watches map[*kgo.Client]*connectWatch
	closed  bool
	stop    chan struct{}
	done    chan struct{}
}

type poolEntry struct {
	client      *kgo.Client
	fingerprint string
	refs        int
	lastUsed    time.Time
	retired     bool // replaced or evicted: close when refs reach 0
}

// PoolOption configures a Pool.
type PoolOption func(*Pool)

// WithAccess builds the pool's clients through a (the host and file
// policies); the zero Access by default.
func WithAccess(a Access) PoolOption { return func(p *Pool) { p.access = a } }

// WithIdleTimeout closes clients unused for d, overriding DefaultIdleTimeout.
func WithIdleTimeout(d time.Duration) PoolOption { return func(p *Pool) { p.idle = d } }

// NewPool returns a pool and starts its idle sweeper, which Close stops.
func NewPool(logger *slog.Logger, opts ...PoolOption) *Pool {
	p := &Pool{logger: logger, idle: DefaultIdleTimeout, now: time.Now,
		entries: map[string]*poolEntry{}, watches: map[*kgo.Client]*connectWatch{}, stop: make(chan struct{}), done: make(chan struct{})}
	for _, o := range opts {
		o(p)
	}
	go p.sweep()
	return p
}

// Fingerprint identifies a configuration: equal configurations share a
// client, a changed one gets a new client.
func Fingerprint(cfg assets.Config) string {
	b, _ := json.Marshal(cfg)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Acquire returns the producer for key (an asset name; "" keys the client by
// the configuration alone, for inline configurations) built from cfg, and a
// release function the caller must call once done with it.
func (p *Pool) Acquire(ctx context.Context, key string, cfg assets.Config) (*kgo.Client, func(), error) {
	fp := Fingerprint(cfg)
	if key == "" {
		key = "inline:" + fp
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, nil, context.Canceled
	}
	if e, ok := p.entries[key]; ok && e.fingerprint == fp {
		e.refs++
		e.lastUsed = p.now()
		p.mu.Unlock()
		return e.client, p.releaser(e), nil
	}
	p.mu.Unlock()

	// Build outside the lock: NewClient reads TLS files. The entry
	// exists before its client so that the client's login watch can
	// name it.
	e := &poolEntry{fingerprint: fp, refs: 1}
	watch := &connectWatch{failed: func(err error) { p.loginFailed(key, e, err) }}
	opts := append(ProducerOptions(cfg), kgo.WithHooks(watch))
	cl, err := p.access.NewClient(cfg, p.logger, opts...)
	if err != nil {
		return nil, nil, err
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		cl.Close()
		return nil, nil, context.Canceled
	}
	if old, ok := p.entries[key]; ok {
		if old.fingerprint == fp { // another caller built it meanwhile
			cl.Close()
			old.refs++
			old.lastUsed = p.now()
			return old.client, p.releaser(old), nil
		}
		p.retireLocked(key, old)
	}
	e.client, e.lastUsed = cl, p.now()
	p.entries[key] = e
	p.watches[cl] = watch
	p.logger.Debug("producer created", "key", safeKey(key))
	return cl, p.releaser(e), nil
}

// loginFailed retires the producer of key whose login to a broker failed:
// kept, it would retry the login (and log it) until it went idle, and the
// next send would meet its stale state rather than a clean error. The next
// Acquire builds a new client.
func (p *Pool) loginFailed(key string, e *poolEntry, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.entries[key] != e {
		return // already replaced, evicted or closed
	}
	p.logger.Warn("producer closed: its login to the brokers failed; the next send builds a new one", "key", safeKey(key), "error", err)
	p.retireLocked(key, e)
}

// ConnectError is why the producer cl cannot connect, when the reason is
// the configuration's or this server's and not the network's: a dial the
// host policy refused, a peer that is not Kafka or does not speak TLS, a
// failed TLS handshake, a refused login. Nil otherwise. kgo retries such a
// producer's sends until they time out; this says why they did.
func (p *Pool) ConnectError(cl *kgo.Client) error {
	p.mu.Lock()
	w := p.watches[cl]
	p.mu.Unlock()
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

// connectWatch notices a client's failed connections (kgo hooks): it keeps
// the last that the configuration or the server's policy caused, and calls
// failed once at the first refused login: a broker that refused the SASL
// login or the credentials behind it, or cut the connection instead of
// answering the login.
type connectWatch struct {
	once   sync.Once
	failed func(error)

	mu   sync.Mutex
	last error
}

func (w *connectWatch) fire(err error) {
	w.note(err)
	w.once.Do(func() { w.failed(err) })
}

func (w *connectWatch) note(err error) {
	w.mu.Lock()
	w.last = err
	w.mu.Unlock()
}

// OnBrokerConnect implements kgo.HookBrokerConnect; err is the dial's or
// the connection set-up's (ApiVersions, SASL).
func (w *connectWatch) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	var (
		denied   *HostDeniedError
		notKafka *NotKafkaError
		notTLS   *TLSNotSpokenError
		tlsErr   *TLSHandshakeError
		wantTLS  *TLSExpectedError
	)
	switch {
	case err == nil:
		w.note(nil) // connected: an earlier failure no longer explains anything
	case IsLoginFailure(err):
		w.fire(err)
	case errors.As(err, &denied), errors.As(err, &notKafka), errors.As(err, &notTLS), errors.As(err, &tlsErr), errors.As(err, &wantTLS):
		w.note(err)
	}
}

// OnBrokerE2E implements kgo.HookBrokerE2E: brokers (kfake among them) may
// reject credentials by closing the connection during SASLAuthenticate.
func (w *connectWatch) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	if key == int16(kmsg.SASLAuthenticate) && e2e.ReadErr != nil && !errors.Is(e2e.ReadErr, kgo.ErrClientClosed) && !errors.Is(e2e.ReadErr, context.Canceled) {
		w.fire(fmt.Errorf("the broker closed the connection during the SASL login: %w", e2e.ReadErr))
	}
}

// IsLoginFailure reports whether err is a refused login: SASL
// authentication failed, a mechanism the broker does not enable, a SASL
// exchange the broker did not expect, AWS credentials that could not be
// had, or the KDC refusing a Kerberos login.
func IsLoginFailure(err error) bool {
	var awsErr *AWSCredentialsError
	msg := err.Error()
	return errors.Is(err, kerr.SaslAuthenticationFailed) || errors.Is(err, kerr.UnsupportedSaslMechanism) ||
		errors.Is(err, kerr.IllegalSaslState) || errors.As(err, &awsErr) ||
		strings.Contains(msg, "KDC_ERR_") || strings.Contains(msg, "KRB_AP_ERR_")
}

func (p *Pool) releaser(e *poolEntry) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			e.refs--
			e.lastUsed = p.now()
			closeNow := e.retired && e.refs == 0
			if closeNow {
				delete(p.watches, e.client)
			}
			p.mu.Unlock()
			if closeNow {
				e.client.Close()
			}
		})
	}
}

// retireLocked removes e from the map and closes its client now, or when
// its last user releases it.
func (p *Pool) retireLocked(key string, e *poolEntry) {
	delete(p.entries, key)
	e.retired = true
	if e.refs == 0 {
		delete(p.watches, e.client)
		// Close flushes; never hold the lock through it.
		soarkafka.Go(context.Background(), p.logger, "close idle producer", e.client.Close)
	}
}

// Evict closes the client of key (an asset name), for an asset that was
// deleted or changed.
func (p *Pool) Evict(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.entries[key]; ok {
		p.retireLocked(key, e)
	}
}

// Len returns how many clients the pool holds.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.entries)
}

func (p *Pool) sweep() {
	defer close(p.done)
	tick := time.NewTicker(max(p.idle/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		p.sweepOnce()
	}
}

// sweepOnce closes the idle clients; a panic in it is logged and the next
// tick sweeps again.
func (p *Pool) sweepOnce() {
	defer soarkafka.Recover(context.Background(), p.logger, "producer pool sweep", nil)
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	for key, e := range p.entries {
		if e.refs == 0 && now.Sub(e.lastUsed) >= p.idle {
			p.logger.Debug("producer idle, closing", "key", safeKey(key))
			p.retireLocked(key, e)
		}
	}
}

// Close closes every client and stops the sweeper. Clients in use are
// closed when released. Safe to call twice.
func (p *Pool) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	var toClose []*kgo.Client
	for key, e := range p.entries {
		delete(p.entries, key)
		e.retired = true
		if e.refs == 0 {
			delete(p.watches, e.client)
			toClose = append(toClose, e.client)
		}
	}
	p.mu.Unlock()
	close(p.stop)
	<-p.done
	for _, cl := range toClose {
		cl.Close()
	}
}

// safeKey keeps an inline key's fingerprint, a hash over secrets too, out
// of logs.
func safeKey(key string) string {
	if strings.HasPrefix(key, "inline:") {
		return "inline"
	}
	return key
}
