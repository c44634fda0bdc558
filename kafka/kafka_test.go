package kafka_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/kafka"
)

func decodeConfig(t *testing.T, doc map[string]any) assets.Config {
	t.Helper()
	if _, ok := doc["hosts"]; !ok {
		doc["hosts"] = "127.0.0.1:9092"
	}
	if _, ok := doc["topic"]; !ok {
		doc["topic"] = "alerts"
	}
	cfg, err := assets.Decode(doc, assets.DecodeOptions{})
	if err != nil {
		t.Fatalf("assets.Decode(%v): %v", doc, err)
	}
	return cfg
}

// tempAccess is the access of the tests: every host, and the files under
// the temporary directory, where testenv writes certificates and keytabs.
func tempAccess(t testing.TB) kafka.Access {
	t.Helper()
	files, err := kafka.NewFilePolicy([]string{os.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Access{Files: files}
}

// wantInvalid asserts err is a *soarkafka.Error with code EINVALID and
// exactly the message want (or, with prefix, starting with it).
func wantInvalid(t *testing.T, err error, want string, prefix bool) {
	t.Helper()
	var e *soarkafka.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *soarkafka.Error", err, err)
	}
	if e.Code != soarkafka.EINVALID {
		t.Errorf("code = %q, want %q", e.Code, soarkafka.EINVALID)
	}
	if prefix && !strings.HasPrefix(e.Error(), want) || !prefix && e.Error() != want {
		t.Errorf("message = %q\nwant      %q (prefix: %v)", e.Error(), want, prefix)
	}
}

func TestTLSConfigNotTLS(t *testing.T) {
	t.Parallel()
	for _, doc := range []map[string]any{
		{},
		{"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "username": "u", "password": "p"},
	} {
		tc, err := tempAccess(t).TLSConfig(decodeConfig(t, doc))
		if tc != nil || err != nil {
			t.Errorf("TLSConfig(%v) = %v, %v; want nil, nil", doc, tc, err)
		}
	}
}

func TestTLSConfig(t *testing.T) {
	t.Parallel()
	certs := testenv.NewTLSCerts(t)

	tc, err := tempAccess(t).TLSConfig(decodeConfig(t, map[string]any{"use_ssl": true}))
	if err != nil {
		t.Fatal(err)
	}
	if tc.MinVersion != tls.VersionTLS12 || tc.RootCAs != nil || tc.InsecureSkipVerify || len(tc.Certificates) != 0 {
		t.Errorf("TLS without files = %+v; want TLS 1.2+, system roots, verification on, no client certificate", tc)
	}

	tc, err = tempAccess(t).TLSConfig(decodeConfig(t, map[string]any{
		"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "username": "u", "password": "p",
		"ca_cert": certs.CAFile, "cert_file": certs.ClientCertFile, "key_file": certs.ClientKeyFile,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !tc.RootCAs.Equal(certs.CAPool) {
		t.Error("RootCAs is not the pool of ca_cert")
	}
	if len(tc.Certificates) != 1 || !bytes.Equal(tc.Certificates[0].Certificate[0], certs.ClientCert.Certificate[0]) {
		t.Error("the client certificate is not cert_file")
	}
	if tc.InsecureSkipVerify || tc.MinVersion != tls.VersionTLS12 {
		t.Errorf("TLS config = %+v", tc)
	}
}

func TestTLSConfigErrors(t *testing.T) {
	t.Parallel()
	certs := testenv.NewTLSCerts(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		doc    map[string]any
		want   string
		prefix bool
	}{
		{"missing ca_cert", map[string]any{"ca_cert": missing}, "ca_cert: file " + missing + " cannot be used: it is missing, unreadable, or outside files.allowed_dirs", false},
		{"ca_cert is a directory", map[string]any{"ca_cert": dir}, "ca_cert: file " + dir + " cannot be used: it is missing, unreadable, or outside files.allowed_dirs", false},
		{"ca_cert without PEM", map[string]any{"ca_cert": garbage}, "ca_cert: " + garbage + " holds no PEM certificate;", true},
		{"ca_cert holds a key only", map[string]any{"ca_cert": certs.ServerKeyFile}, "ca_cert: " + certs.ServerKeyFile + " holds no PEM certificate;", true},
		{"missing cert_file", map[string]any{"cert_file": missing, "key_file": certs.ClientKeyFile}, "cert_file: file " + missing + " cannot be used: it is missing, unreadable, or outside files.allowed_dirs", false},
		{"missing key_file", map[string]any{"cert_file": certs.ClientCertFile, "key_file": missing}, "key_file: file " + missing + " cannot be used: it is missing, unreadable, or outside files.allowed_dirs", false},
		{"key of another certificate", map[string]any{"cert_file": certs.ClientCertFile, "key_file": certs.ServerKeyFile},
			"cert_file/key_file: tls: private key does not match public key: key_file " + certs.ServerKeyFile + " is not the private key of cert_file " + certs.ClientCertFile, false},
		{"cert_file holds a key", map[string]any{"cert_file": certs.ClientKeyFile, "key_file": certs.ClientKeyFile}, "cert_file: " + certs.ClientKeyFile + " holds no PEM certificate", true},
		{"key_file holds a certificate", map[string]any{"cert_file": certs.ClientCertFile, "key_file": certs.ClientCertFile}, "key_file: " + certs.ClientCertFile + " holds no usable private key", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			doc := map[string]any{"use_ssl": true}
			for k, v := range tc.doc {
				doc[k] = v
			}
			cfg := decodeConfig(t, doc)
			got, err := tempAccess(t).TLSConfig(cfg)
			if got != nil {
				t.Errorf("config %+v returned with an error", got)
			}
			wantInvalid(t, err, tc.want, tc.prefix)
			// ClientOptions and NewClient report the same.
			_, err = tempAccess(t).ClientOptions(cfg, nil)
			wantInvalid(t, err, tc.want, tc.prefix)
			_, err = tempAccess(t).NewClient(cfg, nil)
			wantInvalid(t, err, tc.want, tc.prefix)
		})
	}

	if os.Geteuid() != 0 { // root reads any file
		locked := filepath.Join(dir, "locked.pem")
		if err := os.WriteFile(locked, []byte("x"), 0o000); err != nil {
			t.Fatal(err)
		}
		_, err := tempAccess(t).TLSConfig(decodeConfig(t, map[string]any{"use_ssl": true, "ca_cert": locked}))
		wantInvalid(t, err, "ca_cert: file "+locked+" cannot be used: it is missing, unreadable, or outside files.allowed_dirs", false)
	}
}

func TestSASLMechanism(t *testing.T) {
	t.Parallel()
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		m, err := tempAccess(t).SASLMechanism(decodeConfig(t, map[string]any{"sasl_mechanism": mech, "username": "u", "password": "p"}))
		if err != nil || m == nil || m.Name() != mech {
			t.Errorf("SASLMechanism(%s) = %v, %v", mech, m, err)
		}
	}
	for _, doc := range []map[string]any{{}, {"use_ssl": true}} {
		if m, err := tempAccess(t).SASLMechanism(decodeConfig(t, doc)); m != nil || err != nil {
			t.Errorf("SASLMechanism(%v) = %v, %v; want nil, nil", doc, m, err)
		}
	}

	// Configs that assets.Decode would refuse, built by hand as a caller
	// could: the mechanism table still answers with the field to fix.
	cfg := assets.Config{Hosts: "h:1", Topic: "t", SecurityProtocol: assets.ProtocolSASLPlaintext, SASLMechanism: "OAUTHBEARER", Username: "u", Password: "p"}
	_, err := tempAccess(t).SASLMechanism(cfg)
	wantInvalid(t, err, `sasl_mechanism: "OAUTHBEARER" is not supported; use one of AWS_MSK_IAM, GSSAPI, PLAIN, SCRAM-SHA-256, SCRAM-SHA-512`, false)
	cfg.SASLMechanism = "GSSAPI"
	_, err = tempAccess(t).SASLMechanism(cfg)
	wantInvalid(t, err, "kerberos.keytab: GSSAPI needs the principal's credentials", true)
	cfg.SASLMechanism = "AWS_MSK_IAM"
	_, err = tempAccess(t).SASLMechanism(cfg)
	wantInvalid(t, err, "aws_iam.region: required for AWS_MSK_IAM", true)
	cfg.SASLMechanism = ""
	_, err = tempAccess(t).SASLMechanism(cfg)
	wantInvalid(t, err, "sasl_mechanism: required with security_protocol SASL_PLAINTEXT; use one of AWS_MSK_IAM, GSSAPI, PLAIN, SCRAM-SHA-256, SCRAM-SHA-512", false)
	if got := kafka.SASLMechanisms(); strings.Join(got, ",") != "AWS_MSK_IAM,GSSAPI,PLAIN,SCRAM-SHA-256,SCRAM-SHA-512" {
		t.Errorf("SASLMechanisms() = %v", got)
	}
}

// TestNewClient connects a client built from an asset to a TLS + SCRAM
// kfake broker, produces and reads back, and checks the defaults and that
// the password never reaches the log.
func TestNewClient(t *testing.T) {
	t.Parallel()
	const password = "Very-Secret-42"
	certs := testenv.NewTLSCerts(t, testenv.TLSCertRequireClient())
	c := testenv.NewKafka(t, kfake.TLS(certs.ServerTLS()), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-256", "soar", password), kfake.SeedTopics(1, "alerts"))
	cfg := decodeConfig(t, map[string]any{
		"hosts": strings.Join(c.ListenAddrs(), ","), "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-256",
		"username": "soar", "password": password,
		"ca_cert": certs.CAFile, "cert_file": certs.ClientCertFile, "key_file": certs.ClientKeyFile,
	})
	logs := &testenv.LogBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	cl, err := tempAccess(t).NewClient(cfg, logger, kgo.DefaultProduceTopic("alerts"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if got := cl.OptValue(kgo.ClientID); got != kafka.ClientID {
		t.Errorf("client id = %v, want %q", got, kafka.ClientID)
	}
	if got := cl.OptValue(kgo.DialTimeout); got != kafka.DefaultDialTimeout {
		t.Errorf("dial timeout = %v", got)
	}
	if got := cl.OptValue(kgo.RequestTimeoutOverhead); got != kafka.DefaultRequestTimeoutOverhead {
		t.Errorf("request timeout overhead = %v", got)
	}
	if got := cl.OptValue(kgo.AllowAutoTopicCreation); got != false {
		t.Errorf("allow auto topic creation = %v, want false", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	cl.Close()

	log := logs.String()
	if !strings.Contains(log, "component=kafka") {
		t.Errorf("no kgo log line went to slog:\n%s", log)
	}
	if strings.Contains(log, password) {
		t.Errorf("the password is in the log:\n%s", log)
	}

	// A wrong password fails the first request with the broker's answer,
	// not a timeout.
	cfg.Password = "wrong"
	bad, err := tempAccess(t).NewClient(cfg, nil, kgo.SeedBrokers(c.ListenAddrs()[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if err := bad.Ping(ctx); err == nil {
		t.Error("ping with a wrong password succeeded")
	} else if ctx.Err() != nil {
		t.Errorf("ping with a wrong password timed out: %v", err)
	}
}

func TestLoggerLevel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		level slog.Level
		want  kgo.LogLevel
	}{
		{slog.LevelDebug, kgo.LogLevelDebug},
		{slog.LevelInfo, kgo.LogLevelInfo},
		{slog.LevelWarn, kgo.LogLevelWarn},
		{slog.LevelError, kgo.LogLevelError},
		{slog.LevelError + 1, kgo.LogLevelNone},
	} {
		var buf bytes.Buffer
		l := kafka.NewLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tc.level})))
		if got := l.Level(); got != tc.want {
			t.Errorf("slog level %v: kgo level = %v, want %v", tc.level, got, tc.want)
		}
		l.Log(kgo.LogLevelError, "broken", "broker", 1)
		if tc.want >= kgo.LogLevelError && !strings.Contains(buf.String(), `level=ERROR msg=broken component=kafka broker=1`) {
			t.Errorf("slog level %v: log = %q", tc.level, buf.String())
		}
	}
}
