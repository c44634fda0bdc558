package web_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/soarkafka/soarkafka/internal/testenv"
)

// errFields returns an error answer's fields as field → message.
func errFields(out map[string]any) map[string]string {
	fields := map[string]string{}
	list, _ := errField(out, "fields").([]any)
	for _, f := range list {
		m, _ := f.(map[string]any)
		field, _ := m["field"].(string)
		msg, _ := m["message"].(string)
		fields[field] = msg
	}
	return fields
}

// Every /v1 route takes the query parameters it declares, and refuses any
// other, and any given twice, with a 400 naming it; the table must list
// every /v1 route, so a new route declares its parameters here too.
func TestQueryParametersPerRoute(t *testing.T) {
	e := newEnv(t, testenv.SQLiteURL(t))
	pageValid := map[string]string{"page": "0", "page_size": "5"}
	with := func(m map[string]string, more map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for k, v := range more {
			out[k] = v
		}
		return out
	}
	tests := map[string]struct {
		takes   map[string]string // each with a valid value
		refuses []string          // filters of other routes that this one must not ignore
	}{
		"GET /v1/assets":                        {refuses: []string{"asset", "page"}},
		"POST /v1/assets":                       {refuses: []string{"name"}},
		"GET /v1/assets/{name}":                 {refuses: []string{"version"}},
		"PUT /v1/assets/{name}":                 {refuses: []string{"name"}},
		"DELETE /v1/assets/{name}":              {refuses: []string{"force"}},
		"GET /v1/assets/{name}/ingest":          {refuses: []string{"since_id"}},
		"GET /v1/assets/{name}/history":         {refuses: []string{"since", "page"}},
		"GET /v1/assets/{name}/delivery":        {refuses: []string{"since_id", "state"}},
		"POST /v1/assets/{name}/delivery/retry": {refuses: []string{"id", "state"}},
		"POST /v1/assets/{name}/records":        {takes: map[string]string{"topic": "t", "format": "events", "validate": "full", "results": "failed"}, refuses: []string{"key", "partition"}},
		"GET /v1/containers": {takes: with(pageValid, map[string]string{"asset": "a", "label": "l", "severity": "high", "since_id": "1",
			"start_time": "2026-11-23T12:00:00Z", "end_time": "2026-11-24T12:00:00Z"}), refuses: []string{"container_id", "sort", "order", "_filter_name"}},
		"GET /v1/containers/{id}": {refuses: []string{"page", "page_size"}},
		"GET /v1/artifacts": {takes: with(pageValid, map[string]string{"container_id": "1", "asset": "a", "since_id": "1"}),
			refuses: []string{"label", "severity", "start_time", "end_time"}},
		"GET /v1/audit": {takes: with(pageValid, map[string]string{"object_kind": "asset", "object_name": "a",
			"since": "2026-11-23T12:00:00Z", "until": "2026-11-24T12:00:00Z"}), refuses: []string{"asset", "since_id", "start_time", "action"}},
		"POST /v1/actions/{identifier}": {refuses: []string{"asset", "topic"}},
		"GET /v1/pull": {takes: map[string]string{"asset": "a", "cursor": "v1-0-0", "max_artifacts": "5", "max_containers": "5"},
			refuses: []string{"since_id", "page", "page_size", "topic"}},
		"GET /v1/topics":                            {takes: map[string]string{"asset": "a", "topic": "t"}, refuses: []string{"cursor", "page"}},
		"POST /v1/topics":                           {refuses: []string{"asset", "topic"}},
		"POST /v1/ingest/status":                    {refuses: []string{"asset"}},
		"GET /v1/parsers":                           {refuses: []string{"page"}},
		"POST /v1/parsers":                          {refuses: []string{"name", "description"}},
		"POST /v1/parsers/test":                     {refuses: []string{"asset"}},
		"GET /v1/parsers/{name}":                    {refuses: []string{"version"}},
		"PUT /v1/parsers/{name}":                    {refuses: []string{"name"}},
		"DELETE /v1/parsers/{name}":                 {refuses: []string{"force"}},
		"GET /v1/parsers/{name}/versions":           {refuses: []string{"page"}},
		"GET /v1/parsers/{name}/versions/{version}": {refuses: []string{"name"}},
		"GET /v1/integrations/splunk-soar.tgz":      {refuses: []string{"version"}},
		"GET /v1/integrations/xsoar.yml":            {refuses: []string{"version", "asset"}},
	}
	routes, err := e.h.Routes()
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, rt := range routes {
		method, pattern, _ := strings.Cut(rt, " ")
		if !strings.HasPrefix(pattern, "/v1/") {
			continue
		}
		seen++
		tt, ok := tests[rt]
		if !ok {
			t.Errorf("route %s is not in the table: say which query parameters it takes", rt)
			continue
		}
		path := strings.NewReplacer("{name}", "x", "{identifier}", "test_connectivity", "{id}", "1", "{version}", "1").Replace(pattern)
		call := func(query string) (int, map[string]any) {
			body := any(nil)
			if method == "POST" || method == "PUT" {
				body = "{}"
			}
			return e.do(method, path+"?"+query, body)
		}
		t.Run(rt, func(t *testing.T) {
			// Taken: each alone, and all at once, are not refused as
			// parameters (the answer may be anything else: 404 for the
			// asset x, 400 for the empty body).
			all := []string{}
			for name, v := range tt.takes {
				q := name + "=" + v
				all = append(all, q)
				code, out := call(q)
				if msg, named := errFields(out)[name]; code == 400 && named {
					t.Errorf("?%s: refused: %s", q, msg)
				}
			}
			if len(all) > 0 {
				if code, out := call(strings.Join(all, "&")); code == 400 && errText(out) == "bad query parameters" {
					t.Errorf("all taken parameters: %d %v", code, out)
				}
			}
			// Refused: unknown ones, and filters of other routes, even
			// empty; each named with what the route takes.
			for _, name := range append([]string{"bogus"}, tt.refuses...) {
				for _, q := range []string{name + "=1", name + "="} {
					code, out := call(q)
					msg := errFields(out)[name]
					if code != 400 || !strings.Contains(msg, "not a query parameter of "+rt) {
						t.Errorf("?%s: %d %v, want 400 naming %s", q, code, out, name)
					}
					if len(tt.takes) == 0 && !strings.Contains(msg, "which takes none") {
						t.Errorf("?%s: %q does not say the route takes none", q, msg)
					}
					for taken := range tt.takes {
						if !strings.Contains(msg, taken) {
							t.Errorf("?%s: %q does not list %s", q, msg, taken)
						}
					}
				}
			}
			// A taken parameter given twice: the handler would read one.
			for name, v := range tt.takes {
				code, out := call(name + "=" + v + "&" + name + "=" + v)
				if msg := errFields(out)[name]; code != 400 || !strings.Contains(msg, "given 2 times") {
					t.Errorf("%s twice: %d %v", name, code, out)
				}
			}
		})
	}
	if seen != len(tests) {
		t.Errorf("%d /v1 routes served, %d in the table", seen, len(tests))
	}
}

