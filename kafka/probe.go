package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/assets"
)

// Steps of a probe, as Step.Name names them.
const (
	StepConfig   = "config"   // TLS files and SASL settings of the asset
	StepTCP      = "tcp"      // TCP connect to one host of hosts
	StepTLS      = "tls"      // TLS handshake with that host, and the broker accepting our client certificate
	StepKafka    = "kafka"    // a Kafka request to that host, after the SASL login
	StepMetadata = "metadata" // cluster metadata: brokers, controller, cluster id
	StepTopic    = "topic"    // the asset's topic: partitions, leaders, offsets
)

// FailureKind says what failed in a step where Err alone does not: which
// request of the topic step, or a verdict the probe reached itself. The
// zero value is a failure that Err describes.
type FailureKind string

const (
	// FailClient: the Kafka client could not be built from the asset.
	FailClient FailureKind = "client"
	// FailNotTLS: the TLS handshake failed because the port does not
	// speak TLS (its answer is not TLS, or it answers plaintext Kafka).
	FailNotTLS FailureKind = "not_tls"
	// FailPanic: probing the broker panicked. The step has no Name, Err
	// is the *soarkafka.PanicError, and it is the broker's only step.
	FailPanic FailureKind = "panic"

	FailClusterMetadata FailureKind = "cluster_metadata" // the cluster metadata request
	FailTopicMetadata   FailureKind = "topic_metadata"   // the topic's metadata request
	FailTopicMissing    FailureKind = "topic_missing"    // the topic does not exist
	FailTopicError      FailureKind = "topic_error"      // the cluster answered the topic with an error
	FailStartOffsets    FailureKind = "start_offsets"    // listing earliest offsets
	FailEndOffsets      FailureKind = "end_offsets"      // listing latest offsets
	FailPartitions      FailureKind = "partitions"       // some partitions have errors (see Partitions)
)

// Step is one step of a probe against one broker (tcp, tls, kafka) or
// against the cluster (metadata, topic). Err is nil when it passed; the
// other fields are the facts a caller needs to word a failure and the
// details a passed step found.
type Step struct {
	Name     string
	Broker   string // host:port of hosts, for the per-broker steps
	Duration time.Duration
	Err      error
	Kind     FailureKind

	// TimedOut: the failing operation ran out of time (the step's
	// deadline or a network timeout). Waited is how long it waited.
	TimedOut bool
	Waited   time.Duration

	// tls step: the name verified, whether the asset has a client
	// certificate and whether the broker asked for one.
	ServerName    string
	HaveCert      bool
	CertRequested bool
	TLSVersion    string

	// kafka step: the broker cut the connection during the SASL login
	// (brokers, kfake among them, may reject credentials that way), and
	// the mechanisms it offers when it refused the asset's.
	LoginCut bool
	Offered  []string

	// metadata step.
	ClusterID  string
	Controller *int32
	Brokers    []ProbeBroker

	// topic step.
	Topic      string
	Partitions []ProbePartition
}

// OK reports whether the step passed.
func (s Step) OK() bool { return s.Err == nil }

// ProbeBroker is a broker as the cluster advertises it.
type ProbeBroker struct {
	NodeID int32
	Host   string
	Port   int32
	Rack   string
}

// ProbePartition is one partition of the probed topic; an offset not
// learned is -1, and Error says why.
type ProbePartition struct {
	Partition      int32
	Leader         int32
	EarliestOffset int64
	LatestOffset   int64
	Error          string
}

// probeStepsPerRun bounds a whole probe in step timeouts: per host
// (checked in parallel) tcp, tls, kafka and the mechanism probe; then
// cluster metadata, topic metadata, start and end offsets; plus slack.
const probeStepsPerRun = 10

