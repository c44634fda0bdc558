package assets_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/assets"
)

func base() map[string]any {
	return map[string]any{"hosts": "127.0.0.1:9092", "topic": "alerts"}
}

func with(kv ...any) map[string]any {
	m := base()
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(m, kv[i].(string))
			continue
		}
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// fieldErrs returns field -> message of a validation error.
func fieldErrs(t *testing.T, err error) map[string]string {
	t.Helper()
	var e *soarkafka.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *soarkafka.Error", err, err)
	}
	if e.Code != soarkafka.EINVALID {
		t.Fatalf("code %q, want invalid", e.Code)
	}
	out := map[string]string{}
	for _, f := range e.Fields {
		if prev, dup := out[f.Field]; dup {
			out[f.Field] = prev + " | " + f.Message
		} else {
			out[f.Field] = f.Message
		}
	}
	return out
}

func TestDecodeDefaultsAndDerivation(t *testing.T) {
	tests := []struct {
		name     string
		doc      map[string]any
		protocol string
		useSSL   bool
	}{
		{"plaintext by default", base(), assets.ProtocolPlaintext, false},
		{"use_ssl gives SSL", with("use_ssl", true), assets.ProtocolSSL, true},
		{"use_ssl as string", with("use_ssl", "true"), assets.ProtocolSSL, true},
		{"mechanism gives SASL_PLAINTEXT", with("sasl_mechanism", "plain", "username", "u", "password", "p"), assets.ProtocolSASLPlaintext, false},
		{"mechanism and use_ssl give SASL_SSL", with("sasl_mechanism", "SCRAM-SHA-512", "username", "u", "password", "p", "use_ssl", true), assets.ProtocolSASLSSL, true},
		{"explicit SSL sets use_ssl", with("security_protocol", "ssl"), assets.ProtocolSSL, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := assets.Decode(tt.doc, assets.DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if c.SecurityProtocol != tt.protocol || c.UseSSL != tt.useSSL {
				t.Fatalf("protocol %s use_ssl %v, want %s %v", c.SecurityProtocol, c.UseSSL, tt.protocol, tt.useSSL)
			}
			if c.Timeout != 10000 || c.ReadFromBeginning || c.MessageParser != "" {
				t.Fatalf("defaults not applied: %+v", c)
			}
		})
	}
}

