// Package assets owns the asset model: the connection configuration of one
// Kafka cluster as the SOAR app knows it. One field registry (Fields) is the
// single source of truth for every field's name, type, default, whether it is
// required or secret, and its description; validation, the REST API's schema,
// the UI form and the asset fields table of docs/api.md are all derived from it.
package assets

import (
	"fmt"
	"strings"
)

// Type is the JSON type of a field's value.
type Type string

const (
	TypeString  Type = "string"
	TypeInteger Type = "integer"
	TypeBoolean Type = "boolean"
)

// Field describes one asset configuration field. Name is the dotted path of
// the field in the configuration document (`kerberos.principal` is the
// `principal` key of the `kerberos` object).
type Field struct {
	Name        string
	Type        Type
	Default     any // nil: no default
	Required    bool
	Secret      bool     // write-only in the API, encrypted at rest
	Enum        []string // allowed values for a string field, matched case-insensitively and stored as written here
	Min, Max    *int64   // bounds for an integer field
	Description string
	// Seed marks the fields of the Splunk SOAR Kafka app, whose names and
	// meaning we keep so that a SOAR asset configuration works unchanged.
	Seed bool
}

// Security protocols, as Kafka names them.
const (
	ProtocolPlaintext     = "PLAINTEXT"
	ProtocolSSL           = "SSL"
	ProtocolSASLPlaintext = "SASL_PLAINTEXT"
	ProtocolSASLSSL       = "SASL_SSL"
)

// SASL mechanisms, as Kafka names them.
const (
	MechanismPlain       = "PLAIN"
	MechanismGSSAPI      = "GSSAPI"
	MechanismAWSMSKIAM   = "AWS_MSK_IAM"
	MechanismSCRAMSHA256 = "SCRAM-SHA-256"
	MechanismSCRAMSHA512 = "SCRAM-SHA-512"
)

func i64(v int64) *int64 { return &v }

