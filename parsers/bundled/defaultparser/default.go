// Package defaultparser is the bundled default parser: the Splunk SOAR Kafka
// app's kafka_parser.py in Go. One container per batch, one artifact per
// message.
package defaultparser

import (
	"time"

	"github.com/soarkafka/soarkafka/soar"
)

// ParseMessages makes one container named after the topic and the time
// (UTC; the Splunk app used the SOAR host's local time), and one artifact
// per message: source_data_identifier "<partition>:<offset>", the value in
// cef.message, its first 100 characters as the name. Automation runs once
// per batch: run_automation is false on the container and on every artifact
// but the last.
func ParseMessages(topic string, messages []soar.Message) ([]soar.Result, error) {
	container := soar.Container{
		Name:          "Messages ingested from " + topic + " at " + time.Now().UTC().Format("2006-01-02 15:04:05"),
		Description:   "Some messages from Kafka",
		RunAutomation: soar.Bool(false),
	}
	artifacts := make([]soar.Artifact, 0, len(messages))
	for i, m := range messages {
		a := soar.Artifact{
			Name:                 soar.Truncate(m.Message, 100),
			SourceDataIdentifier: m.SourceID(),
			CEF:                  map[string]any{"message": m.Message},
		}
		if i < len(messages)-1 {
			a.RunAutomation = soar.Bool(false)
		}
		artifacts = append(artifacts, a)
	}
	return []soar.Result{{Container: container, Artifacts: artifacts}}, nil
}
