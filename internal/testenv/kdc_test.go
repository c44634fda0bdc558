package testenv_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/kerberos"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/soarkafka/soarkafka/internal/testenv"
)

// These tests prove the Kerberos test infrastructure (NewKDC,
// NewGSSAPIBroker) with franz-go's own GSSAPI mechanism, so that the
// product's tests can rely on it.

const (
	krbTopic   = "krb"
	krbService = "kafka/127.0.0.1" // what franz-go asks a ticket for: service "kafka", the broker's host
)

// gssapiKafka starts a KDC-backed GSSAPI cluster with topic krbTopic: the
// service principal, its keytab, the broker side and the cluster.
func gssapiKafka(t *testing.T, kdc *testenv.KDC, opts ...testenv.GSSAPIOption) (*kfake.Cluster, *testenv.GSSAPIBroker) {
	t.Helper()
	gs := testenv.NewGSSAPIBroker(t, kdc.AddService(krbService), krbService+"@"+kdc.Realm(), opts...)
	c := testenv.NewKafka(t, append(gs.KafkaOpts(), kfake.SeedTopics(1, krbTopic))...)
	return c, gs
}

func krb5Config(t *testing.T, kdc *testenv.KDC) *config.Config {
	t.Helper()
	cfg, err := config.NewFromString(kdc.Krb5Conf())
	if err != nil {
		t.Fatalf("parse krb5.conf: %v\n%s", err, kdc.Krb5Conf())
	}
	return cfg
}

// saslGSSAPI is the kgo option of franz-go's GSSAPI mechanism with cl, which
// it destroys when the kgo client closes: one gokrb5 client per kgo client.
func saslGSSAPI(cl *client.Client) kgo.Opt {
	return kgo.SASL(kerberos.Auth{Client: cl, Service: "kafka"}.AsMechanismWithClose())
}

func passwordClient(t *testing.T, kdc *testenv.KDC, user, password string) *client.Client {
	t.Helper()
	return client.NewWithPassword(user, kdc.Realm(), password, krb5Config(t, kdc), client.DisablePAFXFAST(true))
}

func keytabClient(t *testing.T, kdc *testenv.KDC, user string) *client.Client {
	t.Helper()
	kt := keytab.New()
	if err := kt.Unmarshal(kdc.Keytab(user)); err != nil {
		t.Fatalf("parse keytab of %s: %v", user, err)
	}
	return client.NewWithKeytab(user, kdc.Realm(), kt, krb5Config(t, kdc), client.DisablePAFXFAST(true))
}

func ping(t *testing.T, c *kfake.Cluster, opts ...kgo.Opt) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return testenv.KafkaClient(t, c, opts...).Ping(ctx)
}

