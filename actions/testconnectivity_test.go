package actions

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/youmark/pkcs8"

	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/kafka"
)

// testStepTimeout is the step timeout of tests that expect an answer; the
// ones that expect silence use a shorter one to stay fast.
const testStepTimeout = 5 * time.Second

// newTestRunner returns a runner logging at debug level into a buffer the
// test can search (for secrets that must not be there). Its assets may
// name files under the temporary directory, where testenv writes
// certificates, keytabs and krb5.conf files.
func newTestRunner(stepTimeout time.Duration, opts ...RunnerOption) (*Runner, *testenv.LogBuffer) {
	logs := &testenv.LogBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts = append([]RunnerOption{WithStepTimeout(stepTimeout), WithAccess(tempAccess(nil, nil))}, opts...)
	return NewRunner(logger, opts...), logs
}

// tempAccess allows the files under the temporary directory, and the hosts
// of the given network policy (nil: every host).
func tempAccess(allowed, denied []string) kafka.Access {
	files, err := kafka.NewFilePolicy([]string{os.TempDir()})
	if err != nil {
		panic(err)
	}
	hosts, err := kafka.NewHostPolicy(allowed, denied)
	if err != nil {
		panic(err)
	}
	return kafka.Access{Hosts: hosts, Files: files}
}

func decodeConfig(t *testing.T, doc map[string]any) assets.Config {
	t.Helper()
	cfg, err := assets.Decode(doc, assets.DecodeOptions{})
	if err != nil {
		t.Fatalf("assets.Decode(%v): %v", doc, err)
	}
	return cfg
}

// runConnectivity runs the action and checks what every result must hold:
// its identifier, one step entry per datum, and counts that agree with the
// data.
func runConnectivity(t *testing.T, r *Runner, cfg assets.Config) *Result {
	t.Helper()
	res := r.TestConnectivity(context.Background(), cfg)
	if res.Identifier != TestConnectivity {
		t.Errorf("identifier = %q, want %q", res.Identifier, TestConnectivity)
	}
	if _, err := json.Marshal(res); err != nil {
		t.Errorf("result does not encode: %v", err)
	}
	for i, d := range res.Data {
		if _, ok := d.(ConnectivityStep); !ok {
			t.Fatalf("data[%d] is %T, want ConnectivityStep", i, d)
		}
	}
	if len(res.Data) > 0 && res.Data[0].(ConnectivityStep).Step != StepConfig {
		if got, want := res.ResultSummary.TotalObjects, len(cfg.Brokers()); got != want {
			t.Errorf("total_objects = %d, want %d (hosts checked)", got, want)
		}
	}
	t.Logf("status=%s message=%s", res.Status, res.Message)
	return res
}

func steps(res *Result) []ConnectivityStep {
	var out []ConnectivityStep
	for _, d := range res.Data {
		out = append(out, d.(ConnectivityStep))
	}
	return out
}

// step returns the entry of step (for broker, when broker is not empty).
func step(t *testing.T, res *Result, name, broker string) ConnectivityStep {
	t.Helper()
	for _, s := range steps(res) {
		if s.Step == name && (broker == "" || s.Broker == broker) {
			return s
		}
	}
	t.Fatalf("no %q step for broker %q in data %+v", name, broker, res.Data)
	return ConnectivityStep{}
}

func noStep(t *testing.T, res *Result, name, broker string) {
	t.Helper()
	for _, s := range steps(res) {
		if s.Step == name && (broker == "" || s.Broker == broker) {
			t.Errorf("unexpected %q step for broker %q: %+v", name, broker, s)
		}
	}
}

// wantFailed asserts a failed result whose message starts with prefix and
// contains every one of parts.
func wantFailed(t *testing.T, res *Result, prefix string, parts ...string) {
	t.Helper()
	if res.Status != StatusFailed {
		t.Fatalf("status = %q, want %q; message: %s", res.Status, StatusFailed, res.Message)
	}
	if !strings.HasPrefix(res.Message, prefix) {
		t.Errorf("message = %q\nwant prefix %q", res.Message, prefix)
	}
	for _, p := range parts {
		if !strings.Contains(res.Message, p) {
			t.Errorf("message = %q\nwant it to contain %q", res.Message, p)
		}
	}
}

