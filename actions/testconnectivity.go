package actions

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/aws/smithy-go"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/kafka"
)

// Steps of test connectivity, as named in ConnectivityStep.Step: the
// steps of kafka.Probe.
const (
	StepConfig   = kafka.StepConfig
	StepTCP      = kafka.StepTCP
	StepTLS      = kafka.StepTLS
	StepKafka    = kafka.StepKafka
	StepMetadata = kafka.StepMetadata
	StepTopic    = kafka.StepTopic
)

// Statuses of a ConnectivityStep.
const (
	StepOK     = "ok"
	StepFailed = "failed"
)

// ConnectivityStep is one entry of a test connectivity result's data: one
// step against one broker (tcp, tls, kafka), or against the cluster
// (metadata, topic). Error says what went wrong and Hint what to change.
type ConnectivityStep struct {
	Step       string `json:"step"`
	Broker     string `json:"broker,omitempty"`
	Status     string `json:"status"`
	DurationMS int64  `json:"duration_ms"`
	Error      string `json:"error,omitempty"`
	Hint       string `json:"hint,omitempty"`

	TLSVersion string `json:"tls_version,omitempty"` // tls step

	ClusterID  string               `json:"cluster_id,omitempty"` // metadata step
	Controller *int32               `json:"controller,omitempty"` // metadata step
	Brokers    []ConnectivityBroker `json:"brokers,omitempty"`    // metadata step

	Topic      string                  `json:"topic,omitempty"`      // topic step
	Partitions []ConnectivityPartition `json:"partitions,omitempty"` // topic step
}

// ConnectivityBroker is a broker as the cluster advertises it.
type ConnectivityBroker struct {
	NodeID int32  `json:"node_id"`
	Host   string `json:"host"`
	Port   int32  `json:"port"`
	Rack   string `json:"rack,omitempty"`
}

// ConnectivityPartition is one partition of the asset's topic.
type ConnectivityPartition struct {
	Partition      int32  `json:"partition"`
	Leader         int32  `json:"leader"`
	EarliestOffset int64  `json:"earliest_offset"`
	LatestOffset   int64  `json:"latest_offset"`
	Error          string `json:"error,omitempty"`
}

// stepFailure is why a step failed, worded for the user.
type stepFailure struct {
	what string // "TLS handshake failed"; empty when err says it all
	err  string
	hint string
	// named: err names the broker itself (a refusal of the host
	// policy), so the action's message does not name it again.
	named bool
}

func (f *stepFailure) message() string {
	if f.what == "" { // a sentence of its own: `topic "x" does not exist on the cluster; create it or fix topic`
		if f.hint == "" {
			return f.err
		}
		return f.err + "; " + f.hint
	}
	msg := f.what + ": " + f.err
	if f.hint != "" {
		msg += " (" + f.hint + ")"
	}
	return msg
}