// Fields is the registry. Order is the order of the docs' table and the UI
// form.
var Fields = []Field{
	{Name: "hosts", Type: TypeString, Required: true, Seed: true,
		Description: "Bootstrap brokers, comma separated host:port pairs (e.g. `broker1:9092,broker2:9092`)."},
	{Name: "topic", Type: TypeString, Required: true, Seed: true,
		Description: "Topic to ingest from; test connectivity checks that it exists."},
	{Name: "message_parser", Type: TypeString, Default: "", Seed: true,
		Description: "Name of the parser that turns messages into containers and artifacts; empty means the bundled `default` parser."},
	{Name: "timeout", Type: TypeInteger, Default: int64(10000), Min: i64(100), Max: i64(3600000), Seed: true,
		Description: "How long each poll reads messages, in milliseconds."},
	{Name: "read_from_beginning", Type: TypeBoolean, Default: false, Seed: true,
		Description: "First poll starts at the earliest offset of each partition (true) or at the latest (false)."},
	{Name: "use_kerberos", Type: TypeBoolean, Default: false, Seed: true,
		Description: "Authenticate with Kerberos (SASL/GSSAPI). Kept for SOAR compatibility; `sasl_mechanism` says the same explicitly."},
	{Name: "use_ssl", Type: TypeBoolean, Default: false, Seed: true,
		Description: "Connect over TLS. Kept for SOAR compatibility; `security_protocol` says the same explicitly."},
	{Name: "cert_file", Type: TypeString, Default: "", Seed: true,
		Description: "Path (on the server, inside `files.allowed_dirs`) of the PEM client certificate presented to the brokers; needs `key_file`."},
	{Name: "key_file", Type: TypeString, Default: "", Seed: true,
		Description: "Path (on the server, inside `files.allowed_dirs`) of the PEM private key of `cert_file`."},
	{Name: "ca_cert", Type: TypeString, Default: "", Seed: true,
		Description: "Path (on the server, inside `files.allowed_dirs`) of the PEM CA bundle that signed the broker certificates; the system pool when empty. Broker host names are always verified against it."},
	{Name: "cert_pem", Type: TypeString, Default: "",
		Description: "The PEM client certificate itself, instead of `cert_file`; needs `key_pem` or `key_file`."},
	{Name: "key_pem", Type: TypeString, Default: "", Secret: true,
		Description: "The PEM private key itself, instead of `key_file`. Write-only; stored encrypted."},
	{Name: "ca_pem", Type: TypeString, Default: "",
		Description: "The PEM CA bundle itself, instead of `ca_cert`."},
	{Name: "key_password", Type: TypeString, Default: "", Secret: true,
		Description: "Password of an encrypted private key (PKCS#8 `ENCRYPTED PRIVATE KEY`, or legacy PEM with `Proc-Type: 4,ENCRYPTED`). Write-only; stored encrypted."},
	{Name: "tls_server_name", Type: TypeString, Default: "",
		Description: "Name the broker certificates are verified against (and sent as SNI) instead of each broker's host as written in `hosts`, e.g. when the brokers are reached through an IP address or a tunnel."},
	{Name: "insecure_skip_verify", Type: TypeBoolean, Default: false,
		Description: "Do not verify the broker certificates at all. Only for a test cluster: anyone on the network path can then read and change the traffic. Test connectivity warns while it is set."},
	{Name: "security_protocol", Type: TypeString, Enum: []string{ProtocolPlaintext, ProtocolSSL, ProtocolSASLPlaintext, ProtocolSASLSSL},
		Description: "Kafka security protocol. When absent it is derived: `use_ssl` gives SSL, a SASL mechanism gives SASL_PLAINTEXT or SASL_SSL, otherwise PLAINTEXT."},
	{Name: "sasl_mechanism", Type: TypeString, Enum: []string{MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512, MechanismGSSAPI, MechanismAWSMSKIAM},
		Description: "SASL mechanism for SASL_PLAINTEXT and SASL_SSL."},
	{Name: "username", Type: TypeString, Default: "",
		Description: "SASL user name for PLAIN and SCRAM."},
	{Name: "password", Type: TypeString, Default: "", Secret: true,
		Description: "SASL password for PLAIN and SCRAM. Write-only; stored encrypted."},
	{Name: "kerberos.principal", Type: TypeString, Default: "",
		Description: "Kerberos client principal for SASL GSSAPI, `name` or `name@REALM` (the realm of `kerberos.realm` or the krb5.conf default when absent)."},
	{Name: "kerberos.keytab", Type: TypeString, Default: "", Secret: true,
		Description: "The principal's keytab, base64-encoded file content (`base64 -w0 client.keytab`). Write-only; stored encrypted. One of `kerberos.keytab`, `kerberos.keytab_path`, `kerberos.password` or `kerberos.ccache_path`."},
	{Name: "kerberos.keytab_path", Type: TypeString, Default: "",
		Description: "Path (on the server, inside `files.allowed_dirs`) of the principal's keytab."},
	{Name: "kerberos.password", Type: TypeString, Default: "", Secret: true,
		Description: "The principal's password. Write-only; stored encrypted."},
	{Name: "kerberos.ccache_path", Type: TypeString, Default: "",
		Description: "Path (on the server, inside `files.allowed_dirs`) of a ticket cache that the site's own `kinit` keeps fresh; it is read again before each login, so a renewed cache is picked up."},
	{Name: "kerberos.krb5_conf", Type: TypeString, Default: "",
		Description: "krb5.conf for the login: a path on the server (inside `files.allowed_dirs`), or the file's text itself. Give it, or `kerberos.realm` and `kerberos.kdc`."},
	{Name: "kerberos.realm", Type: TypeString, Default: "",
		Description: "Kerberos realm (e.g. `EXAMPLE.COM`), with `kerberos.kdc`, instead of a krb5.conf."},
	{Name: "kerberos.kdc", Type: TypeString, Default: "",
		Description: "KDCs of `kerberos.realm`, comma separated host[:port] (port 88 by default)."},
	{Name: "kerberos.service_name", Type: TypeString, Default: "kafka",
		Description: "Service name of the brokers' principals: the client asks for a ticket for `<service_name>/<broker host>@REALM`."},
	{Name: "kerberos.canonicalize_hostname", Type: TypeBoolean, Default: false,
		Description: "Ask for the ticket of the broker's canonical DNS name (its CNAME target) instead of the host as written in `hosts` or advertised by the cluster. Kafka's Java client does neither by default; turn it on when the brokers' principals use names that differ from the ones clients connect to."},
	{Name: "aws_iam.region", Type: TypeString, Default: "",
		Description: "AWS region of the MSK cluster (e.g. `eu-west-1`), for SASL `AWS_MSK_IAM`."},
	{Name: "aws_iam.assume_role", Type: TypeString, Default: "",
		Description: "ARN of a role to assume for the cluster (`arn:aws:iam::123456789012:role/kafka-reader`); the assumed-role credentials are refreshed before they expire."},
	{Name: "aws_iam.external_id", Type: TypeString, Default: "",
		Description: "External id the role's trust policy requires."},
	{Name: "aws_iam.session_name", Type: TypeString, Default: "soarkafka",
		Description: "Role session name, shown in CloudTrail."},
	{Name: "aws_iam.session_duration", Type: TypeInteger, Default: int64(3600), Min: i64(900), Max: i64(43200),
		Description: "Lifetime of the assumed-role session, in seconds (the role's maximum applies)."},
	{Name: "aws_iam.access_key_id", Type: TypeString, Default: "",
		Description: "Static access key id; without it (and without `aws_iam.profile`) the standard AWS credential chain is used: environment, shared files, web identity, container and EC2 instance metadata."},
	{Name: "aws_iam.secret_access_key", Type: TypeString, Default: "", Secret: true,
		Description: "Secret of `aws_iam.access_key_id`. Write-only; stored encrypted."},
	{Name: "aws_iam.session_token", Type: TypeString, Default: "", Secret: true,
		Description: "Session token of temporary static credentials. Write-only; stored encrypted."},
	{Name: "aws_iam.profile", Type: TypeString, Default: "",
		Description: "Profile of the shared AWS config and credentials files to use."},
	{Name: "producer.acks", Type: TypeString, Default: AcksAll, Enum: []string{AcksAll, AcksLeader, AcksNone},
		Description: "Acknowledgement post data waits for: `all` in-sync replicas, the `leader` only, or `none` (fire and forget: the broker's answer is not awaited and a rejection goes unnoticed)."},
	{Name: "producer.idempotent", Type: TypeBoolean, Default: true,
		Description: "Idempotent writes: a retried send is written once. Needs `producer.acks` `all`."},
	{Name: "producer.compression", Type: TypeString, Default: CompressionNone, Enum: []string{CompressionNone, "gzip", "snappy", "lz4", "zstd"},
		Description: "Compression of produced batches."},
	{Name: "producer.linger_ms", Type: TypeInteger, Default: int64(0), Min: i64(0), Max: i64(60000),
		Description: "How long the producer waits to fill a batch, in milliseconds; 0 sends at once."},
	{Name: "producer.max_message_bytes", Type: TypeInteger, Default: int64(1048576), Min: i64(1024), Max: i64(104857600),
		Description: "Largest record (key, value and headers) post data sends; larger records fail with a message naming this limit. Keep it at or below the topic's `max.message.bytes`."},
	{Name: "ingest.interval", Type: TypeString, Default: "",
		Description: "How often the server polls this asset by itself, as a Go duration (`30s`, `5m`, `1h`; 1s to 24h). Empty: only when on poll is called."},
	{Name: "ingest.mode", Type: TypeString, Default: IngestInterval, Enum: []string{IngestInterval, IngestContinuous},
		Description: "How the server polls this asset by itself: `interval`, a poll every `ingest.interval`; or `continuous`, one poll that never ends and stores a batch when it holds `ingest.batch_size` messages or its oldest message has waited `ingest.max_batch_wait_ms` (messages are stored about a second after they reach Kafka). `continuous` needs `ingest.enabled` true and no `ingest.interval`."},
	{Name: "ingest.enabled", Type: TypeBoolean, Default: true,
		Description: "Whether the server polls this asset by itself (every `ingest.interval`, or without pause with `ingest.mode` `continuous`); false pauses the interval polls without forgetting the interval. On poll called by a SOAR runs either way."},
	{Name: "ingest.max_messages", Type: TypeInteger, Default: int64(10000), Min: i64(1), Max: i64(10000000),
		Description: "Most messages one poll reads (a poll also stops at `timeout` or when it has caught up)."},
	{Name: "ingest.batch_size", Type: TypeInteger, Default: int64(1000), Min: i64(1), Max: i64(100000),
		Description: "Most messages passed to the parser in one call. The bundled `default` parser makes one container per call."},
	{Name: "ingest.max_batch_wait_ms", Type: TypeInteger, Default: int64(DefaultMaxBatchWaitMS), Min: i64(10), Max: i64(60000),
		Description: "With `ingest.mode` `continuous`: the longest a message read waits for its batch to fill before the batch is stored anyway, in milliseconds. Lower stores sooner in smaller batches."},
	{Name: "ingest.spread", Type: TypeBoolean, Default: false,
		Description: "With `ingest.mode` `continuous`: read the topic through the consumer group `ingest.group_id` (cooperative-sticky), so that its partitions spread over the replicas sharing the database and move to the others when one stops. Each partition's batches are fenced by an owner epoch in the database, and positions still come from the database. false: one replica reads every partition (the asset's lease) while the others stand by."},
	{Name: "ingest.parse_concurrency", Type: TypeInteger, Default: int64(0), Min: i64(0), Max: i64(256),
		Description: "With `ingest.spread`: how many batches of different partitions one replica parses and stores at once; each partition's batches stay in order. 0: the number of CPUs."},
	{Name: "ingest.session_timeout_ms", Type: TypeInteger, Default: int64(DefaultSessionTimeoutMS), Min: i64(6000), Max: i64(300000),
		Description: "With `ingest.spread`: the consumer group's session timeout, in milliseconds: how long a replica that stopped answering (crashed, paused) keeps its partitions before they move to the others."},
	{Name: "ingest.dead_letter_topic", Type: TypeString, Default: "",
		Description: "Topic a message the parser fails on is produced to (with its key, value and headers, plus headers naming the source topic, partition, offset, parser and error), so the poll goes on. Empty: the poll stops before that message and fails."},
	{Name: "ingest.on_offset_out_of_range", Type: TypeString, Default: OffsetOutOfRangeEarliest, Enum: []string{OffsetOutOfRangeEarliest, OffsetOutOfRangeFail},
		Description: "What a poll does when its stored position was deleted from the broker (retention): `earliest` continues from the earliest offset and records the gap (ingest status, poll result, metric); `fail` stops with an error."},
	{Name: "ingest.group_id", Type: TypeString, Default: "",
		Description: "Consumer group the poll commits its positions to after storing them, so Kafka tooling shows the lag; `soarkafka-<asset>` when empty. The database stays the source of truth."},
	{Name: "ingest.container_label", Type: TypeString, Default: DefaultContainerLabel,
		Description: "SOAR label stored on the containers whose parser set no `label`; a SOAR refuses a container without one, so create this label in SOAR (its label settings) too. 1 to 128 characters: lowercase letters, digits, `_` and `-` (a conservative form, the one of SOAR's default labels such as `events`)."},
	{Name: "ingest.parser_timeout", Type: TypeInteger, Default: int64(10000), Min: i64(100), Max: i64(300000),
		Description: "Deadline of the asset's parser on one batch, in milliseconds; a user parser's worker is killed past it. The server's parser.timeout caps it."},
	{Name: "delivery.mode", Type: TypeString, Default: DeliveryPull, Enum: []string{DeliveryPull, DeliveryPush},
		Description: "How containers reach the SOAR: `pull` (the SOAR's app pulls them) or `push` (the server writes each stored container into the SOAR as soon as its batch is stored; see docs/push.md)."},
	{Name: "delivery.target", Type: TypeString, Default: TargetSplunkSOAR, Enum: []string{TargetSplunkSOAR, TargetXSOARWebhook},
		Description: "What `push` writes to: `splunk_soar` (its REST API, `/rest/container` and `/rest/artifact`) or `xsoar_webhook` (a Cortex XSOAR Generic Webhook, one incident per artifact)."},
	{Name: "delivery.url", Type: TypeString, Default: "",
		Description: "Base URL of the Splunk SOAR (`https://soar.example.com`), or the XSOAR webhook's URL. https; http only to a loopback address. Required for `push`."},
	{Name: "delivery.token", Type: TypeString, Default: "", Secret: true,
		Description: "Splunk SOAR: the automation user's `ph-auth-token`; XSOAR webhook: the basic-auth password. Required for `push`. Write-only; stored encrypted."},
	{Name: "delivery.username", Type: TypeString, Default: "",
		Description: "XSOAR webhook: the basic-auth user name (required for `xsoar_webhook`)."},
	{Name: "delivery.verify_tls", Type: TypeBoolean, Default: true,
		Description: "Verify the SOAR's certificate and host name. false only for a test SOAR: anyone on the network path could then read the token."},
	{Name: "delivery.ca_pem", Type: TypeString, Default: "",
		Description: "PEM CA bundle that signed the SOAR's certificate; the system pool when empty."},
	{Name: "delivery.asset_id", Type: TypeInteger, Default: int64(0), Min: i64(0), Max: i64(2147483647),
		Description: "Id of the SOAR asset stamped on pushed containers (SOAR de-duplicates containers per asset). Required for `splunk_soar` push; 0 means not set."},
	{Name: "delivery.label", Type: TypeString, Default: "",
		Description: "SOAR label stamped on pushed containers that have none; `ingest.container_label` when empty. Same form as `ingest.container_label`."},
	{Name: "delivery.concurrency", Type: TypeInteger, Default: int64(4), Min: i64(1), Max: i64(16),
		Description: "Containers in flight to the SOAR at once; a container's own batches are always sent one after the other."},
	{Name: "delivery.artifacts_per_request", Type: TypeInteger, Default: int64(100), Min: i64(1), Max: i64(1000),
		Description: "Most artifacts sent in one request; a batch with more is sent in several."},
	{Name: "delivery.max_pending", Type: TypeInteger, Default: int64(10000), Min: i64(1), Max: i64(10000000),
		Description: "Backpressure: when more containers than this wait for delivery, polling of the asset waits instead of filling the database."},
	{Name: "delivery.timeout_ms", Type: TypeInteger, Default: int64(30000), Min: i64(100), Max: i64(600000),
		Description: "Deadline of one request to the SOAR, in milliseconds. A request that runs past it has an unknown outcome, which is checked before anything is sent again."},
}

