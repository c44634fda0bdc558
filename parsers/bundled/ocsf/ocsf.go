// Package ocsf is the bundled parser for OCSF events (Open Cybersecurity
// Schema Framework, schema.ocsf.io), as Tenzir, Amazon Security Lake and
// others write them to Kafka.
//
// A message value (gzip-compressed or not) is one OCSF event, a JSON
// object, or a JSON array of them; an event is recognised by a numeric
// class_uid. A value that is not JSON, or holds something else, fails the
// batch with an error naming the message's partition:offset (and the array
// index).
//
// Containers, one per (class_uid, activity_id) in a batch, in order of
// first appearance:
//   - name "OCSF <class_name>: <activity_name>" ("class <class_uid>" and
//     "activity <activity_id>" when the names are absent), label "events"
//     (SOAR's default label);
//   - source_data_identifier
//     "ocsf:<class_uid>:<activity_id>:<first artifact's identifier>";
//   - severity: the highest of its artifacts'; start_time: the earliest.
//
// Artifacts, one per event:
//   - name: finding_info.title, else message, else type_name, else the
//     container's name (at most 100 characters); label "event";
//   - source_data_identifier: metadata.uid; without one
//     "<partition>:<offset>", and "<partition>:<offset>:<index>" for an
//     event in an array;
//   - severity from severity_id: 0, 1, 2 → low; 3 → medium; 4, 5, 6 →
//     high; 99 (Other) → the severity text when it names one of these
//     (critical and fatal → high, informational → low), else low;
//   - start_time and cef rt from time (milliseconds since the epoch);
//   - cef from well-known fields: sourceAddress/sourcePort/sourceHostName
//     from src_endpoint.ip/port/hostname, destination* from dst_endpoint,
//     deviceAddress/dvchost from device.ip/hostname, suser from
//     actor.user.name (else user.name; user.name goes to duser when it
//     differs from the actor), fileName and fileHash from file.name and
//     file.hashes (SHA-256 preferred), requestURL from
//     http_request.url.url_string (else url.url_string),
//     requestClientApplication from http_request.user_agent, act from
//     activity_name, cat from class_name, deviceEventClassId from
//     type_uid, msg from message, outcome from status when it is Success
//     or Failure (a finding's status is its workflow state, not an outcome),
//     externalId from metadata.uid, deviceVendor/deviceProduct/
//     deviceVersion from metadata.product;
//   - then the observables array fills what is still empty: type_id 1
//     hostname, 2 IP address (by the observable's name, a path in the
//     event: one with "src" is a source, "dst" a destination, "device" the
//     device; otherwise the first free of source and destination), 4 user name (suser, then duser), 6 URL
//     (requestURL), 7 file name, 8 hash (fileHash), 16 user agent; IP
//     addresses left over go, comma-separated, to cs6 ("otherAddresses");
//   - cef_types: ip, host name, user name, url, file name, and hash plus
//     md5/sha1/sha256/sha512 by the hash's length;
//   - data: the whole event; run_automation false on all but the last
//     artifact of each container.
//
// The parser is deterministic (no clock) and plain Go, so that it runs the
// same natively and in the sandbox interpreter.
package ocsf

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/soarkafka/soarkafka/soar"
)

type ocsfGroup struct {
	container soar.Container
	artifacts []soar.Artifact
	first     int64
	hasFirst  bool
}

