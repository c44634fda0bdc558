package assets_test

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/soarkafka/soarkafka/assets"
)

// Integers past int64 are reported as above the maximum (or below the
// minimum) as given, never wrapped around: timeout 9223372036854775807
// was "-9223372036854775808 is below the minimum".
func TestDecodeHugeIntegers(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"max int64 as a JSON number", float64(math.MaxInt64), "9.223372036854776e+18 is above the maximum 3600000"},
		{"2^63 as a JSON number", 0x1p63, "9.223372036854776e+18 is above the maximum 3600000"},
		{"1e300", 1e300, "1e+300 is above the maximum 3600000"},
		{"min int64 as a JSON number", float64(math.MinInt64), "-9223372036854775808 is below the minimum 100"},
		{"below min int64", -1e19, "-1e+19 is below the minimum 100"},
		{"max int64 exactly", int64(math.MaxInt64), "9223372036854775807 is above the maximum 3600000"},
		{"min int64 exactly", int64(math.MinInt64), "-9223372036854775808 is below the minimum 100"},
		{"json.Number past int64", json.Number("99999999999999999999"), "99999999999999999999 is above the maximum 3600000"},
		{"json.Number max int64", json.Number("9223372036854775807"), "9223372036854775807 is above the maximum 3600000"},
		{"json.Number below int64", json.Number("-99999999999999999999"), "-99999999999999999999 is below the minimum 100"},
		{"string max int64", "9223372036854775807", "9223372036854775807 is above the maximum 3600000"},
		{"string past int64", "9223372036854775808", `"9223372036854775808" is above the maximum 3600000`},
		{"string below int64", " -9223372036854775809 ", `"-9223372036854775809" is below the minimum 100`},
		{"infinity", math.Inf(1), "must be a whole number, got +Inf"},
		{"NaN", math.NaN(), "must be a whole number, got NaN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := assets.Decode(with("timeout", tt.v), assets.DecodeOptions{})
			if got := fieldErrs(t, err)["timeout"]; got != tt.want {
				t.Fatalf("timeout %v: %q, want %q", tt.v, got, tt.want)
			}
		})
	}
	// Every integer field of the registry, at both ends.
	for _, f := range assets.Fields {
		if f.Type != assets.TypeInteger {
			continue
		}
		block, name, nested := strings.Cut(f.Name, ".")
		for _, v := range []any{float64(math.MaxInt64), float64(math.MinInt64), "99999999999999999999", "-99999999999999999999"} {
			doc := with(f.Name, v)
			if nested {
				doc = with(block, map[string]any{name: v})
			}
			_, err := assets.Decode(doc, assets.DecodeOptions{})
			got := fieldErrs(t, err)[f.Name]
			if !strings.Contains(got, "above the maximum") && !strings.Contains(got, "below the minimum") || strings.Contains(got, "-9223372036854775808 is below") && v != float64(math.MinInt64) {
				t.Errorf("%s = %v: %q, want a bound named", f.Name, v, got)
			}
		}
	}
}

