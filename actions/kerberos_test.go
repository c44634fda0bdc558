package actions

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/internal/testenv"
)

// krbAsset is an asset on a GSSAPI cluster, with the kerberos block given.
func krbAsset(t *testing.T, c *kfake.Cluster, kerberos map[string]any, extra ...any) assets.Config {
	t.Helper()
	doc := map[string]any{"hosts": c.ListenAddrs()[0], "topic": "alerts", "use_kerberos": true, "kerberos": kerberos}
	for i := 0; i < len(extra); i += 2 {
		doc[extra[i].(string)] = extra[i+1]
	}
	cfg, err := assets.Decode(doc, assets.DecodeOptions{})
	if err != nil {
		t.Fatalf("assets.Decode: %v", err)
	}
	return cfg
}

// Every way to log in works through the asset: a keytab (uploaded or a
// path), a password, a ticket cache, a krb5.conf (path or text) or realm
// and kdc; test connectivity, post data and a consumer all run over it,
// with and without TLS; the broker saw our principal.
func TestKerberosLoginsThroughTheAsset(t *testing.T) {
	kdc := testenv.NewKDC(t)
	kdc.AddUser("alice", "alice-pw")
	certs := testenv.NewTLSCerts(t)
	service := kdc.AddService("kafka/127.0.0.1")
	plain := testenv.NewGSSAPIBroker(t, service, "kafka/127.0.0.1@"+kdc.Realm())
	plainKafka := testenv.NewKafka(t, append(plain.KafkaOpts(), kfake.SeedTopics(1, "alerts"))...)
	tlsSide := testenv.NewGSSAPIBroker(t, service, "kafka/127.0.0.1@"+kdc.Realm(), testenv.GSSAPITLS(certs.ServerTLS()))
	tlsKafka := testenv.NewKafka(t, append(tlsSide.KafkaOpts(), kfake.SeedTopics(1, "alerts"))...)
	keytab := base64.StdEncoding.EncodeToString(kdc.Keytab("alice"))
	realmKDC := map[string]any{"realm": kdc.Realm(), "kdc": kdc.Addr()}

	r, _ := newTestRunner(testStepTimeout)
	t.Cleanup(r.Close)
	for _, tc := range []struct {
		name     string
		tls      bool
		kerberos map[string]any
	}{
		{"keytab, krb5.conf path", false, map[string]any{"principal": "alice", "keytab": keytab, "krb5_conf": kdc.Krb5ConfPath()}},
		{"keytab path, krb5.conf text", false, map[string]any{"principal": "alice@" + kdc.Realm(), "keytab_path": kdc.KeytabFile("alice"), "krb5_conf": kdc.Krb5Conf()}},
		{"password, realm and kdc", false, withRealm(map[string]any{"principal": "alice", "password": "alice-pw"}, realmKDC)},
		{"ticket cache", false, map[string]any{"ccache_path": kdc.Kinit("alice", "alice-pw"), "krb5_conf": kdc.Krb5ConfPath()}},
		{"keytab over TLS", true, map[string]any{"principal": "alice", "keytab": keytab, "krb5_conf": kdc.Krb5ConfPath()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, side := plainKafka, plain
			var extra []any
			if tc.tls {
				c, side = tlsKafka, tlsSide
				extra = []any{"use_ssl", true, "ca_cert", certs.CAFile}
			}
			cfg := krbAsset(t, c, tc.kerberos, extra...)
			before := len(side.Logins())
			wantAssetWorks(t, r, cfg, "kerberos "+tc.name)
			logins := side.Logins()[before:]
			if len(logins) == 0 || logins[0].Principal != "alice@"+kdc.Realm() {
				t.Fatalf("broker logins %+v, want alice@%s", logins, kdc.Realm())
			}
		})
	}
}