// TestConnectivity checks that the asset's brokers can be reached and
// logged in to, and that its topic exists, step by step so a failure names
// the broker, the step and the fix:
//
//  1. every host of hosts, separately and in parallel: TCP connect; TLS
//     handshake (with the protocols that use TLS); a Kafka request with
//     SASL login over a client that knows only that host;
//  2. with the hosts that passed: cluster metadata (brokers, controller,
//     cluster id), then the topic (which must exist: nothing is created),
//     its partitions with leaders and earliest and latest offsets.
//
// Each network step is bounded by the runner's step timeout, the whole
// action by a multiple of it. The result fails if any host or the topic
// check failed; the remaining hosts are still checked and reported.
func (r *Runner) TestConnectivity(ctx context.Context, cfg assets.Config) *Result {
	start := time.Now()
	res := NewResult(TestConnectivity, nil)
	hosts := cfg.Brokers()
	res.ResultSummary.TotalObjects = len(hosts)
	sum := &ConnectivitySummary{BrokersChecked: len(hosts), Topic: cfg.Topic}
	res.Summary = sum
	logger := r.logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	log := logger.With("action", TestConnectivity, "hosts", cfg.Hosts, "topic", cfg.Topic, "security_protocol", cfg.SecurityProtocol)
	defer func() {
		log.Info("action finished", "status", res.Status, "message", res.Message, "duration_ms", time.Since(start).Milliseconds())
	}()
	if len(hosts) == 0 { // assets.Decode refuses this; a hand-built Config may not
		res.Data = append(res.Data, ConnectivityStep{Step: StepConfig, Status: StepFailed, Error: "hosts: no broker given"})
		return res.Fail("hosts: no broker given; write host:port pairs separated by commas")
	}

	steps := r.access.Probe(ctx, cfg, r.stepTimeout, r.logger)
	var failures []string
	okHosts := 0
	for _, st := range steps {
		switch {
		case st.Name == StepConfig:
			res.Data = append(res.Data, ConnectivityStep{Step: StepConfig, Status: StepFailed, Error: st.Err.Error()})
			return res.Fail(st.Err.Error())
		case st.Kind == kafka.FailPanic: // no entry in data: the broker's steps were lost
			failures = append(failures, fmt.Sprintf("broker %s: %s", st.Broker, st.Err.Error()))
			continue
		}
		cs, fail := connectivityStep(st, cfg)
		res.Data = append(res.Data, cs)
		switch {
		case st.Name == StepMetadata && st.OK():
			controller, brokers := *st.Controller, len(st.Brokers)
			sum.ClusterID, sum.Controller, sum.ClusterBrokers = &st.ClusterID, &controller, &brokers
		case st.Name == StepTopic && (st.OK() || st.Kind == kafka.FailPartitions):
			partitions := len(st.Partitions)
			sum.Partitions = &partitions
		}
		switch {
		case fail == nil:
			if st.Name == StepKafka { // a broker's last step
				okHosts++
			}
		case st.Broker == "" || fail.named:
			failures = append(failures, fail.message())
		default:
			failures = append(failures, fmt.Sprintf("broker %s: %s", st.Broker, fail.message()))
		}
	}
	res.ResultSummary.TotalObjectsSuccessful = okHosts
	sum.BrokersOK = okHosts

	switch {
	case len(failures) == 1:
		return res.Fail(failures[0])
	case len(failures) > 1:
		return res.Fail(fmt.Sprintf("%s; and %d more failures: %s", failures[0], len(failures)-1, strings.Join(failures[1:], "; ")))
	}
	res.Message = fmt.Sprintf("Connected to %s; topic %q has %s",
		plural(okHosts, "broker"), cfg.Topic, plural(sum.partitions(), "partition"))
	if cfg.TLS() && cfg.InsecureSkipVerify {
		warning := "insecure_skip_verify is set: the broker certificates are not verified, so anyone on the network path can read and change the traffic; unset it and give ca_cert or ca_pem"
		sum.Warnings = []string{warning}
		res.Message += ". Warning: " + warning
	}
	return res
}

// connectivityStep maps a probe step into the action result's data, with
// the failure worded for the user (nil when the step passed).
func connectivityStep(st kafka.Step, cfg assets.Config) (ConnectivityStep, *stepFailure) {
	cs := ConnectivityStep{
		Step: st.Name, Broker: st.Broker, Status: StepOK, DurationMS: st.Duration.Milliseconds(),
		TLSVersion: st.TLSVersion, ClusterID: st.ClusterID, Controller: st.Controller, Topic: st.Topic,
	}
	for _, b := range st.Brokers {
		cs.Brokers = append(cs.Brokers, ConnectivityBroker{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack})
	}
	for _, p := range st.Partitions {
		cs.Partitions = append(cs.Partitions, ConnectivityPartition{Partition: p.Partition, Leader: p.Leader,
			EarliestOffset: p.EarliestOffset, LatestOffset: p.LatestOffset, Error: p.Error})
	}
	if st.OK() {
		return cs, nil
	}
	f := stepFailureOf(st, cfg)
	cs.Status, cs.Error, cs.Hint = StepFailed, f.err, f.hint
	return cs, f
}