// A setting given without the one that gives it meaning is refused at
// save, naming it, instead of being stored and ignored; an asset stored so
// by an older version still resolves (DecodeOptions.Stored).
func TestDecodeRefusesUnusedSettings(t *testing.T) {
	krb := func(extra ...any) map[string]any {
		m := map[string]any{"principal": "alice", "password": "pw", "realm": "EXAMPLE.COM", "kdc": "kdc.example.com"}
		for i := 0; i < len(extra); i += 2 {
			m[extra[i].(string)] = extra[i+1]
		}
		return m
	}
	iam := func(extra ...any) map[string]any {
		m := map[string]any{"region": "eu-west-1"}
		for i := 0; i < len(extra); i += 2 {
			m[extra[i].(string)] = extra[i+1]
		}
		return m
	}
	emptyKeytab := base64.StdEncoding.EncodeToString([]byte{5, 2, 0, 0, 0, 0})
	tests := []struct {
		name     string
		doc      map[string]any
		want     map[string]string
		storedOK bool // an older version stored it: it still resolves
	}{
		{"password without mechanism", with("password", "pw"), map[string]string{"password": "is set but sasl_mechanism is not"}, true},
		{"username without mechanism", with("username", "u"), map[string]string{"username": "is set but sasl_mechanism is not"}, true},
		{"password over TLS without mechanism", with("use_ssl", true, "username", "u", "password", "pw"),
			map[string]string{"username": "set sasl_mechanism to PLAIN", "password": "set sasl_mechanism to PLAIN"}, true},
		{"password with GSSAPI", with("use_kerberos", true, "password", "pw", "kerberos", krb()),
			map[string]string{"password": "GSSAPI does not use it; give the principal's credentials in the kerberos block"}, true},
		{"password with AWS_MSK_IAM", with("sasl_mechanism", "AWS_MSK_IAM", "password", "pw", "aws_iam", iam()),
			map[string]string{"password": "AWS_MSK_IAM does not use it"}, true},
		{"keytab that is not a keytab", with("use_kerberos", true, "kerberos", krb("password", nil, "keytab", base64.StdEncoding.EncodeToString([]byte("hello")))),
			map[string]string{"kerberos.keytab": "is not a keytab"}, false},
		{"keytab with no key", with("use_kerberos", true, "kerberos", krb("password", nil, "keytab", emptyKeytab)),
			map[string]string{"kerberos.keytab": "is not a keytab: it holds no key"}, false},
		{"service name without GSSAPI", with("kerberos", map[string]any{"service_name": "kafka-other"}),
			map[string]string{"kerberos.service_name": "not GSSAPI"}, true},
		{"canonicalize without GSSAPI", with("kerberos", map[string]any{"canonicalize_hostname": true}),
			map[string]string{"kerberos.canonicalize_hostname": "not GSSAPI"}, true},
		{"session name without IAM", with("aws_iam", map[string]any{"session_name": "s"}),
			map[string]string{"aws_iam.session_name": "not AWS_MSK_IAM"}, true},
		{"session duration without a role", with("sasl_mechanism", "AWS_MSK_IAM", "aws_iam", iam("session_duration", 7200)),
			map[string]string{"aws_iam.session_duration": "aws_iam.assume_role is not"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := assets.Decode(tt.doc, assets.DecodeOptions{})
			got := fieldErrs(t, err)
			if len(got) != len(tt.want) {
				t.Fatalf("errors %v, want fields %v", got, tt.want)
			}
			for field, sub := range tt.want {
				if !strings.Contains(got[field], sub) {
					t.Errorf("%s: %q does not contain %q", field, got[field], sub)
				}
			}
			_, err = assets.Decode(tt.doc, assets.DecodeOptions{IgnoreUnknown: true, Stored: true})
			if (err == nil) != tt.storedOK {
				t.Fatalf("stored: %v, want resolvable %v", err, tt.storedOK)
			}
		})
	}
	// The defaults, and the settings with what gives them meaning, pass.
	for _, doc := range []map[string]any{
		with("sasl_mechanism", "PLAIN", "username", "u", "password", "pw"),
		with("username", "", "password", "", "sasl_mechanism", ""),
		with("kerberos", map[string]any{"service_name": "kafka", "canonicalize_hostname": false}, "aws_iam", map[string]any{"session_name": "soarkafka", "session_duration": 3600}),
		with("sasl_mechanism", "AWS_MSK_IAM", "aws_iam", iam("assume_role", "arn:aws:iam::123456789012:role/r", "session_name", "s", "session_duration", 7200)),
	} {
		if _, err := assets.Decode(doc, assets.DecodeOptions{}); err != nil {
			t.Errorf("%v: %v", doc, err)
		}
	}
}

