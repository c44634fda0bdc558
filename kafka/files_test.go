package kafka_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/kafka"
)

// Every path that cannot be used answers the same, whatever the reason,
// so that an asset cannot tell a file that exists from one that does not.
func TestFilePolicyAnswersAlike(t *testing.T) {
	t.Parallel()
	certs := testenv.NewTLSCerts(t)
	allowed := t.TempDir()
	outside := t.TempDir()
	caPEM, err := os.ReadFile(certs.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(allowed, "ca.pem")
	secret := filepath.Join(outside, "secret.pem")
	for _, f := range []string{good, secret} {
		if err := os.WriteFile(f, caPEM, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	linkOut := filepath.Join(allowed, "link.pem")
	if err := os.Symlink(secret, linkOut); err != nil {
		t.Fatal(err)
	}
	linkIn := filepath.Join(allowed, "inside.pem")
	if err := os.Symlink(good, linkIn); err != nil {
		t.Fatal(err)
	}
	dirLink := filepath.Join(allowed, "outdir")
	if err := os.Symlink(outside, dirLink); err != nil {
		t.Fatal(err)
	}
	files, err := kafka.NewFilePolicy([]string{allowed})
	if err != nil {
		t.Fatal(err)
	}
	access := kafka.Access{Files: files}

	refused := []string{
		"/etc/shadow",
		"/etc/passwd",
		filepath.Join(allowed, "missing.pem"),
		linkOut,
		filepath.Join(dirLink, "secret.pem"),
		filepath.Join(allowed, "..", filepath.Base(outside), "secret.pem"),
		allowed + "/../" + filepath.Base(outside) + "/secret.pem",
		allowed, // a directory
		"relative/ca.pem",
	}
	if os.Geteuid() != 0 {
		locked := filepath.Join(allowed, "locked.pem")
		if err := os.WriteFile(locked, caPEM, 0o000); err != nil {
			t.Fatal(err)
		}
		refused = append(refused, locked)
	}
	for _, field := range []string{"ca_cert", "cert_file", "key_file"} {
		for _, path := range refused {
			doc := map[string]any{"use_ssl": true, field: path}
			switch field { // a certificate needs its key and the other way round
			case "cert_file":
				doc["key_pem"] = "x"
			case "key_file":
				doc["cert_pem"] = "x"
			}
			_, err := access.TLSConfig(decodeConfig(t, doc))
			want := field + ": file " + path + " cannot be used: it is missing, unreadable, or outside files.allowed_dirs"
			wantInvalid(t, err, want, false)
		}
	}
	// The Kerberos path fields answer alike too.
	for _, path := range refused {
		for _, tc := range []struct{ field, key string }{
			{"kerberos.keytab_path", "keytab_path"},
			{"kerberos.ccache_path", "ccache_path"},
			{"kerberos.krb5_conf", "krb5_conf"},
		} {
			krb := map[string]any{"principal": "alice@EXAMPLE.ORG", "realm": "EXAMPLE.ORG", "kdc": "127.0.0.1:88", tc.key: path}
			if tc.key == "krb5_conf" {
				krb["password"] = "pw"
				delete(krb, "realm")
				delete(krb, "kdc")
			}
			cfg := decodeConfig(t, map[string]any{"sasl_mechanism": "GSSAPI", "kerberos": krb})
			_, err := access.SASLMechanism(cfg)
			wantInvalid(t, err, tc.field+": file "+path+" cannot be used: it is missing, unreadable, or outside files.allowed_dirs", false)
		}
	}

	// Files inside, directly or through a link that stays inside, are read.
	for _, path := range []string{good, linkIn, filepath.Join(allowed, ".", "ca.pem")} {
		if tc, err := access.TLSConfig(decodeConfig(t, map[string]any{"use_ssl": true, "ca_cert": path})); err != nil || tc.RootCAs == nil {
			t.Errorf("ca_cert %s: %v", path, err)
		}
	}
	// Without allowed directories no path is accepted; inline PEM is.
	_, err = kafka.Access{}.TLSConfig(decodeConfig(t, map[string]any{"use_ssl": true, "ca_cert": good}))
	wantInvalid(t, err, "ca_cert: file "+good+" cannot be used: it is missing, unreadable, or outside files.allowed_dirs", false)
	if _, err := (kafka.Access{}).TLSConfig(decodeConfig(t, map[string]any{"use_ssl": true, "ca_pem": string(caPEM)})); err != nil {
		t.Errorf("inline ca_pem without allowed dirs: %v", err)
	}
}

func TestNewFilePolicy(t *testing.T) {
	t.Parallel()
	if p, err := kafka.NewFilePolicy(nil); p != nil || err != nil {
		t.Errorf("empty: %v, %v", p, err)
	}
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o600)
	_, err := kafka.NewFilePolicy([]string{"relative", "/does/not/exist", file})
	for _, want := range []string{`files.allowed_dirs: "relative" is not an absolute path`, "files.allowed_dirs: /does/not/exist: no such file or directory", "files.allowed_dirs: " + file + ": not a directory"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to contain %q", err, want)
		}
	}
}

// gokrb5 dials the KDCs itself: they are checked against the host policy
// before the client is built, and KDCs found through DNS are refused
// while a policy is set.
func TestKerberosKDCsChecked(t *testing.T) {
	t.Parallel()
	hosts, err := kafka.NewHostPolicy(nil, []string{"127.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	access := kafka.Access{Hosts: hosts}
	krb := func(extra map[string]any) assets.Config {
		k := map[string]any{"principal": "alice@EXAMPLE.ORG", "password": "pw"}
		for key, v := range extra {
			k[key] = v
		}
		return decodeConfig(t, map[string]any{"sasl_mechanism": "GSSAPI", "kerberos": k})
	}
	_, err = access.SASLMechanism(krb(map[string]any{"realm": "EXAMPLE.ORG", "kdc": "127.0.0.1:88"}))
	wantInvalid(t, err, "kerberos.kdc: KDC 127.0.0.1:88 of realm EXAMPLE.ORG: not allowed by network.denied_hosts", false)
	_, err = access.SASLMechanism(krb(map[string]any{"realm": "EXAMPLE.ORG", "kdc": "localhost"}))
	wantInvalid(t, err, "kerberos.kdc: KDC localhost:88 (address ", true)
	_, err = access.SASLMechanism(krb(map[string]any{"krb5_conf": "[libdefaults]\n default_realm = EXAMPLE.ORG\n dns_lookup_kdc = true\n"}))
	wantInvalid(t, err, "kerberos.krb5_conf: dns_lookup_kdc cannot be used while network.allowed_hosts or network.denied_hosts is set", true)
	// Without a policy, nothing is checked or resolved.
	if _, err := (kafka.Access{}).SASLMechanism(krb(map[string]any{"realm": "EXAMPLE.ORG", "kdc": "127.0.0.1:88"})); err != nil {
		t.Errorf("no policy: %v", err)
	}
}
