package kafka

import (
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/soarkafka/soarkafka/assets"
)

// kerberosDoc is an asset document logging in with a password, with the
// kerberos values of extra.
func kerberosDoc(extra map[string]any) map[string]any {
	krb := map[string]any{"principal": "alice", "password": "alice-pw"}
	for k, v := range extra {
		krb[k] = v
	}
	return map[string]any{"hosts": "127.0.0.1:9092", "topic": "t", "use_kerberos": true, "ingest": map[string]any{"interval": "1m"}, "kerberos": krb}
}

// FuzzKrb5Conf feeds krb5.conf text to what saving an asset and building
// its login do with it: neither panics (gokrb5's parser does on some
// text), and text that saving accepts builds a login.
func FuzzKrb5Conf(f *testing.F) {
	// Seeds beside these are in testdata/fuzz/FuzzKrb5Conf.
	f.Add("[realms]\nR = { kdc = x }\n")
	f.Add("[libdefaults]\n default_realm = R\n[realms]\n R = {\n  kdc = kdc.example.com:88\n }\n")
	f.Fuzz(func(t *testing.T, text string) {
		k := assets.Kerberos{Krb5Conf: text}
		if !k.Krb5ConfInline() {
			// A path: read at use, never at save, and not the parser's
			// concern here.
			return
		}
		// The stored asset's path, validation bypassed: an error, never a
		// panic.
		_, _ = krb5Conf(k, nil)

		cfg, err := assets.Decode(kerberosDoc(map[string]any{"krb5_conf": text}), assets.DecodeOptions{})
		if err != nil || !cfg.Kerberos.Krb5ConfInline() {
			return // refused, or a path once its spaces are trimmed
		}
		if _, err := krb5Conf(cfg.Kerberos, nil); err != nil {
			t.Fatalf("saving accepted krb5_conf %q, but the login cannot use it: %v", text, err)
		}
		if _, err := (Access{}).SASLMechanism(cfg); err != nil {
			t.Fatalf("saving accepted krb5_conf %q, but the login cannot be built: %v", text, err)
		}
	})
}

// FuzzKerberosRealmKDC feeds realm and kdc values through saving an asset
// and building its login as a poll does (SASLMechanism, krb5Conf): nothing
// panics, and a realm and KDCs that saving accepts reach the configuration
// as exactly those values: no realm, KDC or setting is added.
func FuzzKerberosRealmKDC(f *testing.F) {
	// Seeds beside these are in testdata/fuzz/FuzzKerberosRealmKDC.
	f.Add("EXAMPLE.COM", "kdc1.example.com,kdc2.example.com:750")
	f.Add("R }", "x")
	f.Fuzz(func(t *testing.T, realm, kdc string) {
		_, _ = krb5Conf(assets.Kerberos{Realm: realm, KDC: kdc}, nil) // a stored asset, validation bypassed

		cfg, err := assets.Decode(kerberosDoc(map[string]any{"realm": realm, "kdc": kdc}), assets.DecodeOptions{})
		if err != nil {
			return
		}
		if _, err := (Access{}).SASLMechanism(cfg); err != nil {
			t.Fatalf("saving accepted realm %q kdc %q, but the login cannot be built: %v", realm, kdc, err)
		}
		c, err := krb5Conf(cfg.Kerberos, nil)
		if err != nil {
			t.Fatalf("realm %q kdc %q: %v", realm, kdc, err)
		}
		wantRealm := strings.TrimSpace(realm)
		if c.LibDefaults.DefaultRealm != wantRealm || len(c.Realms) != 1 || c.Realms[0].Realm != wantRealm {
			t.Fatalf("realm %q: default realm %q, realms %+v; want exactly the realm given", realm, c.LibDefaults.DefaultRealm, c.Realms)
		}
		var want []string
		for _, h := range strings.Split(kdc, ",") {
			if h = strings.TrimSpace(h); h != "" {
				want = append(want, h)
			}
		}
		got := c.Realms[0].KDC
		if len(got) != len(want) {
			t.Fatalf("kdc %q: KDCs %q; want one per entry given", kdc, got)
		}
		for i, g := range got {
			host, port, err := net.SplitHostPort(g)
			if err != nil || port == "" {
				t.Fatalf("kdc %q: KDC %q is not host:port", kdc, g)
			}
			if g != want[i] && strings.Trim(want[i], "[]") != host {
				t.Fatalf("kdc %q: KDC %q; want the host given, %q", kdc, g, want[i])
			}
		}
		if !slices.Equal(c.Realms[0].KDC, cfg.Kerberos.KDCs()) {
			t.Fatalf("kdc %q: %q differs from the asset's %q", kdc, c.Realms[0].KDC, cfg.Kerberos.KDCs())
		}
		// gokrb5 finds them for the realm (and shuffles them in place).
		_, kdcs, err := c.GetKDCs(wantRealm, true)
		if err != nil || len(kdcs) != len(want) {
			t.Fatalf("realm %q kdc %q: gokrb5 finds KDCs %v, %v", realm, kdc, kdcs, err)
		}
	})
}
