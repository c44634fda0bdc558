package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/soarkafka/soarkafka/actions"
	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/audit"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/parsers"
	"github.com/soarkafka/soarkafka/parsers/sandbox"
	"github.com/soarkafka/soarkafka/poll"
	"github.com/soarkafka/soarkafka/store"
	"github.com/soarkafka/soarkafka/web"
)

const token = "test-token-0123456789"

// workerEnv makes the test binary a parser worker: the parsers API runs
// user parsers in child processes of this very binary.
const workerEnv = "SOARKAFKA_WEB_TEST_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		os.Exit(sandbox.WorkerMain(os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

type env struct {
	t      *testing.T
	runner *actions.Runner
	srv    *httptest.Server
	h      *web.Handler
	db     *store.DB
	logs   *testenv.LogBuffer
}

func newEnv(t *testing.T, url string) *env {
	t.Helper()
	return newEnvLimit(t, url, 64<<10)
}

// newEnvLimit is newEnv with another request body limit.
func newEnvLimit(t *testing.T, url string, maxBody int64) *env {
	t.Helper()
	return newEnvWith(t, url, func(o *web.Options) { o.MaxBodyBytes = maxBody })
}

// newEnvWith is newEnv with the handler's options changed by set.
func newEnvWith(t *testing.T, url string, set func(*web.Options)) *env {
	t.Helper()
	ctx := context.Background()
	logs := &testenv.LogBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	db, err := store.Open(ctx, url, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	key, _ := assets.NewKey()
	sealer, _ := assets.NewSealer(key)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	engine := parsers.NewEngine(sandbox.PoolConfig{Worker: sandbox.Config{Exe: exe, Env: []string{workerEnv + "=1"}, Timeout: 5 * time.Second}})
	t.Cleanup(engine.Close)
	parserService := parsers.NewService(db, engine)
	poller := poll.New(db, parserService, logger, poll.WithLease(poll.DefaultLeaseTTL, time.Second))
	runner := actions.NewRunner(logger, actions.WithPoller(poller))
	t.Cleanup(runner.Close)
	assetService := assets.NewService(db, sealer, assets.WithParsers(parserService), assets.WithLogger(logger))
	// As the server wires it: a changed asset's pooled producer goes.
	assetService.Subscribe(func(_ context.Context, c assets.Change) { runner.Forget(c.Name) })
	opts := web.Options{
		Poller: poller,
		Logger: logger, Assets: assetService, Runner: runner, Parsers: parserService,
		Store: db, APIToken: token, MaxBodyBytes: 64 << 10, Version: "test",
		Audit: audit.NewRecorder(db, logger, 0, nil),
		// The server's defaults, so that every test runs within them.
		ReadTimeout: time.Minute, IdleReadTimeout: time.Minute, BodyMemoryBudget: 64 << 20, BodyWait: 2 * time.Second,
	}
	set(&opts)
	if opts.Parsers != nil && opts.Assets != nil && opts.Runner != nil {
		opts.Parsers.UseLiveSample(opts.Assets, opts.Runner.Access(), opts.Logger) // as app wires it
	}
	h := web.NewHandler(opts)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{t: t, runner: runner, srv: srv, h: h, db: db, logs: logs}
}

// do sends a request with the API token and decodes a JSON answer.
func (e *env) do(method, path string, body any) (int, map[string]any) {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		r = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, r)
	req.Header.Set("ph-auth-token", token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			e.t.Fatalf("%s %s: answer is not JSON: %s", method, path, raw)
		}
	}
	return resp.StatusCode, out
}

func errField(out map[string]any, key string) any {
	e, _ := out["error"].(map[string]any)
	return e[key]
}

func asset(name string, cfg map[string]any) map[string]any {
	return map[string]any{"name": name, "description": "test asset", "config": cfg}
}

