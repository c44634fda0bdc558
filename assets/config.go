package assets

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/soarkafka/soarkafka"
)

// Config is a validated asset configuration with defaults applied and the
// security protocol resolved. Secrets are in the clear here: a Config lives in
// memory only; what is stored is the sealed document (see Sealer).
//
// The JSON names are the registry's; a test keeps the two in step.
type Config struct {
	Hosts              string   `json:"hosts"`
	Topic              string   `json:"topic"`
	MessageParser      string   `json:"message_parser"`
	Timeout            int64    `json:"timeout"`
	ReadFromBeginning  bool     `json:"read_from_beginning"`
	UseKerberos        bool     `json:"use_kerberos"`
	UseSSL             bool     `json:"use_ssl"`
	CertFile           string   `json:"cert_file"`
	KeyFile            string   `json:"key_file"`
	CACert             string   `json:"ca_cert"`
	CertPEM            string   `json:"cert_pem"`
	KeyPEM             string   `json:"key_pem"`
	CAPEM              string   `json:"ca_pem"`
	KeyPassword        string   `json:"key_password"`
	TLSServerName      string   `json:"tls_server_name"`
	InsecureSkipVerify bool     `json:"insecure_skip_verify"`
	SecurityProtocol   string   `json:"security_protocol"`
	SASLMechanism      string   `json:"sasl_mechanism"`
	Username           string   `json:"username"`
	Password           string   `json:"password"`
	Kerberos           Kerberos `json:"kerberos"`
	AWSIAM             AWSIAM   `json:"aws_iam"`
	Producer           Producer `json:"producer"`
	Ingest             Ingest   `json:"ingest"`
	Delivery           Delivery `json:"delivery"`
}

// Ingest holds the settings of on poll.
type Ingest struct {
	Interval           string `json:"interval"` // Go duration, "" = not scheduled
	Mode               string `json:"mode"`     // IngestInterval or IngestContinuous
	Enabled            bool   `json:"enabled"`
	MaxMessages        int64  `json:"max_messages"`
	BatchSize          int64  `json:"batch_size"`
	MaxBatchWaitMS     int64  `json:"max_batch_wait_ms"`
	DeadLetterTopic    string `json:"dead_letter_topic"`
	OnOffsetOutOfRange string `json:"on_offset_out_of_range"`
	GroupID            string `json:"group_id"`
	// Spread, ParseConcurrency and SessionTimeoutMS are the settings of
	// a continuous asset read by the replicas' consumer group.
	Spread           bool  `json:"spread"`
	ParseConcurrency int64 `json:"parse_concurrency"`
	SessionTimeoutMS int64 `json:"session_timeout_ms"`
	ParserTimeout    int64 `json:"parser_timeout"` // ms
	// ContainerLabel is the label of stored containers whose parser
	// set none: SOAR refuses a container without a label.
	ContainerLabel string `json:"container_label"`
}

// PollInterval is Ingest.Interval as a duration; 0 when the asset is not
// scheduled (no interval).
func (c Config) PollInterval() time.Duration {
	d, _ := time.ParseDuration(c.Ingest.Interval) // checked by Decode
	return d
}

// Scheduled reports whether the server polls the asset by itself at an
// interval.
func (c Config) Scheduled() bool { return c.Ingest.Enabled && c.PollInterval() > 0 }

// Continuous reports whether the server polls the asset without pause
// (ingest.mode continuous).
func (c Config) Continuous() bool { return c.Ingest.Enabled && c.Ingest.Mode == IngestContinuous }

// MaxBatchWait is Ingest.MaxBatchWaitMS as a duration.
func (c Config) MaxBatchWait() time.Duration {
	return time.Duration(c.Ingest.MaxBatchWaitMS) * time.Millisecond
}

// GroupID is the consumer group the polls of asset commit to.
func (c Config) GroupID(asset string) string {
	if c.Ingest.GroupID != "" {
		return c.Ingest.GroupID
	}
	return "soarkafka-" + asset
}

// SessionTimeout is Ingest.SessionTimeoutMS as a duration.
func (c Config) SessionTimeout() time.Duration {
	return time.Duration(c.Ingest.SessionTimeoutMS) * time.Millisecond
}

// ParserDeadline is Ingest.ParserTimeout as a duration.
func (c Config) ParserDeadline() time.Duration {
	return time.Duration(c.Ingest.ParserTimeout) * time.Millisecond
}

// Producer holds the settings of the producer post data uses.
type Producer struct {
	Acks            string `json:"acks"`
	Idempotent      bool   `json:"idempotent"`
	Compression     string `json:"compression"`
	LingerMS        int64  `json:"linger_ms"`
	MaxMessageBytes int64  `json:"max_message_bytes"`
}