func TestDecodeNormalises(t *testing.T) {
	c, err := assets.Decode(with("hosts", " a:1 , b:2,", "timeout", "2500", "sasl_mechanism", "scram-sha-256",
		"username", "u", "password", "p", "read_from_beginning", "1"), assets.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Brokers(); !reflect.DeepEqual(got, []string{"a:1", "b:2"}) {
		t.Fatalf("brokers %v", got)
	}
	if c.Timeout != 2500 || c.PollTimeout().Milliseconds() != 2500 || !c.ReadFromBeginning {
		t.Fatalf("timeout/read_from_beginning not coerced: %+v", c)
	}
	if c.SASLMechanism != assets.MechanismSCRAMSHA256 {
		t.Fatalf("mechanism %q not normalised to registry spelling", c.SASLMechanism)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  map[string]any
		want map[string]string // field -> substring of the message
	}{
		{"required", map[string]any{}, map[string]string{"hosts": "required", "topic": "required"}},
		{"null is absent", with("hosts", nil, "topic", nil), map[string]string{"hosts": "required", "topic": "required"}},
		{"unknown field", with("hostz", "x"), map[string]string{"hostz": "unknown field"}},
		{"string type", with("topic", 5), map[string]string{"topic": "must be a string, got a number"}},
		{"NUL in string", with("username", "a\x00b"), map[string]string{"username": "NUL"}},
		{"integer type", with("timeout", true), map[string]string{"timeout": "must be a whole number, got a boolean"}},
		{"integer fraction", with("timeout", 1.5), map[string]string{"timeout": "whole number"}},
		{"integer string", with("timeout", "soon"), map[string]string{"timeout": `got "soon"`}},
		{"integer min", with("timeout", 5), map[string]string{"timeout": "below the minimum 100"}},
		{"integer max", with("timeout", 1e9), map[string]string{"timeout": "above the maximum"}},
		{"boolean type", with("use_ssl", "maybe"), map[string]string{"use_ssl": "true or false"}},
		{"boolean object", with("use_ssl", map[string]any{}), map[string]string{"use_ssl": "got an object"}},
		{"enum", with("security_protocol", "TLS"), map[string]string{"security_protocol": "not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"}},
		{"host without port", with("hosts", "broker1"), map[string]string{"hosts": `"broker1" is not host:port`}},
		{"bad port", with("hosts", "b:99999"), map[string]string{"hosts": "port must be a number from 1 to 65535"}},
		{"empty hosts", with("hosts", " , "), map[string]string{"hosts": "no broker given"}},
		{"topic chars", with("topic", "a b"), map[string]string{"topic": "characters Kafka does not allow"}},
		{"topic dot", with("topic", ".."), map[string]string{"topic": "not allowed"}},
		{"topic long", with("topic", strings.Repeat("x", 250)), map[string]string{"topic": "at most 249"}},
		{"kerberos without its block", with("use_kerberos", true), map[string]string{"kerberos.keytab": "GSSAPI needs the principal's credentials",
			"kerberos.principal": "required for GSSAPI", "kerberos.krb5_conf": "give kerberos.krb5_conf (a path or the file's text), or kerberos.realm and kerberos.kdc"}},
		{"kerberos two logins, realm without kdc, bad keytab", with("sasl_mechanism", "GSSAPI", "kerberos", map[string]any{"principal": "p", "keytab": "not base64!", "password": "x", "realm": "R"}),
			map[string]string{"kerberos.password": "is set together with kerberos.keytab", "kerberos.keytab": "is not base64", "kerberos.kdc": "required with kerberos.realm R"}},
		{"use_kerberos with another mechanism", with("use_kerberos", true, "sasl_mechanism", "PLAIN", "username", "u", "password", "p"),
			map[string]string{"use_kerberos": "is true but sasl_mechanism is PLAIN"}},
		{"kerberos block without GSSAPI", with("kerberos", map[string]any{"principal": "p"}), map[string]string{"kerberos.principal": `is set but sasl_mechanism is "", not GSSAPI`}},
		{"iam over plaintext", with("sasl_mechanism", "AWS_MSK_IAM", "security_protocol", "SASL_PLAINTEXT", "aws_iam", map[string]any{"region": "eu-west-1"}),
			map[string]string{"security_protocol": "AWS_MSK_IAM needs SASL_SSL"}},
		{"iam rules", with("sasl_mechanism", "AWS_MSK_IAM", "aws_iam", map[string]any{"access_key_id": "AK", "profile": "p", "assume_role": "role"}),
			map[string]string{"aws_iam.region": "required for AWS_MSK_IAM", "aws_iam.secret_access_key": "required with aws_iam.access_key_id",
				"aws_iam.profile": "give static keys or a profile", "aws_iam.assume_role": "is not a role ARN"}},
		{"session duration", with("sasl_mechanism", "AWS_MSK_IAM", "aws_iam", map[string]any{"region": "eu-west-1", "session_duration": 100}),
			map[string]string{"aws_iam.session_duration": "below the minimum 900"}},
		{"external id without role", with("sasl_mechanism", "AWS_MSK_IAM", "aws_iam", map[string]any{"region": "eu-west-1", "external_id": "x"}),
			map[string]string{"aws_iam.external_id": "goes with the role"}},
		{"iam block without IAM", with("aws_iam", map[string]any{"region": "eu-west-1"}), map[string]string{"aws_iam.region": `not AWS_MSK_IAM`}},
		{"use_ssl contradicts", with("use_ssl", true, "security_protocol", "PLAINTEXT"), map[string]string{"use_ssl": "does not use TLS"}},
		{"sasl without mechanism", with("security_protocol", "SASL_SSL", "username", "u", "password", "p"), map[string]string{"sasl_mechanism": "required with security_protocol SASL_SSL"}},
		{"sasl without credentials", with("sasl_mechanism", "PLAIN"), map[string]string{"username": "required for SASL PLAIN", "password": "required for SASL PLAIN"}},
		{"mechanism without sasl", with("security_protocol", "SSL", "sasl_mechanism", "PLAIN"), map[string]string{"sasl_mechanism": "does not use SASL"}},
		{"tls files without tls", with("ca_cert", "/ca.pem", "cert_file", "/c.pem", "key_file", "/k.pem"),
			map[string]string{"ca_cert": "does not use TLS", "cert_file": "does not use TLS", "key_file": "does not use TLS"}},
		{"idempotent needs acks all", with("producer", map[string]any{"acks": "leader"}), map[string]string{"producer.idempotent": "needs producer.acks all"}},
		{"producer enum", with("producer", map[string]any{"compression": "brotli"}), map[string]string{"producer.compression": "not one of none, gzip"}},
		{"producer unknown", with("producer", map[string]any{"batch": 1}), map[string]string{"producer.batch": "unknown field"}},
		{"producer not object", with("producer", "fast"), map[string]string{"producer": "must be an object, got a string"}},
		{"cert without key", with("use_ssl", true, "cert_file", "/c.pem"), map[string]string{"key_file": "required with cert_file"}},
		{"key without cert", with("use_ssl", true, "key_file", "/k.pem"), map[string]string{"cert_file": "required with key_file"}},
		{"tls inline without tls", with("cert_pem", "C", "key_pem", "K", "ca_pem", "A", "key_password", "p", "tls_server_name", "b", "insecure_skip_verify", true),
			map[string]string{"cert_pem": "does not use TLS", "key_pem": "does not use TLS", "ca_pem": "does not use TLS", "key_password": "does not use TLS",
				"tls_server_name": "does not use TLS", "insecure_skip_verify": "does not use TLS"}},
		{"file and pem", with("use_ssl", true, "ca_cert", "/ca.pem", "ca_pem", "A", "cert_file", "/c.pem", "cert_pem", "C", "key_file", "/k.pem", "key_pem", "K"),
			map[string]string{"ca_pem": "together with ca_cert", "cert_pem": "together with cert_file", "key_pem": "together with key_file"}},
		{"cert pem without key", with("use_ssl", true, "cert_pem", "C"), map[string]string{"key_file": "required with cert_file or cert_pem"}},
		{"key pem without cert", with("use_ssl", true, "key_pem", "K"), map[string]string{"cert_file": "required with key_file or key_pem"}},
		{"key password without key", with("use_ssl", true, "key_password", "p"), map[string]string{"key_password": "no private key"}},
		{"interval not a duration", with("ingest", map[string]any{"interval": "often"}), map[string]string{"ingest.interval": `"often" is not a duration; write it as 30s, 5m or 1h`}},
		{"interval too short", with("ingest", map[string]any{"interval": "500ms"}), map[string]string{"ingest.interval": "give 1s to 24h"}},
		{"interval too long", with("ingest", map[string]any{"interval": "48h"}), map[string]string{"ingest.interval": "give 1s to 24h"}},
		{"dead letter topic name", with("ingest", map[string]any{"dead_letter_topic": "a b"}), map[string]string{"ingest.dead_letter_topic": "characters Kafka does not allow"}},
		{"dead letter topic is the topic", with("ingest", map[string]any{"dead_letter_topic": "alerts"}), map[string]string{"ingest.dead_letter_topic": "is the ingested topic"}},
		{"out of range policy", with("ingest", map[string]any{"on_offset_out_of_range": "latest"}), map[string]string{"ingest.on_offset_out_of_range": "not one of earliest, fail"}},
		{"batch size", with("ingest", map[string]any{"batch_size": 0}), map[string]string{"ingest.batch_size": "below the minimum 1"}},
		{"group id too long", with("ingest", map[string]any{"group_id": strings.Repeat("g", 256)}), map[string]string{"ingest.group_id": "longer than 255"}},
		{"mode enum", with("ingest", map[string]any{"mode": "streaming"}), map[string]string{"ingest.mode": "not one of interval, continuous"}},
		{"continuous with an interval", with("ingest", map[string]any{"mode": "continuous", "interval": "30s"}),
			map[string]string{"ingest.interval": "ingest.mode is continuous, which polls without pause; remove ingest.interval, or set ingest.mode to interval"}},
		{"continuous disabled", with("ingest", map[string]any{"mode": "continuous", "enabled": false}),
			map[string]string{"ingest.enabled": "is false but ingest.mode is continuous; set ingest.enabled to true, or set ingest.mode to interval"}},
		{"batch wait without continuous", with("ingest", map[string]any{"interval": "30s", "max_batch_wait_ms": 100}),
			map[string]string{"ingest.max_batch_wait_ms": "only a continuous poll cuts batches by age; set ingest.mode to continuous, or remove ingest.max_batch_wait_ms"}},
		{"batch wait bounds", with("ingest", map[string]any{"mode": "continuous", "max_batch_wait_ms": 5}), map[string]string{"ingest.max_batch_wait_ms": "below the minimum 10"}},
		{"batch wait too long", with("ingest", map[string]any{"mode": "continuous", "max_batch_wait_ms": 60001}), map[string]string{"ingest.max_batch_wait_ms": "above the maximum 60000"}},
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
		})
	}
}