func wantSuccess(t *testing.T, res *Result, message string) {
	t.Helper()
	if res.Status != StatusSuccess {
		t.Fatalf("status = %q, want %q; message: %s; data: %+v", res.Status, StatusSuccess, res.Message, res.Data)
	}
	if res.Message != message {
		t.Errorf("message = %q, want %q", res.Message, message)
	}
	for _, s := range steps(res) {
		if s.Status != StepOK || s.Error != "" {
			t.Errorf("step %+v is not ok", s)
		}
	}
}

func TestConnectivityPlaintext(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.NumBrokers(3), kfake.ClusterID("soc-cluster"), kfake.SeedTopics(4, "alerts"))
	testenv.ProduceKafkaRecords(t, c, "alerts", 0, 5)
	testenv.ProduceKafkaRecords(t, c, "alerts", 2, 3)
	testenv.DeleteKafkaRecords(t, c, "alerts", 0, 2)
	hosts := c.ListenAddrs()

	r, _ := newTestRunner(testStepTimeout)
	res := runConnectivity(t, r, decodeConfig(t, map[string]any{"hosts": strings.Join(hosts, ","), "topic": "alerts"}))
	wantSuccess(t, res, `Connected to 3 brokers; topic "alerts" has 4 partitions`)

	var order []string
	for _, s := range steps(res) {
		order = append(order, s.Step+" "+s.Broker)
	}
	want := []string{
		"tcp " + hosts[0], "kafka " + hosts[0],
		"tcp " + hosts[1], "kafka " + hosts[1],
		"tcp " + hosts[2], "kafka " + hosts[2],
		"metadata ", "topic ",
	}
	if strings.Join(order, "|") != strings.Join(want, "|") {
		t.Errorf("steps = %q, want %q", order, want)
	}

	meta := step(t, res, StepMetadata, "")
	if meta.ClusterID != "soc-cluster" || meta.Controller == nil || len(meta.Brokers) != 3 {
		t.Errorf("metadata step = %+v, want cluster soc-cluster, a controller and 3 brokers", meta)
	}
	topic := step(t, res, StepTopic, "")
	wantParts := []ConnectivityPartition{
		{Partition: 0, Leader: c.LeaderFor("alerts", 0), EarliestOffset: 2, LatestOffset: 5},
		{Partition: 1, Leader: c.LeaderFor("alerts", 1), EarliestOffset: 0, LatestOffset: 0},
		{Partition: 2, Leader: c.LeaderFor("alerts", 2), EarliestOffset: 0, LatestOffset: 3},
		{Partition: 3, Leader: c.LeaderFor("alerts", 3), EarliestOffset: 0, LatestOffset: 0},
	}
	if fmt.Sprint(topic.Partitions) != fmt.Sprint(wantParts) {
		t.Errorf("partitions = %+v\nwant %+v", topic.Partitions, wantParts)
	}
	if topic.Topic != "alerts" {
		t.Errorf("topic step topic = %q", topic.Topic)
	}

	wantSummary := map[string]any{
		"brokers_checked": 3, "brokers_ok": 3, "cluster_id": "soc-cluster", "topic": "alerts",
		"partitions": 4, "cluster_brokers": 3, "controller": *meta.Controller,
	}
	// As the summary encodes: its members and their values.
	var gotSummary map[string]any
	if b, err := json.Marshal(res.Summary); err != nil || json.Unmarshal(b, &gotSummary) != nil {
		t.Fatalf("summary %+v does not encode: %v", res.Summary, err)
	}
	if fmt.Sprint(gotSummary) != fmt.Sprint(wantSummary) {
		t.Errorf("summary = %v, want %v", gotSummary, wantSummary)
	}
	if res.ResultSummary != (ResultSummary{TotalObjects: 3, TotalObjectsSuccessful: 3}) {
		t.Errorf("result_summary = %+v", res.ResultSummary)
	}

	// The JSON a SOAR reads keeps the documented names.
	b, _ := json.Marshal(res.Data[len(res.Data)-1])
	for _, k := range []string{`"step":"topic"`, `"status":"ok"`, `"duration_ms":`, `"partitions":[{"partition":0,"leader":`, `"earliest_offset":2,"latest_offset":5`} {
		if !bytes.Contains(b, []byte(k)) {
			t.Errorf("topic entry JSON %s lacks %s", b, k)
		}
	}
}