// Brokers returns the bootstrap broker addresses of Hosts.
func (c Config) Brokers() []string {
	var out []string
	for _, h := range strings.Split(c.Hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			out = append(out, h)
		}
	}
	return out
}

// PollTimeout is Timeout as a duration.
func (c Config) PollTimeout() time.Duration { return time.Duration(c.Timeout) * time.Millisecond }

// TLS reports whether the security protocol runs over TLS.
func (c Config) TLS() bool {
	return c.SecurityProtocol == ProtocolSSL || c.SecurityProtocol == ProtocolSASLSSL
}

// SASL reports whether the security protocol authenticates with SASL.
func (c Config) SASL() bool {
	return c.SecurityProtocol == ProtocolSASLPlaintext || c.SecurityProtocol == ProtocolSASLSSL
}

// Document returns the configuration as a JSON document (secrets included).
func (c Config) Document() map[string]any {
	b, err := json.Marshal(c)
	if err != nil { // a struct of strings, ints and bools always marshals
		panic(fmt.Sprintf("assets: marshal config: %v", err))
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

// DecodeOptions change how Decode treats a document.
type DecodeOptions struct {
	// IgnoreUnknown skips fields the registry does not know instead of
	// reporting them. A SOAR platform passes its own keys (appname,
	// directory, asset_id...) in the configuration it hands an app.
	IgnoreUnknown bool
	// Stored marks a document saved earlier, perhaps by an older version:
	// the rules that only refuse a value the server would ignore (a
	// password without a SASL mechanism that uses it) are not applied, so
	// such an asset keeps working as it did. Every rule that keeps the
	// server safe (Kerberos values, bounds) still is.
	Stored bool
}

// Decode validates a configuration document against the registry and the
// rules between fields, and returns the typed configuration. Every bad field
// is reported at once, in one *soarkafka.Error with code EINVALID.
func Decode(doc map[string]any, opts DecodeOptions) (Config, error) {
	var errs fieldErrors
	flat := map[string]any{}
	flatten("", doc, flat, &errs)

	if !opts.IgnoreUnknown {
		var unknown []string
		for k := range flat {
			if _, ok := FieldByName(k); !ok {
				unknown = append(unknown, k)
			}
		}
		sort.Strings(unknown)
		for _, k := range unknown {
			errs.add(k, "unknown field (the asset fields are listed at GET /openapi.json and in the README)")
		}
	}

	values := map[string]any{}
	for _, f := range Fields {
		raw, present := flat[f.Name]
		if present && raw == nil {
			present = false // null means "not set"
		}
		if !present {
			if f.Required {
				errs.add(f.Name, "required")
				continue
			}
			if f.Default != nil {
				values[f.Name] = f.Default
			}
			continue
		}
		v, msg := coerce(f, raw)
		if msg != "" {
			errs.add(f.Name, msg)
			continue
		}
		if check := fieldChecks[f.Name]; check != nil {
			if msgs := check(v); len(msgs) > 0 {
				for _, m := range msgs {
					errs.add(f.Name, m)
				}
				continue
			}
		}
		values[f.Name] = v
	}
	if len(errs) > 0 {
		return Config{}, errs.err()
	}

	var c Config
	if err := c.setValues(values); err != nil {
		return Config{}, fmt.Errorf("assets: decode normalised config: %w", err)
	}
	c.validate(&errs)
	if !opts.Stored {
		c.validateUnused(&errs)
	}
	if len(errs) > 0 {
		return Config{}, errs.err()
	}
	return c, nil
}

// validate applies the rules between fields, one block at a time as each
// Caddy module validates itself: the security settings are resolved first
// (the blocks' rules depend on the protocol and mechanism they give), then
// each block checks itself. Errors come out in registry order whatever
// order the blocks run in (fieldErrors.err sorts them).
func (c *Config) validate(errs *fieldErrors) {
	c.resolveMechanism(errs)
	c.resolveProtocol(errs)
	c.validateSASL(errs)
	c.Kerberos.validate(c.SASLMechanism, c.SASL(), errs)
	c.AWSIAM.validate(c.SASLMechanism, c.SASL(), errs)
	c.Ingest.validate(c.Topic, errs)
	c.Producer.validate(errs)
	c.validateTLS(errs)
	c.Delivery.validate(errs)
}

// validateUnused refuses values that nothing would read: a setting given
// without the one that gives it meaning is a mistake the user learns of at
// save, not after wondering why it has no effect. (The kerberos, aws_iam
// and TLS blocks have the same rule in validate.)
func (c *Config) validateUnused(errs *fieldErrors) {
	c.validateSASLUnused(errs)
	c.Kerberos.validateUnused(c.SASLMechanism, errs)
	c.AWSIAM.validateUnused(c.SASLMechanism, errs)
	c.Delivery.validateUnused(errs)
	c.Ingest.validateUnused(errs)
}

// resolveMechanism reads use_kerberos, the Splunk app's way to say GSSAPI,
// into sasl_mechanism, and mirrors the result back into it.
func (c *Config) resolveMechanism(errs *fieldErrors) {
	if c.UseKerberos {
		switch c.SASLMechanism {
		case "":
			c.SASLMechanism = MechanismGSSAPI
		case MechanismGSSAPI:
		default:
			errs.add("use_kerberos", fmt.Sprintf("is true but sasl_mechanism is %s; set sasl_mechanism to GSSAPI, or use_kerberos to false", c.SASLMechanism))
		}
	}
	c.UseKerberos = c.SASLMechanism == MechanismGSSAPI
}

// resolveProtocol sets security_protocol from the SOAR app's use_ssl and
// the mechanism when it is not given, and mirrors it back into use_ssl.
func (c *Config) resolveProtocol(errs *fieldErrors) {
	if c.SecurityProtocol == "" {
		switch {
		case c.SASLMechanism == MechanismAWSMSKIAM:
			// MSK's IAM listener is TLS only.
			c.SecurityProtocol = ProtocolSASLSSL
		case c.SASLMechanism != "" && c.UseSSL:
			c.SecurityProtocol = ProtocolSASLSSL
		case c.SASLMechanism != "":
			c.SecurityProtocol = ProtocolSASLPlaintext
		case c.UseSSL:
			c.SecurityProtocol = ProtocolSSL
		default:
			c.SecurityProtocol = ProtocolPlaintext
		}
	} else if c.UseSSL && !c.TLS() {
		errs.add("use_ssl", fmt.Sprintf("is true but security_protocol %s does not use TLS; set security_protocol to SSL or SASL_SSL, or use_ssl to false", c.SecurityProtocol))
	}
	// use_ssl mirrors the resolved protocol, so both read the same in a GET.
	c.UseSSL = c.TLS()
}

// validateSASL checks the SASL settings: sasl_mechanism against the
// protocol, and username and password for the mechanisms that use them.
// They are top-level fields, as in the SOAR app's asset form, hence a
// method of Config; GSSAPI and AWS_MSK_IAM have their own blocks.
func (c *Config) validateSASL(errs *fieldErrors) {
	if !c.SASL() {
		if c.SASLMechanism != "" {
			errs.add("sasl_mechanism", fmt.Sprintf("is set but security_protocol %s does not use SASL; set security_protocol to SASL_PLAINTEXT or SASL_SSL", c.SecurityProtocol))
		}
		return
	}
	switch c.SASLMechanism {
	case "":
		errs.add("sasl_mechanism", fmt.Sprintf("required with security_protocol %s (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, GSSAPI or AWS_MSK_IAM)", c.SecurityProtocol))
	case MechanismGSSAPI:
	case MechanismAWSMSKIAM:
		if c.SecurityProtocol != ProtocolSASLSSL {
			errs.add("security_protocol", fmt.Sprintf("is %s but AWS_MSK_IAM needs SASL_SSL: MSK's IAM listener is TLS only", c.SecurityProtocol))
		}
	default:
		if c.Username == "" {
			errs.add("username", fmt.Sprintf("required for SASL %s", c.SASLMechanism))
		}
		if c.Password == "" {
			errs.add("password", fmt.Sprintf("required for SASL %s", c.SASLMechanism))
		}
	}
}

// validateSASLUnused refuses username and password where no mechanism
// reads them.
func (c *Config) validateSASLUnused(errs *fieldErrors) {
	for _, f := range []struct{ name, v string }{{"username", c.Username}, {"password", c.Password}} {
		if f.v == "" {
			continue
		}
		switch c.SASLMechanism {
		case "":
			if !c.SASL() { // with a SASL protocol, sasl_mechanism's own error says it
				errs.add(f.name, fmt.Sprintf("is set but sasl_mechanism is not, so nothing would use it; set sasl_mechanism to PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, or remove %s", f.name))
			}
		case MechanismGSSAPI:
			errs.add(f.name, fmt.Sprintf("is set but sasl_mechanism GSSAPI does not use it; give the principal's credentials in the kerberos block (kerberos.password, kerberos.keytab), or remove %s", f.name))
		case MechanismAWSMSKIAM:
			errs.add(f.name, fmt.Sprintf("is set but sasl_mechanism AWS_MSK_IAM does not use it; give the AWS credentials in the aws_iam block, or remove %s", f.name))
		}
	}
}

// validateTLS checks the TLS settings: none without a TLS protocol, one
// source of each file, a certificate and its key together. They are
// top-level fields, as in the SOAR app's asset form, hence a method of
// Config.
func (c *Config) validateTLS(errs *fieldErrors) {
	if !c.TLS() {
		for _, f := range []struct{ name, v string }{{"cert_file", c.CertFile}, {"key_file", c.KeyFile}, {"ca_cert", c.CACert},
			{"cert_pem", c.CertPEM}, {"key_pem", c.KeyPEM}, {"ca_pem", c.CAPEM}, {"key_password", c.KeyPassword},
			{"tls_server_name", c.TLSServerName}, {"insecure_skip_verify", map[bool]string{true: "true"}[c.InsecureSkipVerify]}} {
			if f.v != "" {
				errs.add(f.name, fmt.Sprintf("is set but security_protocol %s does not use TLS; set use_ssl to true (or security_protocol to SSL or SASL_SSL)", c.SecurityProtocol))
			}
		}
	}
	for _, pair := range [][2]string{{"cert_file", "cert_pem"}, {"key_file", "key_pem"}, {"ca_cert", "ca_pem"}} {
		if c.tlsField(pair[0]) != "" && c.tlsField(pair[1]) != "" {
			errs.add(pair[1], fmt.Sprintf("is set together with %s; give one of them", pair[0]))
		}
	}
	hasCert, hasKey := c.CertFile != "" || c.CertPEM != "", c.KeyFile != "" || c.KeyPEM != ""
	if hasCert && !hasKey {
		errs.add("key_file", "required with cert_file or cert_pem: the private key of the client certificate (or key_pem)")
	}
	if hasKey && !hasCert {
		errs.add("cert_file", "required with key_file or key_pem: the client certificate of the private key (or cert_pem)")
	}
	if c.KeyPassword != "" && !hasKey {
		errs.add("key_password", "is set but there is no private key (key_file or key_pem) to decrypt")
	}
}

// validate checks the ingest block against the asset's topic.
func (i *Ingest) validate(topic string, errs *fieldErrors) {
	if i.DeadLetterTopic != "" && i.DeadLetterTopic == topic {
		errs.add("ingest.dead_letter_topic", fmt.Sprintf("is the ingested topic %q itself: a failing message would come back to the poll; name another topic", topic))
	}
	if i.Mode == IngestContinuous {
		// A continuous poll has no turns: an interval would be silently
		// ignored, and a paused continuous asset is an interval asset.
		if i.Interval != "" {
			errs.add("ingest.interval", fmt.Sprintf("is %s but ingest.mode is continuous, which polls without pause; remove ingest.interval, or set ingest.mode to interval to poll every %s", i.Interval, i.Interval))
		}
		if !i.Enabled {
			errs.add("ingest.enabled", "is false but ingest.mode is continuous; set ingest.enabled to true, or set ingest.mode to interval (with ingest.enabled false) to stop the server polling the asset")
		}
	}
}

// validateUnused refuses ingest settings that only the other mode reads.
// A field with a default cannot tell "not given" from "given as the
// default", so only a value other than the default is refused.
func (i *Ingest) validateUnused(errs *fieldErrors) {
	if i.Mode != IngestContinuous && i.MaxBatchWaitMS != DefaultMaxBatchWaitMS {
		errs.add("ingest.max_batch_wait_ms", "is set but only a continuous poll cuts batches by age; set ingest.mode to continuous, or remove ingest.max_batch_wait_ms")
	}
	if i.Mode != IngestContinuous && i.Spread {
		errs.add("ingest.spread", "is true but only a continuous poll reads through the replicas' consumer group; set ingest.mode to continuous, or remove ingest.spread")
	}
	if !i.Spread && i.ParseConcurrency != 0 {
		errs.add("ingest.parse_concurrency", "is set but only a spread asset parses batches of several partitions at once; set ingest.spread to true, or remove ingest.parse_concurrency")
	}
	if !i.Spread && i.SessionTimeoutMS != DefaultSessionTimeoutMS {
		errs.add("ingest.session_timeout_ms", "is set but only a spread asset joins a consumer group; set ingest.spread to true, or remove ingest.session_timeout_ms")
	}
}

// validate checks the producer block.
func (p *Producer) validate(errs *fieldErrors) {
	if p.Idempotent && p.Acks != AcksAll {
		errs.add("producer.idempotent", fmt.Sprintf("needs producer.acks all (it is %s); set producer.idempotent to false, or producer.acks to all", p.Acks))
	}
}

// fieldChecks are the rules of single fields beyond their type, keyed by
// field name; they run in the first pass so that their errors are reported
// together with type errors.
var fieldChecks = map[string]func(v any) []string{
	"hosts": func(v any) []string {
		var msgs []string
		brokers := Config{Hosts: v.(string)}.Brokers()
		if len(brokers) == 0 {
			return []string{"no broker given; write host:port pairs separated by commas"}
		}
		for _, h := range brokers {
			host, port, err := net.SplitHostPort(h)
			if err != nil || host == "" {
				msgs = append(msgs, fmt.Sprintf("%q is not host:port (e.g. broker1.example.com:9092)", h))
				continue
			}
			if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
				msgs = append(msgs, fmt.Sprintf("%q: port must be a number from 1 to 65535", h))
			}
		}
		return msgs
	},
	"ingest.interval": func(v any) []string {
		s := v.(string)
		if s == "" {
			return nil
		}
		d, err := time.ParseDuration(s)
		switch {
		case err != nil:
			return []string{fmt.Sprintf("%q is not a duration; write it as 30s, 5m or 1h", s)}
		case d < time.Second || d > 24*time.Hour:
			return []string{fmt.Sprintf("%s is out of range; give 1s to 24h, or empty to poll only when on poll is called", d)}
		}
		return nil
	},
	"ingest.dead_letter_topic": func(v any) []string {
		if s := v.(string); s != "" {
			if msg := soarkafka.TopicNameProblem(s); msg != "" {
				return []string{msg}
			}
		}
		return nil
	},
	"ingest.container_label": func(v any) []string {
		s := v.(string)
		if s == "" {
			return []string{"is empty; give the SOAR label of the containers, e.g. events (leave the field out for the default)"}
		}
		return labelProblem(s)
	},
	"delivery.label": func(v any) []string {
		if s := v.(string); s != "" {
			return labelProblem(s)
		}
		return nil
	},
	"delivery.url": func(v any) []string {
		if s := v.(string); s != "" {
			return deliveryURLProblem(s)
		}
		return nil
	},
	"delivery.ca_pem": func(v any) []string {
		if s := v.(string); s != "" && !x509.NewCertPool().AppendCertsFromPEM([]byte(s)) {
			return []string{"holds no PEM certificate; paste the CA bundle (-----BEGIN CERTIFICATE----- ...)"}
		}
		return nil
	},
	"ingest.group_id": func(v any) []string {
		if len(v.(string)) > 255 {
			return []string{"longer than 255 characters"}
		}
		return nil
	},
	"topic": func(v any) []string {
		if msg := soarkafka.TopicNameProblem(v.(string)); msg != "" {
			return []string{msg}
		}
		return nil
	},
}

// coerce checks a raw JSON value against a field's type and returns the
// normalised value, or a message. Strings holding numbers or booleans are
// accepted for integer and boolean fields because SOAR platforms pass asset
// values through forms that sometimes stringify them.
func coerce(f Field, raw any) (any, string) {
	switch f.Type {
	case TypeString:
		s, ok := raw.(string)
		if !ok {
			return nil, fmt.Sprintf("must be a string, got %s", soarkafka.JSONType(raw))
		}
		s = strings.TrimSpace(s)
		if strings.ContainsRune(s, 0) {
			return nil, "must not contain NUL characters"
		}
		if len(f.Enum) > 0 && !(s == "" && !f.Required) {
			for _, e := range f.Enum {
				if strings.EqualFold(e, s) {
					return e, ""
				}
			}
			return nil, fmt.Sprintf("%q is not one of %s", s, strings.Join(f.Enum, ", "))
		}
		return s, ""
	case TypeInteger:
		n, over, msg := wholeNumber(raw)
		if msg != "" {
			return nil, msg
		}
		// A number past int64 is past any bound: said as given, never
		// wrapped around (9223372036854775807 as a float64 is 2^63, which
		// converts to the minimum).
		switch {
		case over > 0 && f.Max != nil:
			return nil, fmt.Sprintf("%s is above the maximum %d", numberText(raw), *f.Max)
		case over < 0 && f.Min != nil:
			return nil, fmt.Sprintf("%s is below the minimum %d", numberText(raw), *f.Min)
		case over != 0:
			return nil, fmt.Sprintf("%s is out of range; give a whole number from %d to %d", numberText(raw), int64(math.MinInt64), int64(math.MaxInt64))
		}
		if f.Min != nil && n < *f.Min {
			return nil, fmt.Sprintf("%d is below the minimum %d", n, *f.Min)
		}
		if f.Max != nil && n > *f.Max {
			return nil, fmt.Sprintf("%d is above the maximum %d", n, *f.Max)
		}
		return n, ""
	case TypeBoolean:
		switch v := raw.(type) {
		case bool:
			return v, ""
		case string:
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				return nil, fmt.Sprintf("must be true or false, got %q", v)
			}
			return b, ""
		}
		return nil, fmt.Sprintf("must be true or false, got %s", soarkafka.JSONType(raw))
	}
	return nil, fmt.Sprintf("field type %q unknown", f.Type)
}

