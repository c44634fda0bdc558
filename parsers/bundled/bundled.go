// Package bundled holds the parsers that ship with soarkafka. They are
// trusted code: compiled into the binary and run natively, while their
// source (the same text) is also available to show, to copy as a starting
// point, and to run in the sandbox in tests, so both paths are compared.
package bundled

import (
	"sort"

	"github.com/soarkafka/soarkafka/parsers/bundled/cloudtrail"
	"github.com/soarkafka/soarkafka/parsers/bundled/defaultparser"
	"github.com/soarkafka/soarkafka/parsers/bundled/ndjson"
	"github.com/soarkafka/soarkafka/parsers/bundled/ocsf"
	"github.com/soarkafka/soarkafka/soar"
)

// ParseFunc is the signature every parser defines as ParseMessages.
type ParseFunc func(topic string, messages []soar.Message) ([]soar.Result, error)

// Parser is a bundled parser.
type Parser struct {
	Name        string
	Description string
	Source      string
	Parse       ParseFunc
}

var parsers = map[string]Parser{
	"default": {
		Name:        "default",
		Description: "The Splunk SOAR Kafka app's kafka_parser.py: one container per poll, one artifact per message (cef.message).",
		Source:      defaultparser.Source,
		Parse:       defaultparser.ParseMessages,
	},
	"cloudtrail": {
		Name:        "cloudtrail",
		Description: "AWS CloudTrail events, log files ({\"Records\": [...]}) and EventBridge CloudTrail events, gzip or not: one artifact per event (source_data_identifier eventID), containers per account and event source, severity raised for failed calls, root and failed console logins.",
		Source:      cloudtrail.Source,
		Parse:       cloudtrail.ParseMessages,
	},
	"ndjson": {
		Name:        "ndjson",
		Description: "NDJSON values, gzip or not, with or without Cribl's {\"format\":\"ndjson\",\"count\":N} header (count checked): one container per message, one artifact per line (_raw, _time, host, source, sourcetype into CEF).",
		Source:      ndjson.Source,
		Parse:       ndjson.ParseMessages,
	},
	"ocsf": {
		Name:        "ocsf",
		Description: "OCSF events (an object or an array per message, gzip or not; Tenzir, Security Lake): containers per class and activity, severity_id as severity, endpoints, users, files, hashes, URLs and observables into CEF.",
		Source:      ocsf.Source,
		Parse:       ocsf.ParseMessages,
	},
}

// Get returns the bundled parser with that name.
func Get(name string) (Parser, bool) {
	p, ok := parsers[name]
	return p, ok
}

// All returns the bundled parsers, ordered by name.
func All() []Parser {
	out := make([]Parser, 0, len(parsers))
	for _, p := range parsers {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