func TestAssetsCRUD(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		e := newEnv(t, url)
		cfg := map[string]any{"hosts": "127.0.0.1:9092", "topic": "alerts", "sasl_mechanism": "PLAIN", "username": "soar", "password": "s3cret-pw"}

		code, out := e.do("POST", "/v1/assets", asset("prod", cfg))
		if code != 201 {
			t.Fatalf("create: %d %v", code, out)
		}
		if out["name"] != "prod" || out["version"] != float64(1) {
			t.Fatalf("create answer %v", out)
		}
		c := out["config"].(map[string]any)
		if _, has := c["password"]; has || out["secrets"].(map[string]any)["password"] != true {
			t.Fatalf("secret shown or not flagged: %v", out)
		}
		if c["security_protocol"] != "SASL_PLAINTEXT" || c["timeout"] != float64(10000) {
			t.Fatalf("derived/default values missing: %v", c)
		}

		if code, out := e.do("POST", "/v1/assets", asset("prod", cfg)); code != 409 || errField(out, "code") != "conflict" {
			t.Fatalf("duplicate: %d %v", code, out)
		}

		code, out = e.do("GET", "/v1/assets/prod", nil)
		if code != 200 || strings.Contains(mustJSON(out), "s3cret-pw") {
			t.Fatalf("get: %d %v", code, out)
		}
		// At rest the secret is sealed, not plain.
		stored, err := e.db.Asset(context.Background(), "prod")
		if err != nil {
			t.Fatal(err)
		}
		if pw := stored.Config["password"]; !assets.IsSealed(pw) || strings.Contains(mustJSON(stored.Config), "s3cret-pw") {
			t.Fatalf("password stored as %v", pw)
		}

		// PUT without the secret keeps it; the asset still resolves with it.
		upd := map[string]any{"hosts": "127.0.0.1:9093", "topic": "alerts2", "sasl_mechanism": "PLAIN", "username": "soar"}
		code, out = e.do("PUT", "/v1/assets/prod", map[string]any{"description": "changed", "config": upd})
		if code != 200 || out["version"] != float64(2) || out["description"] != "changed" || out["secrets"].(map[string]any)["password"] != true {
			t.Fatalf("update: %d %v", code, out)
		}
		// PUT with the secret null clears it, which PLAIN then rejects.
		upd["password"] = nil
		code, out = e.do("PUT", "/v1/assets/prod", map[string]any{"config": upd})
		if code != 400 || !strings.Contains(errText(out), "password: required for SASL PLAIN") {
			t.Fatalf("clear secret: %d %v", code, out)
		}
		if code, out := e.do("PUT", "/v1/assets/prod", map[string]any{"name": "other", "config": upd}); code != 400 || !strings.Contains(errText(out), "cannot be renamed") {
			t.Fatalf("rename: %d %v", code, out)
		}

		if code, _ := e.do("POST", "/v1/assets", asset("dev", map[string]any{"hosts": "h:1", "topic": "t"})); code != 201 {
			t.Fatal(code)
		}
		code, out = e.do("GET", "/v1/assets", nil)
		if code != 200 || out["count"] != float64(2) {
			t.Fatalf("list: %d %v", code, out)
		}
		var names []string
		for _, a := range out["data"].([]any) {
			names = append(names, a.(map[string]any)["name"].(string))
		}
		if strings.Join(names, ",") != "dev,prod" {
			t.Fatalf("list order %v", names)
		}

		if code, _ := e.do("DELETE", "/v1/assets/prod", nil); code != 204 {
			t.Fatalf("delete: %d", code)
		}
		for _, m := range []string{"GET", "DELETE"} {
			if code, out := e.do(m, "/v1/assets/prod", nil); code != 404 || errField(out, "code") != "not_found" {
				t.Fatalf("%s after delete: %d %v", m, code, out)
			}
		}
		if code, _ := e.do("PUT", "/v1/assets/prod", map[string]any{"config": cfg}); code != 404 {
			t.Fatalf("put unknown: %d", code)
		}

		// Nothing secret reached the logs.
		if logs := e.logs.String(); strings.Contains(logs, "s3cret-pw") || strings.Contains(logs, token) {
			t.Fatalf("a secret reached the logs:\n%s", logs)
		}
	})
}