// wholeNumber reads an integer field's value: a JSON number or a string
// holding one. over is +1 or -1 for a whole number past int64 (n is then
// 0), msg says why the value is not a whole number.
func wholeNumber(raw any) (n int64, over int, msg string) {
	switch v := raw.(type) {
	case float64:
		switch {
		case math.IsNaN(v) || math.IsInf(v, 0) || v != math.Trunc(v):
			return 0, 0, fmt.Sprintf("must be a whole number, got %v", v)
		case v >= 0x1p63: // float64(math.MaxInt64) rounds up to 2^63
			return 0, 1, ""
		case v < -0x1p63:
			return 0, -1, ""
		}
		return int64(v), 0, ""
	case int:
		return int64(v), 0, ""
	case int64:
		return v, 0, ""
	case json.Number:
		return parseWhole(string(v), string(v))
	case string:
		return parseWhole(strings.TrimSpace(v), strconv.Quote(v))
	}
	return 0, 0, fmt.Sprintf("must be a whole number, got %s", soarkafka.JSONType(raw))
}

// parseWhole parses decimal integer text; quoted is the value as the
// message shows it.
func parseWhole(s, quoted string) (int64, int, string) {
	i, err := strconv.ParseInt(s, 10, 64)
	if errors.Is(err, strconv.ErrRange) {
		if strings.HasPrefix(s, "-") {
			return 0, -1, ""
		}
		return 0, 1, ""
	}
	if err != nil {
		return 0, 0, fmt.Sprintf("must be a whole number, got %s", quoted)
	}
	return i, 0, ""
}