// produceConsume produces three records to krbTopic with one client and
// reads them back with another, each logging in with its own gokrb5 client.
func produceConsume(t *testing.T, c *kfake.Cluster, newClient func() *client.Client, opts ...kgo.Opt) {
	t.Helper()
	recs := testenv.ProduceKafkaRecords(t, c, krbTopic, 0, 3, append(opts, saslGSSAPI(newClient()))...)
	cons := testenv.KafkaClient(t, c, append(opts, saslGSSAPI(newClient()), kgo.ConsumeTopics(krbTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	for len(got) < len(recs) {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume after %d of %d records: %v", len(got), len(recs), err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	for i, r := range recs {
		if got[i] != string(r.Value) {
			t.Fatalf("record %d: got %q, want %q", i, got[i], r.Value)
		}
	}
}

func wantPrincipals(t *testing.T, gs *testenv.GSSAPIBroker, want ...string) {
	t.Helper()
	if got := gs.Principals(); !slices.Equal(got, want) {
		t.Fatalf("authenticated principals %v, want %v (refusals: %q)", got, want, gs.Refusals())
	}
}

func TestGSSAPIKeytabLoginProducesAndConsumes(t *testing.T) {
	t.Parallel()
	kdc := testenv.NewKDC(t)
	kdc.AddUser("alice", "alice-pw")
	c, gs := gssapiKafka(t, kdc)

	produceConsume(t, c, func() *client.Client { return keytabClient(t, kdc, "alice") })
	wantPrincipals(t, gs, "alice@TEST.LOCAL")
	// -norandkey: handing out the keytab did not change the password.
	if err := ping(t, c, saslGSSAPI(passwordClient(t, kdc, "alice", "alice-pw"))); err != nil {
		t.Fatalf("password login after the keytab was exported: %v", err)
	}
}

func TestGSSAPIPasswordLogin(t *testing.T) {
	t.Parallel()
	kdc := testenv.NewKDC(t)
	kdc.AddUser("bob", "bob-pw")
	c, gs := gssapiKafka(t, kdc)

	produceConsume(t, c, func() *client.Client { return passwordClient(t, kdc, "bob", "bob-pw") })
	wantPrincipals(t, gs, "bob@TEST.LOCAL")
	for _, l := range gs.Logins() {
		if l.Reauth || l.TicketEnd.Before(time.Now().Add(9*time.Hour)) {
			t.Errorf("login %+v: want a first authentication with a ticket of about 10 h", l)
		}
	}
}

func TestGSSAPICCacheLogin(t *testing.T) {
	t.Parallel()
	kdc := testenv.NewKDC(t)
	kdc.AddUser("carol", "carol-pw")
	c, gs := gssapiKafka(t, kdc)
	path := kdc.Kinit("carol", "carol-pw")

	produceConsume(t, c, func() *client.Client {
		cc, err := credentials.LoadCCache(path)
		if err != nil {
			t.Fatalf("load ccache %s: %v", path, err)
		}
		cl, err := client.NewFromCCache(cc, krb5Config(t, kdc), client.DisablePAFXFAST(true))
		if err != nil {
			t.Fatalf("client from ccache: %v", err)
		}
		return cl
	})
	wantPrincipals(t, gs, "carol@TEST.LOCAL")
}

// A failed login never reaches the broker: the error comes from the KDC
// and names the cause.
func TestGSSAPILoginFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		kdcOpts []testenv.KDCOption
		login   func(t *testing.T, kdc *testenv.KDC) *client.Client
		want    []string
	}{{
		name: "wrong password",
		login: func(t *testing.T, kdc *testenv.KDC) *client.Client {
			return passwordClient(t, kdc, "alice", "not-the-password")
		},
		want: []string{"could not get valid TGT", "KDC_ERR_PREAUTH_FAILED"},
	}, {
		name:    "wrong password without preauth",
		kdcOpts: []testenv.KDCOption{testenv.KDCWithoutPreauth()},
		login: func(t *testing.T, kdc *testenv.KDC) *client.Client {
			return passwordClient(t, kdc, "alice", "not-the-password")
		},
		want: []string{"could not get valid TGT", "client password/keytab incorrect"},
	}, {
		name: "unknown principal",
		login: func(t *testing.T, kdc *testenv.KDC) *client.Client {
			return passwordClient(t, kdc, "mallory", "whatever")
		},
		want: []string{"KDC_ERR_C_PRINCIPAL_UNKNOWN"},
	}, {
		name: "KDC down",
		login: func(t *testing.T, kdc *testenv.KDC) *client.Client {
			kdc.Stop()
			return passwordClient(t, kdc, "alice", "alice-pw")
		},
		want: []string{"could not get valid TGT", kdc0Addr},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			kdc := testenv.NewKDC(t, tc.kdcOpts...)
			kdc.AddUser("alice", "alice-pw")
			c, gs := gssapiKafka(t, kdc)
			err := ping(t, c, saslGSSAPI(tc.login(t, kdc)))
			checkErr(t, err, tc.want, kdc)
			wantPrincipals(t, gs)
		})
	}
}

// kdc0Addr stands for the stopped KDC's address in a want list.
const kdc0Addr = "<kdc addr>"