// stepFailureOf words a failed probe step.
func stepFailureOf(st kafka.Step, cfg assets.Config) *stepFailure {
	err := st.Err
	if st.Kind == kafka.FailClient {
		return &stepFailure{what: "Kafka client", err: err.Error()}
	}
	switch st.Name {
	case StepTCP:
		return tcpFailure(st.TimedOut, err, st.Waited)
	case StepTLS:
		if st.Kind == kafka.FailNotTLS {
			notTLS := &kafka.TLSNotSpokenError{Broker: st.Broker, Plaintext: plainProtocol(cfg)}
			return &stepFailure{what: "TLS handshake failed", err: kafka.TLSNotSpoken, hint: notTLS.Hint()}
		}
		return tlsFailure(st.TimedOut, err, cfg, st.ServerName, st.HaveCert, st.CertRequested, st.Waited)
	case StepKafka:
		f := kafkaFailure(st.TimedOut, err, cfg, st.LoginCut, st.Waited)
		if lf := loginFailure(err, cfg, st.Broker); lf != nil {
			f = lf
		}
		if len(st.Offered) > 0 {
			f.err += "; it offers " + strings.Join(st.Offered, ", ")
		}
		return f
	}
	topic := cfg.Topic
	switch st.Kind {
	case kafka.FailClusterMetadata:
		return clusterFailure(st.TimedOut, "cluster metadata request failed", err, st.Waited)
	case kafka.FailTopicMetadata:
		return clusterFailure(st.TimedOut, fmt.Sprintf("topic %q metadata request failed", topic), err, st.Waited)
	case kafka.FailTopicMissing:
		return &stepFailure{err: fmt.Sprintf("topic %q does not exist on the cluster", topic), hint: "create it or fix topic"}
	case kafka.FailTopicError:
		return clusterFailure(st.TimedOut, fmt.Sprintf("topic %q", topic), err, st.Waited)
	case kafka.FailStartOffsets:
		return clusterFailure(st.TimedOut, fmt.Sprintf("topic %q: listing earliest offsets failed", topic), err, st.Waited)
	case kafka.FailEndOffsets:
		return clusterFailure(st.TimedOut, fmt.Sprintf("topic %q: listing latest offsets failed", topic), err, st.Waited)
	case kafka.FailPartitions:
		return &stepFailure{
			err:  fmt.Sprintf("topic %q: %s", topic, err),
			hint: "a partition without a leader cannot be read; check the brokers' health",
		}
	}
	return &stepFailure{err: err.Error()}
}

// tcpFailure words a failed TCP connect.
func tcpFailure(timedOut bool, err error, took time.Duration) *stepFailure {
	f := &stepFailure{what: "TCP connection failed", err: err.Error()}
	var dnsErr *net.DNSError
	var denied *kafka.HostDeniedError
	switch {
	case errors.As(err, &denied):
		return deniedFailure(denied)
	case errors.Is(err, syscall.ECONNREFUSED):
		f.err = "connection refused"
		f.hint = "is a broker listening on that port? check hosts"
	case timedOut:
		f.err = "timed out after " + seconds(took)
		f.hint = "a firewall drops the connection or the host is wrong; check hosts and the network path"
	case errors.As(err, &dnsErr):
		f.err = fmt.Sprintf("cannot resolve %s: %s", dnsErr.Name, dnsErr.Err)
		f.hint = "check the host name in hosts and this server's DNS"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		f.err = "no route to the host"
		f.hint = "check hosts and the network path"
	case errors.Is(err, context.Canceled):
		f.err = "cancelled"
	}
	return f
}

// deniedFailure words a dial the server's network policy refused: the
// setting, and that the fix is the server administrator's.
func deniedFailure(denied *kafka.HostDeniedError) *stepFailure {
	return &stepFailure{err: denied.Error(), named: true,
		hint: "this server's " + denied.Setting + " setting refuses the connection; ask its administrator, or use another broker"}
}