// numberText is a number past int64 as the message shows it. A JSON
// number arrives as a float64, which holds only the first 16 digits or so
// of such a number: it is shown with an exponent, not with digits the user
// did not write.
func numberText(raw any) string {
	switch v := raw.(type) {
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case string:
		return strconv.Quote(strings.TrimSpace(v))
	}
	return fmt.Sprint(raw)
}

// flatten turns nested objects into dotted keys. An object where the registry
// expects a value (or the reverse) is reported by the type check; an object
// under a name that is a registry block is walked.
func flatten(prefix string, doc map[string]any, out map[string]any, errs *fieldErrors) {
	for k, v := range doc {
		name := k
		if prefix != "" {
			name = prefix + "." + k
		}
		if isBlock(name) {
			if m, ok := v.(map[string]any); ok {
				flatten(name, m, out, errs)
			} else if v != nil {
				errs.add(name, fmt.Sprintf("must be an object, got %s", soarkafka.JSONType(v)))
			}
			continue
		}
		if _, dup := out[name]; dup {
			// "kerberos.realm" given as a dotted key and inside the
			// kerberos block: which one won would depend on map order.
			errs.add(name, "given twice, as a dotted key and inside its block; give it once")
			continue
		}
		out[name] = v
	}
}

// isBlock reports whether name is the prefix of registry fields.
func isBlock(name string) bool {
	for _, f := range Fields {
		if strings.HasPrefix(f.Name, name+".") {
			return true
		}
	}
	return false
}