func TestConnectivityOneHostRefuses(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	good := c.ListenAddrs()[0]
	refusing := testenv.RefusingTCPAddr(t)

	r, _ := newTestRunner(testStepTimeout)
	res := runConnectivity(t, r, decodeConfig(t, map[string]any{"hosts": refusing + "," + good, "topic": "alerts"}))
	wantFailed(t, res, "broker "+refusing+": TCP connection failed: connection refused",
		"is a broker listening on that port? check hosts")

	if s := step(t, res, StepTCP, refusing); s.Status != StepFailed || s.Error != "connection refused" || s.Hint == "" {
		t.Errorf("tcp step of the refusing host = %+v", s)
	}
	noStep(t, res, StepKafka, refusing)
	if s := step(t, res, StepKafka, good); s.Status != StepOK {
		t.Errorf("kafka step of the good host = %+v", s)
	}
	// The cluster is still checked through the host that answers.
	if s := step(t, res, StepTopic, ""); s.Status != StepOK || len(s.Partitions) != 1 {
		t.Errorf("topic step = %+v", s)
	}
	if res.ResultSummary != (ResultSummary{TotalObjects: 2, TotalObjectsSuccessful: 1}) {
		t.Errorf("result_summary = %+v", res.ResultSummary)
	}
	if sum := res.Summary.(*ConnectivitySummary); sum.BrokersOK != 1 || sum.BrokersChecked != 2 {
		t.Errorf("summary = %v", res.Summary)
	}
}

func TestConnectivityAllHostsFailAreAllReported(t *testing.T) {
	t.Parallel()
	a, b := testenv.RefusingTCPAddr(t), testenv.RefusingTCPAddr(t)
	r, _ := newTestRunner(testStepTimeout)
	res := runConnectivity(t, r, decodeConfig(t, map[string]any{"hosts": a + "," + b, "topic": "alerts"}))
	wantFailed(t, res, "broker "+a+": TCP connection failed: connection refused", "and 1 more failures: broker "+b+": TCP connection failed")
	step(t, res, StepTCP, a)
	step(t, res, StepTCP, b)
	noStep(t, res, StepMetadata, "")
	if res.ResultSummary != (ResultSummary{TotalObjects: 2, TotalObjectsSuccessful: 0}) {
		t.Errorf("result_summary = %+v", res.ResultSummary)
	}
}

func TestConnectivitySilentHostIsBounded(t *testing.T) {
	t.Parallel()
	silent := testenv.SilentTCPAddr(t)
	r, _ := newTestRunner(500 * time.Millisecond)
	start := time.Now()
	res := runConnectivity(t, r, decodeConfig(t, map[string]any{"hosts": silent, "topic": "alerts"}))
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the action took %s against a host that never answers; want it bounded by the step timeout", took)
	}
	wantFailed(t, res, "broker "+silent+": Kafka request failed: no Kafka answer within 0.", "(is this a Kafka broker port? If the broker's listener uses TLS, set use_ssl to true.)")
	if s := step(t, res, StepTCP, silent); s.Status != StepOK {
		t.Errorf("tcp step = %+v, want ok (the listener accepts)", s)
	}
}

func TestConnectivitySilentHostTLSIsBounded(t *testing.T) {
	t.Parallel()
	certs := testenv.NewTLSCerts(t)
	silent := testenv.SilentTCPAddr(t)
	r, _ := newTestRunner(500 * time.Millisecond)
	start := time.Now()
	res := runConnectivity(t, r, decodeConfig(t, map[string]any{"hosts": silent, "topic": "alerts", "use_ssl": true, "ca_cert": certs.CAFile}))
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the action took %s; want it bounded by the step timeout", took)
	}
	wantFailed(t, res, "broker "+silent+": TLS handshake failed: no answer to the TLS handshake within 0.", "may not be a TLS listener")
}

func TestConnectivityUnknownTopic(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "other"))
	r, _ := newTestRunner(testStepTimeout)
	res := runConnectivity(t, r, decodeConfig(t, map[string]any{"hosts": c.ListenAddrs()[0], "topic": "alerts"}))
	wantFailed(t, res, `topic "alerts" does not exist on the cluster; create it or fix topic`)
	if s := step(t, res, StepTopic, ""); s.Status != StepFailed {
		t.Errorf("topic step = %+v", s)
	}
	// The brokers themselves were fine.
	if res.ResultSummary != (ResultSummary{TotalObjects: 1, TotalObjectsSuccessful: 1}) {
		t.Errorf("result_summary = %+v", res.ResultSummary)
	}
	// Checking must not create the topic.
	res = runConnectivity(t, r, decodeConfig(t, map[string]any{"hosts": c.ListenAddrs()[0], "topic": "alerts"}))
	wantFailed(t, res, `topic "alerts" does not exist`)
}