// Probe checks that the asset's brokers can be reached and logged in to,
// and that its topic exists, step by step:
//
//  1. the asset's TLS files and SASL settings (StepConfig, only when they
//     fail: nothing connects then);
//  2. every host of hosts, separately and in parallel: TCP connect; TLS
//     handshake (with the protocols that use TLS); a Kafka request with
//     SASL login over a client that knows only that host; each host's
//     steps stop at its first failure;
//  3. with the hosts that passed: cluster metadata (brokers, controller,
//     cluster id), then the topic (which must exist: nothing is created),
//     its partitions with leaders and earliest and latest offsets.
//
// The steps come back in that order, the hosts' in the order of hosts.
// Each network step is bounded by step (and by the asset's StepTimeout
// when that is shorter), the whole probe by a multiple of it.
func (a Access) Probe(ctx context.Context, cfg assets.Config, step time.Duration, logger *slog.Logger) []Step {
	step = min(step, StepTimeout(cfg))
	ctx, cancel := context.WithTimeout(ctx, probeStepsPerRun*step)
	defer cancel()

	tlsCfg, err := a.TLSConfig(cfg)
	if err == nil {
		_, err = a.SASLMechanism(cfg)
	}
	if err != nil {
		return []Step{{Name: StepConfig, Err: err}}
	}

	hosts := cfg.Brokers()
	perHost := make([][]Step, len(hosts))
	var wg sync.WaitGroup
	for i, host := range hosts {
		wg.Go(func() {
			defer soarkafka.Recover(ctx, logger, "test connectivity", func(e *soarkafka.PanicError) {
				perHost[i] = []Step{{Broker: host, Err: e, Kind: FailPanic}}
			}, "broker", host)
			perHost[i] = a.probeBroker(ctx, cfg, host, tlsCfg, step, logger)
		})
	}
	wg.Wait()

	var steps []Step
	var okHosts []string
	for i, hs := range perHost {
		steps = append(steps, hs...)
		if len(hs) > 0 && hs[len(hs)-1].OK() {
			okHosts = append(okHosts, hosts[i])
		}
	}
	if len(okHosts) > 0 {
		steps = append(steps, a.probeCluster(ctx, cfg, okHosts, step, logger)...)
	}
	return steps
}

// probeBroker runs the per-host steps against one host, stopping at the
// first that fails.
func (a Access) probeBroker(ctx context.Context, cfg assets.Config, host string, tlsCfg *tls.Config, step time.Duration, logger *slog.Logger) []Step {
	var steps []Step
	run := func(name string, fn func(ctx context.Context, st *Step)) bool {
		sctx, cancel := context.WithTimeout(ctx, step)
		defer cancel()
		t0 := time.Now()
		st := Step{Name: name, Broker: host}
		fn(sctx, &st)
		st.Duration = time.Since(t0)
		steps = append(steps, st)
		return st.OK()
	}

	var conn net.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	if !run(StepTCP, func(ctx context.Context, st *Step) {
		t0 := time.Now()
		c, err := a.Hosts.DialContext(ctx, "tcp", host)
		if err != nil {
			st.Err, st.Waited, st.TimedOut = err, time.Since(t0), isTimeout(ctx, err)
			return
		}
		conn = c
	}) {
		return steps
	}

	if tlsCfg != nil {
		if !run(StepTLS, func(ctx context.Context, st *Step) {
			if tc := a.probeTLS(ctx, conn, cfg, host, tlsCfg, step, st); tc != nil {
				conn = tc
				st.TLSVersion = tls.VersionName(tc.ConnectionState().Version)
			}
		}) {
			return steps
		}
	}
	conn.Close() // kgo dials its own connection
	conn = nil

	run(StepKafka, func(ctx context.Context, st *Step) {
		t0 := time.Now()
		login := &saslLoginObserver{}
		cl, err := a.NewClient(cfg, logger, append(stepClientOpts(ctx, step, host), kgo.WithHooks(login))...)
		if err != nil {
			st.Err, st.Kind = err, FailClient
			return
		}
		defer cl.Close()
		// Ping is one metadata request straight to the seed broker: a
		// SASL failure comes back as itself at once, where a produce
		// would only retry until its timeout.
		err = cl.Ping(ctx)
		if err == nil {
			return
		}
		st.Err, st.Waited, st.TimedOut, st.LoginCut = err, time.Since(t0), isTimeout(ctx, err), login.cut.Load()
		if errors.Is(err, kerr.UnsupportedSaslMechanism) {
			pctx, cancel := context.WithTimeout(context.Background(), step)
			defer cancel()
			if offered, perr := a.offeredSASLMechanisms(pctx, host, tlsCfg, cfg.SASLMechanism); perr == nil {
				st.Offered = offered
			}
		}
	})
	return steps
}