// ParseMessages makes one container per OCSF class and activity, one
// artifact per event; see the package comment.
func ParseMessages(topic string, messages []soar.Message) ([]soar.Result, error) {
	groups := []ocsfGroup{}
	index := map[string]int{}
	for _, m := range messages {
		events, inArray, err := ocsfEvents(m.Value)
		if err != nil {
			return nil, fmt.Errorf("ocsf: topic %s message %s: %w", topic, m.SourceID(), err)
		}
		for i := 0; i < len(events); i++ {
			ev, ok := events[i].(map[string]any)
			if !ok || !ocsfIsEvent(ev) {
				return nil, fmt.Errorf("ocsf: topic %s message %s: element %d is not an OCSF event (no numeric class_uid)", topic, m.SourceID(), i)
			}
			id := soar.GetString(ev, "metadata.uid")
			if id == "" {
				id = m.SourceID()
				if inArray {
					id = id + ":" + strconv.Itoa(i)
				}
			}
			classUID := soar.GetString(ev, "class_uid")
			activityID := soar.GetString(ev, "activity_id")
			key := classUID + ":" + activityID
			g, seen := index[key]
			if !seen {
				g = len(groups)
				index[key] = g
				groups = append(groups, ocsfGroup{container: soar.Container{
					Name:                 "OCSF " + ocsfTypeName(ev),
					Label:                "events",
					Description:          "OCSF events of class " + classUID + ", activity " + activityID + " (Kafka topic " + topic + ")",
					SourceDataIdentifier: "ocsf:" + key + ":" + id,
					Severity:             "low",
				}})
			}
			art, ms, hasTime := ocsfArtifact(ev, id, groups[g].container.Name)
			if ocsfRank(art.Severity) > ocsfRank(groups[g].container.Severity) {
				groups[g].container.Severity = art.Severity
			}
			if hasTime && (!groups[g].hasFirst || ms < groups[g].first) {
				groups[g].first = ms
				groups[g].hasFirst = true
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

// ocsfEvents decodes a value into its events, and whether they came in an
// array.
func ocsfEvents(value []byte) ([]any, bool, error) {
	if soar.IsGzip(value) {
		plain, err := soar.Gunzip(value, 0)
		if err != nil {
			return nil, false, err
		}
		value = plain
	}
	doc, err := soar.DecodeJSON(value)
	if err != nil {
		return nil, false, fmt.Errorf("value is not JSON: %w", err)
	}
	switch v := doc.(type) {
	case []any:
		return v, true, nil
	case map[string]any:
		if !ocsfIsEvent(v) {
			return nil, false, fmt.Errorf("not an OCSF event (no numeric class_uid)")
		}
		return []any{v}, false, nil
	}
	return nil, false, fmt.Errorf("value is neither an OCSF event nor an array of them")
}

func ocsfIsEvent(ev map[string]any) bool {
	_, err := strconv.ParseInt(soar.GetString(ev, "class_uid"), 10, 64)
	return err == nil
}

func ocsfTypeName(ev map[string]any) string {
	class := soar.GetString(ev, "class_name")
	if class == "" {
		class = "class " + soar.GetString(ev, "class_uid")
	}
	activity := soar.GetString(ev, "activity_name")
	if activity == "" {
		activity = "activity " + soar.GetString(ev, "activity_id")
		if soar.GetString(ev, "activity_id") == "" {
			activity = "activity unknown"
		}
	}
	return class + ": " + activity
}

func ocsfSeverity(ev map[string]any) string {
	switch soar.GetString(ev, "severity_id") {
	case "3":
		return "medium"
	case "4", "5", "6":
		return "high"
	case "99":
		switch strings.ToLower(soar.GetString(ev, "severity")) {
		case "medium":
			return "medium"
		case "high", "critical", "fatal":
			return "high"
		}
	}
	return "low"
}

func ocsfRank(severity string) int {
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

// ocsfArtifact maps one event; it also returns its time in milliseconds.
func ocsfArtifact(ev map[string]any, id, typeName string) (soar.Artifact, int64, bool) {
	cef := map[string]any{}
	types := map[string][]string{}
	set := func(key, value string, cefType string) {
		if value == "" {
			return
		}
		if _, done := cef[key]; done {
			return
		}
		cef[key] = value
		if cefType != "" {
			types[key] = []string{cefType}
		}
	}
	setPort := func(key, value string) {
		if p, err := strconv.ParseInt(value, 10, 64); err == nil {
			cef[key] = p
		}
	}

	set("sourceAddress", soar.GetString(ev, "src_endpoint.ip"), "ip")
	setPort("sourcePort", soar.GetString(ev, "src_endpoint.port"))
	set("sourceHostName", soar.GetString(ev, "src_endpoint.hostname"), "host name")
	set("destinationAddress", soar.GetString(ev, "dst_endpoint.ip"), "ip")
	setPort("destinationPort", soar.GetString(ev, "dst_endpoint.port"))
	set("destinationHostName", soar.GetString(ev, "dst_endpoint.hostname"), "host name")
	set("deviceAddress", soar.GetString(ev, "device.ip"), "ip")
	set("dvchost", soar.GetString(ev, "device.hostname"), "host name")
	actor := soar.GetString(ev, "actor.user.name")
	user := soar.GetString(ev, "user.name")
	set("suser", actor, "user name")
	if actor == "" {
		set("suser", user, "user name")
	} else if user != actor {
		set("duser", user, "user name")
	}
	set("fileName", soar.GetString(ev, "file.name"), "file name")
	ocsfHash(cef, types, ocsfFileHash(ev))
	url := soar.GetString(ev, "http_request.url.url_string")
	if url == "" {
		url = soar.GetString(ev, "url.url_string")
	}
	set("requestURL", url, "url")
	set("requestClientApplication", soar.GetString(ev, "http_request.user_agent"), "")
	set("act", soar.GetString(ev, "activity_name"), "")
	set("cat", soar.GetString(ev, "class_name"), "")
	set("deviceEventClassId", soar.GetString(ev, "type_uid"), "")
	set("msg", soar.GetString(ev, "message"), "")
	if status := strings.ToLower(soar.GetString(ev, "status")); status == "success" || status == "failure" {
		set("outcome", status, "")
	}
	set("externalId", soar.GetString(ev, "metadata.uid"), "")
	set("deviceVendor", soar.GetString(ev, "metadata.product.vendor_name"), "")
	set("deviceProduct", soar.GetString(ev, "metadata.product.name"), "")
	set("deviceVersion", soar.GetString(ev, "metadata.product.version"), "")

	others := []string{}
	observables, _ := ev["observables"].([]any)
	for _, o := range observables {
		name := soar.GetString(o, "name")
		value := soar.GetString(o, "value")
		if value == "" {
			continue
		}
		switch soar.GetString(o, "type_id") {
		case "1":
			if strings.Contains(name, "src") {
				set("sourceHostName", value, "host name")
			} else if strings.Contains(name, "dst") {
				set("destinationHostName", value, "host name")
			} else {
				set("dvchost", value, "host name")
			}
		case "2":
			if value == cef["sourceAddress"] || value == cef["destinationAddress"] || value == cef["deviceAddress"] {
				continue
			}
			key := ""
			if strings.Contains(name, "src") {
				key = "sourceAddress"
			} else if strings.Contains(name, "dst") {
				key = "destinationAddress"
			} else if strings.Contains(name, "device") {
				key = "deviceAddress"
			} else if cef["sourceAddress"] == nil {
				key = "sourceAddress"
			} else {
				key = "destinationAddress"
			}
			if cef[key] == nil {
				set(key, value, "ip")
			} else {
				others = append(others, value)
			}
		case "4":
			if cef["suser"] == nil {
				set("suser", value, "user name")
			} else if value != cef["suser"] {
				set("duser", value, "user name")
			}
		case "6":
			set("requestURL", value, "url")
		case "7":
			set("fileName", value, "file name")
		case "8":
			ocsfHash(cef, types, value)
		case "16":
			set("requestClientApplication", value, "")
		}
	}
	if len(others) > 0 {
		cef["cs6"] = strings.Join(others, ",")
		cef["cs6Label"] = "otherAddresses"
	}

	name := soar.GetString(ev, "finding_info.title")
	if name == "" {
		name = soar.GetString(ev, "message")
	}
	if name == "" {
		name = soar.GetString(ev, "type_name")
	}
	if name == "" {
		name = typeName
	}
	art := soar.Artifact{
		Name:                 soar.Truncate(name, 100),
		Label:                "event",
		Severity:             ocsfSeverity(ev),
		SourceDataIdentifier: id,
		CEF:                  cef,
		Data:                 ev,
	}
	if len(types) > 0 {
		art.CEFTypes = types
	}
	ms, err := strconv.ParseInt(soar.GetString(ev, "time"), 10, 64)
	hasTime := err == nil && ms > -1e14 && ms < 1e14
	if hasTime {
		cef["rt"] = ms
		art.StartTime = time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000000Z")
	}
	return art, ms, hasTime
}

// ocsfFileHash is file.hashes' SHA-256 value, else its first.
func ocsfFileHash(ev map[string]any) string {
	hashes, _ := soar.Get(ev, "file.hashes")
	list, _ := hashes.([]any)
	first := ""
	for _, h := range list {
		value := soar.GetString(h, "value")
		if value == "" {
			continue
		}
		if soar.GetString(h, "algorithm_id") == "3" {
			return value
		}
		if first == "" {
			first = value
		}
	}
	return first
}

// ocsfHash sets fileHash, typed by the hash's length, unless set.
func ocsfHash(cef map[string]any, types map[string][]string, value string) {
	if value == "" || cef["fileHash"] != nil {
		return
	}
	cef["fileHash"] = value
	kind := ""
	switch len(value) {
	case 32:
		kind = "md5"
	case 40:
		kind = "sha1"
	case 64:
		kind = "sha256"
	case 128:
		kind = "sha512"
	}
	if kind == "" {
		types["fileHash"] = []string{"hash"}
	} else {
		types["fileHash"] = []string{"hash", kind}
	}
}