// Test connectivity names each Kerberos failure and its fix.
func TestKerberosFailuresNamed(t *testing.T) {
	kdc := testenv.NewKDC(t)
	kdc.AddUser("alice", "alice-pw")
	gs := testenv.NewGSSAPIBroker(t, kdc.AddService("kafka/127.0.0.1"), "kafka/127.0.0.1@"+kdc.Realm())
	c := testenv.NewKafka(t, append(gs.KafkaOpts(), kfake.SeedTopics(1, "alerts"))...)
	conf := kdc.Krb5ConfPath()
	r, _ := newTestRunner(testStepTimeout)
	t.Cleanup(r.Close)
	for _, tc := range []struct {
		name     string
		kerberos map[string]any
		parts    []string
	}{
		{"wrong password", map[string]any{"principal": "alice", "password": "nope", "krb5_conf": conf},
			[]string{"Kerberos login failed", "wrong password, or the keytab holds another key"}},
		{"unknown principal", map[string]any{"principal": "mallory", "password": "x", "krb5_conf": conf},
			[]string{"Kerberos login failed", `the KDC does not know the client principal "mallory"`}},
		{"no service principal", map[string]any{"principal": "alice", "password": "alice-pw", "krb5_conf": conf, "service_name": "kafka-other"},
			[]string{"Kerberos login failed", "the KDC has no service principal kafka-other/127.0.0.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runConnectivity(t, r, krbAsset(t, c, tc.kerberos))
			wantFailed(t, res, "broker "+c.ListenAddrs()[0]+": ", tc.parts...)
		})
	}
	if len(gs.Principals()) != 0 {
		t.Errorf("the broker accepted %v", gs.Principals())
	}

	// The KDC down: named, and bounded.
	kdc.Stop()
	res := runConnectivity(t, r, krbAsset(t, c, map[string]any{"principal": "alice", "password": "alice-pw", "krb5_conf": conf}))
	wantFailed(t, res, "broker "+c.ListenAddrs()[0]+": ", "Kerberos login failed", "the KDC did not answer: check kerberos.kdc")
}

// A long-running asset keeps working across ticket expiry, with no kinit:
// post data goes through the runner's pooled producer (one client for the
// whole run) while tickets live 20 s and the broker makes connections
// re-authenticate every 5 s. With a keytab the client logs in again by
// itself; with a ticket cache it reads the cache again, which the site's
// own kinit refreshes (here, every 10 s).
func TestKerberosLongRunningAssetOutlivesTickets(t *testing.T) {
	t.Parallel()
	const (
		ticketLife = 20 * time.Second
		runFor     = 45 * time.Second
		every      = 1500 * time.Millisecond
	)
	for _, mode := range []string{"keytab", "ccache"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			kdc := testenv.NewKDC(t, testenv.KDCMaxLife(ticketLife), testenv.KDCRenewable(0))
			kdc.AddUser("alice", "alice-pw")
			gs := testenv.NewGSSAPIBroker(t, kdc.AddService("kafka/127.0.0.1"), "kafka/127.0.0.1@"+kdc.Realm(),
				testenv.GSSAPISessionLifetime(5*time.Second), testenv.GSSAPIMaxClockSkew(time.Second))
			c := testenv.NewKafka(t, append(gs.KafkaOpts(), kfake.SeedTopics(1, "alerts"))...)
			krb := map[string]any{"principal": "alice", "keytab": base64.StdEncoding.EncodeToString(kdc.Keytab("alice")), "krb5_conf": kdc.Krb5ConfPath()}
			var ccache string
			if mode == "ccache" {
				ccache = kdc.Kinit("alice", "alice-pw")
				krb = map[string]any{"ccache_path": ccache, "krb5_conf": kdc.Krb5ConfPath()}
			}
			cfg := krbAsset(t, c, krb)
			r, _ := newTestRunner(testStepTimeout)
			t.Cleanup(r.Close)

			start, lastKinit := time.Now(), time.Now()
			for i := 0; time.Since(start) < runFor; i++ {
				if ccache != "" && time.Since(lastKinit) > 10*time.Second {
					fresh, err := os.ReadFile(kdc.Kinit("alice", "alice-pw"))
					if err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(ccache, fresh, 0o600); err != nil {
						t.Fatal(err)
					}
					lastKinit = time.Now()
				}
				res, err := runParams(context.Background(), t, r, PostData, Target{Asset: "long-running", Config: cfg},
					map[string]any{"data_type": "string", "data": fmt.Sprint(i), "topic": "alerts", "timeout": 5})
				if err != nil || res.Status != StatusSuccess {
					t.Fatalf("post data %d at %s: %v %s (refusals %q)", i, time.Since(start).Round(time.Second), err, res.Message, gs.Refusals())
				}
				time.Sleep(every)
			}
			tickets := map[time.Time]bool{}
			reauths := 0
			for _, l := range gs.Logins() {
				tickets[l.TicketEnd] = true
				if l.Reauth {
					reauths++
				}
			}
			// 45 s of 20 s tickets: at least three tickets, and connections
			// re-authenticated on the way.
			if len(tickets) < 3 || reauths == 0 {
				t.Fatalf("%d distinct tickets, %d re-authentications over %s; want >= 3 and > 0", len(tickets), reauths, runFor)
			}
		})
	}
}

