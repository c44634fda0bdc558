package assets_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/assets"
)

// The fuzz targets of the asset document: the whole document (FuzzDecode)
// and each block placed in an otherwise valid one, so the fuzzer spends its
// time inside the block's rules rather than on the required fields. Each
// input is checked by checkDecode, not only for panics.

// FuzzDecode feeds whole asset configuration documents.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"hosts":"127.0.0.1:9092","topic":"alerts"}`,
		`{"hosts":" a:1 , b:2,","topic":"alerts","timeout":"2500","sasl_mechanism":"scram-sha-256","username":"u","password":"p","read_from_beginning":"1"}`,
		`{"hosts":"broker1","topic":"a b","timeout":1.5,"use_ssl":"maybe","security_protocol":"TLS","hostz":"x"}`,
		`{"hosts":null,"topic":null}`, `{}`, `[]`, `null`, `"x"`,
		`{"hosts":"b:99999","topic":"..","timeout":9223372036854775807}`,
		`{"hosts":"h:1","topic":"t","timeout":-1e300,"use_kerberos":true}`,
		`{"hosts":"h:1","topic":"t","use_ssl":true,"cert_pem":"C","key_pem":"K","ca_pem":"A","key_password":"p","tls_server_name":"b","insecure_skip_verify":"true"}`,
		`{"hosts":"h:1","topic":"t","kerberos.password":"secret-password","kerberos":{"password":"other"}}`,
		`{"hosts":"h:1","topic":"t","sasl_mechanism":"GSSAPI","kerberos":{"principal":"p","keytab":"not base64!","password":"x","realm":"R }"}}`,
		`{"hosts":"h:1","topic":"t","sasl_mechanism":"AWS_MSK_IAM","aws_iam":{"region":"eu-west-1","assume_role":"arn:aws:iam::123456789012:role/reader","external_id":"x"}}`,
		`{"hosts":"h:1","topic":"t","producer":"fast","ingest":[1],"kerberos":7,"aws_iam":null}`,
		`{"hosts":"h:1","topic":"t","ingest":{"interval":"5m","dead_letter_topic":"t","group_id":"soc"}}`,
		"{\"hosts\":\"h:1\",\"topic\":\"t\",\"username\":\"a\\u0000b\"}",
		`{"appname":"kafka","directory":"/opt/x","asset_id":7,"hosts":"h:1","topic":"t"}`,
		`{"hosts":"h:1","topic":"t","sasl_mechanism":"GSSAPI","kerberos.password":"one-password","kerberos":{"principal":"p","password":"two-password","realm":"R","kdc":"k:88"}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var doc map[string]any
		if json.Unmarshal(data, &doc) != nil {
			return // the JSON itself is the web layer's to refuse (FuzzAssetsAPI)
		}
		checkDecode(t, doc)
	})
}

// Found by FuzzDecode: errors on blocks came in map order, so the same
// document was answered differently from one request to the next; and a
// field given both as a dotted key and inside its block took either value.
func TestDecodeAnswersTheSameEveryTime(t *testing.T) {
	doc := map[string]any{"hosts": "h:1", "topic": "t", "producer": "fast", "ingest": []any{1.0}, "kerberos": 7.0, "aws_iam": "x"}
	var e *soarkafka.Error
	for range 20 {
		_, err := assets.Decode(doc, assets.DecodeOptions{})
		if !errors.As(err, &e) {
			t.Fatal(err)
		}
		var fields []string
		for _, f := range e.Fields {
			fields = append(fields, f.Field)
		}
		if want := []string{"kerberos", "aws_iam", "producer", "ingest"}; !reflect.DeepEqual(fields, want) {
			t.Fatalf("fields %v, want registry order %v", fields, want)
		}
	}
	doc = map[string]any{"hosts": "h:1", "topic": "t", "sasl_mechanism": "GSSAPI", "kerberos.password": "one",
		"kerberos": map[string]any{"principal": "p", "password": "two", "realm": "R", "kdc": "k:88"}}
	_, err := assets.Decode(doc, assets.DecodeOptions{})
	if got := fieldErrs(t, err); !strings.Contains(got["kerberos.password"], "given twice") {
		t.Fatalf("errors %v, want kerberos.password given twice", got)
	}
}

// FuzzDecodeTLS feeds the TLS fields, merged into a document with use_ssl.
func FuzzDecodeTLS(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"use_ssl":false}`, `{"security_protocol":"PLAINTEXT"}`, `{"security_protocol":"ssl"}`,
		`{"ca_cert":"/ca.pem","cert_file":"/c.pem","key_file":"/k.pem"}`,
		`{"ca_cert":"/ca.pem","ca_pem":"A","cert_file":"/c.pem","cert_pem":"C","key_file":"/k.pem","key_pem":"K"}`,
		`{"cert_pem":"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n","key_pem":"-----BEGIN PRIVATE KEY-----\nsecret-key-material\n-----END PRIVATE KEY-----\n","key_password":"secret-key-password"}`,
		`{"key_password":"p"}`, `{"tls_server_name":"broker.example.com","insecure_skip_verify":"1"}`,
		`{"insecure_skip_verify":3,"use_ssl":"yes","cert_file":["x"]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecodeBlock(t, map[string]any{"use_ssl": true}, "", data)
	})
}

// FuzzDecodeSASL feeds the SASL fields, merged into a plaintext document.
func FuzzDecodeSASL(f *testing.F) {
	for _, seed := range []string{
		`{"sasl_mechanism":"PLAIN","username":"u","password":"secret-password"}`,
		`{"sasl_mechanism":"scram-sha-512","username":"u","password":"p","use_ssl":true}`,
		`{"security_protocol":"SASL_SSL","username":"u","password":"p"}`,
		`{"sasl_mechanism":"PLAIN"}`, `{"security_protocol":"SSL","sasl_mechanism":"PLAIN"}`,
		`{"password":"without-a-mechanism"}`, `{"use_kerberos":true,"sasl_mechanism":"PLAIN","username":"u","password":"p"}`,
		`{"sasl_mechanism":"OAUTHBEARER"}`, `{"username":5,"password":true}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecodeBlock(t, nil, "", data)
	})
}

