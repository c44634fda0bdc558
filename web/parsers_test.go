package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/soarkafka/soarkafka/internal/testenv"
)

const goodParser = `package parser

import (
	"strings"

	"github.com/soarkafka/soarkafka/soar"
)

func ParseMessages(topic string, messages []soar.Message) ([]soar.Result, error) {
	var arts []soar.Artifact
	for _, m := range messages {
		arts = append(arts, soar.Artifact{Name: strings.ToUpper(soar.Truncate(m.Message, 10)), SourceDataIdentifier: m.SourceID(),
			CEF: map[string]any{"message": m.Message}})
	}
	return []soar.Result{{Container: soar.Container{Name: "from " + topic}, Artifacts: arts}}, nil
}
`

func TestParsersAPI(t *testing.T) {
	e := newEnv(t, testenv.SQLiteURL(t))

	code, out := e.do("GET", "/v1/parsers", nil)
	names := map[string]bool{}
	for _, p := range out["data"].([]any) {
		names[p.(map[string]any)["name"].(string)] = p.(map[string]any)["bundled"] == true
	}
	if code != 200 || !names["default"] || !names["cloudtrail"] || !names["ndjson"] || !names["ocsf"] {
		t.Fatalf("list: %d %v", code, names)
	}
	code, out = e.do("GET", "/v1/parsers/default", nil)
	if code != 200 || out["bundled"] != true || !strings.Contains(out["source"].(string), "func ParseMessages") {
		t.Fatalf("bundled: %d %v", code, out)
	}

	code, out = e.do("POST", "/v1/parsers", map[string]any{"name": "upper", "description": "d", "source": goodParser})
	if code != 201 || out["version"] != float64(1) || out["source"] != goodParser {
		t.Fatalf("create: %d %v", code, out)
	}
	v2 := strings.Replace(goodParser, `"from "`, `"v2 from "`, 1)
	code, out = e.do("PUT", "/v1/parsers/upper", map[string]any{"description": "d2", "source": v2})
	if code != 200 || out["version"] != float64(2) {
		t.Fatalf("update: %d %v", code, out)
	}
	code, out = e.do("GET", "/v1/parsers/upper/versions", nil)
	if code != 200 || out["count"] != float64(2) {
		t.Fatalf("versions: %d %v", code, out)
	}
	code, out = e.do("GET", "/v1/parsers/upper/versions/1", nil)
	if code != 200 || out["source"] != goodParser {
		t.Fatalf("version 1: %d %v", code, out)
	}
	if code, _ := e.do("GET", "/v1/parsers/upper/versions/3", nil); code != 404 {
		t.Fatalf("version 3: %d", code)
	}

	// Every save is checked: imports and lines are named.
	bad := strings.Replace(goodParser, `"strings"`, `"os"`, 1)
	code, out = e.do("POST", "/v1/parsers", map[string]any{"name": "bad", "source": bad})
	if code != 400 || !strings.Contains(errText(out), `source:4:2:`) || !strings.Contains(errText(out), `"os"`) {
		t.Fatalf("refused import: %d %v", code, out)
	}
	// And run on the sample batch: a parser that panics on it is refused.
	panics := strings.Replace(goodParser, "var arts []soar.Artifact", "var arts []soar.Artifact\n\t_ = messages[10]", 1)
	code, out = e.do("POST", "/v1/parsers", map[string]any{"name": "panics", "source": panics})
	if code != 400 || !strings.Contains(errText(out), "index out of range") {
		t.Fatalf("panic on the sample: %d %v", code, out)
	}
	if code, _ := e.do("POST", "/v1/parsers", map[string]any{"name": "default", "source": goodParser}); code != 409 {
		t.Fatalf("bundled name: %d", code)
	}
	if code, _ := e.do("DELETE", "/v1/parsers/default", nil); code != 400 {
		t.Fatalf("delete bundled: %d", code)
	}

	// A .go file uploaded as multipart.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("name", "uploaded")
	fw, _ := mw.CreateFormFile("file", "uploaded.go")
	io.WriteString(fw, goodParser)
	mw.Close()
	req, _ := http.NewRequest("POST", e.srv.URL+"/v1/parsers", &body)
	req.Header.Set("ph-auth-token", token)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("multipart upload: %d", resp.StatusCode)
	}

	// An asset's message_parser must name a parser that exists.
	code, out = e.do("POST", "/v1/assets", asset("x", map[string]any{"hosts": "h:1", "topic": "t", "message_parser": "nope"}))
	if code != 400 || !strings.Contains(errText(out), `message_parser: no parser named "nope"`) {
		t.Fatalf("unknown parser: %d %v", code, out)
	}
	if code, out := e.do("POST", "/v1/assets", asset("y", map[string]any{"hosts": "h:1", "topic": "t", "message_parser": "default"})); code != 201 {
		t.Fatalf("bundled parser: %d %v", code, out)
	}

	// In use by an asset: delete refused, naming it.
	if code, out := e.do("POST", "/v1/assets", asset("feed", map[string]any{"hosts": "h:1", "topic": "t", "message_parser": "upper"})); code != 201 {
		t.Fatal(code, out)
	}
	code, out = e.do("DELETE", "/v1/parsers/upper", nil)
	if code != 409 || !strings.Contains(errText(out), "used by asset feed") {
		t.Fatalf("delete in use: %d %v", code, out)
	}
	if code, _ := e.do("DELETE", "/v1/parsers/uploaded", nil); code != 204 {
		t.Fatalf("delete: %d", code)
	}
}

