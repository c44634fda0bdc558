package web_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka/audit"
	"github.com/soarkafka/soarkafka/deliver"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/web"
)

// The secret values the audit test sets: none may appear in the trail.
var auditSecrets = []string{"pw-Audit-0001", "pw-Audit-0002", "krb-Audit-0003", "aws-Audit-0004", "dtok-Audit-0005-abcdef", "aws-Audit-0006", "sealed:v1:"}

// auditList reads the whole trail through the API, newest first, and the
// raw answer.
func (e *env) auditList(query string) ([]map[string]any, string) {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/audit?"+query, nil)
	req.Header.Set("ph-auth-token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	code, out := e.do("GET", "/v1/audit?"+query, nil)
	if code != http.StatusOK {
		e.t.Fatalf("GET /v1/audit?%s: %d %v", query, code, out)
	}
	var list []map[string]any
	for _, d := range out["data"].([]any) {
		list = append(list, d.(map[string]any))
	}
	return list, string(raw)
}

// auditRows is every stored audit row as text, every column.
func auditRows(t *testing.T, url string) string {
	t.Helper()
	rows, err := testenv.RawDB(t, url).QueryContext(t.Context(),
		"SELECT id, at, client, actor, method, route, object_kind, object_name, action, version, changes FROM audit_events ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		cols := make([]any, 11)
		ptrs := make([]any, 11)
		for i := range cols {
			ptrs[i] = &cols[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for _, c := range cols {
			if bs, ok := c.([]byte); ok {
				c = string(bs)
			}
			fmt.Fprintf(&b, "%v|", c)
		}
		b.WriteString("\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// Every change through the API is recorded once it succeeded, with its
// client, route, object, version and changes; a secret only as "changed";
// a change that failed records nothing.
func TestAuditRecordsEachChange(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		e := newEnvWith(t, url, func(o *web.Options) {
			o.Delivery = deliver.NewService(o.Store.(deliver.Store), o.Assets, o.Logger)
		})
		must := func(want int, method, path string, body any) map[string]any {
			t.Helper()
			code, out := e.do(method, path, body)
			if code != want {
				t.Fatalf("%s %s: %d %v, want %d", method, path, code, out, want)
			}
			return out
		}
		sasl := map[string]any{"hosts": "127.0.0.1:9092", "topic": "alerts", "sasl_mechanism": "PLAIN", "username": "soar", "password": "pw-Audit-0001"}
		must(201, "POST", "/v1/assets", asset("sasl", sasl))
		sasl["topic"], sasl["password"] = "alerts2", "pw-Audit-0002"
		must(200, "PUT", "/v1/assets/sasl", asset("sasl", sasl))
		delete(sasl, "password") // kept as stored
		sasl["ingest"] = map[string]any{"enabled": false}
		must(200, "PUT", "/v1/assets/sasl", asset("sasl", sasl))
		sasl["ingest"] = map[string]any{"enabled": true}
		must(200, "PUT", "/v1/assets/sasl", asset("sasl", sasl))
		must(201, "POST", "/v1/assets", asset("krb", kerberosAsset(map[string]any{"realm": "EXAMPLE.COM", "kdc": "kdc.example.com", "password": "krb-Audit-0003"})))
		must(201, "POST", "/v1/assets", asset("aws", map[string]any{"hosts": "127.0.0.1:9092", "topic": "t", "sasl_mechanism": "AWS_MSK_IAM",
			"aws_iam": map[string]any{"region": "eu-west-1", "access_key_id": "AKIDAUDIT", "secret_access_key": "aws-Audit-0004", "session_token": "aws-Audit-0006"}}))
		must(201, "POST", "/v1/assets", asset("push", map[string]any{"hosts": "127.0.0.1:9092", "topic": "alerts",
			"delivery": map[string]any{"mode": "push", "url": "http://127.0.0.1:9", "token": "dtok-Audit-0005-abcdef", "asset_id": 3}}))
		must(200, "POST", "/v1/assets/push/delivery/retry", nil)
		must(201, "POST", "/v1/parsers", map[string]any{"name": "upper", "source": goodParser})
		must(200, "PUT", "/v1/parsers/upper", map[string]any{"source": strings.Replace(goodParser, `"from "`, `"v2 from "`, 1)})
		must(204, "DELETE", "/v1/parsers/upper", nil)
		// A secret set to null is cleared: changed, as one set is.
		must(200, "PUT", "/v1/assets/aws", asset("aws", map[string]any{"hosts": "127.0.0.1:9092", "topic": "t", "sasl_mechanism": "AWS_MSK_IAM",
			"aws_iam": map[string]any{"region": "eu-west-1", "access_key_id": "AKIDAUDIT", "session_token": nil}}))
		must(204, "DELETE", "/v1/assets/aws", nil)

		before := auditRows(t, url)
		// Failed changes: none is recorded.
		must(400, "POST", "/v1/assets", asset("bad", map[string]any{"hosts": "127.0.0.1:9092", "password": "pw-Audit-0001"}))
		must(409, "POST", "/v1/assets", asset("sasl", map[string]any{"hosts": "127.0.0.1:9092", "topic": "t", "sasl_mechanism": "PLAIN", "username": "u", "password": "pw-Audit-0001"}))
		must(404, "PUT", "/v1/assets/nope", asset("nope", sasl))
		must(400, "PUT", "/v1/assets/sasl", asset("sasl", map[string]any{"hosts": "127.0.0.1:9092", "topic": "t", "password": "pw-Audit-0002"}))
		must(404, "DELETE", "/v1/assets/nope", nil)
		must(404, "POST", "/v1/assets/nope/delivery/retry", nil)
		must(400, "POST", "/v1/parsers", map[string]any{"name": "bad", "source": "package parser\nfunc {"})
		must(404, "PUT", "/v1/parsers/nope", map[string]any{"source": goodParser})
		must(404, "DELETE", "/v1/parsers/nope", nil)
		if after := auditRows(t, url); after != before {
			t.Fatalf("failed changes were recorded:\nbefore %s\nafter  %s", before, after)
		}

		list, raw := e.auditList("page_size=0")
		type ev struct{ kind, name, action, route string }
		want := []ev{
			{"asset", "aws", "delete", "DELETE /v1/assets/{name}"},
			{"asset", "aws", "update", "PUT /v1/assets/{name}"},
			{"parser", "upper", "delete", "DELETE /v1/parsers/{name}"},
			{"parser", "upper", "update", "PUT /v1/parsers/{name}"},
			{"parser", "upper", "create", "POST /v1/parsers"},
			{"delivery", "push", "retry", "POST /v1/assets/{name}/delivery/retry"},
			{"asset", "push", "create", "POST /v1/assets"},
			{"asset", "aws", "create", "POST /v1/assets"},
			{"asset", "krb", "create", "POST /v1/assets"},
			{"asset", "sasl", "enable", "PUT /v1/assets/{name}"},
			{"asset", "sasl", "disable", "PUT /v1/assets/{name}"},
			{"asset", "sasl", "update", "PUT /v1/assets/{name}"},
			{"asset", "sasl", "create", "POST /v1/assets"},
		}
		if len(list) != len(want) {
			t.Fatalf("%d events, want %d: %s", len(list), len(want), raw)
		}
		for i, w := range want {
			got := list[i]
			if got["object_kind"] != w.kind || got["object_name"] != w.name || got["action"] != w.action || got["route"] != w.route ||
				got["actor"] != "api token" || got["client"] != "127.0.0.1" || !strings.HasPrefix(w.route, got["method"].(string)+" ") {
				t.Errorf("event %d: %v, want %+v by api token from 127.0.0.1", i, got, w)
			}
			if ts, err := time.Parse(time.RFC3339Nano, got["time"].(string)); err != nil || time.Since(ts) > time.Minute {
				t.Errorf("event %d: time %v", i, got["time"])
			}
		}
		version := func(i int) any { return list[i]["version"] }
		changes := func(i int) map[string]any { return list[i]["changes"].(map[string]any) }
		// Versions: the asset's and the parser's after the change; none
		// for a deletion or a retry.
		if version(12) != 1.0 || version(11) != 2.0 || version(10) != 3.0 || version(9) != 4.0 || version(4) != 1.0 || version(3) != 2.0 ||
			version(1) != 2.0 || version(0) != nil || version(2) != nil || version(5) != nil {
			t.Errorf("versions: %s", raw)
		}
		if c := changes(11); fmt.Sprint(c["config.topic"]) != "map[new:alerts2 old:alerts]" || c["config.password"] != "changed" || len(c) != 2 {
			t.Errorf("update changes %v, want the topic's old and new and the password changed", c)
		}
		if c := changes(10); fmt.Sprint(c["config.ingest.enabled"]) != "map[new:false old:true]" || c["config.password"] != nil {
			t.Errorf("disable changes %v (a password left out is kept, not changed)", c)
		}
		if c := changes(12); c["config.password"] != "changed" || fmt.Sprint(c["config.username"]) != "map[new:soar]" ||
			fmt.Sprint(c["description"]) != "map[new:test asset]" || c["config.ingest.enabled"] != nil || len(c) != 6 { // description, hosts, topic, sasl_mechanism, username, password
			t.Errorf("create changes %v", c)
		}
		if changes(8)["config.kerberos.password"] != "changed" || changes(7)["config.aws_iam.secret_access_key"] != "changed" ||
			changes(6)["config.delivery.token"] != "changed" {
			t.Errorf("secrets not marked changed: %s", raw)
		}
		if c := changes(1); c["config.aws_iam.session_token"] != "changed" || c["config.aws_iam.secret_access_key"] != nil || len(c) != 1 {
			t.Errorf("clearing a secret: %v, want only it, changed", c)
		}
		if fmt.Sprint(changes(3)) != "map[version:2]" || changes(5)["retried"] != 0.0 {
			t.Errorf("parser update %v, retry %v", changes(3), changes(5))
		}
		stored := auditRows(t, url)
		for _, s := range auditSecrets {
			if strings.Contains(stored, s) || strings.Contains(raw, s) {
				t.Errorf("secret %q in the trail:\nstored %s\nserved %s", s, stored, raw)
			}
		}
		if strings.Contains(stored, "func ParseMessages") {
			t.Error("a parser's source is in the trail")
		}
	})
}

// GET /v1/audit filters by object and time and pages as the other lists.
func TestAuditFiltersAndPages(t *testing.T) {
	e := newEnv(t, testenv.SQLiteURL(t))
	start := time.Now().UTC()
	for i := range 5 {
		name := fmt.Sprintf("a%d", i)
		if code, out := e.do("POST", "/v1/assets", asset(name, map[string]any{"hosts": "127.0.0.1:9092", "topic": "t"})); code != 201 {
			t.Fatalf("create %s: %d %v", name, code, out)
		}
	}
	if code, out := e.do("DELETE", "/v1/assets/a1", nil); code != 204 {
		t.Fatalf("delete: %d %v", code, out)
	}
	list, _ := e.auditList("object_kind=asset&object_name=a1")
	if len(list) != 2 || list[0]["action"] != "delete" || list[1]["action"] != "create" {
		t.Fatalf("a1's events: %v", list)
	}
	if list, _ := e.auditList("object_kind=parser"); len(list) != 0 {
		t.Fatalf("parser events: %v", list)
	}
	_, out := e.do("GET", "/v1/audit?page=1&page_size=4", nil)
	if out["count"] != 6.0 || out["num_pages"] != 2.0 || len(out["data"].([]any)) != 2 {
		t.Fatalf("page 1 of 4: %v", out)
	}
	if data := out["data"].([]any); data[1].(map[string]any)["object_name"] != "a0" {
		t.Fatalf("the last page ends with the oldest event: %v", data)
	}
	mid := e.auditTime(t, "a3")
	if list, _ := e.auditList("since=" + mid.Format(time.RFC3339Nano)); len(list) != 3 { // a3, a4, the delete
		t.Fatalf("since a3: %v", list)
	}
	if list, _ := e.auditList("until=" + mid.Format(time.RFC3339Nano)); len(list) != 3 { // a0..a2
		t.Fatalf("until a3: %v", list)
	}
	if list, _ := e.auditList("since=" + start.Add(-time.Hour).Format(time.RFC3339) + "&until=" + start.Add(-time.Minute).Format(time.RFC3339)); len(list) != 0 {
		t.Fatalf("before the test: %v", list)
	}
	for q, field := range map[string]string{
		"object_kind=container": "object_kind",
		"since=yesterday":       "since",
		"since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z": "until",
		"page_size=1001": "page_size",
	} {
		code, out := e.do("GET", "/v1/audit?"+q, nil)
		if _, named := errFields(out)[field]; code != 400 || !named {
			t.Errorf("?%s: %d %v, want 400 naming %s", q, code, out, field)
		}
	}
}

// auditTime is the time of the create event of the named asset.
func (e *env) auditTime(t *testing.T, name string) time.Time {
	t.Helper()
	list, _ := e.auditList("object_name=" + name)
	if len(list) == 0 {
		t.Fatalf("no event for %s", name)
	}
	ts, err := time.Parse(time.RFC3339Nano, list[0]["time"].(string))
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// A change whose event cannot be recorded is made and answered all the
// same, and the failure is logged: the trail's store being away must not
// stop the configuration being changed.
func TestAuditFailureDoesNotUndoTheChange(t *testing.T) {
	url := testenv.SQLiteURL(t)
	e := newEnv(t, url)
	if _, err := testenv.RawDB(t, url).ExecContext(t.Context(), "DROP TABLE audit_events"); err != nil {
		t.Fatal(err)
	}
	if code, out := e.do("POST", "/v1/assets", asset("kept", map[string]any{"hosts": "127.0.0.1:9092", "topic": "t"})); code != 201 {
		t.Fatalf("create: %d %v", code, out)
	}
	if code, out := e.do("GET", "/v1/assets/kept", nil); code != 200 || out["version"] != 1.0 {
		t.Fatalf("the asset was not kept: %d %v", code, out)
	}
	if logs := e.logs.String(); !strings.Contains(logs, "audit: change made but not recorded") || !strings.Contains(logs, `"name":"kept"`) {
		t.Fatalf("the failure to record is not logged:\n%s", logs)
	}
}

// The client address is the peer's; X-Forwarded-For counts only from a
// proxy in audit.trusted_proxies.
func TestAuditClientAddress(t *testing.T) {
	for _, tt := range []struct {
		name    string
		trusted []string
		want    string
	}{
		{"untrusted peer", nil, "127.0.0.1"},
		{"trusted proxy", []string{"127.0.0.0/8"}, "203.0.113.9"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			nets, err := audit.ParseTrustedProxies(tt.trusted)
			if err != nil {
				t.Fatal(err)
			}
			e := newEnvWith(t, testenv.SQLiteURL(t), func(o *web.Options) { o.Audit = audit.NewRecorder(o.Store.(audit.Store), o.Logger, 0, nets) })
			if code, out := e.do("POST", "/v1/assets", asset("x", map[string]any{"hosts": "127.0.0.1:9092", "topic": "t"})); code != 201 {
				t.Fatalf("create: %d %v", code, out)
			}
			req, _ := http.NewRequest("DELETE", e.srv.URL+"/v1/assets/x", nil)
			req.Header.Set("ph-auth-token", token)
			req.Header.Set("X-Forwarded-For", "198.51.100.1, 203.0.113.9")
			req.Header.Set("X-Real-IP", "198.51.100.2")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 204 {
				t.Fatalf("delete: %d", resp.StatusCode)
			}
			list, _ := e.auditList("object_name=x")
			if len(list) != 2 || list[0]["client"] != tt.want || list[1]["client"] != "127.0.0.1" {
				t.Fatalf("clients %v, want %s for the delete", list, tt.want)
			}
		})
	}
}