type fieldErrors []soarkafka.FieldError

func (e *fieldErrors) add(field, msg string) {
	*e = append(*e, soarkafka.FieldError{Field: field, Message: msg})
}

func (e fieldErrors) err() error {
	sort.SliceStable(e, func(i, j int) bool { return fieldOrder(e[i].Field) < fieldOrder(e[j].Field) })
	return &soarkafka.Error{Code: soarkafka.EINVALID, Message: "invalid asset configuration", Fields: e}
}

// fieldOrder sorts errors in registry order, a block where its first field
// is, unknown fields last (in the order they were reported: sorted).
func fieldOrder(name string) int {
	for i, f := range Fields {
		if f.Name == name || strings.HasPrefix(f.Name, name+".") {
			return i
		}
	}
	return len(Fields)
}

// tlsField returns the value of a TLS string field by name.
func (c *Config) tlsField(name string) string {
	switch name {
	case "cert_file":
		return c.CertFile
	case "cert_pem":
		return c.CertPEM
	case "key_file":
		return c.KeyFile
	case "key_pem":
		return c.KeyPEM
	case "ca_cert":
		return c.CACert
	case "ca_pem":
		return c.CAPEM
	}
	return ""
}

// Kerberos holds the settings of SASL GSSAPI.
type Kerberos struct {
	Principal            string `json:"principal"`
	Keytab               string `json:"keytab"` // base64 file content
	KeytabPath           string `json:"keytab_path"`
	Password             string `json:"password"`
	CCachePath           string `json:"ccache_path"`
	Krb5Conf             string `json:"krb5_conf"` // a path, or the text itself
	Realm                string `json:"realm"`
	KDC                  string `json:"kdc"`
	ServiceName          string `json:"service_name"`
	CanonicalizeHostname bool   `json:"canonicalize_hostname"`
}

