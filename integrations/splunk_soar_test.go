package integrations_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/soarkafka/soarkafka/internal/testenv"
)

// The Splunk SOAR app's tests run the real connector
// (splunk_soar/soarkafka_connector.py) under Debian's python3, with the
// stand-in phantom package of tests/splunk_soar (its rules are listed in
// tests/splunk_soar/phantom/base_connector.py), against a real soarkafka
// process and its dev broker.

const (
	soarAppDir       = "splunk_soar"
	soarStandinDir   = "tests/splunk_soar"
	soarIngestLabel  = "kafka-events"
	scheduledCount   = 4294967295
	soarContainerSDI = "soarkafka:container:%v"
)

// soarApp runs app-run documents through the connector, keeping the
// stand-in's store and state in one directory across runs (as one SOAR
// instance would).
type soarApp struct {
	t      *testing.T
	python string
	srv    *testenv.Soarkafka
	dir    string
}

func newSoarApp(t *testing.T, python string, srv *testenv.Soarkafka) *soarApp {
	return &soarApp{t: t, python: python, srv: srv, dir: t.TempDir()}
}

// runDoc is one run's answer as the stand-in reports it.
type runDoc struct {
	Status        string          `json:"status"`
	Message       string          `json:"message"`
	ActionResults []actionResultT `json:"action_results"`
}

type actionResultT struct {
	Status    string           `json:"status"`
	Message   string           `json:"message"`
	Parameter map[string]any   `json:"parameter"`
	Data      []map[string]any `json:"data"`
	Summary   map[string]any   `json:"summary"`
}

// config is a SOAR asset's config for the connector: soarkafka's address
// and token, the SOAR ingest label, and the given fields.
func (a *soarApp) config(fields map[string]any) map[string]any {
	c := map[string]any{
		"base_url": a.srv.URL, "api_token": a.srv.Token, "verify_server_cert": true,
		"ingest": map[string]any{"container_label": soarIngestLabel},
	}
	for k, v := range fields {
		c[k] = v
	}
	return c
}