func TestConnectivityUnknownTopicWithAutoCreateCluster(t *testing.T) {
	t.Parallel()
	// A cluster that would auto-create on request: the check must not ask.
	c := testenv.NewKafka(t, kfake.AllowAutoTopicCreation())
	r, _ := newTestRunner(testStepTimeout)
	res := runConnectivity(t, r, decodeConfig(t, map[string]any{"hosts": c.ListenAddrs()[0], "topic": "alerts"}))
	wantFailed(t, res, `topic "alerts" does not exist on the cluster; create it or fix topic`)
}

func TestConnectivityTLS(t *testing.T) {
	t.Parallel()
	certs := testenv.NewTLSCerts(t)
	c := testenv.NewKafka(t, kfake.TLS(certs.ServerTLS()), kfake.SeedTopics(2, "alerts"))
	testenv.ProduceKafkaRecords(t, c, "alerts", 1, 4, kgo.DialTLSConfig(certs.ClientTLS()))
	host := c.ListenAddrs()[0]

	r, _ := newTestRunner(testStepTimeout)
	res := runConnectivity(t, r, decodeConfig(t, map[string]any{"hosts": host, "topic": "alerts", "use_ssl": true, "ca_cert": certs.CAFile}))
	wantSuccess(t, res, `Connected to 1 broker; topic "alerts" has 2 partitions`)
	if s := step(t, res, StepTLS, host); s.TLSVersion != "TLS 1.3" {
		t.Errorf("tls step = %+v, want TLS 1.3", s)
	}
	if got := step(t, res, StepTopic, "").Partitions; len(got) != 2 || got[1].LatestOffset != 4 || got[1].EarliestOffset != 0 {
		t.Errorf("partitions = %+v", got)
	}
}

func TestConnectivityTLSFailures(t *testing.T) {
	t.Parallel()
	certs := testenv.NewTLSCerts(t)
	otherCA := testenv.NewTLSCerts(t, testenv.TLSCertCAName("some other CA"))
	localhostOnly := testenv.NewTLSCerts(t, testenv.TLSCertHosts("localhost"))
	ipOnly := testenv.NewTLSCerts(t, testenv.TLSCertHosts("127.0.0.1"))
	expired := testenv.NewTLSCerts(t, testenv.TLSCertServerExpired())

	tlsKafka := testenv.NewKafka(t, kfake.TLS(certs.ServerTLS()), kfake.SeedTopics(1, "alerts")).ListenAddrs()[0]
	localhostKafka := testenv.NewKafka(t, kfake.TLS(localhostOnly.ServerTLS()), kfake.SeedTopics(1, "alerts")).ListenAddrs()[0]
	ipKafka := testenv.NewKafka(t, kfake.TLS(ipOnly.ServerTLS()), kfake.SeedTopics(1, "alerts")).ListenAddrs()[0]
	expiredKafka := testenv.NewKafka(t, kfake.TLS(expired.ServerTLS()), kfake.SeedTopics(1, "alerts")).ListenAddrs()[0]
	plainKafka := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts")).ListenAddrs()[0]
	_, ipKafkaPort, _ := strings.Cut(ipKafka, ":")

	for _, tc := range []struct {
		name        string
		stepTimeout time.Duration
		doc         map[string]any
		prefix      string
		parts       []string
	}{{
		name:   "no ca_cert, system roots do not know the CA",
		doc:    map[string]any{"hosts": tlsKafka, "use_ssl": true},
		prefix: "broker " + tlsKafka + ": TLS handshake failed: x509: certificate signed by unknown authority",
		parts:  []string{`(set ca_cert to the CA that signed the broker certificate: its issuer is "CN=soarkafka test CA")`},
	}, {
		name:   "wrong CA",
		doc:    map[string]any{"hosts": tlsKafka, "use_ssl": true, "ca_cert": otherCA.CAFile},
		prefix: "broker " + tlsKafka + ": TLS handshake failed: x509: certificate signed by unknown authority",
		parts:  []string{"(set ca_cert to the CA that signed the broker certificate, " + otherCA.CAFile + ` is another CA: its issuer is "CN=soarkafka test CA")`},
	}, {
		name:   "certificate for localhost, connecting to 127.0.0.1",
		doc:    map[string]any{"hosts": localhostKafka, "use_ssl": true, "ca_cert": localhostOnly.CAFile},
		prefix: "broker " + localhostKafka + ": TLS handshake failed: x509:",
		parts:  []string{"the certificate is for localhost, not 127.0.0.1: use the name in the certificate in hosts"},
	}, {
		name:   "certificate for 127.0.0.1, connecting to localhost",
		doc:    map[string]any{"hosts": "localhost:" + ipKafkaPort, "use_ssl": true, "ca_cert": ipOnly.CAFile},
		prefix: "broker localhost:" + ipKafkaPort + ": TLS handshake failed: x509: certificate is not valid for any names, but wanted to match localhost",
		parts:  []string{"the certificate is for 127.0.0.1, not localhost"},
	}, {
		name:   "expired broker certificate",
		doc:    map[string]any{"hosts": expiredKafka, "use_ssl": true, "ca_cert": expired.CAFile},
		prefix: "broker " + expiredKafka + ": TLS handshake failed: x509: certificate has expired or is not yet valid",
		parts:  []string{"(the broker certificate expired on ", ": renew the broker certificate, or check this server's clock)"},
	}, {
		name:        "TLS client, plaintext port",
		stepTimeout: 500 * time.Millisecond,
		doc:         map[string]any{"hosts": plainKafka, "use_ssl": true, "ca_cert": certs.CAFile},
		prefix:      "broker " + plainKafka + ": TLS handshake failed: the broker does not speak TLS on this port",
		parts:       []string{"(use security_protocol PLAINTEXT with use_ssl false, or the broker's TLS port)"},
	}, {
		name:   "plaintext client, TLS port",
		doc:    map[string]any{"hosts": tlsKafka},
		prefix: "broker " + tlsKafka + ": Kafka request failed: the broker closed the connection",
		parts:  []string{"(its listener may require TLS: set use_ssl to true)"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			doc := map[string]any{"topic": "alerts"}
			for k, v := range tc.doc {
				doc[k] = v
			}
			timeout := tc.stepTimeout
			if timeout == 0 {
				timeout = testStepTimeout
			}
			r, _ := newTestRunner(timeout)
			start := time.Now()
			res := runConnectivity(t, r, decodeConfig(t, doc))
			wantFailed(t, res, tc.prefix, tc.parts...)
			if took := time.Since(start); took > 4*timeout {
				t.Errorf("took %s", took)
			}
			noStep(t, res, StepMetadata, "")
			if res.ResultSummary.TotalObjectsSuccessful != 0 {
				t.Errorf("result_summary = %+v", res.ResultSummary)
			}
		})
	}
}