func checkErr(t *testing.T, err error, want []string, kdc *testenv.KDC) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one with %q", want)
	}
	t.Logf("error: %v", err)
	for _, w := range want {
		if w == kdc0Addr {
			w = kdc.Addr()
		}
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

// A realm without the broker's service principal: the client gets no
// service ticket, and the KDC's error names the principal.
func TestGSSAPIMissingServicePrincipal(t *testing.T) {
	t.Parallel()
	kdc := testenv.NewKDC(t)
	kdc.AddUser("alice", "alice-pw")
	// The brokers hold a key for another name than the one clients ask for.
	gs := testenv.NewGSSAPIBroker(t, kdc.AddService("kafka/broker.example"), "kafka/broker.example@"+kdc.Realm())
	c := testenv.NewKafka(t, gs.KafkaOpts()...)

	err := ping(t, c, saslGSSAPI(passwordClient(t, kdc, "alice", "alice-pw")))
	checkErr(t, err, []string{"KDC_ERR_S_PRINCIPAL_UNKNOWN", krbService}, kdc)
	wantPrincipals(t, gs)
}

// The broker verifies the ticket: one for its name but sealed with a key it
// does not hold (another realm of the same name) is refused, and the
// client sees the broker's Kerberos error.
func TestGSSAPIBrokerRefusesTicketItCannotDecrypt(t *testing.T) {
	t.Parallel()
	kdc, other := testenv.NewKDC(t), testenv.NewKDC(t)
	kdc.AddUser("alice", "alice-pw")
	kdc.AddService(krbService)
	gs := testenv.NewGSSAPIBroker(t, other.AddService(krbService), krbService+"@"+kdc.Realm())
	c := testenv.NewKafka(t, gs.KafkaOpts()...)

	err := ping(t, c, saslGSSAPI(passwordClient(t, kdc, "alice", "alice-pw")))
	if !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("ping: %v, want SASL_AUTHENTICATION_FAILED", err)
	}
	checkErr(t, err, []string{"SASL mechanism GSSAPI", "error decrypting encpart of service ticket", "integrity verification failed"}, kdc)
	wantPrincipals(t, gs)
	if r := gs.Refusals(); len(r) == 0 || !strings.Contains(r[0], "GSSAPI authentication failed") {
		t.Fatalf("refusals %q, want a failed authentication", r)
	}
}

// The broker enforces authentication: a client without SASL is refused
// (the connection closes at its first request other than ApiVersions), and
// so is one offering another mechanism.
func TestGSSAPIBrokerRefusesUnauthenticatedClients(t *testing.T) {
	t.Parallel()
	kdc := testenv.NewKDC(t)
	c, gs := gssapiKafka(t, kdc)

	if err := ping(t, c); err == nil {
		t.Fatal("a client without SASL reached the cluster")
	}
	if r := gs.Refusals(); len(r) == 0 || !strings.Contains(r[0], "Metadata request before SASL authentication") {
		t.Fatalf("refusals %q, want a Metadata request before authentication", r)
	}

	err := ping(t, c, kgo.SASL(plain.Auth{User: "alice", Pass: "alice-pw"}.AsMechanism()))
	if !errors.Is(err, kerr.UnsupportedSaslMechanism) {
		t.Fatalf("PLAIN login: %v, want UNSUPPORTED_SASL_MECHANISM", err)
	}
	wantPrincipals(t, gs)
}

// SASL_SSL: GSSAPI over TLS, and TLS alone is not enough.
func TestGSSAPIOverTLS(t *testing.T) {
	t.Parallel()
	kdc := testenv.NewKDC(t)
	kdc.AddUser("alice", "alice-pw")
	certs := testenv.NewTLSCerts(t)
	c, gs := gssapiKafka(t, kdc, testenv.GSSAPITLS(certs.ServerTLS()))
	tlsOpt := kgo.DialTLSConfig(certs.ClientTLS())

	produceConsume(t, c, func() *client.Client { return keytabClient(t, kdc, "alice") }, tlsOpt)
	wantPrincipals(t, gs, "alice@TEST.LOCAL")

	if err := ping(t, c, tlsOpt); err == nil {
		t.Fatal("a TLS client without SASL reached the cluster")
	}
	if err := ping(t, c, saslGSSAPI(keytabClient(t, kdc, "alice"))); err == nil {
		t.Fatal("a client without TLS reached the SASL_SSL cluster")
	}
}

