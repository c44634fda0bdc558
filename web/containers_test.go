package web_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/store"
	"github.com/soarkafka/soarkafka/web"
)

// containersT0 has nanoseconds: create_time shows the microseconds stored.
var containersT0 = time.Date(2026, 11, 23, 12, 0, 0, 123456789, time.UTC)

// newContainersEnv serves the read API over a real, migrated SQLite store,
// with only what those routes need.
func newContainersEnv(t *testing.T) *env {
	t.Helper()
	logs := &testenv.LogBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	db, err := store.Open(t.Context(), testenv.SQLiteURL(t), logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	h := web.NewHandler(web.Options{Logger: logger, Store: db, Ingest: db, APIToken: token, MaxBodyBytes: 1 << 20, Version: "test"})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, h: h, db: db, logs: logs}
}

// saveContainers stores a batch of the asset at the given time and returns
// the ids of its containers by name.
func (e *env) saveContainers(at time.Time, asset string, cs ...ingest.Container) map[string]int64 {
	e.t.Helper()
	e.db.Now = func() time.Time { return at }
	out, err := e.db.SaveBatch(e.t.Context(), &ingest.Batch{Asset: asset, Topic: "events", Containers: cs})
	if err != nil {
		e.t.Fatal(err)
	}
	ids := map[string]int64{}
	for _, c := range out.Containers {
		ids[c.Name] = c.ID
	}
	return ids
}

// soarContainer is a container body as a parser returns one, with
// artifacts named by their source_data_identifier. extra members are
// added to the body.
func soarContainer(sdi, name, label, severity string, extra string, artifacts ...string) ingest.Container {
	c := ingest.Container{SourceDataIdentifier: sdi, Body: json.RawMessage(fmt.Sprintf(
		`{"name":%q,"label":%q,"severity":%q,"description":"about %s","data":{"n":1}%s}`, name, label, severity, name, extra))}
	for _, a := range artifacts {
		c.Artifacts = append(c.Artifacts, ingest.Artifact{SourceDataIdentifier: a,
			Body: json.RawMessage(`{"name":"artifact ` + a + `","label":"event","cef":{"sdi":"` + a + `"}}`)})
	}
	return c
}

// seedContainers stores five containers of two assets over three hours
// and returns their ids by name.
func (e *env) seedContainers() map[string]int64 {
	e.t.Helper()
	ids := e.saveContainers(containersT0, "a",
		// Body members named as ours are overwritten by ours.
		soarContainer("c1", "one", "events", "high", `,"id":"bogus","kafka_asset":"x","artifact_count":99`, "a:1", "a:2"),
		soarContainer("", "two", "alerts", "low", "", "a:3"),
		soarContainer("c3", "three", "events", "medium", ""))
	for k, v := range e.saveContainers(containersT0.Add(time.Hour), "b", soarContainer("c4", "four", "events", "high", "", "b:1")) {
		ids[k] = v
	}
	for k, v := range e.saveContainers(containersT0.Add(2*time.Hour), "a",
		soarContainer("c1", "one", "events", "high", "", "a:4"),
		soarContainer("c5", "five", "alerts", "high", "", "a:5")) {
		ids[k] = v
	}
	return ids
}

func itemNames(t *testing.T, out map[string]any) []string {
	t.Helper()
	data, ok := out["data"].([]any)
	if !ok {
		t.Fatalf("data is not a list: %v", out)
	}
	names := []string{}
	for _, d := range data {
		m := d.(map[string]any)
		if n, ok := m["name"].(string); ok {
			names = append(names, n)
		}
	}
	return names
}

