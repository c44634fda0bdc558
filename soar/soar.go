// Package soar is the contract between soarkafka and a parser script: the
// Kafka messages a parser receives and the containers and artifacts it
// returns, shaped as the bodies of SOAR's /rest/container and /rest/artifact
// calls, plus small helpers a parser needs without importing anything else.
//
// A parser is ordinary Go: a package that imports this one and defines
//
//	func ParseMessages(topic string, messages []soar.Message) ([]soar.Result, error)
//
// It compiles with the Go toolchain (editor completion, `go test` for its
// author), soarkafka runs bundled parsers natively, and user parsers in the
// sandbox interpreter, where this package is the one non-standard import.
//
// This package must stay small and free of state: the sandbox exposes it to
// untrusted scripts.
package soar

import (
	"encoding/json"
	"maps"
	"reflect"
	"strconv"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Message is one Kafka message handed to a parser.
type Message struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	// Headers in the order the record carries them; Kafka allows a key
	// more than once. Header returns the first value of a key.
	Headers   []Header
	Timestamp time.Time
	// Message is Value as text: the field name of the Splunk app's
	// parse_messages contract.
	Message string
}

// Header is one record header.
type Header struct {
	Key   string
	Value string
}

// Header returns the value of the first header named key.
func (m Message) Header(key string) (string, bool) {
	for _, h := range m.Headers {
		if h.Key == key {
			return h.Value, true
		}
	}
	return "", false
}

// SourceID is the message's default source_data_identifier,
// "<partition>:<offset>", unique per topic.
func (m Message) SourceID() string {
	return strconv.FormatInt(int64(m.Partition), 10) + ":" + strconv.FormatInt(m.Offset, 10)
}

// Result is one container and its artifacts.
type Result struct {
	Container Container  `json:"container"`
	Artifacts []Artifact `json:"artifacts"`
}

// Container is the body of a SOAR /rest/container call. Fields the type
// does not model go in Extra, which is merged into the body (a modelled
// field wins over the same key in Extra).
type Container struct {
	Name                 string         `json:"name,omitempty"`
	Label                string         `json:"label,omitempty"`
	Severity             string         `json:"severity,omitempty"`
	Sensitivity          string         `json:"sensitivity,omitempty"`
	Status               string         `json:"status,omitempty"`
	Description          string         `json:"description,omitempty"`
	SourceDataIdentifier string         `json:"source_data_identifier,omitempty"`
	StartTime            string         `json:"start_time,omitempty"`
	EndTime              string         `json:"end_time,omitempty"`
	DueTime              string         `json:"due_time,omitempty"`
	RunAutomation        *bool          `json:"run_automation,omitempty"` // nil: SOAR's default
	Tags                 []string       `json:"tags,omitempty"`
	Data                 map[string]any `json:"data,omitempty"`
	CustomFields         map[string]any `json:"custom_fields,omitempty"`
	Extra                map[string]any `json:"-"`
}

// Artifact is the body of a SOAR /rest/artifact call. Fields the type does
// not model go in Extra, as for Container.
type Artifact struct {
	Name                 string              `json:"name,omitempty"`
	Label                string              `json:"label,omitempty"`
	Type                 string              `json:"type,omitempty"`
	Severity             string              `json:"severity,omitempty"`
	Description          string              `json:"description,omitempty"`
	SourceDataIdentifier string              `json:"source_data_identifier,omitempty"`
	StartTime            string              `json:"start_time,omitempty"`
	EndTime              string              `json:"end_time,omitempty"`
	RunAutomation        *bool               `json:"run_automation,omitempty"` // nil: SOAR's default
	CEF                  map[string]any      `json:"cef,omitempty"`
	CEFTypes             map[string][]string `json:"cef_types,omitempty"`
	Tags                 []string            `json:"tags,omitempty"`
	Data                 map[string]any      `json:"data,omitempty"`
	Extra                map[string]any      `json:"-"`
}

// MarshalJSON writes the REST body: the modelled fields over Extra.
func (c Container) MarshalJSON() ([]byte, error) {
	type plain Container
	return withExtra(plain(c), c.Extra)
}

// MarshalJSON writes the REST body: the modelled fields over Extra.
func (a Artifact) MarshalJSON() ([]byte, error) {
	type plain Artifact
	return withExtra(plain(a), a.Extra)
}

// MarshalJSONTo is MarshalJSON for JSON v2 encoders (the one soarkafka
// uses): the same body, written without an intermediate document when
// Extra names no modelled field.
func (c Container) MarshalJSONTo(enc *jsontext.Encoder) error {
	if len(c.Extra) == 0 {
		return jsonv2.MarshalEncode(enc, plainContainer(c))
	}
	if clashes(c.Extra, containerKeys) {
		return writeRaw(enc, c.MarshalJSON)
	}
	type inline struct {
		plainContainer
		Extra map[string]any `json:",embed"`
	}
	return jsonv2.MarshalEncode(enc, inline{plainContainer(c), c.Extra})
}

// MarshalJSONTo is MarshalJSON for JSON v2 encoders.
func (a Artifact) MarshalJSONTo(enc *jsontext.Encoder) error {
	if len(a.Extra) == 0 {
		return jsonv2.MarshalEncode(enc, plainArtifact(a))
	}
	if clashes(a.Extra, artifactKeys) {
		return writeRaw(enc, a.MarshalJSON)
	}
	type inline struct {
		plainArtifact
		Extra map[string]any `json:",embed"`
	}
	return jsonv2.MarshalEncode(enc, inline{plainArtifact(a), a.Extra})
}

type (
	plainContainer Container
	plainArtifact  Artifact
)

// The JSON names of the modelled fields.
var (
	containerKeys = jsonNames(reflect.TypeFor[Container]())
	artifactKeys  = jsonNames(reflect.TypeFor[Artifact]())
)

func jsonNames(t reflect.Type) map[string]bool {
	names := map[string]bool{}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names[name] = true
		}
	}
	return names
}

func clashes(extra map[string]any, modelled map[string]bool) bool {
	for k := range extra {
		if modelled[k] {
			return true
		}
	}
	return false
}

func writeRaw(enc *jsontext.Encoder, marshal func() ([]byte, error)) error {
	b, err := marshal()
	if err != nil {
		return err
	}
	return enc.WriteValue(b)
}

func withExtra(v any, extra map[string]any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil || len(extra) == 0 {
		return b, err
	}
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		return nil, err
	}
	out := maps.Clone(extra)
	maps.Copy(out, body)
	return json.Marshal(out)
}

// Bool returns a pointer to b, for RunAutomation.
func Bool(b bool) *bool { return &b }