// tls_server_name verifies the brokers against another name than the host
// in hosts; insecure_skip_verify connects without verifying, and says so.
func TestConnectivityTLSServerNameAndInsecure(t *testing.T) {
	t.Parallel()
	localhostOnly := testenv.NewTLSCerts(t, testenv.TLSCertHosts("localhost"), testenv.TLSCertRequireClient())
	c := testenv.NewKafka(t, kfake.TLS(localhostOnly.ServerTLS()), kfake.SeedTopics(1, "alerts"))
	host := c.ListenAddrs()[0] // 127.0.0.1, not in the certificate
	r, _ := newTestRunner(testStepTimeout)
	mtls := map[string]any{"hosts": host, "topic": "alerts", "use_ssl": true, "ca_cert": localhostOnly.CAFile,
		"cert_file": localhostOnly.ClientCertFile, "key_file": localhostOnly.ClientKeyFile}

	withName := maps.Clone(mtls)
	withName["tls_server_name"] = "localhost"
	res := runConnectivity(t, r, decodeConfig(t, withName))
	wantSuccess(t, res, `Connected to 1 broker; topic "alerts" has 1 partition`)
	if w := res.Summary.(*ConnectivitySummary).Warnings; w != nil {
		t.Errorf("warnings %v with verification on", w)
	}

	insecure := maps.Clone(mtls)
	delete(insecure, "ca_cert")
	insecure["insecure_skip_verify"] = true
	res = runConnectivity(t, r, decodeConfig(t, insecure))
	if res.Status != StatusSuccess || !strings.Contains(res.Message, "Warning: insecure_skip_verify is set: the broker certificates are not verified") {
		t.Fatalf("insecure: %s %q", res.Status, res.Message)
	}

	// The same client certificate inline, with its key encrypted
	// (PKCS#8) and opened with key_password.
	keyPEM, err := os.ReadFile(localhostOnly.ClientKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(keyPEM)
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := pkcs8.MarshalPrivateKey(key, []byte("s3cret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _ := os.ReadFile(localhostOnly.ClientCertFile)
	caPEM, _ := os.ReadFile(localhostOnly.CAFile)
	inline := map[string]any{"hosts": host, "topic": "alerts", "use_ssl": true, "tls_server_name": "localhost",
		"ca_pem": string(caPEM), "cert_pem": string(certPEM), "key_password": "s3cret",
		"key_pem": string(pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: enc}))}
	res = runConnectivity(t, r, decodeConfig(t, inline))
	wantSuccess(t, res, `Connected to 1 broker; topic "alerts" has 1 partition`)
	inline["key_password"] = "wrong"
	res = runConnectivity(t, r, decodeConfig(t, inline))
	wantFailed(t, res, "key_password: does not open the encrypted PKCS#8 key in key_pem")

	// Without either, the host name check fails and the hint names tls_server_name.
	res = runConnectivity(t, r, decodeConfig(t, mtls))
	wantFailed(t, res, "broker "+host+": TLS handshake failed: x509:", "or set tls_server_name to it")
}

func TestConnectivityMutualTLS(t *testing.T) {
	t.Parallel()
	certs := testenv.NewTLSCerts(t, testenv.TLSCertRequireClient())
	strangers := testenv.NewTLSCerts(t, testenv.TLSCertCAName("untrusted client CA"))
	c := testenv.NewKafka(t, kfake.TLS(certs.ServerTLS()), kfake.SeedTopics(3, "alerts"))
	host := c.ListenAddrs()[0]
	base := map[string]any{"hosts": host, "topic": "alerts", "use_ssl": true, "ca_cert": certs.CAFile}
	with := func(kv ...string) map[string]any {
		doc := map[string]any{}
		for k, v := range base {
			doc[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			doc[kv[i]] = kv[i+1]
		}
		return doc
	}

	t.Run("client certificate missing", func(t *testing.T) {
		t.Parallel()
		r, _ := newTestRunner(testStepTimeout)
		res := runConnectivity(t, r, decodeConfig(t, with()))
		wantFailed(t, res, "broker "+host+": TLS handshake failed: the broker requires a client certificate: ",
			"(set cert_file and key_file to a client certificate and its key")
		noStep(t, res, StepKafka, host)
	})
	t.Run("client certificate from another CA", func(t *testing.T) {
		t.Parallel()
		r, _ := newTestRunner(testStepTimeout)
		res := runConnectivity(t, r, decodeConfig(t, with("cert_file", strangers.ClientCertFile, "key_file", strangers.ClientKeyFile)))
		wantFailed(t, res, "broker "+host+": TLS handshake failed: the broker rejected the client certificate: remote error: tls:",
			"(cert_file must be signed by a CA in the broker's truststore")
	})
	t.Run("client certificate", func(t *testing.T) {
		t.Parallel()
		r, _ := newTestRunner(testStepTimeout)
		res := runConnectivity(t, r, decodeConfig(t, with("cert_file", certs.ClientCertFile, "key_file", certs.ClientKeyFile)))
		wantSuccess(t, res, `Connected to 1 broker; topic "alerts" has 3 partitions`)
	})
}

func TestConnectivitySASL(t *testing.T) {
	t.Parallel()
	const user, pass = "soar", "s3cret-Pa55"
	for _, mech := range []string{assets.MechanismPlain, assets.MechanismSCRAMSHA256, assets.MechanismSCRAMSHA512} {
		t.Run(mech, func(t *testing.T) {
			t.Parallel()
			c := testenv.NewKafka(t, kfake.EnableSASL(), kfake.Superuser(mech, user, pass), kfake.SeedTopics(2, "alerts"))
			var auth kgo.Opt
			switch mech {
			case assets.MechanismPlain:
				auth = kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism())
			case assets.MechanismSCRAMSHA256:
				auth = kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism())
			default:
				auth = kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism())
			}
			testenv.ProduceKafkaRecords(t, c, "alerts", 0, 7, auth)
			host := c.ListenAddrs()[0]
			doc := func(password string) map[string]any {
				return map[string]any{"hosts": host, "topic": "alerts", "security_protocol": "SASL_PLAINTEXT",
					"sasl_mechanism": mech, "username": user, "password": password}
			}

			t.Run("good password", func(t *testing.T) {
				t.Parallel()
				r, logs := newTestRunner(testStepTimeout)
				res := runConnectivity(t, r, decodeConfig(t, doc(pass)))
				wantSuccess(t, res, `Connected to 1 broker; topic "alerts" has 2 partitions`)
				if p := step(t, res, StepTopic, "").Partitions[0]; p.LatestOffset != 7 {
					t.Errorf("partition 0 = %+v, want latest offset 7", p)
				}
				if logs.String() == "" {
					t.Error("no log written at debug level")
				}
				if strings.Contains(logs.String(), pass) {
					t.Errorf("the password is in the log:\n%s", logs)
				}
			})
			t.Run("bad password", func(t *testing.T) {
				t.Parallel()
				r, logs := newTestRunner(testStepTimeout)
				start := time.Now()
				res := runConnectivity(t, r, decodeConfig(t, doc("wrong-Pa55")))
				// kfake closes the connection on bad credentials.
				wantFailed(t, res, "broker "+host+": SASL authentication failed: the broker closed the connection during the "+mech+" login",
					fmt.Sprintf(`(check username and password, and sasl_mechanism: user "soar" needs %s credentials on the cluster)`, mech))
				if took := time.Since(start); took > 2*time.Second {
					t.Errorf("a refused login took %s to report", took)
				}
				if s := step(t, res, StepTCP, host); s.Status != StepOK {
					t.Errorf("tcp step = %+v", s)
				}
				if s := step(t, res, StepKafka, host); s.Status != StepFailed {
					t.Errorf("kafka step = %+v", s)
				}
				if strings.Contains(logs.String(), "wrong-Pa55") {
					t.Errorf("the password is in the log:\n%s", logs)
				}
			})
		})
	}
}