// probeTLS runs the TLS handshake over conn with the broker's host name as
// ServerName, and when the broker asked for a client certificate, one
// Kafka round trip to learn whether it accepted ours: with TLS 1.3 the
// broker's verdict on the client certificate only arrives after the
// client's side of the handshake is done. A failure is recorded in st.
func (a Access) probeTLS(ctx context.Context, conn net.Conn, cfg assets.Config, host string, base *tls.Config, step time.Duration, st *Step) *tls.Conn {
	t0 := time.Now()
	name, _, _ := net.SplitHostPort(host)
	tc := base.Clone()
	if tc.ServerName == "" { // tls_server_name, when set, is the name to verify
		tc.ServerName = name
	} else {
		name = tc.ServerName
	}
	ours := tc.Certificates
	var requested bool
	tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		requested = true
		if len(ours) > 0 {
			return &ours[0], nil
		}
		return &tls.Certificate{}, nil // send none; the broker decides
	}
	st.ServerName, st.HaveCert = name, len(ours) > 0
	tlsConn := tls.Client(conn, tc)
	if err := tlsConn.HandshakeContext(ctx); err != nil {
		st.Err, st.Waited, st.CertRequested = err, time.Since(t0), requested
		if a.notTLS(ctx, err, host, requested, step) {
			st.Kind = FailNotTLS
			return nil
		}
		st.TimedOut = isTimeout(ctx, err)
		return nil
	}
	if !requested {
		return tlsConn
	}
	if dl, ok := ctx.Deadline(); ok {
		tlsConn.SetDeadline(dl)
	}
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 0
	if _, err := roundTrip(wrapBroker(tlsConn, host), req); err != nil {
		if isTimeout(ctx, err) {
			// No verdict: the broker kept the connection. Let the
			// Kafka step say what the broker does.
			return tlsConn
		}
		st.Err, st.Waited, st.CertRequested = err, time.Since(t0), true
		st.TimedOut = isTimeout(ctx, err)
		return tlsConn
	}
	tlsConn.SetDeadline(time.Time{})
	return tlsConn
}

// notTLS reports whether a handshake failed because the port does not
// speak TLS: its answer is not a TLS record, or, where the handshake got
// no answer or a closed connection, the port answers plaintext Kafka.
func (a Access) notTLS(ctx context.Context, err error, host string, certRequested bool, step time.Duration) bool {
	var record tls.RecordHeaderError
	if errors.As(err, &record) {
		return true
	}
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) || isRemoteAlert(err) || certRequested || errors.Is(ctx.Err(), context.Canceled) {
		return false
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(step, time.Second))
	defer cancel()
	return a.SpeaksPlaintextKafka(pctx, host)
}

// stepClientOpts bound a kgo client used for one step to the step timeout
// (its dials by the step's context), and point it at hosts only.
func stepClientOpts(ctx context.Context, step time.Duration, hosts ...string) []kgo.Opt {
	return []kgo.Opt{
		kgo.WithContext(ctx),
		kgo.SeedBrokers(hosts...),
		kgo.RequestTimeoutOverhead(step),
		kgo.RetryTimeout(step),
	}
}