// errText is an error answer's message and fields as one line.
func errText(out map[string]any) string {
	text, _ := errField(out, "message").(string)
	fields, _ := errField(out, "fields").([]any)
	for _, f := range fields {
		m := f.(map[string]any)
		text += "; " + m["field"].(string) + ": " + m["message"].(string)
	}
	return text
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Every bad field comes back at once, each named.
func TestAssetValidationErrors(t *testing.T) {
	e := newEnv(t, testenv.SQLiteURL(t))
	code, out := e.do("POST", "/v1/assets", map[string]any{"name": "bad name", "config": map[string]any{
		"hosts": "nohost", "topic": "a/b", "timeout": "x", "use_ssl": 2, "colour": "red", "sasl_mechanism": "GSSAPI"}})
	if code != 400 || errField(out, "code") != "invalid" {
		t.Fatalf("%d %v", code, out)
	}
	got := map[string]bool{}
	for _, f := range errField(out, "fields").([]any) {
		got[f.(map[string]any)["field"].(string)] = true
	}
	var fields []string
	for f := range got {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	// sasl_mechanism GSSAPI needs the kerberos block, whose fields the
	// second pass would name: the first pass's errors come alone.
	if want := "colour,hosts,name,timeout,topic,use_ssl"; strings.Join(fields, ",") != want {
		t.Fatalf("fields %v, want %s", fields, want)
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, testenv.SQLiteURL(t))
	tests := []struct {
		name, method, path string
		body               any
		code               int
		msg                string
	}{
		{"malformed JSON", "POST", "/v1/assets", `{"name": `, 400, "JSON ends early"},
		{"syntax", "POST", "/v1/assets", `{"name" "x"}`, 400, "malformed JSON at byte"},
		{"empty body", "POST", "/v1/assets", ``, 400, "request body is empty"},
		{"trailing data", "POST", "/v1/assets", `{} {}`, 400, "more than one JSON value"},
		{"wrong type", "POST", "/v1/assets", `{"name": 5, "config": {}}`, 400, "name must be a string"},
		{"config not object", "POST", "/v1/assets", `{"name": "x", "config": []}`, 400, "config must be an object"},
		{"unknown action", "POST", "/v1/actions/launch_missiles", `{"config": {"hosts": "h:1", "topic": "t"}}`, 404, `action "launch_missiles" is not available`},
		{"unknown asset", "POST", "/v1/actions/test_connectivity", `{"asset": "nope"}`, 404, `asset "nope" not found`},
		{"no asset", "POST", "/v1/actions/test_connectivity", `{"parameters": {}}`, 400, "missing asset"},
		{"both", "POST", "/v1/actions/test_connectivity", `{"asset": "a", "config": {}}`, 400, "not both"},
		{"bad inline config", "POST", "/v1/actions/test_connectivity", `{"config": {"topic": "t"}}`, 400, "hosts: required"},
		{"bad parameters", "POST", "/v1/actions/test_connectivity", `{"config": {"hosts": "h:1", "topic": "t"}, "parameters": 5}`, 400, "parameters must be an object or a list"},
		{"empty parameter list", "POST", "/v1/actions/test_connectivity", `{"config": {"hosts": "h:1", "topic": "t"}, "parameters": []}`, 400, "empty list"},
		{"identifier mismatch", "POST", "/v1/actions/test_connectivity", `{"identifier": "on_poll", "config": {"hosts": "h:1", "topic": "t"}}`, 400, "differs"},
		{"no route", "GET", "/v1/nothing", nil, 404, "no route"},
		{"method", "PATCH", "/v1/assets", nil, 405, "not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := e.do(tt.method, tt.path, tt.body)
			if code != tt.code || !strings.Contains(errText(out), tt.msg) {
				t.Fatalf("%d %v, want %d with %q", code, out, tt.code, tt.msg)
			}
		})
	}
}

// Every /v1 route refuses a request without the token or with a wrong one,
// and accepts both header forms.
func TestAuthOnEveryV1Route(t *testing.T) {
	e := newEnv(t, testenv.SQLiteURL(t))
	routes, err := e.h.Routes()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, rt := range routes {
		method, path, _ := strings.Cut(rt, " ")
		if !strings.HasPrefix(path, "/v1/") {
			continue
		}
		n++
		path = strings.NewReplacer("{name}", "x", "{identifier}", "test_connectivity").Replace(path)
		for _, hdr := range []map[string]string{{}, {"ph-auth-token": "wrong-token-0123456789"}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic " + token}} {
			req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(`{}`))
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s with %v: %d, want 401", method, path, hdr, resp.StatusCode)
			}
		}
		for _, hdr := range []map[string]string{{"ph-auth-token": token}, {"Authorization": "Bearer " + token}, {"Authorization": "bearer " + token}} {
			req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(`{}`))
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == 401 {
				t.Errorf("%s %s with %v: 401", method, path, hdr)
			}
		}
	}
	if n < 6 {
		t.Fatalf("only %d /v1 routes seen", n)
	}
	for _, open := range []string{"/healthz", "/readyz", "/openapi.json"} {
		resp, err := http.Get(e.srv.URL + open)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d, want 200 without a token", open, resp.StatusCode)
		}
	}
}