func TestConnectivitySASLOverTLS(t *testing.T) {
	t.Parallel()
	certs := testenv.NewTLSCerts(t)
	c := testenv.NewKafka(t, kfake.TLS(certs.ServerTLS()), kfake.EnableSASL(),
		kfake.Superuser(assets.MechanismSCRAMSHA512, "soar", "pw"), kfake.SeedTopics(1, "alerts"))
	r, _ := newTestRunner(testStepTimeout)
	res := runConnectivity(t, r, decodeConfig(t, map[string]any{
		"hosts": c.ListenAddrs()[0], "topic": "alerts", "use_ssl": true, "ca_cert": certs.CAFile,
		"sasl_mechanism": assets.MechanismSCRAMSHA512, "username": "soar", "password": "pw",
	}))
	wantSuccess(t, res, `Connected to 1 broker; topic "alerts" has 1 partition`)
	step(t, res, StepTLS, c.ListenAddrs()[0])
}

func TestConnectivitySASLMechanismNotOffered(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.EnableSASL(), kfake.Superuser(assets.MechanismPlain, "soar", "pw"), kfake.SeedTopics(1, "alerts"))
	// kfake offers every mechanism it implements; make it answer as a
	// broker with sasl.enabled.mechanisms=PLAIN does.
	c.ControlKey(int16(kmsg.SASLHandshake), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		hs := req.(*kmsg.SASLHandshakeRequest)
		if hs.Mechanism == assets.MechanismPlain {
			return nil, nil, false
		}
		resp := hs.ResponseKind().(*kmsg.SASLHandshakeResponse)
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		resp.SupportedMechanisms = []string{assets.MechanismPlain}
		return resp, nil, true
	})
	host := c.ListenAddrs()[0]
	r, _ := newTestRunner(testStepTimeout)
	res := runConnectivity(t, r, decodeConfig(t, map[string]any{
		"hosts": host, "topic": "alerts", "sasl_mechanism": assets.MechanismSCRAMSHA256, "username": "soar", "password": "pw",
	}))
	wantFailed(t, res, "broker "+host+": SASL authentication failed: the broker does not offer SASL mechanism SCRAM-SHA-256; it offers PLAIN",
		"(set sasl_mechanism to a mechanism the broker enables in sasl.enabled.mechanisms)")
}

