// Package ndjson is the bundled NDJSON parser: one event per line, as
// Cribl Stream writes them to Kinesis (and on to Kafka), Splunk-style
// fields mapped to CEF.
//
// A message value is NDJSON, gzip-compressed or not, optionally starting
// with Cribl's header line {"format":"ndjson","count":N,"size":S} (a first
// line is the header when it is an object with only those keys and format
// "ndjson"). Lines end with "\n" or "\r\n"; blank lines are skipped. The
// batch fails, with the message's partition:offset in the error, when:
//   - a line is not a JSON object (the error names the line, from 1,
//     counting the header);
//   - the header's count is not the number of event lines: a record cut
//     short or padded is reported, never silently accepted.
//
// The header's size is not checked (Cribl does not document what it
// counts); the header is kept in the container's data.
//
// One container per message (Kafka record / Kinesis record) that holds at
// least one event:
//   - name "NDJSON events from <topic> at <partition>:<offset>", label
//     "events" (SOAR's default label), description giving the count;
//   - source_data_identifier "<topic>:<partition>:<offset>";
//   - start_time: the earliest event _time; data: {"cribl_header": header}
//     when there is one.
//
// One artifact per event line:
//   - name: the first 100 characters of _raw (of the line without _raw),
//     label "event";
//   - source_data_identifier "<partition>:<offset>:<line>" (line numbers
//     as in the errors), so that a replay never duplicates;
//   - cef: message=_raw, rt=_time as milliseconds since the epoch (Splunk's
//     _time is seconds, with a fraction; a _time that is not a number is
//     copied as is), dvchost=host, cs1=source ("source"),
//     cs2=sourcetype ("sourcetype"), cs3=index ("index");
//     cef_types dvchost ["host name"];
//   - start_time from _time; data: the whole event;
//   - run_automation false on all but the message's last artifact.
//
// The parser is deterministic (no clock) and plain Go, so that it runs the
// same natively and in the sandbox interpreter.
package ndjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/soarkafka/soarkafka/soar"
)

// ParseMessages makes one container per message and one artifact per
// event line; see the package comment.
func ParseMessages(topic string, messages []soar.Message) ([]soar.Result, error) {
	results := []soar.Result{}
	for _, m := range messages {
		res, ok, err := ndMessage(topic, m)
		if err != nil {
			return nil, fmt.Errorf("ndjson: topic %s message %s: %w", topic, m.SourceID(), err)
		}
		if ok {
			results = append(results, res)
		}
	}
	return results, nil
}

func ndMessage(topic string, m soar.Message) (soar.Result, bool, error) {
	value := m.Value
	if soar.IsGzip(value) {
		plain, err := soar.Gunzip(value, 0)
		if err != nil {
			return soar.Result{}, false, err
		}
		value = plain
	}
	var header map[string]any
	artifacts := []soar.Artifact{}
	var first time.Time
	firstTime := ""
	lines := bytes.Split(value, []byte("\n"))
	for i := 0; i < len(lines); i++ {
		line := bytes.TrimSpace(lines[i])
		if len(line) == 0 {
			continue
		}
		event, err := soar.JSON(line)
		if err != nil {
			return soar.Result{}, false, fmt.Errorf("line %d: not a JSON object: %w", i+1, err)
		}
		if header == nil && len(artifacts) == 0 && ndIsHeader(event) {
			header = event
			continue
		}
		a, when := ndArtifact(event, m.SourceID()+":"+strconv.Itoa(i+1))
		if !when.IsZero() && (first.IsZero() || when.Before(first)) {
			first = when
			firstTime = a.StartTime
		}
		artifacts = append(artifacts, a)
	}
	if header != nil {
		count, err := strconv.ParseInt(soar.GetString(header, "count"), 10, 64)
		if err != nil || count < 0 {
			return soar.Result{}, false, fmt.Errorf("Cribl header count %q is not a number", soar.GetString(header, "count"))
		}
		if count != int64(len(artifacts)) {
			return soar.Result{}, false, fmt.Errorf("Cribl header says %d events, the record holds %d", count, len(artifacts))
		}
	}
	if len(artifacts) == 0 {
		return soar.Result{}, false, nil
	}
	for i := 0; i < len(artifacts)-1; i++ {
		artifacts[i].RunAutomation = soar.Bool(false)
	}
	c := soar.Container{
		Name:                 "NDJSON events from " + topic + " at " + m.SourceID(),
		Label:                "events",
		Description:          strconv.Itoa(len(artifacts)) + " NDJSON events from Kafka topic " + topic + ", message " + m.SourceID(),
		SourceDataIdentifier: topic + ":" + m.SourceID(),
		StartTime:            firstTime,
	}
	if header != nil {
		c.Data = map[string]any{"cribl_header": header}
	}
	return soar.Result{Container: c, Artifacts: artifacts}, true, nil
}

// ndIsHeader: an object with format "ndjson", a count, and no key but
// format, count and size.
func ndIsHeader(event map[string]any) bool {
	if soar.GetString(event, "format") != "ndjson" {
		return false
	}
	if _, ok := event["count"]; !ok {
		return false
	}
	for k := range event {
		if k != "format" && k != "count" && k != "size" {
			return false
		}
	}
	return true
}

func ndArtifact(event map[string]any, id string) (soar.Artifact, time.Time) {
	cef := map[string]any{}
	types := map[string][]string{}
	raw := soar.GetString(event, "_raw")
	name := raw
	if raw != "" {
		cef["message"] = raw
	} else {
		b, _ := json.Marshal(event)
		name = string(b)
	}
	var when time.Time
	if t := soar.GetString(event, "_time"); t != "" {
		secs, err := strconv.ParseFloat(t, 64)
		if err == nil && !math.IsInf(secs, 0) && !math.IsNaN(secs) && math.Abs(secs) < 1e12 {
			ms := int64(math.Round(secs * 1000))
			cef["rt"] = ms
			when = time.UnixMilli(ms).UTC()
		} else {
			cef["rt"] = t
		}
	}
	if host := soar.GetString(event, "host"); host != "" {
		cef["dvchost"] = host
		types["dvchost"] = []string{"host name"}
	}
	ndLabelled(cef, "cs1", "source", soar.GetString(event, "source"))
	ndLabelled(cef, "cs2", "sourcetype", soar.GetString(event, "sourcetype"))
	ndLabelled(cef, "cs3", "index", soar.GetString(event, "index"))
	a := soar.Artifact{
		Name:                 strings.TrimSpace(soar.Truncate(name, 100)),
		Label:                "event",
		SourceDataIdentifier: id,
		CEF:                  cef,
		Data:                 event,
	}
	if len(types) > 0 {
		a.CEFTypes = types
	}
	if !when.IsZero() {
		a.StartTime = when.Format("2006-01-02T15:04:05.000000Z")
	}
	return a, when
}

func ndLabelled(cef map[string]any, key, label, value string) {
	if value != "" {
		cef[key] = value
		cef[key+"Label"] = label
	}
}