// exec runs the connector on doc; env adds environment variables. It
// returns the parsed answer, or the process error with its output.
func (a *soarApp) exec(doc map[string]any, env ...string) (*runDoc, error) {
	a.t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		a.t.Fatal(err)
	}
	in := filepath.Join(a.dir, "in.json")
	if err := os.WriteFile(in, b, 0o600); err != nil {
		a.t.Fatal(err)
	}
	cmd := exec.Command(a.python, filepath.Join(soarAppDir, "soarkafka_connector.py"), in)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+soarStandinDir, "PHANTOM_STANDIN_DIR="+a.dir, "PYTHONDONTWRITEBYTECODE=1")
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("connector: %w\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	var out runDoc
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return nil, fmt.Errorf("connector output is not the run's JSON: %v\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	return &out, nil
}

// run runs one action with one parameter set and returns its result,
// failing the test if the process failed.
func (a *soarApp) run(identifier string, config map[string]any, params map[string]any, doc map[string]any) actionResultT {
	a.t.Helper()
	d := map[string]any{"identifier": identifier, "config": config, "asset_id": "7", "parameters": []any{params}}
	for k, v := range doc {
		d[k] = v
	}
	out, err := a.exec(d)
	if err != nil {
		a.t.Fatal(err)
	}
	if len(out.ActionResults) != 1 {
		a.t.Fatalf("%s: want 1 action result, got %+v", identifier, out)
	}
	return out.ActionResults[0]
}

func (a *soarApp) scheduledPoll(config map[string]any) actionResultT {
	a.t.Helper()
	return a.run("on_poll", config, map[string]any{"container_count": scheduledCount, "artifact_count": scheduledCount}, map[string]any{"is_poll_now": false})
}

// soarStore is what the stand-in SOAR holds.
type soarStore struct {
	Containers []map[string]any `json:"containers"`
	Artifacts  []map[string]any `json:"artifacts"`
	Duplicates map[string]int   `json:"duplicates"`
}

func (a *soarApp) store() soarStore {
	a.t.Helper()
	cmd := exec.Command(a.python, "-m", "phantom.base_connector", "dump")
	cmd.Env = append(os.Environ(), "PYTHONPATH="+soarStandinDir, "PHANTOM_STANDIN_DIR="+a.dir, "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.Output()
	if err != nil {
		a.t.Fatalf("dump the stand-in's store: %v", err)
	}
	var s soarStore
	if err := json.Unmarshal(out, &s); err != nil {
		a.t.Fatal(err)
	}
	return s
}

func (a *soarApp) state() map[string]any {
	a.t.Helper()
	b, err := os.ReadFile(filepath.Join(a.dir, "state_7.json"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		a.t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		a.t.Fatal(err)
	}
	return s
}

// api calls soarkafka's REST API and decodes the answer into out.
func api(t *testing.T, srv *testenv.Soarkafka, method, path string, body, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("ph-auth-token", srv.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

func createAsset(t *testing.T, srv *testenv.Soarkafka, name string, config map[string]any) {
	t.Helper()
	api(t, srv, "POST", "/v1/assets", map[string]any{"name": name, "config": config}, nil)
}

// produce writes n messages "<prefix>-<i>" to topic in large batches.
func produce(t *testing.T, broker, topic, prefix string, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ProducerBatchMaxBytes(16<<20), kgo.ProducerLinger(50*time.Millisecond),
		kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Value: []byte(fmt.Sprintf(`{"%s": %d}`, prefix, i))}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// consume reads every message of topic from the start.
func consume(t *testing.T, broker, topic string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: got %d of %d messages", topic, len(recs), want)
		}
		fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
	}
	return recs
}

// TestSplunkSOARAppJSON: the app JSON has what SOAR's app install needs,
// and keeps the Kafka app's actions, identifiers, parameters and output
// data paths.
func TestSplunkSOARAppJSON(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(soarAppDir, "soarkafka.json"))
	if err != nil {
		t.Fatal(err)
	}
	var app struct {
		AppID         string                    `json:"appid"`
		Name          string                    `json:"name"`
		MainModule    string                    `json:"main_module"`
		PythonVersion string                    `json:"python_version"`
		AppVersion    string                    `json:"app_version"`
		PackageName   string                    `json:"package_name"`
		Logo          string                    `json:"logo"`
		LogoDark      string                    `json:"logo_dark"`
		Configuration map[string]map[string]any `json:"configuration"`
		Actions       []struct {
			Action     string                    `json:"action"`
			Identifier string                    `json:"identifier"`
			Type       string                    `json:"type"`
			ReadOnly   *bool                     `json:"read_only"`
			Versions   string                    `json:"versions"`
			Parameters map[string]map[string]any `json:"parameters"`
			Output     []map[string]any          `json:"output"`
		} `json:"actions"`
	}
	if err := json.Unmarshal(b, &app); err != nil {
		t.Fatal(err)
	}
	if len(app.AppID) != 36 || strings.Count(app.AppID, "-") != 4 {
		t.Errorf("appid %q is not a UUID", app.AppID)
	}
	for field, v := range map[string]string{"name": app.Name, "app_version": app.AppVersion, "package_name": app.PackageName, "python_version": app.PythonVersion} {
		if v == "" {
			t.Errorf("%s is empty", field)
		}
	}
	if app.MainModule != "soarkafka_connector.py" {
		t.Errorf("main_module %q", app.MainModule)
	}
	for _, f := range []string{app.MainModule, app.Logo, app.LogoDark, "README.md"} {
		if _, err := os.Stat(filepath.Join(soarAppDir, f)); err != nil {
			t.Errorf("the app's file %q: %v", f, err)
		}
	}
	for _, name := range []string{"base_url", "api_token", "verify_server_cert", "asset", "hosts", "topic", "timeout", "read_from_beginning", "use_kerberos", "use_ssl", "cert_file", "key_file", "ca_cert"} {
		f, ok := app.Configuration[name]
		if !ok {
			t.Errorf("configuration has no %s", name)
			continue
		}
		if f["data_type"] == nil || f["description"] == nil {
			t.Errorf("configuration %s lacks data_type or description: %v", name, f)
		}
	}
	if app.Configuration["api_token"]["data_type"] != "password" {
		t.Errorf("api_token must be a password field, is %v", app.Configuration["api_token"]["data_type"])
	}
	// The Kafka app's actions (kafka.json at 3.0.0) and their data paths.
	kafkaApp := map[string]struct {
		name, typ string
		params    []string
		paths     []string
	}{
		"test_connectivity": {"test connectivity", "test", nil, nil},
		"on_poll":           {"on poll", "ingest", []string{"start_time", "end_time", "container_id", "container_count", "artifact_count"}, nil},
		"post_data": {"post data", "generic", []string{"data_type", "data", "topic", "timeout"}, []string{
			"action_result.status", "action_result.parameter.data", "action_result.parameter.data_type", "action_result.parameter.timeout",
			"action_result.parameter.topic", "action_result.data.*.checksum", "action_result.data.*.offset", "action_result.data.*.partition",
			"action_result.data.*.serialized_key_size", "action_result.data.*.serialized_value_size", "action_result.data.*.timestamp",
			"action_result.data.*.topic", "action_result.data.*.topic_partition", "action_result.summary", "action_result.message",
			"summary.total_objects", "summary.total_objects_successful"}},
		"get_ingest_status": {"get ingest status", "investigate", nil, nil},
		"list_topics":       {"list topics", "investigate", []string{"topic"}, []string{"action_result.data.*.partition", "action_result.data.*.latest_offset"}},
		"test_parser":       {"test parser", "investigate", []string{"parser", "messages"}, nil},
	}
	seen := map[string]bool{}
	for _, a := range app.Actions {
		want, ok := kafkaApp[a.Identifier]
		if !ok {
			t.Errorf("unexpected action %q", a.Identifier)
			continue
		}
		seen[a.Identifier] = true
		if a.Action != want.name || a.Type != want.typ || a.ReadOnly == nil || a.Versions == "" {
			t.Errorf("action %s: name %q type %q read_only %v versions %q; want %q %q", a.Identifier, a.Action, a.Type, a.ReadOnly, a.Versions, want.name, want.typ)
		}
		for _, p := range want.params {
			if _, ok := a.Parameters[p]; !ok {
				t.Errorf("action %s lacks parameter %s", a.Identifier, p)
			}
		}
		paths := map[string]bool{}
		for _, o := range a.Output {
			p, _ := o["data_path"].(string)
			if p == "" || o["data_type"] == nil {
				t.Errorf("action %s: output %v lacks data_path or data_type", a.Identifier, o)
			}
			paths[p] = true
		}
		if len(a.Output) == 0 {
			t.Errorf("action %s has no output data paths", a.Identifier)
		}
		for _, p := range want.paths {
			if !paths[p] {
				t.Errorf("action %s lacks output data path %s", a.Identifier, p)
			}
		}
	}
	for id := range kafkaApp {
		if !seen[id] {
			t.Errorf("no action %s", id)
		}
	}
}

// TestSplunkSOARAppActions: test connectivity, post data (read back from
// Kafka), test parser, list topics and get ingest status through the
// connector.
func TestSplunkSOARAppActions(t *testing.T) {
	python := testenv.Python(t)
	srv := startServer(t)
	app := newSoarApp(t, python, srv)
	createAsset(t, srv, "posts", map[string]any{"hosts": srv.Broker, "topic": "soar-posts", "read_from_beginning": true})
	stored := app.config(map[string]any{"asset": "posts"})

	t.Run("test connectivity", func(t *testing.T) {
		produce(t, srv.Broker, "soar-posts", "warmup", 1)
		res := app.run("test_connectivity", stored, map[string]any{}, nil)
		if res.Status != "success" {
			t.Fatalf("test connectivity: %+v", res)
		}
		bad := app.config(map[string]any{"asset": "posts", "api_token": "wrong-token-0123456789"})
		res = app.run("test_connectivity", bad, map[string]any{}, nil)
		if res.Status != "failed" || !strings.Contains(res.Message, "api_token") {
			t.Fatalf("a wrong token: want a failure naming api_token, got %+v", res)
		}
		noKafka := app.config(map[string]any{})
		res = app.run("test_connectivity", noKafka, map[string]any{}, nil)
		if res.Status != "failed" || !strings.Contains(res.Message, "set asset") {
			t.Fatalf("neither asset nor hosts: want a failure saying to set asset, got %+v", res)
		}
		unreachable := app.config(map[string]any{"asset": "posts", "base_url": "http://" + testenv.RefusingTCPAddr(t)})
		res = app.run("test_connectivity", unreachable, map[string]any{}, nil)
		if res.Status != "failed" || !strings.Contains(res.Message, "check base_url") {
			t.Fatalf("an unreachable soarkafka: want a failure naming base_url, got %+v", res)
		}
	})

	t.Run("post data", func(t *testing.T) {
		params := map[string]any{"data_type": "JSON", "data": `[{"alert": 1}, {"alert": 2}, "three"]`, "topic": "soar-posted", "timeout": 10}
		res := app.run("post_data", stored, params, nil)
		if res.Status != "success" || len(res.Data) != 3 {
			t.Fatalf("post data: %+v", res)
		}
		for _, p := range []string{"data_type", "data", "topic", "timeout"} {
			if fmt.Sprint(res.Parameter[p]) != fmt.Sprint(params[p]) {
				t.Errorf("action_result.parameter.%s = %v, want %v", p, res.Parameter[p], params[p])
			}
		}
		for i, d := range res.Data {
			for _, k := range []string{"partition", "offset", "timestamp", "topic", "topic_partition", "serialized_key_size", "serialized_value_size", "checksum"} {
				if _, ok := d[k]; !ok {
					t.Errorf("data[%d] lacks %s: %v", i, k, d)
				}
			}
		}
		recs := consume(t, srv.Broker, "soar-posted", 3)
		var got []string
		for _, r := range recs {
			var v any
			if err := json.Unmarshal(r.Value, &v); err != nil {
				t.Fatalf("message %q is not JSON: %v", r.Value, err)
			}
			c, _ := json.Marshal(v)
			got = append(got, string(c))
		}
		if want := []string{`{"alert":1}`, `{"alert":2}`, `"three"`}; !reflect.DeepEqual(got, want) {
			t.Fatalf("Kafka holds %q, want %q", got, want)
		}
		for i, r := range recs {
			if off, _ := res.Data[i]["offset"].(float64); int64(off) != r.Offset {
				t.Errorf("message %d: the app reported offset %v, Kafka has %d", i, res.Data[i]["offset"], r.Offset)
			}
		}
		// The Kafka app's text mode and a bad topic.
		res = app.run("post_data", stored, map[string]any{"data_type": "string", "data": "plain text", "topic": "soar-posted"}, nil)
		if res.Status != "success" {
			t.Fatalf("post a string: %+v", res)
		}
		if recs := consume(t, srv.Broker, "soar-posted", 4); string(recs[3].Value) != "plain text" {
			t.Fatalf("the string message reads %q", recs[3].Value)
		}
		res = app.run("post_data", stored, map[string]any{"data_type": "JSON", "data": "[1", "topic": "soar-posted"}, nil)
		if res.Status != "failed" || res.Message == "" {
			t.Fatalf("bad JSON: want a failure with a message, got %+v", res)
		}
	})

	t.Run("list topics", func(t *testing.T) {
		inline := app.config(map[string]any{"hosts": srv.Broker, "topic": "soar-posts"})
		for name, cfg := range map[string]map[string]any{"stored": stored, "inline": inline} {
			res := app.run("list_topics", cfg, map[string]any{"topic": "soar-posted"}, nil)
			if res.Status != "success" || len(res.Data) != 1 {
				t.Fatalf("%s: list topics soar-posted: %+v", name, res)
			}
			row := res.Data[0]
			if row["topic"] != "soar-posted" || row["partition"] != float64(0) || row["earliest_offset"] != float64(0) ||
				row["latest_offset"] != float64(4) || row["messages"] != float64(4) {
				t.Errorf("%s: soar-posted row %v, want partition 0 with offsets 0 to 4 (the 4 posted messages)", name, row)
			}
		}
		res := app.run("list_topics", stored, map[string]any{}, nil)
		topics := map[any]bool{}
		for _, row := range res.Data {
			topics[row["topic"]] = true
		}
		if res.Status != "success" || !topics["soar-posts"] || !topics["soar-posted"] || res.Summary["total_topics"] != float64(len(topics)) {
			t.Fatalf("list topics: %+v", res)
		}
	})

	t.Run("test parser", func(t *testing.T) {
		res := app.run("test_parser", stored, map[string]any{"messages": `["first", {"second": 2}]`}, nil)
		if res.Status != "success" || len(res.Data) != 1 {
			t.Fatalf("test parser: %+v", res)
		}
		arts, _ := res.Data[0]["artifacts"].([]any)
		if len(arts) != 2 || res.Summary["artifacts"] != float64(2) || res.Summary["parser"] != "default" {
			t.Fatalf("test parser made %+v", res)
		}
		if name := arts[0].(map[string]any)["name"]; name != "first" {
			t.Errorf("first artifact's name %v", name)
		}
		broken := "package p\nfunc ParseMessages(topic string) {}\n"
		res = app.run("test_parser", stored, map[string]any{"source": broken, "messages": "x"}, nil)
		if res.Status != "failed" || !strings.Contains(res.Message, "failed") {
			t.Fatalf("a broken parser: want a failure, got %+v", res)
		}
	})
}

// docBlock returns the code block between <!-- name:begin --> and
// <!-- name:end --> in docs/splunk-soar.md.
func docBlock(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../docs/splunk-soar.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "<!-- "+name+":begin -->")
	block, _, ok2 := strings.Cut(rest, "<!-- "+name+":end -->")
	if !ok || !ok2 {
		t.Fatalf("docs/splunk-soar.md has no %s block", name)
	}
	block = strings.TrimSpace(block)
	block = block[strings.Index(block, "\n")+1:]
	return strings.TrimSuffix(block, "```")
}

// TestSplunkSOARPortingGuide: the porting guide's kafka_parser.py and its
// Go port, as docs/splunk-soar.md prints them, make the same containers
// and artifacts from the same messages: the Python one run as the Kafka
// app 2.x ran it, the Go one through the app's test parser action.
func TestSplunkSOARPortingGuide(t *testing.T) {
	python := testenv.Python(t)
	srv := startServer(t)
	app := newSoarApp(t, python, srv)
	createAsset(t, srv, "porting", map[string]any{"hosts": srv.Broker, "topic": "alerts"})
	values := []map[string]any{
		{"alert_id": 1, "rule": "brute force", "score": 91, "src": "10.0.0.1", "dst": "10.0.0.2"},
		{"alert_id": 2, "score": 10, "src": "10.0.0.3", "dst": "10.0.0.4"},
	}
	vb, _ := json.Marshal(values)

	script := docBlock(t, "porting-python") + `
import sys
values = json.loads(sys.argv[1])
messages = [{"message": json.dumps(v, separators=(",", ":")), "partition": 0, "offset": i} for i, v in enumerate(values)]
print(json.dumps(parse_messages("alerts", messages)))
`
	out, err := exec.Command(python, "-c", script, string(vb)).CombinedOutput()
	if err != nil {
		t.Fatalf("the Python parser: %v\n%s", err, out)
	}
	var want []any
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(want) != len(values) {
		t.Fatalf("the Python parser made %d results from %d messages", len(want), len(values))
	}

	res := app.run("test_parser", app.config(map[string]any{"asset": "porting"}),
		map[string]any{"source": docBlock(t, "porting-go"), "messages": string(vb), "topic": "alerts"}, nil)
	if res.Status != "success" {
		t.Fatalf("the Go parser through test parser: %+v", res)
	}
	got := make([]any, len(res.Data))
	for i, d := range res.Data {
		got[i] = d
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Fatalf("the Go port made\n%s\nthe Python parser\n%s", g, w)
	}
}

// soarkafkaStored is every container of a soarkafka asset with all its
// artifacts, by container id.
func soarkafkaStored(t *testing.T, srv *testenv.Soarkafka, asset string) (map[string]map[string]any, map[string][]map[string]any) {
	t.Helper()
	var cs struct {
		Data []map[string]any `json:"data"`
	}
	api(t, srv, "GET", "/v1/containers?asset="+asset+"&page_size=1000", nil, &cs)
	containers := map[string]map[string]any{}
	for _, c := range cs.Data {
		containers[fmt.Sprint(c["id"])] = c
	}
	artifacts := map[string][]map[string]any{}
	for page := 0; ; page++ {
		var as struct {
			NumPages int              `json:"num_pages"`
			Data     []map[string]any `json:"data"`
		}
		api(t, srv, "GET", fmt.Sprintf("/v1/artifacts?asset=%s&page_size=1000&page=%d", asset, page), nil, &as)
		for _, a := range as.Data {
			k := fmt.Sprint(a["container"])
			artifacts[k] = append(artifacts[k], a)
		}
		if page+1 >= as.NumPages {
			break
		}
	}
	return containers, artifacts
}

// Members soarkafka adds that SOAR's container or artifact does not take.
var (
	soarkafkaContainerOnly = map[string]bool{"id": true, "kafka_asset": true, "create_time": true, "update_time": true, "artifact_count": true, "source_data_identifier": true, "label": true}
	soarkafkaArtifactOnly  = map[string]bool{"id": true, "container": true, "kafka_asset": true, "create_time": true, "update_time": true}
)

// checkSaved compares the stand-in SOAR's containers and artifacts with
// soarkafka's, field by field: every SOAR field soarkafka has is saved with
// the same value, soarkafka's own members are not sent, the container's
// source_data_identifier derives from soarkafka's id and its label is the
// SOAR ingest label, and nothing is saved twice.
func checkSaved(t *testing.T, store soarStore, containers map[string]map[string]any, artifacts map[string][]map[string]any) {
	t.Helper()
	bySDI := map[string]map[string]any{}
	for _, c := range store.Containers {
		sdi, _ := c["source_data_identifier"].(string)
		if bySDI[sdi] != nil {
			t.Errorf("two SOAR containers with source_data_identifier %q", sdi)
		}
		bySDI[sdi] = c
	}
	soarArtifacts := map[float64][]map[string]any{}
	for _, a := range store.Artifacts {
		id := a["container_id"].(float64)
		soarArtifacts[id] = append(soarArtifacts[id], a)
	}
	total := 0
	for id, sk := range containers {
		c := bySDI[fmt.Sprintf(soarContainerSDI, id)]
		if c == nil {
			t.Errorf("soarkafka container %s was not saved in SOAR", id)
			continue
		}
		if c["label"] != soarIngestLabel {
			t.Errorf("container %s: label %v, want the SOAR ingest label %q", id, c["label"], soarIngestLabel)
		}
		for k, v := range sk {
			if soarkafkaContainerOnly[k] {
				continue
			}
			if !reflect.DeepEqual(c[k], v) {
				t.Errorf("container %s: %s = %#v in SOAR, %#v in soarkafka", id, k, c[k], v)
			}
		}
		for k := range c {
			if _, ok := sk[k]; !ok && k != "id" && k != "asset_id" && k != "label" && k != "source_data_identifier" {
				t.Errorf("container %s: SOAR got %s, which soarkafka's container lacks", id, k)
			}
		}
		saved := map[string]map[string]any{}
		for _, a := range soarArtifacts[c["id"].(float64)] {
			sdi := a["source_data_identifier"].(string)
			if saved[sdi] != nil {
				t.Errorf("container %s: artifact %s saved twice", id, sdi)
			}
			saved[sdi] = a
		}
		if len(saved) != len(artifacts[id]) {
			t.Errorf("container %s: %d artifacts in SOAR, %d in soarkafka", id, len(saved), len(artifacts[id]))
		}
		for _, ska := range artifacts[id] {
			total++
			a := saved[ska["source_data_identifier"].(string)]
			if a == nil {
				t.Errorf("container %s: artifact %v not saved", id, ska["source_data_identifier"])
				continue
			}
			for k, v := range ska {
				if soarkafkaArtifactOnly[k] {
					if _, sent := a[k]; sent && k != "id" {
						t.Errorf("artifact %v: soarkafka's %s was sent to SOAR", ska["id"], k)
					}
					continue
				}
				if !reflect.DeepEqual(a[k], v) {
					t.Errorf("artifact %v: %s = %#v in SOAR, %#v in soarkafka", ska["id"], k, a[k], v)
				}
			}
		}
	}
	if len(store.Containers) != len(containers) {
		t.Errorf("SOAR holds %d containers, soarkafka %d", len(store.Containers), len(containers))
	}
	if len(store.Artifacts) != total {
		t.Errorf("SOAR holds %d artifacts, soarkafka %d", len(store.Artifacts), total)
	}
}

func cursorOf(state map[string]any, key string) string {
	cursors, _ := state["cursors"].(map[string]any)
	c, _ := cursors[key].(string)
	return c
}

// TestSplunkSOARAppOnPoll: on poll through the app saves what soarkafka
// stored, field by field; poll now shows the first messages and moves no
// cursor; a run killed between its saves and save_state, run again, saves
// nothing twice; an inline asset polls under SOAR's asset id.
func TestSplunkSOARAppOnPoll(t *testing.T) {
	python := testenv.Python(t)
	srv := startServer(t)
	app := newSoarApp(t, python, srv)
	createAsset(t, srv, "alerts", map[string]any{"hosts": srv.Broker, "topic": "soar-alerts", "read_from_beginning": true,
		"ingest": map[string]any{"batch_size": 7}})
	cfg := app.config(map[string]any{"asset": "alerts"})
	produce(t, srv.Broker, "soar-alerts", "alert", 20)

	// Poll now first: the first 5 messages are shown, no cursor is kept.
	res := app.run("on_poll", cfg, map[string]any{"container_count": 1, "artifact_count": 5}, map[string]any{"is_poll_now": true})
	if res.Status != "success" || res.Summary["artifacts_saved"] != float64(5) {
		t.Fatalf("poll now: %+v", res)
	}
	store := app.store()
	if len(store.Artifacts) != 5 {
		t.Fatalf("poll now saved %d artifacts, want 5", len(store.Artifacts))
	}
	for i, a := range store.Artifacts {
		if want := fmt.Sprintf("0:%d", i); a["source_data_identifier"] != want {
			t.Errorf("poll now artifact %d is %v, want %s", i, a["source_data_identifier"], want)
		}
	}
	if c := cursorOf(app.state(), "alerts"); c != "" {
		t.Fatalf("poll now moved the cursor to %q", c)
	}

	// A scheduled poll: soarkafka polls, the app pulls and saves it all.
	res = app.scheduledPoll(cfg)
	if res.Status != "success" {
		t.Fatalf("on poll: %+v", res)
	}
	containers, artifacts := soarkafkaStored(t, srv, "alerts")
	checkSaved(t, app.store(), containers, artifacts)
	if n := len(app.store().Artifacts); n != 20 {
		t.Fatalf("SOAR holds %d artifacts after the poll, want the 20 messages", n)
	}
	cursor := cursorOf(app.state(), "alerts")
	if cursor == "" {
		t.Fatal("no cursor saved after a successful poll")
	}

	// get ingest status: soarkafka's status of the stored asset.
	res = app.run("get_ingest_status", cfg, map[string]any{}, nil)
	if res.Status != "success" || len(res.Data) != 1 || res.Summary["lag"] != float64(0) ||
		res.Summary["app_cursor_saved"] != true || res.Summary["last_poll_status"] != "success" {
		t.Fatalf("get ingest status: %+v", res)
	}
	if parts, _ := res.Data[0]["partitions"].([]any); len(parts) != 1 || parts[0].(map[string]any)["stored_offset"] != float64(20) {
		t.Fatalf("get ingest status partitions: %+v", res.Data[0]["partitions"])
	}

	// A run killed between its saves and save_state.
	produce(t, srv.Broker, "soar-alerts", "late", 9)
	before := app.store().Duplicates
	_, err := app.exec(map[string]any{"identifier": "on_poll", "config": cfg, "asset_id": "7", "is_poll_now": false,
		"parameters": []any{map[string]any{"container_count": scheduledCount, "artifact_count": scheduledCount}}},
		"PHANTOM_STANDIN_KILL_ON_SAVE_STATE=1")
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("the run was to be killed at save_state, got %v", err)
	}
	if got := app.store(); len(got.Artifacts) != 29 {
		t.Fatalf("the killed run saved %d artifacts in all, want 29 before it died", len(got.Artifacts))
	}
	if c := cursorOf(app.state(), "alerts"); c != cursor {
		t.Fatalf("the killed run's cursor was saved: %q, was %q", c, cursor)
	}
	// The retry meets the duplicate rule; SOAR's other form of the answer
	// (failed status, "Duplicate container found", the existing id) too.
	retry, err := app.exec(map[string]any{"identifier": "on_poll", "config": cfg, "asset_id": "7", "is_poll_now": false,
		"parameters": []any{map[string]any{"container_count": scheduledCount, "artifact_count": scheduledCount}}},
		"PHANTOM_STANDIN_DUPLICATE_STATUS=error")
	if err != nil {
		t.Fatal(err)
	}
	if res = retry.ActionResults[0]; res.Status != "success" {
		t.Fatalf("the run after the kill: %+v", res)
	}
	after := app.store()
	if after.Duplicates["container"] <= before["container"] || after.Duplicates["artifact"] <= before["artifact"] {
		t.Fatalf("the retry did not meet SOAR's duplicate rules (duplicates %v, before %v): it did not pull the same items again", after.Duplicates, before)
	}
	containers, artifacts = soarkafkaStored(t, srv, "alerts")
	checkSaved(t, after, containers, artifacts)
	if cursorOf(app.state(), "alerts") == cursor {
		t.Fatal("the cursor did not move after the retried run")
	}

	// Nothing new: a poll saves nothing and keeps the cursor.
	res = app.scheduledPoll(cfg)
	if res.Status != "success" || res.Summary["containers_saved"] != float64(0) {
		t.Fatalf("an idle poll: %+v", res)
	}

	// An asset soarkafka's scheduler polls: the app only pulls, it asks for
	// no poll.
	createAsset(t, srv, "scheduled", map[string]any{"hosts": srv.Broker, "topic": "soar-scheduled", "read_from_beginning": true,
		"ingest": map[string]any{"interval": "24h"}})
	polls := strings.Count(srv.Logs(), `"path":"/v1/actions/on_poll"`)
	res = app.scheduledPoll(app.config(map[string]any{"asset": "scheduled"}))
	if res.Status != "success" {
		t.Fatalf("on poll of a scheduled asset: %+v", res)
	}
	if n := strings.Count(srv.Logs(), `"path":"/v1/actions/on_poll"`); n != polls {
		t.Fatalf("the app asked soarkafka to poll an asset its scheduler polls (%d on_poll requests, was %d)", n, polls)
	}
	if n := strings.Count(srv.Logs(), `"path":"/v1/pull"`); n == 0 {
		t.Fatal("the app did not pull")
	}

	// An inline asset (the Kafka app's fields): soarkafka keeps it as soar:7.
	produce(t, srv.Broker, "soar-inline", "inline", 4)
	inline := app.config(map[string]any{"hosts": srv.Broker, "topic": "soar-inline", "read_from_beginning": true, "timeout": 5000})
	res = app.scheduledPoll(inline)
	if res.Status != "success" || res.Summary["artifacts_saved"] != float64(4) {
		t.Fatalf("inline on poll: %+v", res)
	}
	if cursorOf(app.state(), "soar:7") == "" {
		t.Fatal("no cursor kept for the inline asset")
	}
	var cs struct {
		Data []map[string]any `json:"data"`
	}
	api(t, srv, "GET", "/v1/containers?asset=soar:7&page_size=1000", nil, &cs)
	for _, c := range cs.Data {
		if c["label"] != soarIngestLabel {
			t.Errorf("inline container %v: soarkafka stored label %v, want the app-run document's ingest label", c["id"], c["label"])
		}
	}
	// get ingest status of the inline asset: the position kept under soar:7.
	res = app.run("get_ingest_status", inline, map[string]any{}, nil)
	if res.Status != "success" || len(res.Data) != 1 || res.Data[0]["asset"] != "soar:7" || res.Summary["lag"] != float64(0) ||
		res.Summary["app_cursor_saved"] != true {
		t.Fatalf("get ingest status of an inline asset: %+v", res)
	}
	if parts, _ := res.Data[0]["partitions"].([]any); len(parts) != 1 || parts[0].(map[string]any)["stored_offset"] != float64(4) {
		t.Fatalf("get ingest status of an inline asset, partitions: %+v", res.Data[0]["partitions"])
	}
}

