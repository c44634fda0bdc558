package testenv

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	saslaws "github.com/twmb/franz-go/pkg/sasl/aws"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// These tests prove the AWS stand-ins with franz-go's own AWS_MSK_IAM
// mechanism fed by aws-sdk-go-v2 credential providers. They use t.Setenv
// (franz-go reads the region from AWS_REGION for a 127.0.0.1 broker), so
// none is parallel.

// mskIAMWorld is one test's account, TLS PKI and MSK cluster.
type mskIAMWorld struct {
	iam   *AWSIAM
	certs *TLSCerts
	kafka *MSKIAMKafka
}

func newMSKIAMWorld(t *testing.T) *mskIAMWorld {
	t.Helper()
	iam := NewAWSIAM(t)
	IsolateAWSEnv(t, iam.Region)
	certs := NewTLSCerts(t)
	k := NewMSKIAMKafka(t, iam, certs.ServerTLS(), kfake.SeedTopics(1, "alerts"))
	return &mskIAMWorld{iam: iam, certs: certs, kafka: k}
}

// mskIAM is the SASL mechanism a product would build: franz-go's
// AWS_MSK_IAM asking the provider for credentials at every authentication.
func mskIAM(p aws.CredentialsProvider) sasl.Mechanism {
	return saslaws.ManagedStreamingIAM(func(ctx context.Context) (saslaws.Auth, error) {
		c, err := p.Retrieve(ctx)
		if err != nil {
			return saslaws.Auth{}, err
		}
		return saslaws.Auth{AccessKey: c.AccessKeyID, SecretKey: c.SecretAccessKey, SessionToken: c.SessionToken}, nil
	})
}

// opts are the kgo options of a client authenticating with p over TLS.
func (w *mskIAMWorld) opts(p aws.CredentialsProvider) []kgo.Opt {
	return []kgo.Opt{kgo.DialTLSConfig(w.certs.ClientTLS()), kgo.SASL(mskIAM(p))}
}

// ping returns the error of a metadata request from a new client with opts.
func (w *mskIAMWorld) ping(t *testing.T, opts ...kgo.Opt) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return KafkaClient(t, w.kafka.Cluster, opts...).Ping(ctx)
}