// A container and an artifact are the SOAR bodies with our fields set over
// them; lists are {count, num_pages, data}.
func TestContainersSOARShapes(t *testing.T) {
	e := newContainersEnv(t)
	ids := e.seedContainers()

	code, out := e.do("GET", "/v1/containers", nil)
	if code != 200 || out["count"] != float64(5) || out["num_pages"] != float64(1) {
		t.Fatalf("list: %d %v", code, out)
	}
	if names := itemNames(t, out); !reflect.DeepEqual(names, []string{"one", "two", "three", "four", "five"}) {
		t.Fatalf("list order %v", names)
	}
	one := out["data"].([]any)[0].(map[string]any)
	want := map[string]any{
		"id": float64(ids["one"]), "source_data_identifier": "c1", "name": "one", "label": "events", "severity": "high",
		"description": "about one", "data": map[string]any{"n": float64(1)},
		"create_time": "2026-11-23T12:00:00.123456Z", "update_time": "2026-11-23T14:00:00.123456Z",
		"artifact_count": float64(3), "kafka_asset": "a",
	}
	if !reflect.DeepEqual(one, want) {
		t.Fatalf("container one:\n got %v\nwant %v", one, want)
	}
	two := out["data"].([]any)[1].(map[string]any)
	if sdi, has := two["source_data_identifier"]; !has || sdi != nil || two["artifact_count"] != float64(1) {
		t.Fatalf("container without identifier: %v", two)
	}

	code, out = e.do("GET", "/v1/containers/"+strconv.FormatInt(ids["one"], 10), nil)
	if code != 200 {
		t.Fatalf("get: %d %v", code, out)
	}
	arts, _ := out["artifacts"].([]any)
	delete(out, "artifacts")
	if !reflect.DeepEqual(out, want) || len(arts) != 3 {
		t.Fatalf("get container one: %v with %d artifacts", out, len(arts))
	}
	a4 := arts[2].(map[string]any)
	wantArt := map[string]any{"name": "artifact a:4", "label": "event", "cef": map[string]any{"sdi": "a:4"},
		"id": a4["id"], "container": float64(ids["one"]), "source_data_identifier": "a:4",
		"create_time": "2026-11-23T14:00:00.123456Z", "kafka_asset": "a"}
	if _, ok := a4["id"].(float64); !ok || !reflect.DeepEqual(a4, wantArt) {
		t.Fatalf("artifact a:4:\n got %v\nwant %v", a4, wantArt)
	}

	code, out = e.do("GET", "/v1/artifacts?container_id="+strconv.FormatInt(ids["one"], 10), nil)
	if code != 200 || out["count"] != float64(3) || out["num_pages"] != float64(1) || !reflect.DeepEqual(out["data"], arts) {
		t.Fatalf("artifacts of one: %d %v, want %v", code, out, arts)
	}

	// A container without artifacts has an empty list, not null.
	code, out = e.do("GET", "/v1/containers/"+strconv.FormatInt(ids["three"], 10), nil)
	if code != 200 || out["artifacts"] == nil || len(out["artifacts"].([]any)) != 0 || out["artifact_count"] != float64(0) {
		t.Fatalf("container three: %d %v", code, out)
	}
}