// A malformed value of a taken parameter is refused with the form the
// route expects; a malformed query string as a whole is refused too.
func TestQueryMalformed(t *testing.T) {
	e := newContainersEnv(t)
	for _, tt := range []struct{ path, field, msg string }{
		{"/v1/containers?start_time=garbage", "start_time", "want an RFC 3339 time such as 2026-11-23T12:00:00Z"},
		{"/v1/artifacts?start_time=garbage", "start_time", "not a query parameter of GET /v1/artifacts"},
		{"/v1/artifacts?label=", "label", "not a query parameter of GET /v1/artifacts"},
		{"/v1/artifacts?container_id=x", "container_id", "want a whole number from 1"},
		{"/v1/containers?asset=%zz", "query", `invalid URL escape "%zz"`},
		{"/v1/containers?asset=a;label=b", "query", "invalid semicolon separator in query"},
	} {
		code, out := e.do("GET", tt.path, nil)
		if msg := errFields(out)[tt.field]; code != 400 || !strings.Contains(msg, tt.msg) {
			t.Errorf("%s: %d %v, want 400 with %s: %q", tt.path, code, out, tt.field, tt.msg)
		}
	}
	// The probes and /metrics are not /v1: they take what they are sent.
	resp, err := http.Get(e.srv.URL + "/healthz?probe=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/healthz?probe=1: %d", resp.StatusCode)
	}
}