func TestParserPlayground(t *testing.T) {
	e := newEnv(t, testenv.SQLiteURL(t))
	msgs := []any{map[string]any{"value": "hello world", "key": "k", "partition": 2, "offset": 40}, map[string]any{"value": map[string]any{"a": 1}}}

	code, out := e.do("POST", "/v1/parsers/test", map[string]any{"source": goodParser, "topic": "alerts", "messages": msgs})
	if code != 200 || out["error"] != nil {
		t.Fatalf("source: %d %v", code, out)
	}
	results, _ := json.Marshal(out["run"].(map[string]any)["results"])
	if !strings.Contains(string(results), `"name":"from alerts"`) || !strings.Contains(string(results), `"source_data_identifier":"2:40"`) ||
		!strings.Contains(string(results), `"message":"{\"a\":1}"`) || !strings.Contains(string(results), `"name":"HELLO WORL"`) {
		t.Fatalf("results %s", results)
	}

	code, out = e.do("POST", "/v1/parsers/test", map[string]any{"parser": "default", "messages": msgs})
	if code != 200 || out["run"].(map[string]any)["native"] != true {
		t.Fatalf("bundled: %d %v", code, out)
	}

	// A failing parser is an answer, not an HTTP error: kind, message, line.
	panics := strings.Replace(goodParser, "var arts []soar.Artifact", "var arts []soar.Artifact\n\tvar m map[string]int\n\tm[\"x\"] = 1", 1)
	code, out = e.do("POST", "/v1/parsers/test", map[string]any{"source": panics, "messages": msgs})
	perr, _ := out["error"].(map[string]any)
	if code != 200 || perr == nil || perr["kind"] != "panic" || !strings.Contains(perr["message"].(string), "nil map") ||
		!strings.Contains(perr["message"].(string), "batch of 2 from playground 2:40") {
		t.Fatalf("panic: %d %v", code, out)
	}
	code, out = e.do("POST", "/v1/parsers/test", map[string]any{"source": strings.Replace(goodParser, `"strings"`, `"net/http"`, 1), "messages": msgs})
	perr, _ = out["error"].(map[string]any)
	if code != 200 || perr == nil || perr["kind"] != "check" || len(perr["problems"].([]any)) == 0 {
		t.Fatalf("check: %d %v", code, out)
	}
	if code, _ := e.do("POST", "/v1/parsers/test", map[string]any{"parser": "nope", "messages": msgs}); code != 404 {
		t.Fatalf("unknown parser: %d", code)
	}
	if code, _ := e.do("POST", "/v1/parsers/test", map[string]any{"source": goodParser}); code != 400 {
		t.Fatalf("no messages: %d", code)
	}
}

// The playground reads live messages from an asset's topic and commits
// nothing: no consumer group appears on the cluster.
func TestParserPlaygroundLiveSample(t *testing.T) {
	c := testenv.NewKafka(t, kfake.SeedTopics(2, "alerts"))
	for p := range int32(2) {
		testenv.ProduceKafkaRecords(t, c, "alerts", p, 15)
	}
	e := newEnv(t, testenv.SQLiteURL(t))
	if code, out := e.do("POST", "/v1/assets", asset("live", map[string]any{"hosts": c.ListenAddrs()[0], "topic": "alerts"})); code != 201 {
		t.Fatal(code, out)
	}
	for _, tt := range []struct {
		from  string
		count int
		want  int
	}{{"latest", 20, 20}, {"earliest", 5, 5}, {"latest", 100, 30}} {
		code, out := e.do("POST", "/v1/parsers/test", map[string]any{"parser": "default", "asset": "live", "sample": map[string]any{"from": tt.from, "count": tt.count}})
		if code != 200 || out["messages"] != float64(tt.want) || out["error"] != nil {
			t.Fatalf("%s %d: %d %v", tt.from, tt.count, code, out)
		}
		arts := out["run"].(map[string]any)["results"].([]any)[0].(map[string]any)["artifacts"].([]any)
		if len(arts) != tt.want {
			t.Fatalf("%s: %d artifacts", tt.from, len(arts))
		}
	}
	cl := testenv.KafkaClient(t, c)
	groups, err := kadm.NewClient(cl).ListGroups(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 0 {
		t.Fatalf("the playground left consumer groups: %v", groups.Groups())
	}
	if code, out := e.do("POST", "/v1/parsers/test", map[string]any{"parser": "default", "asset": "live", "sample": map[string]any{"from": "middle"}}); code != 400 {
		t.Fatalf("bad sample: %d %v", code, out)
	}
}

// The asset's ingest.parser_timeout bounds its parser on a sample: a parser
// that never returns is stopped then, and the answer says so.
func TestParserPlaygroundAssetDeadline(t *testing.T) {
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "alerts"))
	testenv.ProduceKafkaRecords(t, c, "alerts", 0, 3)
	e := newEnv(t, testenv.SQLiteURL(t))
	cfg := map[string]any{"hosts": c.ListenAddrs()[0], "topic": "alerts", "ingest": map[string]any{"parser_timeout": 300}}
	if code, out := e.do("POST", "/v1/assets", asset("slow", cfg)); code != 201 {
		t.Fatal(code, out)
	}
	forever := strings.Replace(goodParser, "var arts []soar.Artifact", "for {\n\t}\n\tvar arts []soar.Artifact", 1)
	start := time.Now()
	code, out := e.do("POST", "/v1/parsers/test", map[string]any{"source": forever, "asset": "slow"})
	perr, _ := out["error"].(map[string]any)
	if code != 200 || perr == nil || perr["kind"] != "timeout" {
		t.Fatalf("%d %v", code, out)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("stopped after %s with a 300ms deadline", took)
	}
}