// TestSplunkSOARAppBacklog: a backlog of 25,000 messages drains over runs
// bounded by max_artifacts_per_run, with nothing lost and nothing twice.
func TestSplunkSOARAppBacklog(t *testing.T) {
	python := testenv.Python(t)
	srv := startServer(t)
	app := newSoarApp(t, python, srv)
	const total, perRun = 25000, 6000
	createAsset(t, srv, "backlog", map[string]any{"hosts": srv.Broker, "topic": "soar-backlog", "read_from_beginning": true,
		"timeout": 20000, "ingest": map[string]any{"max_messages": total, "batch_size": 2500}})
	produce(t, srv.Broker, "soar-backlog", "m", total)
	cfg := app.config(map[string]any{"asset": "backlog", "max_artifacts_per_run": perRun})
	saved := 0
	for run := 1; saved < total; run++ {
		if run > 10 {
			t.Fatalf("after %d runs SOAR holds %d of %d artifacts", run-1, saved, total)
		}
		res := app.scheduledPoll(cfg)
		if res.Status != "success" {
			t.Fatalf("run %d: %+v", run, res)
		}
		n := int(res.Summary["artifacts_saved"].(float64))
		if n > perRun {
			t.Fatalf("run %d saved %d artifacts, over max_artifacts_per_run %d", run, n, perRun)
		}
		if n == 0 {
			t.Fatalf("run %d saved nothing with %d of %d saved", run, saved, total)
		}
		saved += n
	}
	store := app.store()
	seen := make(map[string]bool, total)
	for _, a := range store.Artifacts {
		sdi := a["source_data_identifier"].(string)
		if seen[sdi] {
			t.Fatalf("artifact %s saved twice", sdi)
		}
		seen[sdi] = true
	}
	for i := 0; i < total; i++ {
		if !seen[fmt.Sprintf("0:%d", i)] {
			t.Fatalf("message 0:%d never reached SOAR (%d saved)", i, len(seen))
		}
	}
	if res := app.scheduledPoll(cfg); res.Status != "success" || res.Summary["artifacts_saved"] != float64(0) {
		t.Fatalf("a poll after the drain: %+v", res)
	}
}

// TestSplunkSOARAppPython: the connector parses as Python 3.9 (the oldest
// Python SOAR runs apps on) and imports only the standard library,
// requests and SOAR's phantom package: what SOAR ships.
func TestSplunkSOARAppPython(t *testing.T) {
	python := testenv.Python(t)
	script := `import ast, sys
src = open(sys.argv[1]).read()
tree = ast.parse(src, feature_version=(3, 9))
bad = []
for node in ast.walk(tree):
    names = []
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0:
        names = [node.module]
    for n in names:
        top = n.split(".")[0]
        if top not in sys.stdlib_module_names and top not in ("requests", "phantom"):
            bad.append(n)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr) and isinstance(node.left, ast.Name) and node.left.id in ("str", "int", "dict", "list", "None"):
        bad.append("X | Y type union at line %d" % node.lineno)
print("\n".join(bad))
`
	out, err := exec.Command(python, "-c", script, filepath.Join(soarAppDir, "soarkafka_connector.py")).CombinedOutput()
	if err != nil {
		t.Fatalf("the connector is not Python 3.9: %v\n%s", err, out)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Fatalf("the connector needs what SOAR does not ship:\n%s", s)
	}
}