func TestReadyzFollowsStore(t *testing.T) {
	e := newEnv(t, testenv.SQLiteURL(t))
	e.db.Close()
	resp, err := http.Get(e.srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("readyz with the store closed: %d", resp.StatusCode)
	}
}

func TestBodyLimit(t *testing.T) {
	e := newEnv(t, testenv.SQLiteURL(t))
	big := `{"name": "x", "description": "` + strings.Repeat("a", 70<<10) + `", "config": {}}`
	code, out := e.do("POST", "/v1/assets", big)
	if code != 413 || errField(out, "code") != "too_large" || !strings.Contains(errText(out), "65536 bytes") {
		t.Fatalf("declared length: %d %v", code, out)
	}
	// Without a Content-Length (chunked), the limit applies while reading.
	pr, pw := io.Pipe()
	go func() { pw.Write([]byte(big)); pw.Close() }()
	req, _ := http.NewRequest("POST", e.srv.URL+"/v1/assets", pr)
	req.Header.Set("ph-auth-token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("chunked: %d", resp.StatusCode)
	}
}

// The OpenAPI document describes exactly the routes the router serves.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := newEnv(t, testenv.SQLiteURL(t))
	routes, err := e.h.Routes()
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, r := range routes {
		served[r] = true
	}
	resp, err := http.Get(e.srv.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi %v", doc["openapi"])
	}
	described := map[string]bool{}
	for path, item := range doc["paths"].(map[string]any) {
		for method := range item.(map[string]any) {
			if method == "parameters" {
				continue
			}
			described[strings.ToUpper(method)+" "+path] = true
		}
	}
	for r := range served {
		if !described[r] {
			t.Errorf("route %s is not in the OpenAPI document", r)
		}
	}
	for d := range described {
		if !served[d] {
			t.Errorf("the OpenAPI document describes %s, which no route serves", d)
		}
	}
	// The asset schema is the registry's.
	cfg := doc["components"].(map[string]any)["schemas"].(map[string]any)["AssetConfig"].(map[string]any)
	if leaves(cfg) != len(assets.Fields) {
		t.Fatal("AssetConfig schema does not list every registry field")
	}
}

// leaves counts the non-object properties of a JSON schema.
func leaves(s map[string]any) int {
	n := 0
	for _, p := range s["properties"].(map[string]any) {
		if p := p.(map[string]any); p["type"] == "object" {
			n += leaves(p)
		} else {
			n++
		}
	}
	return n
}

