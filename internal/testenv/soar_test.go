package testenv

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests drive the SOAR stand-in with net/http, as the delivery
// worker will.

// soarResp is one answer of the stand-in.
type soarResp struct {
	status int
	header http.Header
	body   []byte
}

// obj decodes a JSON object answer.
func (r soarResp) obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("answer %d is not a JSON object: %v: %s", r.status, err, r.body)
	}
	return m
}

// soarCall sends one request with the stand-in's token (or the header
// given) and returns the answer or the transport error.
func soarCall(hc *http.Client, s *SOAR, method, path string, body any, header http.Header) (soarResp, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return soarResp{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		return soarResp{}, err
	}
	if header == nil {
		req.Header.Set("ph-auth-token", s.Token)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := hc.Do(req)
	if err != nil {
		return soarResp{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return soarResp{}, err
	}
	return soarResp{status: res.StatusCode, header: res.Header, body: b}, nil
}

func soarMust(t *testing.T, s *SOAR, method, path string, body any) soarResp {
	t.Helper()
	r, err := soarCall(http.DefaultClient, s, method, path, body, nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// soarNum reads a JSON number from a decoded answer.
func soarNum(t *testing.T, m map[string]any, key string) int {
	t.Helper()
	f, ok := m[key].(float64)
	if !ok {
		t.Fatalf("answer has no number %q: %v", key, m)
	}
	return int(f)
}

func soarIDs(t *testing.T, list any) []int {
	t.Helper()
	var ids []int
	for _, e := range list.([]any) {
		ids = append(ids, soarNum(t, e.(map[string]any), "id"))
	}
	return ids
}

func TestSOARContainerDuplicateBySourceDataIdentifierPerAsset(t *testing.T) {
	s := NewSOAR(t)
	c := map[string]any{"name": "alert", "label": "events", "asset_id": 7, "source_data_identifier": "topic:0:42"}

	first := soarMust(t, s, "POST", "/rest/container", c)
	m := first.obj(t)
	if first.status != 200 || m["success"] != true || soarNum(t, m, "id") != 1 {
		t.Fatalf("first POST: %d %s; want 200 success id 1", first.status, first.body)
	}

	dup := soarMust(t, s, "POST", "/rest/container", c)
	m = dup.obj(t)
	if dup.status != 400 || m["failed"] != true || soarNum(t, m, "existing_container_id") != 1 || m["message"] == "" {
		t.Fatalf("duplicate POST: %d %s; want 400 failed with existing_container_id 1", dup.status, dup.body)
	}
	if got := len(s.Containers()); got != 1 {
		t.Fatalf("after a duplicate: %d containers, want 1", got)
	}

	// The same identifier from another asset is another container.
	other := map[string]any{"name": "alert", "label": "events", "asset_id": 8, "source_data_identifier": "topic:0:42"}
	if r := soarMust(t, s, "POST", "/rest/container", other); r.status != 200 || soarNum(t, r.obj(t), "id") != 2 {
		t.Fatalf("same identifier, other asset: %d %s; want 200 id 2", r.status, r.body)
	}
	// Without an identifier nothing is a duplicate.
	for range 2 {
		if r := soarMust(t, s, "POST", "/rest/container", map[string]any{"name": "x", "label": "events"}); r.status != 200 {
			t.Fatalf("container without source_data_identifier: %d %s", r.status, r.body)
		}
	}
	cs := s.Containers()
	if len(cs) != 4 {
		t.Fatalf("%d containers, want 4", len(cs))
	}
	want := SOARContainer{ID: 1, AssetID: 7, Name: "alert", Label: "events", SourceDataIdentifier: "topic:0:42"}
	got := cs[0]
	got.Fields = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("container 1 = %+v, want %+v", got, want)
	}
	if cs[0].Fields["status"] != "new" || cs[0].Fields["asset"] != json.Number("7") {
		t.Errorf("container 1 fields = %v; want status new and asset 7", cs[0].Fields)
	}
}

func TestSOARContainerRequiredFieldsAndLabels(t *testing.T) {
	s := NewSOAR(t, SOARLabels("kafka_alert"))
	cases := []struct {
		name string
		body any
		msg  string
	}{
		{"no name", map[string]any{"label": "events"}, "Missing required parameter: name"},
		{"no label", map[string]any{"name": "a"}, "Missing required parameter: label"},
		{"label unknown", map[string]any{"name": "a", "label": "nosuch"}, `"nosuch"`},
		{"asset_id not an integer", map[string]any{"name": "a", "label": "events", "asset_id": "7"}, "asset_id"},
		{"artifacts not a list", map[string]any{"name": "a", "label": "events", "artifacts": map[string]any{}}, "artifacts"},
		{"not an object", []any{"x"}, "object"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := soarMust(t, s, "POST", "/rest/container", tc.body)
			if r.status != 400 {
				t.Fatalf("status %d %s, want 400", r.status, r.body)
			}
			var m map[string]any
			if strings.HasPrefix(string(r.body), "[") {
				var list []map[string]any
				if err := json.Unmarshal(r.body, &list); err != nil || len(list) != 1 {
					t.Fatalf("bulk answer %s", r.body)
				}
				m = list[0]
			} else {
				m = r.obj(t)
			}
			if m["failed"] != true || !strings.Contains(m["message"].(string), tc.msg) {
				t.Errorf("answer %s; want failed with a message containing %q", r.body, tc.msg)
			}
		})
	}
	if r := soarMust(t, s, "POST", "/rest/container", map[string]any{"name": "a", "label": "kafka_alert"}); r.status != 200 {
		t.Fatalf("known label: %d %s", r.status, r.body)
	}
	s.RejectLabel("kafka_alert")
	r := soarMust(t, s, "POST", "/rest/container", map[string]any{"name": "b", "label": "kafka_alert"})
	if m := r.obj(t); r.status != 400 || m["failed"] != true || !strings.Contains(m["message"].(string), "kafka_alert") {
		t.Fatalf("rejected label: %d %s; want 400 failed naming the label", r.status, r.body)
	}
	if r := soarMust(t, s, "POST", "/rest/container", map[string]any{"name": "c", "label": "events"}); r.status != 200 {
		t.Fatalf("other label after RejectLabel: %d %s", r.status, r.body)
	}
	if got := len(s.Containers()); got != 2 {
		t.Errorf("%d containers stored, want 2 (refused ones are not stored)", got)
	}
}

func TestSOARInlineArtifacts(t *testing.T) {
	s := NewSOAR(t)
	r := soarMust(t, s, "POST", "/rest/container", map[string]any{
		"name": "batch", "label": "events", "asset_id": 3, "source_data_identifier": "b1",
		"artifacts": []any{
			map[string]any{"name": "m1", "label": "event", "cef": map[string]any{"sourceAddress": "10.0.0.1"}, "source_data_identifier": "0:1", "run_automation": false},
			map[string]any{"name": "m2", "label": "event", "cef": "not an object", "source_data_identifier": "0:2"},
			map[string]any{"name": "m3", "label": "event", "cef": map[string]any{"sourceAddress": "10.0.0.3"}, "source_data_identifier": "0:3", "run_automation": true},
		},
	})
	m := r.obj(t)
	if r.status != 200 || m["success"] != true {
		t.Fatalf("POST: %d %s", r.status, r.body)
	}
	cid := soarNum(t, m, "id")
	if got := m["new_artifact_ids"]; !reflect.DeepEqual(got, []any{1.0, 2.0}) {
		t.Errorf("new_artifact_ids = %v, want [1 2]", got)
	}
	results := m["artifacts"].([]any)
	if len(results) != 3 {
		t.Fatalf("artifacts results = %v, want 3", results)
	}
	if r0 := results[0].(map[string]any); r0["success"] != true || r0["id"] != 1.0 {
		t.Errorf("result 0 = %v", r0)
	}
	if r1 := results[1].(map[string]any); r1["failed"] != true || !strings.Contains(r1["message"].(string), "cef") {
		t.Errorf("result 1 = %v, want failed naming cef", r1)
	}
	if r2 := results[2].(map[string]any); r2["success"] != true || r2["id"] != 2.0 {
		t.Errorf("result 2 = %v", r2)
	}
	arts := s.Artifacts(cid)
	if len(arts) != 2 {
		t.Fatalf("%d artifacts stored, want 2", len(arts))
	}
	if a := arts[1]; a.ID != 2 || a.ContainerID != cid || a.Name != "m3" || a.SourceDataIdentifier != "0:3" || !a.RunAutomation || a.CEF["sourceAddress"] != "10.0.0.3" {
		t.Errorf("artifact 2 = %+v", a)
	}
	if arts[0].RunAutomation {
		t.Errorf("artifact 1 run_automation = true, posted false")
	}
	if got := s.Containers()[0].Fields["artifact_count"]; got != json.Number("2") {
		t.Errorf("artifact_count = %v, want 2", got)
	}
}

func TestSOARArtifactPostAndDedup(t *testing.T) {
	s := NewSOAR(t)
	mk := func(asset int, sdi string) int {
		r := soarMust(t, s, "POST", "/rest/container", map[string]any{"name": sdi, "label": "events", "asset_id": asset, "source_data_identifier": sdi})
		if r.status != 200 {
			t.Fatalf("container: %d %s", r.status, r.body)
		}
		return soarNum(t, r.obj(t), "id")
	}
	art := func(cid int, ip string, runAutomation bool) map[string]any {
		return map[string]any{"container_id": cid, "name": "m", "label": "event", "source_data_identifier": "0:" + ip, "cef": map[string]any{"sourceAddress": ip}, "run_automation": runAutomation}
	}

	// De-duplication off (the default): the same artifact twice is two.
	off := mk(1, "c-off")
	for want := 1; want <= 2; want++ {
		r := soarMust(t, s, "POST", "/rest/artifact", art(off, "10.0.0.1", false))
		if m := r.obj(t); r.status != 200 || m["success"] != true || soarNum(t, m, "id") != want {
			t.Fatalf("POST %d with de-dup off: %d %s", want, r.status, r.body)
		}
	}
	if got := len(s.Artifacts(off)); got != 2 {
		t.Fatalf("de-dup off: %d artifacts, want 2", got)
	}

	// On for asset 2: the same contents are refused with the existing id,
	// whatever run_automation says; other contents are stored.
	s.SetArtifactDedup(2, true)
	on := mk(2, "c-on")
	r := soarMust(t, s, "POST", "/rest/artifact", art(on, "10.0.0.1", false))
	first := soarNum(t, r.obj(t), "id")
	r = soarMust(t, s, "POST", "/rest/artifact", art(on, "10.0.0.1", true))
	if m := r.obj(t); r.status != 400 || m["failed"] != true || soarNum(t, m, "existing_artifact_id") != first {
		t.Fatalf("duplicate with de-dup on: %d %s; want 400 existing_artifact_id %d", r.status, r.body, first)
	}
	if r := soarMust(t, s, "POST", "/rest/artifact", art(on, "10.0.0.2", false)); r.status != 200 {
		t.Fatalf("other contents with de-dup on: %d %s", r.status, r.body)
	}
	if got := len(s.Artifacts(on)); got != 2 {
		t.Fatalf("de-dup on: %d artifacts, want 2", got)
	}
	// The same contents in another container of the asset are not duplicates.
	on2 := mk(2, "c-on-2")
	if r := soarMust(t, s, "POST", "/rest/artifact", art(on2, "10.0.0.1", false)); r.status != 200 {
		t.Fatalf("same contents, other container: %d %s", r.status, r.body)
	}
	// Inline artifacts follow the same setting.
	r = soarMust(t, s, "POST", "/rest/container", map[string]any{"name": "x", "label": "events", "asset_id": 2, "source_data_identifier": "c-inline",
		"artifacts": []any{art(0, "10.0.0.9", false), art(0, "10.0.0.9", true)}})
	res := r.obj(t)["artifacts"].([]any)
	if dup := res[1].(map[string]any); dup["failed"] != true || dup["existing_artifact_id"] != res[0].(map[string]any)["id"] {
		t.Errorf("inline duplicate with de-dup on = %v, want existing_artifact_id of the first", res)
	}
	// And turned off again, duplicates are stored.
	s.SetArtifactDedup(2, false)
	if r := soarMust(t, s, "POST", "/rest/artifact", art(on, "10.0.0.1", false)); r.status != 200 {
		t.Fatalf("de-dup turned off: %d %s", r.status, r.body)
	}

	for name, body := range map[string]map[string]any{
		"Missing required parameter: container_id": {"name": "m", "cef": map[string]any{}},
		"container 999 does not exist":             {"container_id": 999, "cef": map[string]any{}},
		"run_automation must be a boolean":         {"container_id": off, "run_automation": "yes"},
	} {
		r := soarMust(t, s, "POST", "/rest/artifact", body)
		if m := r.obj(t); r.status != 400 || m["failed"] != true || !strings.Contains(m["message"].(string), name) {
			t.Errorf("POST %v: %d %s; want 400 failed %q", body, r.status, r.body, name)
		}
	}
}

func TestSOARDuplicateContainerInlineArtifacts(t *testing.T) {
	s := NewSOAR(t)
	c := func(ip string) map[string]any {
		return map[string]any{"name": "a", "label": "events", "source_data_identifier": "dup", "artifacts": []any{
			map[string]any{"name": "m", "cef": map[string]any{"sourceAddress": ip}},
		}}
	}
	if r := soarMust(t, s, "POST", "/rest/container", c("10.0.0.1")); r.status != 200 {
		t.Fatalf("first: %d %s", r.status, r.body)
	}
	r := soarMust(t, s, "POST", "/rest/container", c("10.0.0.2"))
	if m := r.obj(t); r.status != 400 || soarNum(t, m, "existing_container_id") != 1 || m["artifacts"] != nil {
		t.Fatalf("duplicate: %d %s; want existing_container_id 1 and no artifact results", r.status, r.body)
	}
	if got := len(s.Artifacts(1)); got != 1 {
		t.Fatalf("default: duplicate's inline artifacts stored: %d artifacts, want 1", got)
	}
	s.SetDuplicateContainerAddsArtifacts(true)
	r = soarMust(t, s, "POST", "/rest/container", c("10.0.0.3"))
	m := r.obj(t)
	if r.status != 400 || soarNum(t, m, "existing_container_id") != 1 {
		t.Fatalf("duplicate adding artifacts: %d %s", r.status, r.body)
	}
	if res, _ := m["artifacts"].([]any); len(res) != 1 || res[0].(map[string]any)["id"] != 2.0 {
		t.Errorf("artifact results = %v, want one with id 2", m["artifacts"])
	}
	if arts := s.Artifacts(1); len(arts) != 2 || arts[1].CEF["sourceAddress"] != "10.0.0.3" {
		t.Errorf("artifacts of container 1 = %+v, want the added one second", arts)
	}
}

func TestSOARBulkCreate(t *testing.T) {
	s := NewSOAR(t)
	soarMust(t, s, "POST", "/rest/container", map[string]any{"name": "a", "label": "events"})
	r := soarMust(t, s, "POST", "/rest/artifact", []any{
		map[string]any{"container_id": 1, "cef": map[string]any{"n": 1}},
		map[string]any{"cef": map[string]any{"n": 2}},
		map[string]any{"container_id": 1, "cef": map[string]any{"n": 3}},
	})
	var list []map[string]any
	if err := json.Unmarshal(r.body, &list); err != nil || r.status != 200 || len(list) != 3 {
		t.Fatalf("bulk: %d %s (%v); want 200 and 3 answers", r.status, r.body, err)
	}
	if list[0]["id"] != 1.0 || list[1]["failed"] != true || list[2]["id"] != 2.0 {
		t.Errorf("bulk answers = %v", list)
	}
	r = soarMust(t, s, "POST", "/rest/artifact", []any{map[string]any{"cef": map[string]any{}}})
	if r.status != 400 {
		t.Errorf("bulk with no success: %d %s, want 400", r.status, r.body)
	}
}

func TestSOARListFiltersAndPaging(t *testing.T) {
	s := NewSOAR(t)
	for i := 1; i <= 25; i++ {
		r := soarMust(t, s, "POST", "/rest/container", map[string]any{
			"name": fmt.Sprintf("Alert %02d", i), "label": "events", "asset_id": 1 + i%2, "source_data_identifier": fmt.Sprintf("sdi-%d", i),
			"artifacts": []any{map[string]any{"name": "m", "source_data_identifier": fmt.Sprintf("0:%d", i), "cef": map[string]any{"sourceAddress": fmt.Sprintf("10.0.0.%d", i)}}},
		})
		if r.status != 200 {
			t.Fatalf("container %d: %d %s", i, r.status, r.body)
		}
	}
	get := func(path string, q url.Values) map[string]any {
		t.Helper()
		p := path
		if q != nil {
			p += "?" + q.Encode()
		}
		r := soarMust(t, s, "GET", p, nil)
		if r.status != 200 {
			t.Fatalf("GET %s: %d %s", p, r.status, r.body)
		}
		return r.obj(t)
	}
	seq := func(lo, hi int) []int {
		var out []int
		for i := lo; i <= hi; i++ {
			out = append(out, i)
		}
		return out
	}

	m := get("/rest/container", nil)
	if soarNum(t, m, "count") != 25 || soarNum(t, m, "num_pages") != 3 || !reflect.DeepEqual(soarIDs(t, m["data"]), seq(1, 10)) {
		t.Errorf("default page: count %v num_pages %v ids %v; want 25, 3, 1..10", m["count"], m["num_pages"], soarIDs(t, m["data"]))
	}
	m = get("/rest/container", url.Values{"page": {"2"}})
	if !reflect.DeepEqual(soarIDs(t, m["data"]), seq(21, 25)) {
		t.Errorf("page 2: ids %v, want 21..25", soarIDs(t, m["data"]))
	}
	m = get("/rest/container", url.Values{"page": {"9"}})
	if soarNum(t, m, "count") != 25 || len(m["data"].([]any)) != 0 {
		t.Errorf("page past the end: %v", m)
	}
	m = get("/rest/container", url.Values{"page_size": {"0"}})
	if soarNum(t, m, "num_pages") != 1 || len(m["data"].([]any)) != 25 {
		t.Errorf("page_size 0: num_pages %v, %d records; want 1, 25", m["num_pages"], len(m["data"].([]any)))
	}
	m = get("/rest/container", url.Values{"page_size": {"4"}, "sort": {"id"}, "order": {"desc"}})
	if soarNum(t, m, "num_pages") != 7 || !reflect.DeepEqual(soarIDs(t, m["data"]), []int{25, 24, 23, 22}) {
		t.Errorf("desc page of 4: num_pages %v ids %v", m["num_pages"], soarIDs(t, m["data"]))
	}

	filters := []struct {
		q    url.Values
		path string
		want []int
	}{
		{url.Values{"_filter_source_data_identifier": {`"sdi-3"`}}, "/rest/container", []int{3}},
		{url.Values{"_filter_source_data_identifier": {`'sdi-3'`}}, "/rest/container", []int{3}},
		{url.Values{"_filter_name__icontains": {`"alert 1"`}, "page_size": {"0"}}, "/rest/container", seq(10, 19)},
		{url.Values{"_filter_id__in": {`[2, 4, 99]`}}, "/rest/container", []int{2, 4}},
		{url.Values{"_filter_asset_id": {`2`}, "_filter_id__lte": {`5`}}, "/rest/container", []int{1, 3, 5}},
		{url.Values{"_filter_id__gt": {"20"}, "_exclude_id": {"22"}}, "/rest/container", []int{21, 23, 24, 25}},
		{url.Values{"_filter_description__isnull": {"True"}, "_filter_id__lt": {"3"}}, "/rest/container", []int{1, 2}},
		{url.Values{"_filter_container_id": {"7"}, "_filter_source_data_identifier": {`"0:7"`}}, "/rest/artifact", []int{7}},
		{url.Values{"_filter_container_id": {"7"}, "_filter_source_data_identifier": {`"0:8"`}}, "/rest/artifact", nil},
		{url.Values{"_filter_container": {`"9"`}}, "/rest/artifact", []int{9}},
		{url.Values{"_filter_cef__sourceAddress": {`"10.0.0.12"`}}, "/rest/artifact", []int{12}},
		{url.Values{"_filter_source_data_identifier__startswith": {`"0:2"`}, "page_size": {"0"}}, "/rest/artifact", []int{2, 20, 21, 22, 23, 24, 25}},
		{url.Values{"_filter_source_data_identifier": {`"0:5"`}}, "/rest/container/5/artifacts", []int{5}},
		{url.Values{"_filter_source_data_identifier": {`"0:5"`}}, "/rest/container/6/artifacts", nil},
	}
	for _, f := range filters {
		m := get(f.path, f.q)
		if got := soarIDs(t, m["data"]); !reflect.DeepEqual(got, f.want) || soarNum(t, m, "count") != len(f.want) {
			t.Errorf("GET %s?%s: count %v ids %v, want %v", f.path, f.q.Encode(), m["count"], got, f.want)
		}
	}

	one := get("/rest/container/4", nil)
	if soarNum(t, one, "id") != 4 || one["source_data_identifier"] != "sdi-4" || soarNum(t, one, "artifact_count") != 1 {
		t.Errorf("GET /rest/container/4 = %v", one)
	}
	one = get("/rest/artifact/4", nil)
	if soarNum(t, one, "container") != 4 || one["hash"] == "" {
		t.Errorf("GET /rest/artifact/4 = %v", one)
	}

	for _, bad := range []string{
		"/rest/container?_filter_source_data_identifier=sdi-3", // unquoted string
		"/rest/container?_filter_id__in=3",
		"/rest/container?page=-1",
		"/rest/container?page_size=x",
		"/rest/container?order=up",
	} {
		r := soarMust(t, s, "GET", bad, nil)
		if m := r.obj(t); r.status != 400 || m["failed"] != true {
			t.Errorf("GET %s: %d %s; want 400 failed", bad, r.status, r.body)
		}
	}
	for _, missing := range []string{"/rest/container/99", "/rest/artifact/0", "/rest/container/x", "/rest/asset", "/rest/container/1/notes"} {
		r := soarMust(t, s, "GET", missing, nil)
		if m := r.obj(t); r.status != 404 || m["failed"] != true {
			t.Errorf("GET %s: %d %s; want 404 failed", missing, r.status, r.body)
		}
	}
}

func TestSOARParseLiteral(t *testing.T) {
	cases := []struct {
		in   string
		want any
		ok   bool
	}{
		{`"abc"`, "abc", true},
		{`'a"b'`, `a"b`, true},
		{`"a\"b"`, `a"b`, true},
		{`5`, 5.0, true},
		{`-1.5`, -1.5, true},
		{`True`, true, true},
		{`False`, false, true},
		{`None`, nil, true},
		{`[1, "x", None]`, []any{1.0, "x", nil}, true},
		{`(1,)`, []any{1.0}, true},
		{`[]`, []any{}, true},
		{`abc`, nil, false},
		{`true`, nil, false},
		{`"abc`, nil, false},
		{`[1, 2`, nil, false},
		{`"a" "b"`, nil, false},
		{``, nil, false},
	}
	for _, c := range cases {
		got, err := soarParseLiteral(c.in)
		if (err == nil) != c.ok || (c.ok && !reflect.DeepEqual(got, c.want)) {
			t.Errorf("soarParseLiteral(%q) = %#v, %v; want %#v, ok %v", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestSOARAuthentication(t *testing.T) {
	s := NewSOAR(t, SOARToken("tok-0123456789abcdef"))
	if s.Token != "tok-0123456789abcdef" {
		t.Fatalf("Token = %q", s.Token)
	}
	basic := func(user, pass string) http.Header {
		req, _ := http.NewRequest("GET", "/", nil)
		req.SetBasicAuth(user, pass)
		return http.Header{"Authorization": req.Header["Authorization"]}
	}
	cases := []struct {
		name   string
		header http.Header
		status int
	}{
		{"no token", http.Header{}, 401},
		{"wrong token", http.Header{"Ph-Auth-Token": {"nope"}}, 401},
		{"token header", http.Header{"Ph-Auth-Token": {s.Token}}, 200},
		{"token as basic password", basic("", s.Token), 200},
		{"basic with a user", basic("admin", s.Token), 401},
	}
	for _, c := range cases {
		r, err := soarCall(http.DefaultClient, s, "GET", "/rest/container", nil, c.header)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if r.status != c.status {
			t.Errorf("%s: status %d %s, want %d", c.name, r.status, r.body, c.status)
		}
		if c.status == 401 && r.obj(t)["failed"] != true {
			t.Errorf("%s: answer %s, want failed", c.name, r.body)
		}
	}
	s.RefuseAuth(true)
	r := soarMust(t, s, "POST", "/rest/container", map[string]any{"name": "a", "label": "events"})
	if r.status != 401 || r.obj(t)["failed"] != true {
		t.Fatalf("RefuseAuth: %d %s, want 401 failed", r.status, r.body)
	}
	if n := len(s.Containers()); n != 0 {
		t.Fatalf("RefuseAuth stored %d containers", n)
	}
	s.RefuseAuth(false)
	if r := soarMust(t, s, "POST", "/rest/container", map[string]any{"name": "a", "label": "events"}); r.status != 200 {
		t.Fatalf("after RefuseAuth(false): %d %s", r.status, r.body)
	}
	reqs := s.Requests()
	if got := reqs[SOARRequestKey{"GET", "/rest/container", 401}]; got != 3 {
		t.Errorf("Requests GET 401 = %d, want 3 (%v)", got, reqs)
	}
	if got := reqs[SOARRequestKey{"POST", "/rest/container", 401}]; got != 1 {
		t.Errorf("Requests POST 401 = %d, want 1", got)
	}
	if got := reqs[SOARRequestKey{"POST", "/rest/container", 200}]; got != 1 {
		t.Errorf("Requests POST 200 = %d, want 1", got)
	}
}

func TestSOARFailNext(t *testing.T) {
	s := NewSOAR(t)
	s.FailNext(2, 503, "2")
	s.FailNext(1, 502, "")
	s.FailNext(1, 500, "")
	body := map[string]any{"name": "a", "label": "events", "source_data_identifier": "x"}
	for _, want := range []struct {
		status     int
		retryAfter string
	}{{503, "2"}, {503, "2"}, {502, ""}, {500, ""}} {
		r := soarMust(t, s, "POST", "/rest/container", body)
		if r.status != want.status || r.header.Get("Retry-After") != want.retryAfter {
			t.Errorf("status %d Retry-After %q, want %d %q", r.status, r.header.Get("Retry-After"), want.status, want.retryAfter)
		}
		if !strings.Contains(string(r.body), fmt.Sprint(want.status)) {
			t.Errorf("%d body %q does not say the status", r.status, r.body)
		}
	}
	if n := len(s.Containers()); n != 0 {
		t.Fatalf("failed requests stored %d containers", n)
	}
	r := soarMust(t, s, "POST", "/rest/container", body)
	if r.status != 200 {
		t.Fatalf("after the failures: %d %s", r.status, r.body)
	}
	// A failure comes before authentication, as from the web server in
	// front of SOAR, and a 4xx one is SOAR's JSON.
	s.FailNext(1, 429, "7")
	r, err := soarCall(http.DefaultClient, s, "GET", "/rest/container", nil, http.Header{})
	if err != nil {
		t.Fatal(err)
	}
	if r.status != 429 || r.header.Get("Retry-After") != "7" || r.obj(t)["failed"] != true {
		t.Errorf("429: %d %q %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	reqs := s.Requests()
	if reqs[SOARRequestKey{"POST", "/rest/container", 503}] != 2 || reqs[SOARRequestKey{"POST", "/rest/container", 200}] != 1 {
		t.Errorf("Requests = %v", reqs)
	}
}

// soarEventually waits up to 5 s for cond; the stand-in counts a request
// only once its handler has returned, a moment after the client gave up.
func soarEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSOARTimeoutNext(t *testing.T) {
	s := NewSOAR(t)
	s.TimeoutNext(1)
	hc := &http.Client{Timeout: 300 * time.Millisecond}
	start := time.Now()
	_, err := soarCall(hc, s, "POST", "/rest/container", map[string]any{"name": "a", "label": "events"}, nil)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("hung request: err %v, want a client timeout", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("hung request returned after %v, before the client's timeout", d)
	}
	if n := len(s.Containers()); n != 0 {
		t.Fatalf("hung request stored %d containers", n)
	}
	soarEventually(t, "the hung request to be counted with status 0", func() bool {
		return s.Requests()[SOARRequestKey{"POST", "/rest/container", 0}] == 1
	})
	r, err := soarCall(hc, s, "POST", "/rest/container", map[string]any{"name": "a", "label": "events"}, nil)
	if err != nil || r.status != 200 {
		t.Fatalf("next request: %v %d %s", err, r.status, r.body)
	}

	// A request still hung when the test ends is let go: the test's
	// cleanup does not wait for the client to give up.
	var hung *SOAR
	start = time.Now()
	t.Run("hung at cleanup", func(t *testing.T) {
		hung = NewSOAR(t)
		hung.TimeoutNext(1)
		go func() {
			res, err := http.Get(hung.URL + "/rest/container")
			if err == nil {
				res.Body.Close()
			}
		}()
		soarEventually(t, "the request to be hung", func() bool {
			hung.mu.Lock()
			defer hung.mu.Unlock()
			return hung.timeoutNext == 0
		})
	})
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("cleanup with a hung request took %v", d)
	}
}

func TestSOARDropAfterCommitNext(t *testing.T) {
	s := NewSOAR(t)
	s.DropAfterCommitNext(1)
	c := map[string]any{"name": "a", "label": "events", "asset_id": 4, "source_data_identifier": "lost-answer",
		"artifacts": []any{map[string]any{"name": "m", "source_data_identifier": "0:1", "cef": map[string]any{"k": "v"}}}}

	// A GET commits nothing and does not use up the drop.
	if r := soarMust(t, s, "GET", "/rest/container", nil); r.status != 200 {
		t.Fatalf("GET: %d", r.status)
	}
	_, err := soarCall(http.DefaultClient, s, "POST", "/rest/container", c, nil)
	if err == nil || !(errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "connection reset")) {
		t.Fatalf("dropped POST: err %v, want a broken connection", err)
	}
	cs := s.Containers()
	if len(cs) != 1 || cs[0].SourceDataIdentifier != "lost-answer" || len(s.Artifacts(cs[0].ID)) != 1 {
		t.Fatalf("after the drop: containers %+v; want the write applied with its artifact", cs)
	}
	// What the delivery does next: ask, then retry safely.
	q := url.Values{"_filter_source_data_identifier": {`"lost-answer"`}, "_filter_asset_id": {"4"}}
	m := soarMust(t, s, "GET", "/rest/container?"+q.Encode(), nil).obj(t)
	if soarNum(t, m, "count") != 1 {
		t.Errorf("lookup after the drop: %v", m)
	}
	r := soarMust(t, s, "POST", "/rest/container", c)
	if r.status != 400 || soarNum(t, r.obj(t), "existing_container_id") != cs[0].ID {
		t.Errorf("retry: %d %s, want existing_container_id %d", r.status, r.body, cs[0].ID)
	}
	if n := len(s.Containers()); n != 1 {
		t.Errorf("%d containers after the retry, want 1", n)
	}
	soarEventually(t, "the dropped request to be counted with status 0", func() bool {
		return s.Requests()[SOARRequestKey{"POST", "/rest/container", 0}] == 1
	})

	// An artifact POST too.
	s.DropAfterCommitNext(1)
	if _, err := soarCall(http.DefaultClient, s, "POST", "/rest/artifact", map[string]any{"container_id": cs[0].ID, "cef": map[string]any{"k": "w"}}, nil); err == nil {
		t.Fatal("dropped artifact POST answered")
	}
	if n := len(s.Artifacts(cs[0].ID)); n != 2 {
		t.Errorf("dropped artifact POST: %d artifacts, want 2", n)
	}
}

func TestSOARLatency(t *testing.T) {
	s := NewSOAR(t)
	s.SetLatency(150 * time.Millisecond)
	start := time.Now()
	if r := soarMust(t, s, "GET", "/rest/container", nil); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("request took %v with 150ms latency", d)
	}
	// The latency applies before authentication too.
	start = time.Now()
	r, err := soarCall(http.DefaultClient, s, "GET", "/rest/container", nil, http.Header{})
	if err != nil || r.status != 401 {
		t.Fatalf("unauthenticated: %v %d", err, r.status)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("refused request took %v with 150ms latency", d)
	}
	s.SetLatency(2 * time.Second)
	s.SetLatency(0)
	hc := &http.Client{Timeout: time.Second}
	if r, err := soarCall(hc, s, "GET", "/rest/container", nil, nil); err != nil || r.status != 200 {
		t.Fatalf("after SetLatency(0): %v %d", err, r.status)
	}
}

func TestSOARTLS(t *testing.T) {
	certs := NewTLSCerts(t)
	s := NewSOAR(t, SOARTLS(certs))
	if !strings.HasPrefix(s.URL, "https://127.0.0.1:") {
		t.Fatalf("URL = %s", s.URL)
	}
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certs.CAPool, MinVersion: tls.VersionTLS12}}}
	r, err := soarCall(trusting, s, "POST", "/rest/container", map[string]any{"name": "a", "label": "events"}, nil)
	if err != nil || r.status != 200 {
		t.Fatalf("over TLS: %v %d %s", err, r.status, r.body)
	}
	if _, err := soarCall(http.DefaultClient, s, "GET", "/rest/container", nil, nil); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("client without the CA: err %v, want a certificate error", err)
	}
	// The drop works on a TLS connection too.
	s.DropAfterCommitNext(1)
	if _, err := soarCall(trusting, s, "POST", "/rest/container", map[string]any{"name": "b", "label": "events"}, nil); err == nil {
		t.Error("dropped POST over TLS answered")
	}
	if n := len(s.Containers()); n != 2 {
		t.Errorf("%d containers, want 2", n)
	}
}

func TestSOARConcurrentCreates(t *testing.T) {
	s := NewSOAR(t)
	s.SetArtifactDedup(1, true)
	var wg sync.WaitGroup
	const workers, each = 8, 10
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				// Every identifier is posted by two workers.
				sdi := fmt.Sprintf("c-%d", (w%(workers/2))*each+i)
				r, err := soarCall(http.DefaultClient, s, "POST", "/rest/container", map[string]any{
					"name": sdi, "label": "events", "asset_id": 1, "source_data_identifier": sdi,
					"artifacts": []any{map[string]any{"cef": map[string]any{"sdi": sdi}}},
				}, nil)
				if err != nil {
					errs <- err
					return
				}
				if r.status != 200 && r.status != 400 {
					errs <- fmt.Errorf("%s: %d %s", sdi, r.status, r.body)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	cs := s.Containers()
	if len(cs) != workers/2*each {
		t.Fatalf("%d containers, want %d (one per identifier)", len(cs), workers/2*each)
	}
	seen := map[string]bool{}
	for i, c := range cs {
		if c.ID != i+1 || seen[c.SourceDataIdentifier] {
			t.Errorf("container %d: id %d, identifier %q seen before: %v", i, c.ID, c.SourceDataIdentifier, seen[c.SourceDataIdentifier])
		}
		seen[c.SourceDataIdentifier] = true
		if n := len(s.Artifacts(c.ID)); n != 1 {
			t.Errorf("container %d has %d artifacts, want 1", c.ID, n)
		}
	}
}

// Outside a test (the benchmark), StartSOAR serves the same stand-in and
// stop closes it, more than once without harm. Counts follows what is
// stored, and each artifact keeps when it was stored: after the request
// arrived and its latency passed, before its answer was read.
func TestStartSOARCountsAndCreated(t *testing.T) {
	s, stop, err := StartSOAR()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if c, a := s.Counts(); c != 0 || a != 0 {
		t.Fatalf("Counts of an empty stand-in = %d, %d", c, a)
	}
	s.SetLatency(50 * time.Millisecond)
	sent := time.Now()
	r := soarMust(t, s, "POST", "/rest/container", map[string]any{"name": "c", "label": "events", "artifacts": []any{
		map[string]any{"name": "a1", "source_data_identifier": "0:1"}, map[string]any{"name": "a2", "source_data_identifier": "0:2"}}})
	answered := time.Now()
	if r.status != 200 {
		t.Fatalf("POST: %d %s", r.status, r.body)
	}
	cid := soarNum(t, r.obj(t), "id")
	soarMust(t, s, "POST", "/rest/artifact", map[string]any{"container_id": cid, "name": "a3", "source_data_identifier": "0:3"})
	if c, a := s.Counts(); c != 1 || a != 3 {
		t.Fatalf("Counts = %d containers, %d artifacts; want 1, 3", c, a)
	}
	arts := s.Artifacts(cid)
	for _, a := range arts[:2] {
		if a.Created.Before(sent.Add(50*time.Millisecond)) || a.Created.After(answered) {
			t.Errorf("artifact %s stored at %s: sent %s (latency 50ms), answered %s", a.Name, a.Created, sent, answered)
		}
	}
	if !arts[2].Created.After(arts[1].Created) {
		t.Errorf("artifact a3 stored at %s, not after a2 at %s", arts[2].Created, arts[1].Created)
	}
	if got := arts[0].Fields["create_time"]; got != arts[0].Created.UTC().Format("2006-01-02T15:04:05.000000Z") {
		t.Errorf("create_time %v, Created %s", got, arts[0].Created)
	}
	stop()
	stop()
	if resp, err := http.Get(s.URL + "/rest/container"); err == nil {
		resp.Body.Close()
		t.Errorf("the stand-in still answers after stop")
	}
}