func TestConnectivityPlaintextClientSASLBroker(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.EnableSASL(), kfake.Superuser(assets.MechanismPlain, "soar", "pw"), kfake.SeedTopics(1, "alerts"))
	host := c.ListenAddrs()[0]
	r, _ := newTestRunner(testStepTimeout)
	res := runConnectivity(t, r, decodeConfig(t, map[string]any{"hosts": host, "topic": "alerts"}))
	wantFailed(t, res, "broker "+host+": Kafka request failed: the broker closed the connection",
		"(its listener may require SASL: set security_protocol to SASL_PLAINTEXT or SASL_SSL, with sasl_mechanism, username and password)")
}

func TestConnectivityUnusableTLSFiles(t *testing.T) {
	t.Parallel()
	certs := testenv.NewTLSCerts(t)
	c := testenv.NewKafka(t, kfake.TLS(certs.ServerTLS()), kfake.SeedTopics(1, "alerts"))
	host := c.ListenAddrs()[0]
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	notPEM := filepath.Join(dir, "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		doc  map[string]any
		want string
	}{
		{"missing ca_cert", map[string]any{"ca_cert": missing}, "ca_cert: file " + missing + " cannot be used: it is missing, unreadable, or outside files.allowed_dirs"},
		{"ca_cert is a directory", map[string]any{"ca_cert": dir}, "ca_cert: file " + dir + " cannot be used: it is missing, unreadable, or outside files.allowed_dirs"},
		{"ca_cert holds no certificate", map[string]any{"ca_cert": notPEM}, "ca_cert: " + notPEM + " holds no PEM certificate"},
		{"key of another certificate", map[string]any{"ca_cert": certs.CAFile, "cert_file": certs.ClientCertFile, "key_file": certs.ServerKeyFile},
			"cert_file/key_file: tls: private key does not match public key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			doc := map[string]any{"hosts": host, "topic": "alerts", "use_ssl": true}
			for k, v := range tc.doc {
				doc[k] = v
			}
			r, _ := newTestRunner(testStepTimeout)
			res := runConnectivity(t, r, decodeConfig(t, doc))
			wantFailed(t, res, tc.want)
			s := step(t, res, StepConfig, "")
			if s.Status != StepFailed || !strings.HasPrefix(s.Error, tc.want) {
				t.Errorf("config step = %+v", s)
			}
			noStep(t, res, StepTCP, "")
		})
	}

	if os.Geteuid() != 0 { // root reads any file
		t.Run("ca_cert not readable", func(t *testing.T) {
			t.Parallel()
			locked := filepath.Join(t.TempDir(), "ca.pem")
			if err := os.WriteFile(locked, []byte("x"), 0o000); err != nil {
				t.Fatal(err)
			}
			r, _ := newTestRunner(testStepTimeout)
			res := runConnectivity(t, r, decodeConfig(t, map[string]any{"hosts": host, "topic": "alerts", "use_ssl": true, "ca_cert": locked}))
			wantFailed(t, res, "ca_cert: file "+locked+" cannot be used: it is missing, unreadable, or outside files.allowed_dirs")
		})
	}
}

