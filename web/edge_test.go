package web_test

import (
	"strings"
	"testing"

	"github.com/soarkafka/soarkafka/internal/testenv"
)

// A NUL byte or invalid UTF-8 in a path segment or a query value is a 400
// naming it, before any store query: PostgreSQL refuses such text with an
// error that was a 500.
func TestPathAndQueryTextRefused(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		e := newEnv(t, url)
		if code, out := e.do("POST", "/v1/assets", asset("ok", map[string]any{"hosts": "h:1", "topic": "t"})); code != 201 {
			t.Fatalf("create: %d %v", code, out)
		}
		for _, tt := range []struct{ method, path, field, msg string }{
			{"GET", "/v1/assets/a%00b", "path", `segment "a\x00b" holds a NUL byte`},
			{"GET", "/v1/assets/%ff", "path", `segment "\xff" is not valid UTF-8`},
			{"PUT", "/v1/assets/a%00b", "path", "NUL byte"},
			{"DELETE", "/v1/assets/%c3%28", "path", "not valid UTF-8"},
			{"GET", "/v1/assets/a%00b/ingest", "path", "NUL byte"},
			{"POST", "/v1/assets/%ff/records", "path", "not valid UTF-8"},
			{"GET", "/v1/parsers/a%00b", "path", "NUL byte"},
			{"GET", "/v1/parsers/%ff/versions", "path", "not valid UTF-8"},
			{"POST", "/v1/actions/post%00data", "path", "NUL byte"},
			{"GET", "/v1/containers?asset=%ff", "asset", `"\xff" is not valid UTF-8`},
			{"GET", "/v1/containers?label=a%00b", "label", "NUL byte"},
			{"GET", "/v1/containers?severity=%fe%ff", "severity", "not valid UTF-8"},
			{"GET", "/v1/artifacts?asset=a%00", "asset", "NUL byte"},
			{"POST", "/v1/assets/ok/records?topic=%ff", "topic", "not valid UTF-8"},
			{"GET", "/v1/containers?%ff=1", `"\xff"`, "name is not valid UTF-8"},
			{"GET", "/nothing/%00", "path", "NUL byte"},
		} {
			var body any
			if tt.method == "POST" || tt.method == "PUT" {
				body = "{}"
			}
			code, out := e.do(tt.method, tt.path, body)
			if msg := errFields(out)[tt.field]; code != 400 || errField(out, "code") != "invalid" || !strings.Contains(msg, tt.msg) {
				t.Errorf("%s %s: %d %v, want 400 with %s: %q", tt.method, tt.path, code, out, tt.field, tt.msg)
			}
		}
		if strings.Contains(e.logs.String(), "request failed") {
			t.Errorf("a request failed with an internal error:\n%s", e.logs.String())
		}
	})
}