// Kerberos values are names, never configuration: what a realm, a KDC and
// a principal may hold, and krb5.conf text that parses.
func TestDecodeKerberosValues(t *testing.T) {
	doc := func(k map[string]any) map[string]any {
		m := map[string]any{"principal": "alice", "password": "pw"}
		for n, v := range k {
			m[n] = v
		}
		return with("use_kerberos", true, "kerberos", m)
	}
	for _, k := range []map[string]any{
		{"realm": "EXAMPLE.COM", "kdc": "kdc1.example.com, kdc2.example.com:750"},
		{"realm": "example.com", "kdc": "10.0.0.1,[::1]:88,::1,_kerberos-x.example.com"},
		{"realm": "CORP-1.EXAMPLE_2.COM", "kdc": "kdc"},
		{"principal": "svc/host.example.com@EXAMPLE.COM", "realm": "EXAMPLE.COM", "kdc": "kdc"},
		{"krb5_conf": "[libdefaults]\n default_realm = EXAMPLE.COM\n[realms]\n EXAMPLE.COM = {\n  kdc = kdc1\n }\n"},
		{"principal": "alice@EXAMPLE.COM", "krb5_conf": "[realms]\n EXAMPLE.COM = {\n  kdc = kdc1\n }\n"},
		{"krb5_conf": "/etc/krb5.conf"},
	} {
		if _, err := assets.Decode(doc(k), assets.DecodeOptions{}); err != nil {
			t.Errorf("%v: %v", k, err)
		}
	}
	tests := []struct {
		k     map[string]any
		field string
		want  string
	}{
		{map[string]any{"realm": "R }", "kdc": "x"}, "kerberos.realm", `"R }" has a space`},
		{map[string]any{"realm": "R}", "kdc": "x"}, "kerberos.realm", `has '}'`},
		{map[string]any{"realm": "R\n[x]", "kdc": "x"}, "kerberos.realm", "not printable ASCII"},
		{map[string]any{"realm": "RÉALM", "kdc": "x"}, "kerberos.realm", "not printable ASCII"},
		{map[string]any{"realm": strings.Repeat("R", 256), "kdc": "x"}, "kerberos.realm", "at most 255"},
		{map[string]any{"realm": "R", "kdc": "x }"}, "kerberos.kdc", `"x }": ' ' is not allowed in a host name`},
		{map[string]any{"realm": "R", "kdc": "a..b"}, "kerberos.kdc", "not a host name"},
		{map[string]any{"realm": "R", "kdc": "kdc:88:88"}, "kerberos.kdc", "is not allowed in a host name"},
		{map[string]any{"realm": "R", "kdc": "kdc:http"}, "kerberos.kdc", "port must be a number from 1 to 65535"},
		{map[string]any{"realm": "R", "kdc": " , "}, "kerberos.kdc", "no KDC given"},
		{map[string]any{"principal": "@R", "realm": "R", "kdc": "x"}, "kerberos.principal", "no name before the @"},
		{map[string]any{"principal": "a//b", "realm": "R", "kdc": "x"}, "kerberos.principal", "empty name component"},
		{map[string]any{"principal": "alice@R{", "realm": "R", "kdc": "x"}, "kerberos.principal", "its realm"},
		{map[string]any{"krb5_conf": "[realms]\nR = { kdc = x }\n"}, "kerberos.krb5_conf", "does not parse: the krb5.conf parser failed on it"},
		{map[string]any{"krb5_conf": "[libdefaults]\n default_realm\n"}, "kerberos.krb5_conf", "does not parse"},
		{map[string]any{"krb5_conf": "R = { kdc = x }"}, "kerberos.krb5_conf", "neither krb5.conf text"},
		{map[string]any{"krb5_conf": "[realms]\n EXAMPLE.COM = {\n  kdc = kdc1\n }\n"}, "kerberos.principal", "sets no default_realm"},
	}
	for _, tt := range tests {
		_, err := assets.Decode(doc(tt.k), assets.DecodeOptions{})
		got := fieldErrs(t, err)
		if len(got) != 1 || !strings.Contains(got[tt.field], tt.want) {
			t.Errorf("%q: %v, want only %s with %q", tt.k, got, tt.field, tt.want)
		}
	}
}

// The AWS region goes into host names and the signature's scope: a name
// only.
func TestDecodeAWSRegion(t *testing.T) {
	for _, r := range []string{"eu-west-1", "us-gov-west-1", "cn-north-1"} {
		if _, err := assets.Decode(with("sasl_mechanism", "AWS_MSK_IAM", "aws_iam", map[string]any{"region": r}), assets.DecodeOptions{}); err != nil {
			t.Errorf("%s: %v", r, err)
		}
	}
	for _, r := range []string{"eu-west-1.evil.example", "eu west", "EU-WEST-1", "eu-west-1/x", "-eu"} {
		_, err := assets.Decode(with("sasl_mechanism", "AWS_MSK_IAM", "aws_iam", map[string]any{"region": r}), assets.DecodeOptions{})
		if got := fieldErrs(t, err); len(got) != 1 || !strings.Contains(got["aws_iam.region"], "is not an AWS region name") {
			t.Errorf("%q: %v", r, got)
		}
	}
}