// Krb5ConfInline reports whether Krb5Conf holds the file's text rather
// than a path: a krb5.conf has sections ("[libdefaults]") and lines.
func (k Kerberos) Krb5ConfInline() bool { return strings.ContainsAny(k.Krb5Conf, "[\n") }

// set lists the kerberos fields given a value other than their default.
func (k Kerberos) set() []string {
	var out []string
	for _, f := range []struct{ name, v string }{{"kerberos.principal", k.Principal}, {"kerberos.keytab", k.Keytab},
		{"kerberos.keytab_path", k.KeytabPath}, {"kerberos.password", k.Password}, {"kerberos.ccache_path", k.CCachePath},
		{"kerberos.krb5_conf", k.Krb5Conf}, {"kerberos.realm", k.Realm}, {"kerberos.kdc", k.KDC}} {
		if f.v != "" {
			out = append(out, f.name)
		}
	}
	return out
}

// validate checks the kerberos block against the asset's mechanism: with
// GSSAPI over SASL, that the principal can log in; with another mechanism,
// that the block is empty.
func (k *Kerberos) validate(mechanism string, sasl bool, errs *fieldErrors) {
	switch {
	case mechanism != MechanismGSSAPI:
		for _, f := range k.set() {
			errs.add(f, fmt.Sprintf("is set but sasl_mechanism is %q, not GSSAPI; set sasl_mechanism to GSSAPI (or use_kerberos to true), or remove the kerberos block", mechanism))
		}
	case sasl:
		k.validateLogin(errs)
	}
}