// Delivery modes and targets (delivery.mode, delivery.target).
const (
	DeliveryPull       = "pull"
	DeliveryPush       = "push"
	TargetSplunkSOAR   = "splunk_soar"
	TargetXSOARWebhook = "xsoar_webhook"
)

// Producer acknowledgement settings.
const (
	AcksAll    = "all"
	AcksLeader = "leader"
	AcksNone   = "none"
)

// Modes of ingest.mode.
const (
	IngestInterval   = "interval"
	IngestContinuous = "continuous"
)

// DefaultMaxBatchWaitMS is ingest.max_batch_wait_ms when not given.
const DefaultMaxBatchWaitMS = 500

// DefaultSessionTimeoutMS is ingest.session_timeout_ms when not given
// (Kafka's own default).
const DefaultSessionTimeoutMS = 45000

// Policies of ingest.on_offset_out_of_range.
const (
	OffsetOutOfRangeEarliest = "earliest"
	OffsetOutOfRangeFail     = "fail"
)

// DefaultContainerLabel is the ingest.container_label of an asset that
// gives none: the label SOAR's own ingest apps use by default.
const DefaultContainerLabel = "events"

// CompressionNone is the producer.compression that compresses nothing.
const CompressionNone = "none"

// FieldByName returns the registry entry of a dotted field name.
func FieldByName(name string) (Field, bool) {
	for _, f := range Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// SecretFields returns the names of the secret fields.
func SecretFields() []string {
	var names []string
	for _, f := range Fields {
		if f.Secret {
			names = append(names, f.Name)
		}
	}
	return names
}

// MarkdownTable renders the registry as the asset fields table of docs/api.md.
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| field | type | required | default | secret | description |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- |\n")
	for _, f := range Fields {
		req := ""
		if f.Required {
			req = "yes"
		}
		sec := ""
		if f.Secret {
			sec = "yes"
		}
		def := ""
		if f.Default != nil && f.Default != "" {
			def = fmt.Sprintf("`%v`", f.Default)
		}
		typ := string(f.Type)
		if len(f.Enum) > 0 {
			typ = "`" + strings.Join(f.Enum, "` \\| `") + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s |\n", f.Name, typ, req, def, sec, f.Description)
	}
	return b.String()
}

// JSONSchema returns the JSON Schema (draft 2020-12, as OpenAPI 3.1 uses) of
// the configuration document. Secret fields are marked writeOnly.
func JSONSchema() map[string]any {
	root := map[string]any{"type": "object", "properties": map[string]any{}, "additionalProperties": false}
	for _, f := range Fields {
		parent := root
		parts := strings.Split(f.Name, ".")
		for _, p := range parts[:len(parts)-1] {
			props := parent["properties"].(map[string]any)
			child, ok := props[p].(map[string]any)
			if !ok {
				child = map[string]any{"type": "object", "properties": map[string]any{}, "additionalProperties": false}
				props[p] = child
			}
			parent = child
		}
		s := map[string]any{"type": string(f.Type), "description": f.Description}
		if f.Default != nil {
			s["default"] = f.Default
		}
		if len(f.Enum) > 0 {
			s["enum"] = f.Enum
		}
		if f.Min != nil {
			s["minimum"] = *f.Min
		}
		if f.Max != nil {
			s["maximum"] = *f.Max
		}
		if f.Secret {
			s["writeOnly"] = true
		}
		parent["properties"].(map[string]any)[parts[len(parts)-1]] = s
		if f.Required {
			req, _ := parent["required"].([]string)
			parent["required"] = append(req, parts[len(parts)-1])
		}
	}
	return root
}
