package web_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/soarkafka/soarkafka/internal/testenv"
)

// kerberosAsset is a scheduled Kerberos asset, with the
// kerberos values of krb.
func kerberosAsset(krb map[string]any) map[string]any {
	k := map[string]any{"principal": "alice", "password": "alice-pw"}
	for n, v := range krb {
		k[n] = v
	}
	return map[string]any{"hosts": "127.0.0.1:9092", "topic": "alerts", "use_kerberos": true,
		"ingest": map[string]any{"interval": "30s"}, "kerberos": k}
}

// Kerberos values that would break or extend the krb5.conf the login
// builds (once accepted with 201, then a panic of the scheduler at every
// start, or a 500 from the actions) are refused with 400 naming the field,
// on create, on update and in an action's inline configuration.
func TestKerberosInjectionRefused(t *testing.T) {
	e := newEnv(t, testenv.SQLiteURL(t))
	if code, out := e.do("POST", "/v1/assets", asset("krb", kerberosAsset(map[string]any{"realm": "EXAMPLE.COM", "kdc": "kdc.example.com"}))); code != 201 {
		t.Fatalf("valid kerberos asset: %d %v", code, out)
	}
	notKeytab := base64.StdEncoding.EncodeToString([]byte("this is not a keytab"))
	tests := []struct {
		name  string
		krb   map[string]any
		field string
		msg   string
	}{
		{"realm with a brace", map[string]any{"realm": "R }", "kdc": "x"}, "kerberos.realm", "write the realm as EXAMPLE.COM"},
		{"realm that is a realm block", map[string]any{"realm": "R = { kdc = x }", "kdc": "x"}, "kerberos.realm", "has a space"},
		{"realm with a newline", map[string]any{"realm": "R\n[libdefaults]\n default_realm = EVIL", "kdc": "x"}, "kerberos.realm", "not printable"},
		{"realm opening a block", map[string]any{"realm": "R{", "kdc": "x"}, "kerberos.realm", `has '{'`},
		{"realm with an equals sign", map[string]any{"realm": "R=S", "kdc": "x"}, "kerberos.realm", `has '='`},
		{"kdc with a brace", map[string]any{"realm": "R", "kdc": "x }"}, "kerberos.kdc", "write host[:port]"},
		{"kdc with a newline", map[string]any{"realm": "R", "kdc": "x\n kdc = evil.example.com"}, "kerberos.kdc", "write host[:port]"},
		{"kdc closing the realm", map[string]any{"realm": "R", "kdc": "x\n }\n EVIL = {\n  kdc = evil\n"}, "kerberos.kdc", "write host[:port]"},
		{"kdc port out of range", map[string]any{"realm": "R", "kdc": "kdc.example.com:65536"}, "kerberos.kdc", "port must be a number from 1 to 65535"},
		{"kdc port zero", map[string]any{"realm": "R", "kdc": "kdc.example.com:0"}, "kerberos.kdc", "port must be a number from 1 to 65535"},
		{"krb5_conf realm on one line", map[string]any{"krb5_conf": "[realms]\nR = { kdc = x }\n"}, "kerberos.krb5_conf", "does not parse"},
		{"krb5_conf realm block on one line", map[string]any{"krb5_conf": "R = { kdc = x }"}, "kerberos.krb5_conf", "neither krb5.conf text"},
		{"principal with a space", map[string]any{"principal": "alice bob", "realm": "R", "kdc": "x"}, "kerberos.principal", "has a space"},
		{"principal with a bad realm", map[string]any{"principal": "alice@R }", "realm": "R", "kdc": "x"}, "kerberos.principal", "has a space"},
		{"keytab that is not one", map[string]any{"password": nil, "keytab": notKeytab, "realm": "R", "kdc": "x"}, "kerberos.keytab", "is not a keytab"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := kerberosAsset(tt.krb)
			check := func(what string, code int, out map[string]any) {
				t.Helper()
				if code != 400 || !strings.Contains(errText(out), tt.field+": ") || !strings.Contains(errText(out), tt.msg) {
					t.Fatalf("%s: %d %v, want 400 naming %s with %q", what, code, out, tt.field, tt.msg)
				}
			}
			code, out := e.do("POST", "/v1/assets", asset("bad", cfg))
			check("create", code, out)
			code, out = e.do("PUT", "/v1/assets/krb", asset("krb", cfg))
			check("update", code, out)
			for _, action := range []string{"test_connectivity", "on_poll", "post_data"} {
				params := map[string]any{}
				if action == "post_data" {
					params = map[string]any{"data": "x", "topic": "alerts", "data_type": "string"}
				}
				code, out = e.do("POST", "/v1/actions/"+action, map[string]any{"config": cfg, "parameters": params})
				check(action, code, out)
			}
		})
	}
	// Nothing was stored, and the valid asset is unchanged.
	code, out := e.do("GET", "/v1/assets/krb", nil)
	if code != 200 || out["config"].(map[string]any)["kerberos"].(map[string]any)["realm"] != "EXAMPLE.COM" {
		t.Fatalf("valid asset after refused updates: %d %v", code, out)
	}
	if code, _ := e.do("GET", "/v1/assets/bad", nil); code != 404 {
		t.Fatalf("a refused asset was stored: %d", code)
	}
}

// Through the API: a password without a SASL mechanism, a keytab that is
// not one, and a timeout past int64 are refused at save, naming the field
// (the password was stored and ignored, the keytab failed only at the
// first login, the timeout read "-9223372036854775808 is below the
// minimum").
func TestSaveRefusesUnusedAndOutOfRangeValues(t *testing.T) {
	e := newEnv(t, testenv.SQLiteURL(t))
	for _, tt := range []struct {
		name, body, field, msg string
	}{
		{"password without mechanism", `{"name": "a", "config": {"hosts": "h:1", "topic": "t", "password": "pw"}}`, "password", "is set but sasl_mechanism is not"},
		{"username without mechanism", `{"name": "a", "config": {"hosts": "h:1", "topic": "t", "username": "u"}}`, "username", "is set but sasl_mechanism is not"},
		{"keytab not a keytab", `{"name": "a", "config": {"hosts": "h:1", "topic": "t", "use_kerberos": true, "kerberos": {"principal": "p@R", "keytab": "aGVsbG8gd29ybGQ=", "krb5_conf": "/etc/krb5.conf"}}}`,
			"kerberos.keytab", "is not a keytab"},
		{"timeout max int64", `{"name": "a", "config": {"hosts": "h:1", "topic": "t", "timeout": 9223372036854775807}}`, "timeout", "is above the maximum 3600000"},
		{"timeout past int64", `{"name": "a", "config": {"hosts": "h:1", "topic": "t", "timeout": 1e30}}`, "timeout", "1e+30 is above the maximum 3600000"},
		{"timeout string past int64", `{"name": "a", "config": {"hosts": "h:1", "topic": "t", "timeout": "-99999999999999999999"}}`, "timeout", "is below the minimum 100"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out := e.do("POST", "/v1/assets", tt.body)
			if code != 400 || !strings.Contains(errText(out), tt.field+": ") || !strings.Contains(errText(out), tt.msg) {
				t.Fatalf("%d %v, want 400 naming %s with %q", code, out, tt.field, tt.msg)
			}
		})
	}
}