func TestContainersFiltersAndPages(t *testing.T) {
	e := newContainersEnv(t)
	ids := e.seedContainers()
	id := func(name string) string { return strconv.FormatInt(ids[name], 10) }

	for _, tt := range []struct {
		query     string
		want      []string
		count     int
		pages     int
		artifacts bool
	}{
		{"", []string{"one", "two", "three", "four", "five"}, 5, 1, false},
		{"asset=a", []string{"one", "two", "three", "five"}, 4, 1, false},
		{"label=events", []string{"one", "three", "four"}, 3, 1, false},
		{"severity=high", []string{"one", "four", "five"}, 3, 1, false},
		{"asset=a&label=alerts&severity=high", []string{"five"}, 1, 1, false},
		{"since_id=" + id("three"), []string{"four", "five"}, 2, 1, false},
		{"start_time=2026-11-23T13:00:00.123456Z", []string{"four", "five"}, 2, 1, false},
		{"end_time=2026-11-23T13:00:00.123456Z", []string{"one", "two", "three"}, 3, 1, false},
		{"start_time=" + url.QueryEscape("2026-11-23T14:00:00.123456+01:00") + "&end_time=2026-11-23T14:00:00Z", []string{"four"}, 1, 1, false},
		{"page_size=2", []string{"one", "two"}, 5, 3, false},
		{"page_size=2&page=2", []string{"five"}, 5, 3, false},
		{"page_size=2&page=3", []string{}, 5, 3, false},
		{"page_size=0", []string{"one", "two", "three", "four", "five"}, 5, 1, false},
		{"page_size=0&page=1", []string{}, 5, 1, false},
		{"page_size=1000", []string{"one", "two", "three", "four", "five"}, 5, 1, false},
		{"label=nope", []string{}, 0, 0, false},
		{"label=nope&page_size=0", []string{}, 0, 0, false},
		{"asset=a", []string{"artifact a:1", "artifact a:2", "artifact a:3", "artifact a:4", "artifact a:5"}, 5, 1, true},
		{"asset=a&page_size=2&page=1", []string{"artifact a:3", "artifact a:4"}, 5, 3, true},
		{"container_id=" + id("one") + "&page_size=2", []string{"artifact a:1", "artifact a:2"}, 3, 2, true},
		{"container_id=" + id("three"), []string{}, 0, 0, true},
	} {
		path := "/v1/containers?" + tt.query
		if tt.artifacts {
			path = "/v1/artifacts?" + tt.query
		}
		t.Run(path, func(t *testing.T) {
			code, out := e.do("GET", path, nil)
			if code != 200 {
				t.Fatalf("%d %v", code, out)
			}
			if names := itemNames(t, out); !reflect.DeepEqual(names, tt.want) || out["count"] != float64(tt.count) || out["num_pages"] != float64(tt.pages) {
				t.Fatalf("%v, count %v, num_pages %v; want %v, %d, %d", names, out["count"], out["num_pages"], tt.want, tt.count, tt.pages)
			}
		})
	}

	// Without page_size, pages are ten long, as SOAR's.
	var cs []ingest.Container
	for i := range 20 {
		cs = append(cs, soarContainer(fmt.Sprintf("bulk-%d", i), fmt.Sprintf("bulk %02d", i), "bulk", "low", ""))
	}
	e.saveContainers(containersT0.Add(3*time.Hour), "c", cs...)
	code, out := e.do("GET", "/v1/containers?asset=c&page=1", nil)
	if names := itemNames(t, out); code != 200 || len(names) != 10 || names[0] != "bulk 10" || out["count"] != float64(20) || out["num_pages"] != float64(2) {
		t.Fatalf("default page size: %d %v", code, names)
	}
}

// page_size is capped at 1000; 0 (all) is served while at most 1000 match.
func TestContainersPageSizeCap(t *testing.T) {
	e := newContainersEnv(t)
	var cs []ingest.Container
	for i := range 1001 {
		cs = append(cs, soarContainer(fmt.Sprintf("c%d", i), fmt.Sprintf("c%d", i), "events", "low", "", fmt.Sprintf("a%d", i)))
	}
	e.saveContainers(containersT0, "a", cs...)

	for _, path := range []string{"/v1/containers?page_size=0", "/v1/artifacts?page_size=0"} {
		code, out := e.do("GET", path, nil)
		if msg := errText(out); code != 400 || errField(out, "code") != "invalid" ||
			!strings.Contains(msg, "page_size: 0 asks for all 1001 matching") || !strings.Contains(msg, "since_id") {
			t.Fatalf("%s: %d %v", path, code, out)
		}
	}
	code, out := e.do("GET", "/v1/containers?page_size=1000&page=1", nil)
	if names := itemNames(t, out); code != 200 || len(names) != 1 || names[0] != "c1000" || out["num_pages"] != float64(2) {
		t.Fatalf("last page of 1000: %d %v %v", code, names, out["num_pages"])
	}
	// Narrowed to at most 1000, page_size=0 is served.
	code, out = e.do("GET", "/v1/containers?page_size=0&since_id=1", nil)
	if code != 200 || len(out["data"].([]any)) != 1000 || out["count"] != float64(1000) || out["num_pages"] != float64(1) {
		t.Fatalf("page_size=0 of 1000: %d count %v", code, out["count"])
	}
}