// Clock skew: a broker that allows no skew at all refuses every
// authenticator as too far from its clock (KRB_AP_ERR_SKEW), and test
// connectivity says to synchronise the clocks.
func TestKerberosClockSkewNamed(t *testing.T) {
	kdc := testenv.NewKDC(t)
	kdc.AddUser("alice", "alice-pw")
	gs := testenv.NewGSSAPIBroker(t, kdc.AddService("kafka/127.0.0.1"), "kafka/127.0.0.1@"+kdc.Realm(), testenv.GSSAPIMaxClockSkew(time.Nanosecond))
	c := testenv.NewKafka(t, append(gs.KafkaOpts(), kfake.SeedTopics(1, "alerts"))...)
	r, _ := newTestRunner(testStepTimeout)
	t.Cleanup(r.Close)
	res := runConnectivity(t, r, krbAsset(t, c, map[string]any{"principal": "alice", "password": "alice-pw", "krb5_conf": kdc.Krb5ConfPath()}))
	wantFailed(t, res, "broker "+c.ListenAddrs()[0]+": ", "Kerberos login failed", "synchronise them with NTP")
}

// A client that allows only an encryption type the KDC does not support
// is told so.
func TestKerberosEncryptionTypeNamed(t *testing.T) {
	kdc := testenv.NewKDC(t)
	kdc.AddUser("alice", "alice-pw")
	gs := testenv.NewGSSAPIBroker(t, kdc.AddService("kafka/127.0.0.1"), "kafka/127.0.0.1@"+kdc.Realm())
	c := testenv.NewKafka(t, append(gs.KafkaOpts(), kfake.SeedTopics(1, "alerts"))...)
	conf := strings.Replace(kdc.Krb5Conf(), "[libdefaults]\n", "[libdefaults]\n  default_tkt_enctypes = rc4-hmac\n  default_tgs_enctypes = rc4-hmac\n  permitted_enctypes = rc4-hmac\n", 1)
	r, _ := newTestRunner(testStepTimeout)
	t.Cleanup(r.Close)
	res := runConnectivity(t, r, krbAsset(t, c, map[string]any{"principal": "alice", "password": "alice-pw", "krb5_conf": conf}))
	wantFailed(t, res, "broker "+c.ListenAddrs()[0]+": ", "Kerberos login failed", "share no encryption type")
}

// withRealm returns m with the realm and kdc of realmKDC.
func withRealm(m, realmKDC map[string]any) map[string]any {
	maps.Copy(m, realmKDC)
	return m
}

// wantAssetWorks checks that every action's path works over the asset's
// login: test connectivity succeeds, post data sends value, and a
// consumer built from the asset reads it back.
func wantAssetWorks(t *testing.T, r *Runner, cfg assets.Config, value string) {
	t.Helper()
	res := runConnectivity(t, r, cfg)
	wantSuccess(t, res, `Connected to 1 broker; topic "alerts" has 1 partition`)
	post, err := runParams(context.Background(), t, r, PostData, Target{Config: cfg},
		map[string]any{"data_type": "string", "data": value, "topic": "alerts", "timeout": 5})
	if err != nil || post.Status != StatusSuccess {
		t.Fatalf("post data: %v %+v", err, post)
	}
	cl, err := tempAccess(nil, nil).NewClient(cfg, nil, kgo.ConsumeTopics("alerts"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	found := false
	for !found && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(rec *kgo.Record) { found = found || string(rec.Value) == value })
	}
	if !found {
		t.Fatalf("%q, posted over the asset's login, was not read back over it", value)
	}
}