// Every bad field is reported at once, in registry order.
func TestDecodeReportsEveryField(t *testing.T) {
	_, err := assets.Decode(map[string]any{"topic": "bad topic", "timeout": "x", "use_ssl": 3, "extra": 1}, assets.DecodeOptions{})
	var e *soarkafka.Error
	if !errors.As(err, &e) {
		t.Fatal(err)
	}
	var fields []string
	for _, f := range e.Fields {
		fields = append(fields, f.Field)
	}
	if want := []string{"hosts", "topic", "timeout", "use_ssl", "extra"}; !reflect.DeepEqual(fields, want) {
		t.Fatalf("fields %v, want %v", fields, want)
	}
	if !strings.Contains(e.Error(), "hosts: required") {
		t.Fatalf("Error() %q does not list the fields", e.Error())
	}
}

func TestDecodeIgnoreUnknown(t *testing.T) {
	doc := with("appname", "kafka", "directory", "/opt/x", "asset_id", 7)
	if _, err := assets.Decode(doc, assets.DecodeOptions{IgnoreUnknown: true}); err != nil {
		t.Fatalf("SOAR platform keys must be ignored: %v", err)
	}
	if _, err := assets.Decode(doc, assets.DecodeOptions{}); err == nil {
		t.Fatal("unknown keys must be reported by default")
	}
}