// A bad query parameter is a 400 naming it and the fix; every bad one is
// named at once.
func TestContainersBadQueries(t *testing.T) {
	e := newContainersEnv(t)
	e.seedContainers()
	for _, tt := range []struct {
		path string
		msgs []string
	}{
		{"/v1/containers?since_id=abc", []string{`since_id: "abc": want a whole number from 0`}},
		{"/v1/containers?since_id=-1", []string{`since_id: "-1": want a whole number from 0`}},
		{"/v1/containers?page=-1", []string{`page: "-1": want a whole number from 0`, "pages count from 0"}},
		{"/v1/containers?page=1.5", []string{`page: "1.5"`}},
		{"/v1/containers?page=99999999999999999999", []string{`page: "99999999999999999999"`}},
		{"/v1/containers?page_size=1001", []string{`page_size: "1001": want a whole number from 0 to 1000`, "since_id"}},
		{"/v1/containers?page_size=-5", []string{`page_size: "-5"`}},
		{"/v1/containers?start_time=yesterday", []string{`start_time: "yesterday": want an RFC 3339 time such as 2026-11-23T12:00:00Z`}},
		{"/v1/containers?end_time=2026-13-01T00:00:00Z", []string{`end_time: "2026-13-01T00:00:00Z": want an RFC 3339 time`}},
		{"/v1/containers?start_time=2026-11-23T12:00:00Z&end_time=2026-11-23T12:00:00Z", []string{"end_time: 2026-11-23T12:00:00Z is not after start_time"}},
		{"/v1/containers?since_id=x&page=y&page_size=z&start_time=w", []string{"since_id:", "page:", "page_size:", "start_time:"}},
		{"/v1/artifacts?container_id=0", []string{`container_id: "0": want a whole number from 1`}},
		{"/v1/artifacts?container_id=x&since_id=-2&page_size=5000", []string{"container_id:", "since_id:", "page_size:"}},
		{"/v1/containers/abc", []string{`container id "abc": want a container's id, a whole number from 1`}},
		{"/v1/containers/0", []string{`container id "0"`}},
		{"/v1/containers/-3", []string{`container id "-3"`}},
	} {
		t.Run(tt.path, func(t *testing.T) {
			code, out := e.do("GET", tt.path, nil)
			if code != 400 || errField(out, "code") != "invalid" {
				t.Fatalf("%d %v, want 400 invalid", code, out)
			}
			for _, m := range tt.msgs {
				if !strings.Contains(errText(out), m) {
					t.Errorf("error %q does not say %q", errText(out), m)
				}
			}
		})
	}
}

func TestContainerNotFound(t *testing.T) {
	e := newContainersEnv(t)
	ids := e.seedContainers()
	for _, id := range []int64{ids["five"] + 1, 1 << 62} {
		code, out := e.do("GET", "/v1/containers/"+strconv.FormatInt(id, 10), nil)
		if code != 404 || errField(out, "code") != "not_found" || !strings.Contains(errText(out), fmt.Sprintf("container %d not found", id)) {
			t.Fatalf("container %d: %d %v", id, code, out)
		}
	}
}

func TestContainersNeedToken(t *testing.T) {
	e := newContainersEnv(t)
	ids := e.seedContainers()
	for _, path := range []string{"/v1/containers", "/v1/containers/" + strconv.FormatInt(ids["one"], 10), "/v1/artifacts"} {
		for _, hdr := range []map[string]string{{}, {"ph-auth-token": "wrong-token-0123456789"}, {"Authorization": "Bearer wrong"}} {
			req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 401 {
				t.Errorf("%s with %v: %d, want 401", path, hdr, resp.StatusCode)
			}
		}
		if code, out := e.do("GET", path, nil); code != 200 {
			t.Errorf("%s with the token: %d %v", path, code, out)
		}
	}
}

// A server built without an ingest store answers 503, not a panic.
func TestContainersWithoutStore(t *testing.T) {
	h := web.NewHandler(web.Options{Logger: slog.New(slog.DiscardHandler), APIToken: token, MaxBodyBytes: 1 << 20, Version: "test"})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, h: h}
	for _, path := range []string{"/v1/containers", "/v1/containers/1", "/v1/artifacts"} {
		if code, out := e.do("GET", path, nil); code != 503 || errField(out, "code") != "unavailable" {
			t.Errorf("%s: %d %v, want 503", path, code, out)
		}
	}
}