// validateUnused refuses the settings with a default, which set() leaves
// out, when GSSAPI is not the mechanism: a value other than the default is
// a choice that needs its mechanism.
func (k *Kerberos) validateUnused(mechanism string, errs *fieldErrors) {
	if mechanism == MechanismGSSAPI {
		return
	}
	for _, f := range []struct {
		name string
		set  bool
	}{{"kerberos.service_name", k.ServiceName != "" && k.ServiceName != "kafka"}, {"kerberos.canonicalize_hostname", k.CanonicalizeHostname}} {
		if f.set {
			errs.add(f.name, fmt.Sprintf("is set but sasl_mechanism is %q, not GSSAPI; set sasl_mechanism to GSSAPI (or use_kerberos to true), or remove it", mechanism))
		}
	}
}

// validateLogin checks that the block says how to log in to the KDC.
func (k *Kerberos) validateLogin(errs *fieldErrors) {
	var sources []string
	for _, f := range []struct{ name, v string }{{"kerberos.keytab", k.Keytab}, {"kerberos.keytab_path", k.KeytabPath},
		{"kerberos.password", k.Password}, {"kerberos.ccache_path", k.CCachePath}} {
		if f.v != "" {
			sources = append(sources, f.name)
		}
	}
	switch {
	case len(sources) == 0:
		errs.add("kerberos.keytab", "GSSAPI needs the principal's credentials: give kerberos.keytab (base64), kerberos.keytab_path, kerberos.password or kerberos.ccache_path")
	case len(sources) > 1:
		errs.add(sources[1], fmt.Sprintf("is set together with %s; give one way to log in", sources[0]))
	}
	if k.Principal == "" && k.CCachePath == "" {
		errs.add("kerberos.principal", "required for GSSAPI (e.g. soarkafka@EXAMPLE.COM)")
	}
	k.validateValues(errs)
	switch {
	case k.Krb5Conf == "" && k.Realm == "":
		errs.add("kerberos.krb5_conf", "GSSAPI needs the realm's KDCs: give kerberos.krb5_conf (a path or the file's text), or kerberos.realm and kerberos.kdc")
	case k.Krb5Conf == "" && k.KDC == "":
		errs.add("kerberos.kdc", fmt.Sprintf("required with kerberos.realm %s: the realm's KDCs, host[:port] separated by commas", k.Realm))
	case k.Krb5Conf != "" && k.KDC != "":
		errs.add("kerberos.kdc", "is set together with kerberos.krb5_conf; give one of them")
	}
	if k.ServiceName == "" {
		k.ServiceName = "kafka"
	}
}