// FuzzDecodeKerberos feeds the kerberos block of a GSSAPI document.
func FuzzDecodeKerberos(f *testing.F) {
	for _, seed := range []string{
		`{"principal":"alice@TEST.LOCAL","password":"secret-password","realm":"TEST.LOCAL","kdc":"127.0.0.1:88"}`,
		`{"principal":"alice","ccache_path":"/tmp/cc","krb5_conf":"[libdefaults]\n default_realm = X\n"}`,
		`{"principal":"p","keytab":"not base64!","password":"x","realm":"R"}`,
		`{"principal":"p","keytab":"BQIAAAA3AAEACVRFU1QuTE9DQUwABWFsaWNlAAAAAWVYbL4BABIAIA==","realm":"R }","kdc":"x"}`,
		`{"principal":"p","keytab_path":"/etc/krb5.keytab","krb5_conf":"[realms]\nR = { kdc = x }\n","kdc":"k:88"}`,
		`{"principal":"p","password":"x","realm":"R\n[libdefaults]\n default_realm = EVIL","kdc":"a:88,b"}`,
		`{"service_name":"","canonicalize_hostname":"true"}`, `{}`, `[]`, `"kerberos"`, `{"unknown":1}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecodeBlock(t, map[string]any{"sasl_mechanism": "GSSAPI"}, "kerberos", data)
	})
}

// FuzzDecodeAWSIAM feeds the aws_iam block of an AWS_MSK_IAM document.
func FuzzDecodeAWSIAM(f *testing.F) {
	for _, seed := range []string{
		`{"region":"eu-west-1"}`,
		`{"region":"eu-west-1","assume_role":"arn:aws:iam::123456789012:role/reader","external_id":"x","session_name":"s","session_duration":900}`,
		`{"region":"eu-west-1","access_key_id":"AKIAEXAMPLE","secret_access_key":"secret-access-key","session_token":"secret-session-token"}`,
		`{"access_key_id":"AK","profile":"p","assume_role":"role"}`,
		`{"region":"eu-west-1","session_duration":100}`, `{"region":"eu-west-1","session_duration":"1e3"}`,
		`{"region":"eu-west-1","external_id":"x"}`, `{"secret_access_key":"only-the-secret"}`, `{}`, `7`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecodeBlock(t, map[string]any{"sasl_mechanism": "AWS_MSK_IAM"}, "aws_iam", data)
	})
}

// FuzzDecodeProducer feeds the producer block.
func FuzzDecodeProducer(f *testing.F) {
	for _, seed := range []string{
		`{"acks":"all","idempotent":true,"compression":"zstd","linger_ms":5,"max_message_bytes":1048576}`,
		`{"acks":"leader"}`, `{"acks":"none","idempotent":false}`, `{"compression":"brotli"}`, `{"batch":1}`,
		`{"linger_ms":-1,"max_message_bytes":1e12}`, `{"max_message_bytes":"2048"}`, `"fast"`, `{}`, `null`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecodeBlock(t, nil, "producer", data)
	})
}

// FuzzDecodeIngest feeds the ingest block.
func FuzzDecodeIngest(f *testing.F) {
	for _, seed := range []string{
		`{"interval":"5m","enabled":true,"max_messages":10000,"batch_size":1000,"dead_letter_topic":"dlq","on_offset_out_of_range":"fail","group_id":"soc","parser_timeout":10000}`,
		`{"interval":"often"}`, `{"interval":"500ms"}`, `{"interval":"48h"}`, `{"interval":"9223372036854775807ns"}`,
		`{"dead_letter_topic":"a b"}`, `{"dead_letter_topic":"alerts"}`, `{"on_offset_out_of_range":"latest"}`,
		`{"batch_size":0}`, `{"group_id":"` + strings.Repeat("g", 256) + `"}`, `{"enabled":"no"}`, `[]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecodeBlock(t, nil, "ingest", data)
	})
}