// Tickets of 20 s, sessions of 5 s and a broker that accepts a ticket at
// most 1 s past its end: a producer keeps working for more than two ticket
// lifetimes only by fetching new tickets (its TGT renewed, or a new login
// when tickets are not renewable) and re-authenticating (KIP-368).
func TestGSSAPITicketRenewalAndReauthentication(t *testing.T) {
	t.Parallel()
	const (
		ticketLife = 20 * time.Second
		runFor     = 45 * time.Second
		every      = 1500 * time.Millisecond
	)
	for _, tc := range []struct {
		name      string
		renewable time.Duration
		login     func(t *testing.T, kdc *testenv.KDC) *client.Client
	}{
		{"renewable, password", time.Hour, func(t *testing.T, kdc *testenv.KDC) *client.Client {
			return passwordClient(t, kdc, "alice", "alice-pw")
		}},
		{"not renewable, keytab", 0, func(t *testing.T, kdc *testenv.KDC) *client.Client { return keytabClient(t, kdc, "alice") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			kdc := testenv.NewKDC(t, testenv.KDCMaxLife(ticketLife), testenv.KDCRenewable(tc.renewable))
			kdc.AddUser("alice", "alice-pw")
			c, gs := gssapiKafka(t, kdc, testenv.GSSAPISessionLifetime(5*time.Second), testenv.GSSAPIMaxClockSkew(time.Second))
			cl := testenv.KafkaClient(t, c, saslGSSAPI(tc.login(t, kdc)))

			start := time.Now()
			for i := 0; time.Since(start) < runFor; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := cl.ProduceSync(ctx, &kgo.Record{Topic: krbTopic, Value: fmt.Appendf(nil, "%d", i)}).FirstErr()
				cancel()
				if err != nil {
					t.Fatalf("produce %d at %v: %v (refusals: %q)", i, time.Since(start).Round(time.Millisecond), err, gs.Refusals())
				}
				time.Sleep(every)
			}

			logins := gs.Logins()
			var reauths int
			ticketEnds := map[time.Time]bool{}
			for _, l := range logins {
				if l.Reauth {
					reauths++
				}
				ticketEnds[l.TicketEnd] = true
			}
			// Every connection re-authenticates about every 4 s.
			if reauths < 8 {
				t.Errorf("%d re-authentications in %v, want one every few seconds", reauths, runFor)
			}
			// 45 s of 20 s tickets: at least three service tickets.
			if len(ticketEnds) < 3 {
				t.Errorf("%d distinct service tickets in %v, want at least 3", len(ticketEnds), runFor)
			}
			if r := gs.Refusals(); len(r) > 0 {
				t.Errorf("refusals: %q", r)
			}
			wantPrincipals(t, gs, "alice@TEST.LOCAL")
			// The KDC saw the client keep its TGT fresh: renewed when it
			// could be, else a new login.
			tgtLogins, tgtRenewals := kdcIssued(kdc, "AS_REQ", "krbtgt/"), kdcIssued(kdc, "TGS_REQ", "krbtgt/")
			if tc.renewable > 0 && (tgtLogins != 1 || tgtRenewals < 2) {
				t.Errorf("KDC issued %d TGTs by login and %d by renewal, want 1 and at least 2:\n%s", tgtLogins, tgtRenewals, kdc.Log())
			}
			if tc.renewable == 0 && (tgtLogins < 3 || tgtRenewals != 0) {
				t.Errorf("KDC issued %d TGTs by login and %d by renewal, want at least 3 and 0:\n%s", tgtLogins, tgtRenewals, kdc.Log())
			}
		})
	}
}