// tlsFailure words a failed TLS handshake (or the broker's rejection of our
// client certificate right after it) with the fix for each known cause.
func tlsFailure(timedOut bool, err error, cfg assets.Config, host string, haveCert, certRequested bool, took time.Duration) *stepFailure {
	f := &stepFailure{what: "TLS handshake failed", err: err.Error()}
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		f.err = verr.Err.Error() // drop "tls: failed to verify certificate: "
	}
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		record    tls.RecordHeaderError
	)
	notTLS := "the port is not a TLS listener: set use_ssl to false and security_protocol to " + plainProtocol(cfg) + ", or use the broker's TLS port in hosts"
	switch {
	case errors.As(err, &unknownCA):
		issuer := ""
		if unknownCA.Cert != nil {
			issuer = fmt.Sprintf(": its issuer is %q", unknownCA.Cert.Issuer.String())
		}
		if cfg.CACert == "" {
			f.hint = "set ca_cert to the CA that signed the broker certificate" + issuer
		} else {
			f.hint = fmt.Sprintf("set ca_cert to the CA that signed the broker certificate, %s is another CA%s", cfg.CACert, issuer)
		}
	case errors.As(err, &hostname):
		var names []string
		if c := hostname.Certificate; c != nil {
			names = append(names, c.DNSNames...)
			for _, ip := range c.IPAddresses {
				names = append(names, ip.String())
			}
			if len(names) == 0 && c.Subject.CommonName != "" {
				names = append(names, c.Subject.CommonName+", in the common name only, which TLS clients do not check")
			}
		}
		f.hint = fmt.Sprintf("the certificate is for %s, not %s: use the name in the certificate in hosts (or set tls_server_name to it), or reissue the broker certificate with %s as a subject alternative name",
			strings.Join(names, ", "), host, host)
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		if c := invalid.Cert; c != nil && time.Now().After(c.NotAfter) {
			f.hint = fmt.Sprintf("the broker certificate expired on %s: renew the broker certificate, or check this server's clock", c.NotAfter.UTC().Format(time.RFC3339))
		} else if c != nil {
			f.hint = fmt.Sprintf("the broker certificate is valid only from %s: check this server's clock", c.NotBefore.UTC().Format(time.RFC3339))
		}
	case errors.As(err, &record):
		f.err = "the broker's answer is not TLS (first record does not look like a TLS handshake)"
		f.hint = notTLS
	case isTLSAlert(err) || (certRequested && isConnClosed(err)):
		switch {
		case !haveCert && certRequested:
			f.err = "the broker requires a client certificate: " + err.Error()
			f.hint = "set cert_file and key_file to a client certificate and its key, signed by a CA the broker trusts"
		case haveCert && certRequested:
			f.err = "the broker rejected the client certificate: " + err.Error()
			f.hint = "cert_file must be signed by a CA in the broker's truststore, be valid now and allow client authentication"
		}
	case timedOut:
		f.err = "no answer to the TLS handshake within " + seconds(took)
		f.hint = "the port may not be a TLS listener, then set use_ssl to false and security_protocol to " + plainProtocol(cfg) + "; or the broker is overloaded"
	case isConnClosed(err):
		f.err = "the broker closed the connection during the TLS handshake"
		f.hint = notTLS
	}
	return f
}

// kafkaFailure words a failed Kafka request (with its SASL login);
// loginCut says the broker closed the connection during the SASL login.
func kafkaFailure(timedOut bool, err error, cfg assets.Config, loginCut bool, took time.Duration) *stepFailure {
	f := &stepFailure{what: "Kafka request failed", err: err.Error()}
	badLogin := fmt.Sprintf("check username and password, and sasl_mechanism: user %q needs %s credentials on the cluster", cfg.Username, cfg.SASLMechanism)
	var (
		notKafka    *kafka.NotKafkaError
		tlsExpected *kafka.TLSExpectedError
		notTLS      *kafka.TLSNotSpokenError
		denied      *kafka.HostDeniedError
	)
	switch {
	case errors.As(err, &notKafka):
		return &stepFailure{err: "not a Kafka broker: its answer is not a Kafka response", hint: "check the port in hosts"}
	case errors.As(err, &tlsExpected):
		return &stepFailure{what: "Kafka request failed", err: "the broker answered with TLS", hint: "its listener requires TLS: set use_ssl to true"}
	case errors.As(err, &notTLS):
		return &stepFailure{what: "TLS handshake failed", err: kafka.TLSNotSpoken, hint: notTLS.Hint()}
	case errors.As(err, &denied):
		return deniedFailure(denied)
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		f.what = "SASL authentication failed"
		f.hint = badLogin
	case loginCut && isConnClosed(err):
		f.what = "SASL authentication failed"
		f.err = "the broker closed the connection during the " + cfg.SASLMechanism + " login"
		f.hint = badLogin
	case errors.Is(err, kerr.UnsupportedSaslMechanism):
		f.what = "SASL authentication failed"
		f.err = fmt.Sprintf("the broker does not offer SASL mechanism %s", cfg.SASLMechanism)
		f.hint = "set sasl_mechanism to a mechanism the broker enables in sasl.enabled.mechanisms"
	case errors.Is(err, kerr.IllegalSaslState):
		f.what = "SASL authentication failed"
		f.hint = "the broker's listener may not expect SASL; check security_protocol against the broker's listener"
	case timedOut:
		f.err = "no Kafka answer within " + seconds(took)
		f.hint = "is this a Kafka broker port?"
		if !cfg.TLS() {
			f.hint += " If the broker's listener uses TLS, set use_ssl to true."
		}
	case isConnClosed(err):
		f.err = "the broker closed the connection"
		// kgo guesses the cause from when the broker hung up: during
		// ApiVersions, the first request, a TLS listener; after it, SASL.
		msg := err.Error()
		needTLS := !cfg.TLS() && !strings.Contains(msg, "SASL is required")
		needSASL := !cfg.SASL() && !strings.Contains(msg, "requires TLS")
		var fixes []string
		if needSASL {
			fixes = append(fixes, "SASL: set security_protocol to SASL_PLAINTEXT or SASL_SSL, with sasl_mechanism, username and password")
		}
		if needTLS {
			fixes = append(fixes, "TLS: set use_ssl to true")
		}
		if len(fixes) > 0 {
			f.hint = "its listener may require " + strings.Join(fixes, "; or ")
		} else {
			f.hint = "check security_protocol against the broker's listener and the broker's log"
		}
	}
	return f
}