// The registry and the Config struct name the same fields with the same
// types: a document built from the registry's defaults decodes, and every
// registry field appears in Config's JSON.
func TestRegistryMatchesConfig(t *testing.T) {
	c, err := assets.Decode(base(), assets.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	doc := flatDoc("", c.Document())
	seen := map[string]bool{}
	for _, f := range assets.Fields {
		v, ok := doc[f.Name]
		if !ok {
			t.Errorf("registry field %q missing from Config", f.Name)
			continue
		}
		seen[f.Name] = true
		var typeOK bool
		switch f.Type {
		case assets.TypeString:
			_, typeOK = v.(string)
		case assets.TypeInteger:
			n, isNum := v.(float64)
			typeOK = isNum && n == float64(int64(n))
		case assets.TypeBoolean:
			_, typeOK = v.(bool)
		}
		if !typeOK {
			t.Errorf("field %q: Config holds %T for registry type %s", f.Name, v, f.Type)
		}
		if f.Description == "" {
			t.Errorf("field %q has no description", f.Name)
		}
	}
	for k := range doc {
		if !seen[k] {
			t.Errorf("Config field %q is not in the registry", k)
		}
	}
	// Seed fields keep the Splunk app's names.
	for _, name := range []string{"hosts", "topic", "message_parser", "timeout", "read_from_beginning", "use_kerberos", "use_ssl", "cert_file", "key_file", "ca_cert"} {
		if f, ok := assets.FieldByName(name); !ok || !f.Seed {
			t.Errorf("seed field %q missing or not marked Seed", name)
		}
	}
}

// flatDoc flattens nested objects into dotted keys.
func flatDoc(prefix string, doc map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range doc {
		if prefix != "" {
			k = prefix + "." + k
		}
		if m, ok := v.(map[string]any); ok {
			for kk, vv := range flatDoc(k, m) {
				out[kk] = vv
			}
			continue
		}
		out[k] = v
	}
	return out
}

// schemaLeaves counts the non-object properties of a JSON schema.
func schemaLeaves(s map[string]any) int {
	n := 0
	for _, p := range s["properties"].(map[string]any) {
		p := p.(map[string]any)
		if p["type"] == "object" {
			n += schemaLeaves(p)
		} else {
			n++
		}
	}
	return n
}

func TestSchemaAndTableFromRegistry(t *testing.T) {
	s := assets.JSONSchema()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	props := s["properties"].(map[string]any)
	if n := schemaLeaves(s); n != len(assets.Fields) {
		t.Fatalf("schema has %d properties, registry %d", n, len(assets.Fields))
	}
	if acks := props["producer"].(map[string]any)["properties"].(map[string]any)["acks"].(map[string]any); acks["default"] != "all" {
		t.Fatalf("nested block not in the schema: %s", b)
	}
	pw := props["password"].(map[string]any)
	if pw["writeOnly"] != true {
		t.Fatalf("secret field not writeOnly: %s", b)
	}
	if req := s["required"].([]string); !reflect.DeepEqual(req, []string{"hosts", "topic"}) {
		t.Fatalf("required %v", req)
	}
	table := assets.MarkdownTable()
	for _, f := range assets.Fields {
		if !strings.Contains(table, "| `"+f.Name+"` |") {
			t.Errorf("table lacks %s", f.Name)
		}
	}
	if got := assets.SecretFields(); !reflect.DeepEqual(got, []string{"key_pem", "key_password", "password", "kerberos.keytab", "kerberos.password", "aws_iam.secret_access_key", "aws_iam.session_token", "delivery.token"}) {
		t.Fatalf("secret fields %v", got)
	}
}

func TestIngestSettings(t *testing.T) {
	cfg, err := assets.Decode(with("ingest", map[string]any{"interval": "5m", "group_id": "soc"}), assets.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PollInterval() != 5*time.Minute || !cfg.Scheduled() || cfg.GroupID("prod") != "soc" ||
		cfg.Ingest.MaxMessages != 10000 || cfg.Ingest.BatchSize != 1000 || cfg.Ingest.OnOffsetOutOfRange != assets.OffsetOutOfRangeEarliest {
		t.Fatalf("ingest settings %+v", cfg.Ingest)
	}
	cfg, err = assets.Decode(with("ingest", map[string]any{"interval": "5m", "enabled": false}), assets.DecodeOptions{})
	if err != nil || cfg.Scheduled() || cfg.GroupID("prod") != "soarkafka-prod" {
		t.Fatalf("disabled: %+v, %v", cfg.Ingest, err)
	}
	if cfg, _ := assets.Decode(base(), assets.DecodeOptions{}); cfg.Scheduled() || cfg.PollInterval() != 0 {
		t.Fatalf("no interval: scheduled %v", cfg.Scheduled())
	}
	if cfg, _ := assets.Decode(base(), assets.DecodeOptions{}); cfg.Ingest.Mode != assets.IngestInterval || cfg.Continuous() || cfg.MaxBatchWait() != 500*time.Millisecond {
		t.Fatalf("defaults: mode %q, continuous %v, max batch wait %s", cfg.Ingest.Mode, cfg.Continuous(), cfg.MaxBatchWait())
	}
	cfg, err = assets.Decode(with("ingest", map[string]any{"mode": "Continuous", "max_batch_wait_ms": 200}), assets.DecodeOptions{})
	if err != nil || !cfg.Continuous() || cfg.Scheduled() || cfg.Ingest.Mode != assets.IngestContinuous || cfg.MaxBatchWait() != 200*time.Millisecond {
		t.Fatalf("continuous: %+v, %v", cfg.Ingest, err)
	}
	// A stored document keeps working when it carries a value only the
	// other mode reads (the rule is for what users save).
	if _, err := assets.Decode(with("ingest", map[string]any{"max_batch_wait_ms": 100}), assets.DecodeOptions{Stored: true}); err != nil {
		t.Fatalf("stored batch wait without continuous: %v", err)
	}
}

func TestDecodeKerberosAndIAM(t *testing.T) {
	cfg, err := assets.Decode(with("use_kerberos", true, "kerberos", map[string]any{"principal": "alice@TEST.LOCAL", "password": "pw", "realm": "TEST.LOCAL", "kdc": "127.0.0.1:88"}), assets.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SASLMechanism != "GSSAPI" || cfg.SecurityProtocol != "SASL_PLAINTEXT" || cfg.Kerberos.ServiceName != "kafka" || !cfg.UseKerberos {
		t.Fatalf("use_kerberos: %+v", cfg)
	}
	cfg, err = assets.Decode(with("sasl_mechanism", "GSSAPI", "use_ssl", true, "kerberos", map[string]any{"principal": "alice", "ccache_path": "/tmp/cc", "krb5_conf": "[libdefaults]\n default_realm = X\n"}), assets.DecodeOptions{})
	if err != nil || cfg.SecurityProtocol != "SASL_SSL" || !cfg.UseKerberos || !cfg.Kerberos.Krb5ConfInline() {
		t.Fatalf("GSSAPI over TLS: %+v, %v", cfg, err)
	}
	cfg, err = assets.Decode(with("sasl_mechanism", "AWS_MSK_IAM", "aws_iam", map[string]any{"region": "eu-west-1", "assume_role": "arn:aws:iam::123456789012:role/reader", "external_id": "x"}), assets.DecodeOptions{})
	if err != nil || cfg.SecurityProtocol != "SASL_SSL" || !cfg.UseSSL || cfg.AWSIAM.SessionDuration != 3600 || cfg.AWSIAM.SessionName != "soarkafka" {
		t.Fatalf("IAM: %+v, %v", cfg, err)
	}
}