// produceConsume produces n records with p's credentials and consumes them
// back with a second client.
func (w *mskIAMWorld) produceConsume(t *testing.T, p aws.CredentialsProvider, n int) {
	t.Helper()
	recs := ProduceKafkaRecords(t, w.kafka.Cluster, "alerts", 0, n, w.opts(p)...)
	cl := KafkaClient(t, w.kafka.Cluster, append(w.opts(p),
		kgo.ConsumeTopics("alerts"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(got), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	for i, r := range recs {
		if got[i] != string(r.Value) {
			t.Fatalf("record %d = %q, want %q", i, got[i], r.Value)
		}
	}
}

func (w *mskIAMWorld) stsClient(s *AWSSTS, p aws.CredentialsProvider) *sts.Client {
	return sts.New(sts.Options{Region: w.iam.Region, Credentials: p, BaseEndpoint: aws.String(s.URL)})
}

func TestMSKIAMStaticKeysProduceConsume(t *testing.T) {
	w := newMSKIAMWorld(t)
	alice := w.iam.AddUser("alice")
	p := credentials.NewStaticCredentialsProvider(alice.AccessKeyID, alice.SecretAccessKey, "")

	w.produceConsume(t, p, 3)

	auths := w.kafka.Authentications()
	if len(auths) == 0 {
		t.Fatal("no authentication recorded")
	}
	for _, a := range auths {
		if a.AccessKeyID != alice.AccessKeyID || a.Principal != "arn:aws:iam::123456789012:user/alice" || a.RoleARN != "" {
			t.Errorf("authentication %+v, want alice's key and user ARN", a)
		}
		if a.SessionLifetime != 0 {
			t.Errorf("session lifetime %v for a long-term key without SetSessionLifetime, want 0", a.SessionLifetime)
		}
	}
	if f := w.kafka.Failures(); len(f) != 0 {
		t.Errorf("failures %+v, want none", f)
	}
	if r := w.kafka.Refusals(); len(r) != 0 {
		t.Errorf("refusals %+v, want none", r)
	}
}

func TestMSKIAMBadCredentialsRefused(t *testing.T) {
	w := newMSKIAMWorld(t)
	alice := w.iam.AddUser("alice")
	role := w.iam.AddRole("msk-client", "")
	expired := w.iam.AssumeRole(t, role, "expired", time.Millisecond)
	time.Sleep(time.Until(expired.Expires) + 10*time.Millisecond)

	for _, tc := range []struct {
		name   string
		creds  aws.Credentials
		region string // AWS_REGION of the client
		reason string
	}{
		{"wrong secret", aws.Credentials{AccessKeyID: alice.AccessKeyID, SecretAccessKey: "not-" + alice.SecretAccessKey}, "", "signature does not match"},
		{"unknown key", aws.Credentials{AccessKeyID: "AKIAUNKNOWNUNKNOWN00", SecretAccessKey: alice.SecretAccessKey}, "", "unknown access key id"},
		{"expired token", expired, "", "security token expired"},
		{"wrong token", aws.Credentials{AccessKeyID: expired.AccessKeyID, SecretAccessKey: expired.SecretAccessKey, SessionToken: "forged"}, "", "invalid security token"},
		{"other region", alice, "us-east-1", `credential scope region "us-east-1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.region != "" {
				t.Setenv("AWS_REGION", tc.region)
			}
			before := len(w.kafka.Failures())
			err := w.ping(t, w.opts(credentials.StaticCredentialsProvider{Value: tc.creds})...)
			if !errors.Is(err, kerr.SaslAuthenticationFailed) {
				t.Fatalf("ping: %v, want SASL_AUTHENTICATION_FAILED", err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("ping: %v, want it to say %q", err, tc.reason)
			}
			f := w.kafka.Failures()[before:]
			if len(f) == 0 || !strings.Contains(f[0].Reason, tc.reason) {
				t.Errorf("failures %+v, want one for %q", f, tc.reason)
			}
		})
	}
	if a := w.kafka.Authentications(); len(a) != 0 {
		t.Errorf("authentications %+v, want none", a)
	}
}

func TestMSKIAMEnforcesAuthentication(t *testing.T) {
	w := newMSKIAMWorld(t)

	// TLS but no SASL: ApiVersions passes, the metadata request closes the
	// connection.
	err := w.ping(t, kgo.DialTLSConfig(w.certs.ClientTLS()))
	if err == nil {
		t.Fatal("ping without SASL succeeded, want the connection refused")
	}
	refusals := w.kafka.Refusals()
	if len(refusals) == 0 || refusals[0].APIKey != int16(kmsg.Metadata) || refusals[0].Reason != "not authenticated" {
		t.Fatalf("refusals %+v, want a metadata request refused as not authenticated", refusals)
	}

	// Nor can it produce.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	cl := KafkaClient(t, w.kafka.Cluster, kgo.DialTLSConfig(w.certs.ClientTLS()))
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "alerts", Value: []byte("x")}).FirstErr(); err == nil {
		t.Fatal("produce without SASL succeeded")
	}

	// Another mechanism is not offered.
	err = w.ping(t, kgo.DialTLSConfig(w.certs.ClientTLS()), kgo.SASL(plain.Auth{User: "admin", Pass: "admin"}.AsMechanism()))
	if !errors.Is(err, kerr.UnsupportedSaslMechanism) {
		t.Fatalf("ping with PLAIN: %v, want UNSUPPORTED_SASL_MECHANISM", err)
	}
	if a := w.kafka.Authentications(); len(a) != 0 {
		t.Errorf("authentications %+v, want none", a)
	}
}

// rawKafka speaks the Kafka protocol on one connection without a client
// library, so a test can do what franz-go never does: let a session run
// out.
type rawKafka struct {
	conn net.Conn
	corr int32
	f    *kmsg.RequestFormatter
}

func dialRawKafka(t *testing.T, addr string, tc *tls.Config) *rawKafka {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, tc)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawKafka{conn: conn, f: kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw"))}
}

func (r *rawKafka) do(req kmsg.Request) (kmsg.Response, error) {
	r.corr++
	if err := r.conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return nil, err
	}
	if _, err := r.conn.Write(r.f.AppendRequest(nil, req, r.corr)); err != nil {
		return nil, err
	}
	var size [4]byte
	if _, err := io.ReadFull(r.conn, size[:]); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(r.conn, body); err != nil {
		return nil, err
	}
	body = body[4:] // correlation id
	resp := req.ResponseKind()
	if resp.IsFlexible() && req.Key() != int16(kmsg.ApiVersions) {
		rd := kbin.Reader{Src: body}
		kmsg.SkipTags(&rd)
		body = rd.Src
	}
	return resp, resp.ReadFrom(body)
}

// authenticate runs SASLHandshake v1 and SASLAuthenticate v2 with the
// payload franz-go's mechanism builds.
func (r *rawKafka) authenticate(t *testing.T, p aws.CredentialsProvider) *kmsg.SASLAuthenticateResponse {
	t.Helper()
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, MSKIAMMechanism
	resp, err := r.do(hs)
	if err != nil || resp.(*kmsg.SASLHandshakeResponse).ErrorCode != 0 {
		t.Fatalf("SASLHandshake: %v %+v", err, resp)
	}
	_, payload, err := mskIAM(p).Authenticate(context.Background(), r.conn.RemoteAddr().String())
	if err != nil {
		t.Fatalf("build AWS_MSK_IAM payload: %v", err)
	}
	auth := kmsg.NewPtrSASLAuthenticateRequest()
	auth.Version, auth.SASLAuthBytes = 2, payload
	resp, err = r.do(auth)
	if err != nil {
		t.Fatalf("SASLAuthenticate: %v", err)
	}
	ar := resp.(*kmsg.SASLAuthenticateResponse)
	if ar.ErrorCode != 0 {
		t.Fatalf("SASLAuthenticate: error %d %s", ar.ErrorCode, aws.ToString(ar.ErrorMessage))
	}
	return ar
}

func (r *rawKafka) metadata() error {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 4
	_, err := r.do(req)
	return err
}

func TestMSKIAMSessionExpiryEnforced(t *testing.T) {
	w := newMSKIAMWorld(t)
	alice := credentials.StaticCredentialsProvider{Value: w.iam.AddUser("alice")}
	w.kafka.SetSessionLifetime(time.Second)
	addr := w.kafka.Cluster.ListenAddrs()[0]

	stale := dialRawKafka(t, addr, w.certs.ClientTLS())
	fresh := dialRawKafka(t, addr, w.certs.ClientTLS())
	for _, c := range []*rawKafka{stale, fresh} {
		resp := c.authenticate(t, alice)
		if resp.SessionLifetimeMillis != 1000 {
			t.Fatalf("session lifetime %d ms, want 1000", resp.SessionLifetimeMillis)
		}
		if !strings.Contains(string(resp.SASLAuthBytes), `"version":"2020_10_22"`) || !strings.Contains(string(resp.SASLAuthBytes), `"request-id"`) {
			t.Fatalf("success answer %q, want MSK's version and request-id", resp.SASLAuthBytes)
		}
		if err := c.metadata(); err != nil {
			t.Fatalf("metadata after authenticating: %v", err)
		}
	}

	time.Sleep(600 * time.Millisecond)
	fresh.authenticate(t, alice) // KIP-368 re-authentication on the same connection
	time.Sleep(time.Second - 600*time.Millisecond + mskIAMRefreshGrace + 150*time.Millisecond)

	if err := fresh.metadata(); err != nil {
		t.Fatalf("metadata on the re-authenticated connection: %v", err)
	}
	if err := stale.metadata(); err == nil {
		t.Fatal("metadata on a connection whose session ended succeeded")
	}
	refusals := w.kafka.Refusals()
	if len(refusals) != 1 || refusals[0].Reason != "session expired" || refusals[0].APIKey != int16(kmsg.Metadata) {
		t.Fatalf("refusals %+v, want one metadata request refused as session expired", refusals)
	}
	reauths := 0
	for _, a := range w.kafka.Authentications() {
		if a.Reauthentication {
			reauths++
		}
	}
	if reauths != 1 {
		t.Errorf("%d re-authentications recorded, want 1", reauths)
	}
}

func TestMSKIAMPlaintextListener(t *testing.T) {
	// serverTLS nil: the same checks without TLS.
	iam := NewAWSIAM(t)
	IsolateAWSEnv(t, iam.Region)
	k := NewMSKIAMKafka(t, iam, nil)
	alice := iam.AddUser("alice")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := KafkaClient(t, k.Cluster, kgo.SASL(mskIAM(credentials.StaticCredentialsProvider{Value: alice}))).Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if err := KafkaClient(t, k.Cluster).Ping(ctx); err == nil {
		t.Fatal("ping without SASL succeeded")
	}
}

func TestSTSAssumeRoleMSKIAM(t *testing.T) {
	w := newMSKIAMWorld(t)
	s := NewAWSSTS(t, w.iam)
	bob := w.iam.AddUser("bob")
	role := w.iam.AddRole("msk-client", "ext-123")
	stsc := w.stsClient(s, credentials.StaticCredentialsProvider{Value: bob})
	p := aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsc, role, func(o *stscreds.AssumeRoleOptions) {
		o.ExternalID = aws.String("ext-123")
		o.RoleSessionName = "soarkafka"
	}))

	w.produceConsume(t, p, 3)

	calls := s.Calls()
	if len(calls) != 1 || calls[0].Action != "AssumeRole" || calls[0].AccessKeyID != bob.AccessKeyID ||
		calls[0].RoleARN != role || calls[0].ExternalID != "ext-123" || calls[0].ErrorCode != "" {
		t.Fatalf("STS calls %+v, want one AssumeRole by bob with the external id (the cache reuses it)", calls)
	}
	issued := w.iam.IssuedCredentials()
	if len(issued) != 1 || issued[0].Issuer != "sts" || !strings.HasPrefix(issued[0].AccessKeyID, "ASIA") {
		t.Fatalf("issued %+v, want one set of ASIA… credentials from sts", issued)
	}
	for _, a := range w.kafka.Authentications() {
		if a.AccessKeyID != issued[0].AccessKeyID || a.RoleARN != role ||
			a.Principal != "arn:aws:sts::123456789012:assumed-role/msk-client/soarkafka" {
			t.Errorf("authentication %+v, want the assumed role's credentials", a)
		}
		// Temporary credentials cap the session (1 h by default).
		if a.SessionLifetime <= 0 || a.SessionLifetime > time.Hour {
			t.Errorf("session lifetime %v, want up to the credentials' hour", a.SessionLifetime)
		}
	}
}

func TestSTSAssumeRoleDenied(t *testing.T) {
	w := newMSKIAMWorld(t)
	s := NewAWSSTS(t, w.iam)
	bob := w.iam.AddUser("bob")
	role := w.iam.AddRole("msk-client", "ext-123")

	for _, tc := range []struct {
		name       string
		caller     aws.Credentials
		role       string
		externalID string
		code       string
	}{
		{"unknown role", bob, "arn:aws:iam::123456789012:role/nope", "ext-123", "AccessDenied"},
		{"wrong external id", bob, role, "ext-456", "AccessDenied"},
		{"no external id", bob, role, "", "AccessDenied"},
		{"wrong secret", aws.Credentials{AccessKeyID: bob.AccessKeyID, SecretAccessKey: "x" + bob.SecretAccessKey}, role, "ext-123", "SignatureDoesNotMatch"},
		{"unknown key", aws.Credentials{AccessKeyID: "AKIAUNKNOWNUNKNOWN00", SecretAccessKey: "x"}, role, "ext-123", "InvalidClientTokenId"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(w.stsClient(s, credentials.StaticCredentialsProvider{Value: tc.caller}), tc.role,
				func(o *stscreds.AssumeRoleOptions) {
					if tc.externalID != "" {
						o.ExternalID = aws.String(tc.externalID)
					}
				}))

			// The SDK surfaces STS's code…
			_, err := p.Retrieve(context.Background())
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) || apiErr.ErrorCode() != tc.code {
				t.Fatalf("Retrieve: %v, want STS error %s", err, tc.code)
			}
			// …and so does the Kafka client, through the SASL mechanism.
			err = w.ping(t, w.opts(p)...)
			if !errors.As(err, &apiErr) || apiErr.ErrorCode() != tc.code {
				t.Fatalf("ping: %v, want STS error %s", err, tc.code)
			}
		})
	}
	if a := w.kafka.Authentications(); len(a) != 0 {
		t.Errorf("authentications %+v, want none", a)
	}
	if n := s.AssumeRoleCalls(); n != 0 {
		t.Errorf("%d successful AssumeRole calls, want 0", n)
	}
}

func TestSTSGetCallerIdentity(t *testing.T) {
	iam := NewAWSIAM(t)
	IsolateAWSEnv(t, iam.Region)
	s := NewAWSSTS(t, iam)
	bob := iam.AddUser("bob")
	role := iam.AddRole("msk-client", "")
	w := &mskIAMWorld{iam: iam}
	ctx := context.Background()

	out, err := w.stsClient(s, credentials.StaticCredentialsProvider{Value: bob}).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity: %v", err)
	}
	if aws.ToString(out.Arn) != "arn:aws:iam::123456789012:user/bob" || aws.ToString(out.Account) != "123456789012" {
		t.Errorf("caller %s in %s, want user bob in 123456789012", aws.ToString(out.Arn), aws.ToString(out.Account))
	}

	// Role chaining: the assumed role's session credentials sign the call.
	p := aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(w.stsClient(s, credentials.StaticCredentialsProvider{Value: bob}), role,
		func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = "chain" }))
	out, err = w.stsClient(s, p).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity with the role: %v", err)
	}
	if got := aws.ToString(out.Arn); got != "arn:aws:sts::123456789012:assumed-role/msk-client/chain" {
		t.Errorf("caller %s, want the assumed role", got)
	}

	// Expired session credentials are refused with ExpiredToken.
	expired := iam.AssumeRole(t, role, "old", time.Millisecond)
	time.Sleep(time.Until(expired.Expires) + 10*time.Millisecond)
	_, err = w.stsClient(s, credentials.StaticCredentialsProvider{Value: expired}).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ExpiredToken" {
		t.Fatalf("GetCallerIdentity with expired credentials: %v, want ExpiredToken", err)
	}
}

func TestIMDSCredentialChainMSKIAM(t *testing.T) {
	w := newMSKIAMWorld(t)
	role := w.iam.AddRole("ec2-msk", "")
	imds := NewAWSIMDS(t, w.iam, role)
	imds.Setenv(t)

	// IMDSv1 (no token) is refused.
	resp, err := http.Get(imds.URL + "/latest/meta-data/iam/security-credentials/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("IMDSv1 request: %s, want 401", resp.Status)
	}

	// The default chain: no env keys, no files, so the instance profile.
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatalf("LoadDefaultConfig: %v", err)
	}
	if cfg.Region != w.iam.Region {
		t.Errorf("region %q, want %q from AWS_REGION", cfg.Region, w.iam.Region)
	}
	w.produceConsume(t, cfg.Credentials, 2)

	if imds.CredentialFetches() == 0 {
		t.Fatal("the instance-metadata stand-in served no credentials")
	}
	issued := w.iam.IssuedCredentials()
	if len(issued) != 1 || issued[0].Issuer != "imds" {
		t.Fatalf("issued %+v, want one set from imds", issued)
	}
	want := fmt.Sprintf("arn:aws:sts::123456789012:assumed-role/ec2-msk/%s", imds.InstanceID)
	for _, a := range w.kafka.Authentications() {
		if a.AccessKeyID != issued[0].AccessKeyID || a.Principal != want {
			t.Errorf("authentication %+v, want the instance profile's %s", a, want)
		}
	}
}

// TestSTSAssumeRoleRefreshMSKIAMReauth runs a producer and a consumer for
// about 16 s on role credentials that live 6 s: the SDK's cache fetches new
// ones from STS 3 s before expiry, the broker's 2 s sessions make franz-go
// re-authenticate (KIP-368) with fresh signatures about every second, and
// the broker closes any connection that lets its session run out.
func TestSTSAssumeRoleRefreshMSKIAMReauth(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for 16 s")
	}
	w := newMSKIAMWorld(t)
	s := NewAWSSTS(t, w.iam)
	bob := w.iam.AddUser("bob")
	role := w.iam.AddRole("msk-client", "")
	w.iam.SetCredentialLifetime(6 * time.Second)
	w.kafka.SetSessionLifetime(2 * time.Second)
	p := aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(w.stsClient(s, credentials.StaticCredentialsProvider{Value: bob}), role,
		func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = "soarkafka" }),
		func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = 3 * time.Second })

	const run = 16 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), run+10*time.Second)
	defer cancel()
	producer := KafkaClient(t, w.kafka.Cluster, w.opts(p)...)
	consumer := KafkaClient(t, w.kafka.Cluster, append(w.opts(p),
		kgo.ConsumeTopics("alerts"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(time.Second))...)

	var (
		wg       sync.WaitGroup
		consumed atomic.Int64
		produced int64
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			fs := consumer.PollFetches(ctx)
			if ctx.Err() != nil {
				return
			}
			fs.EachError(func(topic string, p int32, err error) { t.Errorf("fetch %s/%d: %v", topic, p, err) })
			consumed.Add(int64(fs.NumRecords()))
		}
	}()
	start := time.Now()
	for time.Since(start) < run {
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		err := producer.ProduceSync(rctx, &kgo.Record{Topic: "alerts", Value: fmt.Appendf(nil, "r%d", produced)}).FirstErr()
		rcancel()
		if err != nil {
			t.Fatalf("produce record %d after %v: %v", produced, time.Since(start).Round(time.Millisecond), err)
		}
		produced++
		time.Sleep(250 * time.Millisecond)
	}
	for deadline := time.Now().Add(10 * time.Second); consumed.Load() < produced && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	got := consumed.Load()
	if got != produced {
		t.Errorf("consumed %d of %d records", got, produced)
	}

	auths := w.kafka.Authentications()
	reauths := 0
	for _, a := range auths {
		if a.Reauthentication {
			reauths++
		}
		if a.SessionLifetime > 2*time.Second {
			t.Errorf("session lifetime %v, want at most the cluster's 2 s", a.SessionLifetime)
		}
	}
	keys := w.kafka.AuthenticatedKeys()
	t.Logf("%d records produced, %d consumed; %d AssumeRole calls, %d authentications (%d re-authentications) with %d distinct keys",
		produced, got, s.AssumeRoleCalls(), len(auths), reauths, len(keys))
	if n := s.AssumeRoleCalls(); n < 4 {
		t.Errorf("%d AssumeRole calls in %v of 6 s credentials, want at least 4", n, run)
	}
	if len(keys) < 4 {
		t.Errorf("%d distinct access keys authenticated, want at least 4 (fresh credentials each refresh)", len(keys))
	}
	if reauths < 10 {
		t.Errorf("%d re-authentications, want at least 10 (2 s sessions on two connections for 16 s)", reauths)
	}
	issued := w.iam.IssuedCredentials()
	for _, k := range keys {
		if !slices.ContainsFunc(issued, func(ic AWSIssuedCredentials) bool { return ic.AccessKeyID == k && ic.Issuer == "sts" }) {
			t.Errorf("key %s authenticated but was not issued by STS", k)
		}
	}
	if f := w.kafka.Failures(); len(f) != 0 {
		t.Errorf("failures %+v, want none", f)
	}
	if r := w.kafka.Refusals(); len(r) != 0 {
		t.Errorf("refusals %+v, want none: a session ran out", r)
	}
}