// clusterFailure words a failed metadata or offsets request.
func clusterFailure(timedOut bool, what string, err error, took time.Duration) *stepFailure {
	f := &stepFailure{what: what, err: err.Error()}
	var (
		notKafka *kafka.NotKafkaError
		denied   *kafka.HostDeniedError
	)
	switch {
	case errors.As(err, &notKafka):
		f.err = notKafka.Error()
		f.hint = "the brokers the cluster advertises (advertised.listeners) must be Kafka listeners reachable from this server"
	case errors.As(err, &denied):
		f.err = denied.Error()
		f.hint = "the cluster advertises brokers (advertised.listeners) this server's " + denied.Setting + " setting refuses; ask its administrator"
	case errors.Is(err, kerr.TopicAuthorizationFailed):
		f.hint = "the user is not allowed to describe the topic: grant it Describe and Read on the topic"
	case errors.Is(err, kerr.ClusterAuthorizationFailed):
		f.hint = "the user is not allowed to describe the cluster: grant it Describe on the cluster"
	case timedOut:
		f.err = "no answer within " + seconds(took)
		f.hint = "the brokers the cluster advertises (advertised.listeners) must be reachable from this server"
	case isConnClosed(err), errors.Is(err, syscall.ECONNREFUSED):
		f.hint = "the brokers the cluster advertises (advertised.listeners) must be reachable from this server"
	}
	return f
}

// isConnClosed reports whether the peer closed or reset the connection.
func isConnClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

// isTLSAlert reports whether err is a TLS alert sent by the peer. The
// standard library does not export the type of a received alert; its
// message is "remote error: tls: <alert>".
func isTLSAlert(err error) bool {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "remote error" {
		return true
	}
	return strings.Contains(err.Error(), "remote error: tls:")
}

// plainProtocol is the security protocol without TLS that keeps the
// asset's SASL choice.
func plainProtocol(cfg assets.Config) string {
	if cfg.SASL() {
		return assets.ProtocolSASLPlaintext
	}
	return assets.ProtocolPlaintext
}