func TestActionShapes(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "alerts"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	hosts := c.ListenAddrs()[0]
	e := newEnv(t, testenv.SQLiteURL(t))
	cfg := map[string]any{"hosts": hosts, "topic": "alerts"}

	// Inline config, as a SOAR passes it (its own keys ignored).
	inline := map[string]any{"hosts": hosts, "topic": "alerts", "appname": "kafka", "directory": "/opt/phantom/apps/kafka"}
	code, out := e.do("POST", "/v1/actions/test_connectivity", map[string]any{"config": inline, "parameters": map[string]any{}})
	if code != 200 || out["status"] != "success" || out["identifier"] != "test_connectivity" {
		t.Fatalf("inline: %d %v", code, out)
	}
	for _, k := range []string{"message", "parameter", "data", "summary", "result_summary"} {
		if _, ok := out[k]; !ok {
			t.Errorf("result lacks %q: %v", k, out)
		}
	}

	// A stored asset by name.
	if code, out := e.do("POST", "/v1/assets", asset("k", cfg)); code != 201 {
		t.Fatal(code, out)
	}
	if code, out := e.do("POST", "/v1/actions/test_connectivity", map[string]any{"asset": "k"}); code != 200 || out["status"] != "success" {
		t.Fatalf("stored: %d %v", code, out)
	}

	// The SOAR app-run document runs once per parameter set.
	doc := map[string]any{"action": "test connectivity", "identifier": "test_connectivity", "asset_id": 3, "config": inline,
		"parameters": []any{map[string]any{"context": map[string]any{"guid": "a"}}, map[string]any{}}}
	code, out = e.do("POST", "/v1/actions/test_connectivity", doc)
	if code != 200 || out["status"] != "success" || len(out["results"].([]any)) != 2 {
		t.Fatalf("app-run: %d %v", code, out)
	}
	first := out["results"].([]any)[0].(map[string]any)
	if first["parameter"].(map[string]any)["context"] == nil {
		t.Fatalf("parameters not echoed: %v", first)
	}

	// An action that ran and failed is still HTTP 200, with status failed.
	bad := map[string]any{"hosts": hosts, "topic": "missing-topic"}
	code, out = e.do("POST", "/v1/actions/test_connectivity", map[string]any{"config": bad})
	if code != 200 || out["status"] != "failed" || !strings.Contains(out["message"].(string), "missing-topic") {
		t.Fatalf("failed action: %d %v", code, out)
	}
}

// post data through HTTP: the payload arrives as bytes (one copy), the
// result echoes it as text, cut past 64 KiB.
func TestPostDataEcho(t *testing.T) {
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	e := newEnvLimit(t, testenv.SQLiteURL(t), 1<<20)
	cfg := map[string]any{"hosts": c.ListenAddrs()[0], "topic": "alerts"}
	long := `"` + strings.Repeat("x", 70<<10) + `"`
	for _, tt := range []struct{ data, want string }{
		{`{"a": "é"}`, `{"a": "é"}`},
		{long, long[:64<<10] + "... (71682 bytes in all)"},
	} {
		code, out := e.do("POST", "/v1/actions/post_data", map[string]any{"config": cfg, "parameters": map[string]any{
			"data_type": "JSON", "data": tt.data, "topic": "alerts"}})
		if code != 200 || out["status"] != "success" {
			t.Fatalf("%d %v", code, out)
		}
		if got := out["parameter"].(map[string]any)["data"]; got != tt.want {
			t.Fatalf("echo %.80q..., want %.80q...", got, tt.want)
		}
	}
}

// Large payloads reuse the handler's buffers: two different lists over
// 1 MB, one after the other, must both arrive intact.
func TestPostDataLargeBuffersReused(t *testing.T) {
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "big"), kfake.BrokerConfigs(map[string]string{"message.max.bytes": "8388608"}))
	e := newEnvLimit(t, testenv.SQLiteURL(t), 8<<20)
	cfg := map[string]any{"hosts": c.ListenAddrs()[0], "topic": "big", "producer": map[string]any{"max_message_bytes": 4 << 20}}
	var want []string
	for round := range 3 {
		elems := make([]string, 3000)
		for i := range elems {
			elems[i] = fmt.Sprintf(`{"round":%d,"i":%d,"pad":"%s"}`, round, i, strings.Repeat(string(rune('a'+round)), 400))
		}
		want = append(want, elems...)
		for _, dt := range []string{"JSON", "string"} {
			data := "[" + strings.Join(elems, ",") + "]"
			code, out := e.do("POST", "/v1/actions/post_data", map[string]any{"config": cfg, "parameters": map[string]any{
				"data_type": dt, "data": data, "topic": "big", "json_format": "compact"}})
			if code != 200 || out["status"] != "success" {
				t.Fatalf("round %d %s: %d %v", round, dt, code, out)
			}
			if dt == "string" {
				want = append(want, data)
			}
		}
	}
	cl := testenv.KafkaClient(t, c, kgo.ConsumeTopics("big"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(64<<20))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []string
	for len(got) < len(want) && ctx.Err() == nil {
		for _, r := range cl.PollFetches(ctx).Records() {
			got = append(got, string(r.Value))
		}
	}
	if len(got) != len(want) {
		t.Fatalf("consumed %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("record %d differs: %.60q..., want %.60q...", i, got[i], want[i])
		}
	}
}

