// Package cloudtrail is the bundled AWS CloudTrail parser.
//
// A message value may hold (gzip-compressed or not):
//   - one CloudTrail event (what a Confluent Produce API destination fed by
//     EventBridge writes when its input transformer keeps only $.detail);
//   - a CloudTrail log file, {"Records": [event, ...]} (the S3 delivery
//     format, as forwarded by MSK / S3 connectors); an empty Records list
//     yields nothing;
//   - an EventBridge envelope ({"detail-type": "AWS API Call via CloudTrail",
//     "detail": event, ...}) whose detail is a CloudTrail event.
//
// A CloudTrail event is recognised by non-empty eventName and eventSource
// strings. A value that is not JSON, not an object, or in none of these
// shapes fails the whole batch with an error naming the message's
// partition:offset (and the record index inside a log file): nothing is
// dropped silently.
//
// Artifacts, one per event:
//   - name: eventName; label "event";
//   - source_data_identifier: eventID, so that a replay never duplicates;
//     without one, "<partition>:<offset>" and, inside a log file,
//     "<partition>:<offset>:<index>";
//   - start_time: eventTime as SOAR writes it (2006-01-02T15:04:05.000000Z);
//   - cef: act=eventName, sourceAddress=sourceIPAddress when it is an IP
//     address (sourceHostName otherwise: AWS services call as
//     "kafka.amazonaws.com"), suser=userIdentity.arn (else userName, else
//     principalId), suid=userIdentity.principalId,
//     requestClientApplication=userAgent, deviceVendor "AWS",
//     deviceProduct "CloudTrail", deviceVersion=eventVersion,
//     cs1=awsRegion ("awsRegion"), cs2=eventSource ("eventSource"),
//     cs3=account ("awsAccountId"), cs4=errorCode ("errorCode"),
//     cs5=errorMessage ("errorMessage"), externalId=eventID, rt=eventTime
//     as in the event, outcome "failure" (errorCode, or a failed console
//     login) or "success";
//   - cef_types: sourceAddress ["ip"], sourceHostName ["host name"], suser
//     ["aws arn"] for an ARN, ["user name"] otherwise;
//   - severity: "low"; "medium" for a failed call (errorCode); "high" for
//     the root identity (userIdentity.type "Root") and for a failed console
//     login (ConsoleLogin with responseElements.ConsoleLogin "Failure" or an
//     errorMessage);
//   - data: the whole CloudTrail event;
//   - run_automation false on all but the last artifact of each container,
//     so that playbooks run once per container.
//
// Containers, one per (account, eventSource) in a batch, in order of first
// appearance; the account is recipientAccountId, else
// userIdentity.accountId, else "unknown":
//   - name "CloudTrail <eventSource> in <account>", label "events" (SOAR's
//     default label, present on every instance);
//   - source_data_identifier
//     "cloudtrail:<account>:<eventSource>:<first artifact's identifier>":
//     the same batch replayed finds the same container;
//   - severity: the highest of its artifacts'; start_time: the earliest
//     event time.
//
// The parser is deterministic (no clock) and plain Go, so that it runs the
// same natively and in the sandbox interpreter.
package cloudtrail

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/soarkafka/soarkafka/soar"
)

// ctGroup is one container being built.
type ctGroup struct {
	container soar.Container
	artifacts []soar.Artifact
	first     time.Time
}

// ParseMessages turns CloudTrail events into one container per account and
// event source; see the package comment.
func ParseMessages(topic string, messages []soar.Message) ([]soar.Result, error) {
	groups := []ctGroup{}
	index := map[string]int{}
	for _, m := range messages {
		events, logFile, err := ctEvents(m.Value)
		if err != nil {
			return nil, fmt.Errorf("cloudtrail: topic %s message %s: %w", topic, m.SourceID(), err)
		}
		for i := 0; i < len(events); i++ {
			ev := events[i]
			if !ctIsEvent(ev) {
				return nil, fmt.Errorf("cloudtrail: topic %s message %s: Records[%d] is not a CloudTrail event (no eventName or eventSource)", topic, m.SourceID(), i)
			}
			id := soar.GetString(ev, "eventID")
			if id == "" {
				id = m.SourceID()
				if logFile {
					id = id + ":" + strconv.Itoa(i)
				}
			}
			art, account, when := ctArtifact(ev, id)
			source := soar.GetString(ev, "eventSource")
			key := account + "\x00" + source
			g, ok := index[key]
			if !ok {
				g = len(groups)
				index[key] = g
				groups = append(groups, ctGroup{container: soar.Container{
					Name:                 "CloudTrail " + source + " in " + account,
					Label:                "events",
					Description:          "AWS CloudTrail events from " + source + " in account " + account + " (Kafka topic " + topic + ")",
					SourceDataIdentifier: "cloudtrail:" + account + ":" + source + ":" + id,
					Severity:             "low",
				}})
			}
			if ctRank(art.Severity) > ctRank(groups[g].container.Severity) {
				groups[g].container.Severity = art.Severity
			}
			if !when.IsZero() && (groups[g].first.IsZero() || when.Before(groups[g].first)) {
				groups[g].first = when
				groups[g].container.StartTime = art.StartTime
			}
			groups[g].artifacts = append(groups[g].artifacts, art)
		}
	}
	results := make([]soar.Result, 0, len(groups))
	for _, g := range groups {
		for i := 0; i < len(g.artifacts)-1; i++ {
			g.artifacts[i].RunAutomation = soar.Bool(false)
		}
		results = append(results, soar.Result{Container: g.container, Artifacts: g.artifacts})
	}
	return results, nil
}