// kdcIssued counts the tickets the KDC's log says it issued for requests of
// kind (AS_REQ, TGS_REQ) for a server whose name starts with server.
func kdcIssued(kdc *testenv.KDC, kind, server string) int {
	n := 0
	for _, line := range strings.Split(kdc.Log(), "\n") {
		if strings.Contains(line, kind) && strings.Contains(line, ": ISSUE: ") && strings.Contains(line, " for "+server) {
			n++
		}
	}
	return n
}

// A connection that keeps using its session past the lifetime the broker
// gave it, without re-authenticating, is closed, as Kafka does (KIP-368).
// franz-go always re-authenticates in time, so this speaks the protocol by
// hand, with franz-go's mechanism making the tokens.
func TestGSSAPIBrokerClosesExpiredSession(t *testing.T) {
	t.Parallel()
	kdc := testenv.NewKDC(t)
	kdc.AddUser("alice", "alice-pw")
	c, gs := gssapiKafka(t, kdc, testenv.GSSAPISessionLifetime(500*time.Millisecond))

	conn, err := net.DialTimeout("tcp", c.ListenAddrs()[0], 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	raw := &rawKafka{t: t, conn: conn}

	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, "GSSAPI"
	if resp := raw.do(hs).(*kmsg.SASLHandshakeResponse); resp.ErrorCode != 0 {
		t.Fatalf("handshake: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	cl := passwordClient(t, kdc, "alice", "alice-pw")
	defer cl.Destroy()
	session, token, err := kerberos.Auth{Client: cl, Service: "kafka"}.AsMechanism().Authenticate(context.Background(), c.ListenAddrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	// As kgo runs a SASL session: write, read, challenge, until the
	// session is done and its last token was answered.
	var lifetime int64
	for done := false; token != nil; {
		auth := kmsg.NewPtrSASLAuthenticateRequest()
		auth.Version, auth.SASLAuthBytes = 1, token
		resp := raw.do(auth).(*kmsg.SASLAuthenticateResponse)
		if resp.ErrorCode != 0 {
			t.Fatalf("authenticate: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
		lifetime, token = resp.SessionLifetimeMillis, nil
		if !done {
			if done, token, err = session.Challenge(resp.SASLAuthBytes); err != nil {
				t.Fatal(err)
			}
		}
	}
	if lifetime != 500 {
		t.Fatalf("session lifetime %d ms, want 500", lifetime)
	}
	wantPrincipals(t, gs, "alice@TEST.LOCAL")

	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 7
	raw.do(meta) // within the session
	time.Sleep(600 * time.Millisecond)
	if _, err := raw.try(meta); err == nil {
		t.Fatal("a request after the session expired was answered")
	}
	if r := gs.Refusals(); len(r) != 1 || !strings.Contains(r[0], "after the session of alice@TEST.LOCAL expired") {
		t.Fatalf("refusals %q, want one for the expired session", r)
	}
}

// rawKafka speaks the Kafka protocol over one connection, one request at a
// time, with non-flexible request versions.
type rawKafka struct {
	t    *testing.T
	conn net.Conn
	corr int32
}

func (r *rawKafka) do(req kmsg.Request) kmsg.Response {
	r.t.Helper()
	resp, err := r.try(req)
	if err != nil {
		r.t.Fatalf("%s request: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp
}

func (r *rawKafka) try(req kmsg.Request) (kmsg.Response, error) {
	if req.IsFlexible() {
		return nil, fmt.Errorf("rawKafka speaks non-flexible versions only")
	}
	r.corr++
	if _, err := r.conn.Write(kmsg.NewRequestFormatter().AppendRequest(nil, req, r.corr)); err != nil {
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
	if corr := int32(binary.BigEndian.Uint32(body)); corr != r.corr {
		return nil, fmt.Errorf("response to request %d, want %d", corr, r.corr)
	}
	resp := req.ResponseKind()
	return resp, resp.ReadFrom(body[4:])
}