func TestConnectivityCancelled(t *testing.T) {
	t.Parallel()
	silent := testenv.SilentTCPAddr(t)
	r, _ := newTestRunner(time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	res := r.TestConnectivity(ctx, decodeConfig(t, map[string]any{"hosts": silent, "topic": "alerts"}))
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the action ignored its context: took %s", took)
	}
	wantFailed(t, res, "broker "+silent+": Kafka request failed: ")
}

func TestConnectivitySASLFailedAnsweredAsKafkaDoes(t *testing.T) {
	t.Parallel()
	const kafkaMsg = "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"
	c := testenv.NewKafka(t, kfake.EnableSASL(), kfake.Superuser(assets.MechanismSCRAMSHA256, "soar", "pw"), kfake.SeedTopics(1, "alerts"))
	// Apache Kafka answers bad credentials with SASL_AUTHENTICATION_FAILED
	// and a message, where kfake closes the connection.
	c.ControlKey(int16(kmsg.SASLAuthenticate), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		resp := req.(*kmsg.SASLAuthenticateRequest).ResponseKind().(*kmsg.SASLAuthenticateResponse)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		resp.ErrorMessage = kmsg.StringPtr(kafkaMsg)
		return resp, nil, true
	})
	host := c.ListenAddrs()[0]
	r, _ := newTestRunner(testStepTimeout)
	res := runConnectivity(t, r, decodeConfig(t, map[string]any{
		"hosts": host, "topic": "alerts", "sasl_mechanism": assets.MechanismSCRAMSHA256, "username": "soar", "password": "bad",
	}))
	wantFailed(t, res, "broker "+host+": SASL authentication failed: SASL_AUTHENTICATION_FAILED", kafkaMsg,
		`(check username and password, and sasl_mechanism: user "soar" needs SCRAM-SHA-256 credentials on the cluster)`)
}

func TestConnectivityNoHosts(t *testing.T) {
	t.Parallel()
	res := NewRunner(nil).TestConnectivity(context.Background(), assets.Config{Topic: "alerts", SecurityProtocol: assets.ProtocolPlaintext})
	wantFailed(t, res, "hosts: no broker given")
	if s := step(t, res, StepConfig, ""); s.Status != StepFailed {
		t.Errorf("config step = %+v", s)
	}
}