// probeCluster reads the cluster metadata and the topic through the hosts
// that passed.
func (a Access) probeCluster(ctx context.Context, cfg assets.Config, hosts []string, step time.Duration, logger *slog.Logger) []Step {
	cl, err := a.NewClient(cfg, logger, stepClientOpts(ctx, step, hosts...)...)
	if err != nil {
		return []Step{{Name: StepMetadata, Err: err, Kind: FailClient}}
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	stepCtx := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, step) }

	t0 := time.Now()
	st := Step{Name: StepMetadata}
	sctx, cancel := stepCtx()
	meta, err := adm.BrokerMetadata(sctx)
	cancel()
	st.Duration = time.Since(t0)
	if err != nil {
		st.Err, st.Kind, st.Waited, st.TimedOut = err, FailClusterMetadata, time.Since(t0), isTimeout(sctx, err)
		return []Step{st}
	}
	st.ClusterID = meta.Cluster
	controller := meta.Controller
	st.Controller = &controller
	for _, b := range meta.Brokers {
		pb := ProbeBroker{NodeID: b.NodeID, Host: b.Host, Port: b.Port}
		if b.Rack != nil {
			pb.Rack = *b.Rack
		}
		st.Brokers = append(st.Brokers, pb)
	}
	steps := []Step{st}

	t0 = time.Now()
	st = Step{Name: StepTopic, Topic: cfg.Topic}
	fail := func(ctx context.Context, kind FailureKind, err error) []Step {
		st.Duration = time.Since(t0)
		st.Err, st.Kind, st.Waited = err, kind, time.Since(t0)
		if ctx != nil {
			st.TimedOut = isTimeout(ctx, err)
		}
		return append(steps, st)
	}
	sctx, cancel = stepCtx()
	tm, err := adm.Metadata(sctx, cfg.Topic)
	cancel()
	if err != nil {
		return fail(sctx, FailTopicMetadata, err)
	}
	td, ok := tm.Topics[cfg.Topic]
	switch {
	case !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition):
		return fail(nil, FailTopicMissing, kerr.UnknownTopicOrPartition)
	case td.Err != nil:
		return fail(sctx, FailTopicError, td.Err)
	}

	sctx, cancel = stepCtx()
	starts, err := adm.ListStartOffsets(sctx, cfg.Topic)
	cancel()
	if err != nil {
		return fail(sctx, FailStartOffsets, err)
	}
	sctx, cancel = stepCtx()
	ends, err := adm.ListEndOffsets(sctx, cfg.Topic)
	cancel()
	if err != nil {
		return fail(sctx, FailEndOffsets, err)
	}
	var partErrs []string
	for _, pd := range td.Partitions.Sorted() {
		p := ProbePartition{Partition: pd.Partition, Leader: pd.Leader, EarliestOffset: -1, LatestOffset: -1}
		var errs []string
		if pd.Err != nil {
			errs = append(errs, pd.Err.Error())
		}
		if o, ok := starts.Lookup(cfg.Topic, pd.Partition); ok {
			if o.Err != nil {
				errs = append(errs, "earliest offset: "+o.Err.Error())
			} else {
				p.EarliestOffset = o.Offset
			}
		}
		if o, ok := ends.Lookup(cfg.Topic, pd.Partition); ok {
			if o.Err != nil {
				errs = append(errs, "latest offset: "+o.Err.Error())
			} else {
				p.LatestOffset = o.Offset
			}
		}
		if len(errs) > 0 {
			p.Error = strings.Join(errs, "; ")
			partErrs = append(partErrs, fmt.Sprintf("partition %d: %s", p.Partition, p.Error))
		}
		st.Partitions = append(st.Partitions, p)
	}
	sort.Slice(st.Partitions, func(i, j int) bool { return st.Partitions[i].Partition < st.Partitions[j].Partition })
	if len(partErrs) > 0 {
		return fail(nil, FailPartitions, errors.New(strings.Join(partErrs, "; ")))
	}
	st.Duration = time.Since(t0)
	return append(steps, st)
}

// saslLoginObserver notes whether a broker cut the connection instead of
// answering a SASL login request: brokers (kfake among them) may reject
// credentials that way rather than with SASL_AUTHENTICATION_FAILED, and
// kgo then only reports the closed connection.
type saslLoginObserver struct{ cut atomic.Bool }

// OnBrokerE2E implements kgo.HookBrokerE2E.
func (o *saslLoginObserver) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	if key == int16(kmsg.SASLAuthenticate) && e2e.ReadErr != nil {
		o.cut.Store(true)
	}
}

// offeredSASLMechanisms asks the broker at host which SASL mechanisms it
// enables, with one SASLHandshake on a fresh connection.
func (a Access) offeredSASLMechanisms(ctx context.Context, host string, tlsCfg *tls.Config, mechanism string) ([]string, error) {
	conn, err := a.dialBroker(ctx, host)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if tlsCfg != nil {
		tc := tlsCfg.Clone()
		if tc.ServerName == "" {
			tc.ServerName, _, _ = net.SplitHostPort(host)
		}
		tlsConn := tls.Client(conn, tc)
		if err := tlsConn.HandshakeContext(ctx); err != nil {
			return nil, err
		}
		conn = tlsConn
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	req := kmsg.NewPtrSASLHandshakeRequest()
	req.Version = 1
	req.Mechanism = mechanism
	resp, err := roundTrip(wrapBroker(conn, host), req)
	if err != nil {
		return nil, err
	}
	return resp.(*kmsg.SASLHandshakeResponse).SupportedMechanisms, nil
}

// isTimeout reports whether err is a deadline: the step's context, or a
// network timeout.
func isTimeout(ctx context.Context, err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