// ctEvents decodes a message value into its CloudTrail events (not yet
// checked one by one, except for a single event or an envelope's detail),
// and whether it was a log file.
func ctEvents(value []byte) ([]any, bool, error) {
	if soar.IsGzip(value) {
		plain, err := soar.Gunzip(value, 0)
		if err != nil {
			return nil, false, err
		}
		value = plain
	}
	doc, err := soar.JSON(value)
	if err != nil {
		return nil, false, fmt.Errorf("value is not a JSON object: %w", err)
	}
	if recs, ok := doc["Records"]; ok {
		list, isList := recs.([]any)
		if !isList {
			return nil, false, errors.New("Records is not a list: not a CloudTrail log file")
		}
		return list, true, nil
	}
	if detail, ok := doc["detail"]; ok {
		if !ctIsEvent(detail) {
			return nil, false, fmt.Errorf("EventBridge event (detail-type %q) whose detail is not a CloudTrail event", soar.GetString(doc, "detail-type"))
		}
		return []any{detail}, false, nil
	}
	if !ctIsEvent(doc) {
		return nil, false, errors.New("not a CloudTrail event, log file ({\"Records\": [...]}) or EventBridge CloudTrail event")
	}
	return []any{doc}, false, nil
}

func ctIsEvent(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	name, _ := m["eventName"].(string)
	source, _ := m["eventSource"].(string)
	return name != "" && source != ""
}

// ctArtifact maps one event; it also returns the event's account and time.
func ctArtifact(ev any, id string) (soar.Artifact, string, time.Time) {
	name := soar.GetString(ev, "eventName")
	account := soar.GetString(ev, "recipientAccountId")
	if account == "" {
		account = soar.GetString(ev, "userIdentity.accountId")
	}
	if account == "" {
		account = "unknown"
	}
	cef := map[string]any{
		"act":           name,
		"deviceVendor":  "AWS",
		"deviceProduct": "CloudTrail",
		"cs2":           soar.GetString(ev, "eventSource"),
		"cs2Label":      "eventSource",
		"cs3":           account,
		"cs3Label":      "awsAccountId",
	}
	types := map[string][]string{}
	ctSet(cef, "deviceVersion", soar.GetString(ev, "eventVersion"))
	if region := soar.GetString(ev, "awsRegion"); region != "" {
		cef["cs1"] = region
		cef["cs1Label"] = "awsRegion"
	}
	if src := soar.GetString(ev, "sourceIPAddress"); src != "" {
		if _, err := netip.ParseAddr(src); err == nil {
			cef["sourceAddress"] = src
			types["sourceAddress"] = []string{"ip"}
		} else {
			cef["sourceHostName"] = src
			types["sourceHostName"] = []string{"host name"}
		}
	}
	user := soar.GetString(ev, "userIdentity.arn")
	if user == "" {
		user = soar.GetString(ev, "userIdentity.userName")
	}
	if user == "" {
		user = soar.GetString(ev, "userIdentity.principalId")
	}
	if user != "" {
		cef["suser"] = user
		if strings.HasPrefix(user, "arn:") {
			types["suser"] = []string{"aws arn"}
		} else {
			types["suser"] = []string{"user name"}
		}
	}
	ctSet(cef, "suid", soar.GetString(ev, "userIdentity.principalId"))
	ctSet(cef, "requestClientApplication", soar.GetString(ev, "userAgent"))
	ctSet(cef, "externalId", soar.GetString(ev, "eventID"))

	errorCode := soar.GetString(ev, "errorCode")
	errorMessage := soar.GetString(ev, "errorMessage")
	if errorCode != "" {
		cef["cs4"] = errorCode
		cef["cs4Label"] = "errorCode"
	}
	if errorMessage != "" {
		cef["cs5"] = errorMessage
		cef["cs5Label"] = "errorMessage"
	}
	severity := "low"
	failed := errorCode != ""
	if failed {
		severity = "medium"
	}
	if soar.GetString(ev, "userIdentity.type") == "Root" {
		severity = "high"
	}
	if name == "ConsoleLogin" && (soar.GetString(ev, "responseElements.ConsoleLogin") == "Failure" || errorMessage != "") {
		severity = "high"
		failed = true
	}
	if failed {
		cef["outcome"] = "failure"
	} else {
		cef["outcome"] = "success"
	}

	art := soar.Artifact{
		Name:                 name,
		Label:                "event",
		Severity:             severity,
		SourceDataIdentifier: id,
		CEF:                  cef,
		CEFTypes:             types,
	}
	if data, ok := ev.(map[string]any); ok {
		art.Data = data
	}
	var when time.Time
	if raw := soar.GetString(ev, "eventTime"); raw != "" {
		cef["rt"] = raw
		if t, err := time.Parse(time.RFC3339, raw); err == nil {
			when = t.UTC()
			art.StartTime = when.Format("2006-01-02T15:04:05.000000Z")
		}
	}
	return art, account, when
}

func ctSet(cef map[string]any, key, value string) {
	if value != "" {
		cef[key] = value
	}
}

func ctRank(severity string) int {
	switch severity {
	case "high":
		return 3
	case "medium":
		return 2
	case "low":
		return 1
	}
	return 0
}