func seconds(d time.Duration) string {
	return fmt.Sprintf("%.1fs", d.Seconds())
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// ConnectivitySummary is test connectivity's result summary. The
// cluster's members are there once its metadata was read, partitions once
// the topic was.
type ConnectivitySummary struct {
	BrokersChecked int      `json:"brokers_checked"`
	BrokersOK      int      `json:"brokers_ok"`
	Topic          string   `json:"topic"`
	ClusterID      *string  `json:"cluster_id,omitempty"`
	Controller     *int32   `json:"controller,omitempty"`
	ClusterBrokers *int     `json:"cluster_brokers,omitempty"`
	Partitions     *int     `json:"partitions,omitempty"`
	Warnings       []string `json:"warnings,omitempty"`
}

func (s *ConnectivitySummary) partitions() int {
	if s.Partitions == nil {
		return 0
	}
	return *s.Partitions
}

// loginFailure words a Kerberos or AWS IAM login that failed before or at
// the broker, naming the cause and the field to fix; nil for any other
// error. gokrb5 and the AWS SDK report causes as codes inside their text
// (KDC_ERR_..., the STS error code), which is what is matched here.
func loginFailure(err error, cfg assets.Config, host string) *stepFailure {
	msg := err.Error()
	switch cfg.SASLMechanism {
	case assets.MechanismGSSAPI:
		f := &stepFailure{what: "Kerberos login failed", err: msg}
		k := cfg.Kerberos
		name, _, _ := net.SplitHostPort(host)
		service := k.ServiceName + "/" + name
		switch {
		case strings.Contains(msg, "KDC_ERR_C_PRINCIPAL_UNKNOWN"):
			f.hint = fmt.Sprintf("the KDC does not know the client principal %q: check kerberos.principal and its realm", k.Principal)
		case strings.Contains(msg, "KDC_ERR_PREAUTH_FAILED"), strings.Contains(msg, "client password/keytab incorrect"):
			f.hint = "wrong password, or the keytab holds another key than the principal's current one (the key version changed when the password or key was reset): check kerberos.password, or export the keytab again (ktadd -norandkey)"
		case strings.Contains(msg, "KDC_ERR_S_PRINCIPAL_UNKNOWN"):
			f.hint = fmt.Sprintf("the KDC has no service principal %s (the client asked for %s@<realm>): create it for the broker, or set kerberos.service_name, or connect with the host name the broker's principal uses (see kerberos.canonicalize_hostname)", service, service)
		case strings.Contains(msg, "KRB_AP_ERR_SKEW"), strings.Contains(msg, "KDC_ERR_SKEW"), strings.Contains(msg, "clock skew"):
			f.hint = "the clocks of this server and the KDC or the broker differ by more than the allowed skew (5 minutes): synchronise them with NTP"
		case strings.Contains(msg, "KDC_ERR_ETYPE_NOSUPP"), strings.Contains(msg, "KDC_ERR_ETYPE_NOTSUPP"), strings.Contains(msg, "no supported encryption type"):
			f.hint = "the client and the KDC share no encryption type: check default_tkt_enctypes/permitted_enctypes in kerberos.krb5_conf against the keys of the principal"
		case strings.Contains(msg, "KRB_AP_ERR_BADKEYVER"), strings.Contains(msg, "KRB_AP_ERR_NOKEY"), strings.Contains(msg, "KRB_AP_ERR_MODIFIED"):
			f.hint = fmt.Sprintf("the broker could not decrypt the ticket for %s: its keytab holds another key (version) than the KDC; export the broker's keytab again", service)
		case strings.Contains(msg, "networking error"), strings.Contains(msg, "communicating with KDC"), strings.Contains(msg, "connection refused"), strings.Contains(msg, "failed to communicate"):
			f.hint = "the KDC did not answer: check kerberos.kdc (or the kdc lines of kerberos.krb5_conf) and that this server can reach it (port 88, TCP and UDP)"
		case strings.Contains(msg, "ccache"), strings.Contains(msg, "no user credentials available"):
			f.hint = "the ticket cache holds no valid ticket: run kinit for the principal again, or give a keytab or password so the server logs in and renews by itself"
		case errors.Is(err, kerr.SaslAuthenticationFailed):
			f.hint = fmt.Sprintf("the broker refused the Kerberos login for %s: check that the broker's principal is %s@<realm> and that principal %q may connect", service, service, k.Principal)
		default:
			return nil
		}
		return f
	case assets.MechanismAWSMSKIAM:
		a := cfg.AWSIAM
		var credErr *kafka.AWSCredentialsError
		if errors.As(err, &credErr) {
			f := &stepFailure{what: "AWS credentials failed", err: msg}
			var apiErr smithy.APIError
			switch {
			case a.AssumeRole != "" && errors.As(err, &apiErr):
				f.hint = fmt.Sprintf("STS refused to assume role %s (%s): check the role's trust policy for this identity, and aws_iam.external_id", a.AssumeRole, apiErr.ErrorCode())
			case a.AccessKeyID == "" && a.Profile == "":
				f.hint = "no credentials were found in the default chain (environment variables, shared config and credentials files, web identity token, container credentials, EC2 instance metadata): give aws_iam.access_key_id and aws_iam.secret_access_key, or aws_iam.profile, or run where one of those sources has credentials"
			default:
				f.hint = "check aws_iam.access_key_id/secret_access_key or aws_iam.profile"
			}
			return f
		}
		if errors.Is(err, kerr.SaslAuthenticationFailed) {
			return &stepFailure{what: "AWS IAM login failed", err: msg,
				hint: fmt.Sprintf("the broker rejected the signed login: check aws_iam.region (%s) is the cluster's region, that the credentials are valid, and that their identity is allowed kafka-cluster:Connect on the cluster", a.Region)}
		}
	}
	return nil
}