// AWSIAM holds the settings of SASL AWS_MSK_IAM.
type AWSIAM struct {
	Region          string `json:"region"`
	AssumeRole      string `json:"assume_role"`
	ExternalID      string `json:"external_id"`
	SessionName     string `json:"session_name"`
	SessionDuration int64  `json:"session_duration"` // seconds
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
	SessionToken    string `json:"session_token"`
	Profile         string `json:"profile"`
}

// set lists the aws_iam fields given a value other than their default.
func (a AWSIAM) set() []string {
	var out []string
	for _, f := range []struct{ name, v string }{{"aws_iam.region", a.Region}, {"aws_iam.assume_role", a.AssumeRole},
		{"aws_iam.external_id", a.ExternalID}, {"aws_iam.access_key_id", a.AccessKeyID}, {"aws_iam.secret_access_key", a.SecretAccessKey},
		{"aws_iam.session_token", a.SessionToken}, {"aws_iam.profile", a.Profile}} {
		if f.v != "" {
			out = append(out, f.name)
		}
	}
	return out
}

var containerLabel = regexp.MustCompile(`^[a-z0-9_-]+$`)

var awsRegion = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

var roleARN = regexp.MustCompile(`^arn:aws[a-z-]*:iam::\d{12}:role/.+$`)

// validate checks the aws_iam block against the asset's mechanism: with
// AWS_MSK_IAM over SASL, its credentials and role; with another mechanism,
// that the block is empty.
func (a *AWSIAM) validate(mechanism string, sasl bool, errs *fieldErrors) {
	switch {
	case mechanism != MechanismAWSMSKIAM:
		for _, f := range a.set() {
			errs.add(f, fmt.Sprintf("is set but sasl_mechanism is %q, not AWS_MSK_IAM; set sasl_mechanism to AWS_MSK_IAM, or remove the aws_iam block", mechanism))
		}
	case sasl:
		a.validateLogin(errs)
	}
}

// validateUnused refuses the session settings with a default, which set()
// leaves out, when nothing would read them: without AWS_MSK_IAM, or
// without a role to assume.
func (a *AWSIAM) validateUnused(mechanism string, errs *fieldErrors) {
	for _, f := range []struct {
		name string
		set  bool
	}{{"aws_iam.session_name", a.SessionName != "" && a.SessionName != "soarkafka"}, {"aws_iam.session_duration", a.SessionDuration != 0 && a.SessionDuration != 3600}} {
		switch {
		case !f.set:
		case mechanism != MechanismAWSMSKIAM:
			errs.add(f.name, fmt.Sprintf("is set but sasl_mechanism is %q, not AWS_MSK_IAM; set sasl_mechanism to AWS_MSK_IAM, or remove it", mechanism))
		case a.AssumeRole == "":
			errs.add(f.name, "is set but aws_iam.assume_role is not: it applies to the session of an assumed role; set aws_iam.assume_role, or remove it")
		}
	}
}

// validateLogin checks the credentials and the role to assume.
func (a *AWSIAM) validateLogin(errs *fieldErrors) {
	if a.Region == "" {
		errs.add("aws_iam.region", "required for AWS_MSK_IAM: the region of the MSK cluster (e.g. eu-west-1)")
	} else if !awsRegion.MatchString(a.Region) {
		// The region goes into host names (STS) and the signature's scope.
		errs.add("aws_iam.region", fmt.Sprintf("%q is not an AWS region name (lower-case letters, digits and '-', e.g. eu-west-1)", a.Region))
	}
	if a.AccessKeyID != "" && a.SecretAccessKey == "" {
		errs.add("aws_iam.secret_access_key", "required with aws_iam.access_key_id")
	}
	if a.SecretAccessKey != "" && a.AccessKeyID == "" {
		errs.add("aws_iam.access_key_id", "required with aws_iam.secret_access_key")
	}
	if a.SessionToken != "" && a.AccessKeyID == "" {
		errs.add("aws_iam.session_token", "needs aws_iam.access_key_id and aws_iam.secret_access_key")
	}
	if a.Profile != "" && a.AccessKeyID != "" {
		errs.add("aws_iam.profile", "is set together with aws_iam.access_key_id; give static keys or a profile, not both")
	}
	if a.AssumeRole != "" && !roleARN.MatchString(a.AssumeRole) {
		errs.add("aws_iam.assume_role", fmt.Sprintf("%q is not a role ARN (arn:aws:iam::123456789012:role/name)", a.AssumeRole))
	}
	if a.AssumeRole == "" && a.ExternalID != "" {
		errs.add("aws_iam.external_id", "is set but aws_iam.assume_role is not; the external id goes with the role to assume")
	}
}