// A stored asset's producer is kept between posts, and dropped when the
// asset is updated or deleted through the API.
func TestProducerFollowsAsset(t *testing.T) {
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	e := newEnv(t, testenv.SQLiteURL(t))
	cfg := map[string]any{"hosts": c.ListenAddrs()[0], "topic": "alerts"}
	if code, out := e.do("POST", "/v1/assets", asset("p", cfg)); code != 201 {
		t.Fatal(code, out)
	}
	post := func() {
		t.Helper()
		code, out := e.do("POST", "/v1/actions/post_data", map[string]any{"asset": "p", "parameters": map[string]any{
			"data_type": "string", "data": "x", "topic": "alerts"}})
		if code != 200 || out["status"] != "success" {
			t.Fatalf("post: %d %v", code, out)
		}
	}
	post()
	post()
	if n := e.runner.Producers().Len(); n != 1 {
		t.Fatalf("%d producers after two posts, want 1", n)
	}
	cfg["producer"] = map[string]any{"linger_ms": 5}
	if code, out := e.do("PUT", "/v1/assets/p", map[string]any{"config": cfg}); code != 200 {
		t.Fatal(code, out)
	}
	if n := e.runner.Producers().Len(); n != 0 {
		t.Fatalf("%d producers after the update, want 0", n)
	}
	post()
	if code, _ := e.do("DELETE", "/v1/assets/p", nil); code != 204 {
		t.Fatal(code)
	}
	if n := e.runner.Producers().Len(); n != 0 {
		t.Fatalf("%d producers after the delete, want 0", n)
	}
}

// An app-run document's parameter sets are all decoded before any runs:
// one bad set refuses the request, names the set's fields as
// parameters[i].name, and nothing is sent for the good sets; all good,
// each set runs once, in order.
func TestAppRunDocumentBadSetRunsNone(t *testing.T) {
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	e := newEnv(t, testenv.SQLiteURL(t))
	cfg := map[string]any{"hosts": c.ListenAddrs()[0], "topic": "alerts"}
	good := map[string]any{"data_type": "string", "data": "first", "topic": "alerts"}
	doc := map[string]any{"identifier": "post_data", "asset_id": 9, "config": cfg, "parameters": []any{
		good, map[string]any{"data_type": "xml", "data": "second", "topic": "a b"}}}
	code, out := e.do("POST", "/v1/actions/post_data", doc)
	if code != 400 {
		t.Fatalf("a bad second set: %d %v, want 400", code, out)
	}
	var names []string
	fields, _ := errField(out, "fields").([]any)
	for _, f := range fields {
		names = append(names, fmt.Sprint(f.(map[string]any)["field"]))
	}
	if strings.Join(names, ",") != "parameters[1].data_type,parameters[1].topic" || !strings.Contains(errText(out), "parameter set 2 of 2") {
		t.Fatalf("error %v names %v", out, names)
	}

	doc["parameters"] = []any{good, map[string]any{"data_type": "string", "data": "second", "topic": "alerts"}}
	if code, out := e.do("POST", "/v1/actions/post_data", doc); code != 200 || out["status"] != "success" {
		t.Fatalf("two good sets: %d %v", code, out)
	}
	cl := testenv.KafkaClient(t, c, kgo.ConsumeTopics("alerts"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []string
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(got) < 2 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if strings.Join(got, ",") != "first,second" {
		t.Fatalf("the topic holds %q; want only the good document's two messages, in order", got)
	}
}