// checkDecodeBlock places the JSON data in a valid document with the extra
// fields: under block, or merged into the top level when block is "".
func checkDecodeBlock(t *testing.T, extra map[string]any, block string, data []byte) {
	var v any
	if json.Unmarshal(data, &v) != nil {
		return
	}
	doc := map[string]any{"hosts": "127.0.0.1:9092", "topic": "alerts"}
	for k, x := range extra {
		doc[k] = x
	}
	if block != "" {
		doc[block] = v
	} else if m, ok := v.(map[string]any); ok {
		for k, x := range m {
			doc[k] = x
		}
	} else {
		return
	}
	checkDecode(t, doc)
}

// checkDecode decodes doc (with and without IgnoreUnknown) and checks what
// the API relies on: an error is an EINVALID *soarkafka.Error whose fields
// name registry fields or keys of the document, and never quotes a secret;
// a decoded configuration survives the trip through Document, as a stored
// asset is decoded again from its stored document.
func checkDecode(t *testing.T, doc map[string]any) {
	t.Helper()
	names := map[string]bool{}
	inputNames("", doc, names)
	for _, opts := range []assets.DecodeOptions{{}, {IgnoreUnknown: true}} {
		cfg, err := assets.Decode(doc, opts)
		// The same document always gives the same answer, whatever the
		// order a map is walked in.
		cfg2, err2 := assets.Decode(doc, opts)
		if !reflect.DeepEqual(cfg, cfg2) || fmt.Sprint(err) != fmt.Sprint(err2) {
			t.Fatalf("Decode(%v) answers differently twice: %+v, %v and %+v, %v", doc, cfg, err, cfg2, err2)
		}
		if err != nil {
			checkDecodeError(t, doc, opts, names, err)
			continue
		}
		again, err := assets.Decode(cfg.Document(), assets.DecodeOptions{})
		if err != nil {
			t.Fatalf("Decode(%v) = %+v, but its Document %v does not decode: %v", doc, cfg, cfg.Document(), err)
		}
		if !reflect.DeepEqual(again, cfg) {
			t.Fatalf("Decode(%v) = %+v, but its Document decodes to %+v", doc, cfg, again)
		}
	}
}

func checkDecodeError(t *testing.T, doc map[string]any, opts assets.DecodeOptions, names map[string]bool, err error) {
	t.Helper()
	var e *soarkafka.Error
	if !errors.As(err, &e) || e.Code != soarkafka.EINVALID {
		t.Fatalf("Decode(%v): error %v (%T, code %q) is not an invalid *soarkafka.Error", doc, err, err, soarkafka.ErrorCode(err))
	}
	if len(e.Fields) == 0 {
		t.Fatalf("Decode(%v): error %q names no field", doc, e)
	}
	for _, fe := range e.Fields {
		if _, known := assets.FieldByName(fe.Field); !known && !names[fe.Field] {
			t.Errorf("Decode(%v): field error %q names neither a registry field nor a key of the document", doc, fe)
		}
		if fe.Message == "" {
			t.Errorf("Decode(%v): field error on %s has no message", doc, fe.Field)
		}
	}
	// A secret is echoed if its value shows in the message, and its
	// case-swapped twin shows in the message for the case-swapped
	// document: a match by chance (a value that is also a word of the
	// message) would not follow the swap.
	swapped, secrets := swapSecrets("", doc)
	if len(secrets) == 0 {
		return
	}
	_, err2 := assets.Decode(swapped, opts)
	if err2 == nil {
		return
	}
	for plain, twin := range secrets {
		if strings.Contains(err.Error(), plain) && strings.Contains(err2.Error(), twin) {
			t.Errorf("Decode(%v): error %q quotes the secret %q", doc, err, plain)
		}
	}
}

// inputNames collects the dotted names of every key of doc, as Decode
// names them (an object under a key is walked).
func inputNames(prefix string, doc map[string]any, out map[string]bool) {
	for k, v := range doc {
		name := k
		if prefix != "" {
			name = prefix + "." + k
		}
		out[name] = true
		if m, ok := v.(map[string]any); ok {
			inputNames(name, m, out)
		}
	}
}

// swapSecrets returns doc with the case of every secret string swapped,
// and each swapped secret with its twin. Only secrets with letters and
// long enough not to be a word of a message by chance are swapped.
func swapSecrets(prefix string, doc map[string]any) (map[string]any, map[string]string) {
	out := make(map[string]any, len(doc))
	secrets := map[string]string{}
	for k, v := range doc {
		name := k
		if prefix != "" {
			name = prefix + "." + k
		}
		switch x := v.(type) {
		case map[string]any:
			m, s := swapSecrets(name, x)
			for p, tw := range s {
				secrets[p] = tw
			}
			v = m
		case string:
			if f, ok := assets.FieldByName(name); ok && f.Secret {
				s := strings.TrimSpace(x)
				twin := swapCase(s)
				if len(s) >= 6 && twin != s {
					secrets[s] = strings.TrimSpace(twin)
					v = swapCase(x)
				}
			}
		}
		out[k] = v
	}
	return out, secrets
}

func swapCase(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsUpper(r) {
			return unicode.ToLower(r)
		}
		return unicode.ToUpper(r)
	}, s)
}
