package web_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/soarkafka/soarkafka/internal/testenv"
)

// recordsEnv is a server with an asset "k" on a fresh kfake cluster.
func recordsEnv(t *testing.T, producer map[string]any, opts ...kfake.Opt) (*env, *kfake.Cluster) {
	t.Helper()
	c := testenv.NewKafka(t, append([]kfake.Opt{kfake.SeedTopics(3, "events", "other")}, opts...)...)
	e := newEnv(t, testenv.SQLiteURL(t))
	cfg := map[string]any{"hosts": c.ListenAddrs()[0], "topic": "events"}
	if producer != nil {
		cfg["producer"] = producer
	}
	if code, out := e.do("POST", "/v1/assets", asset("k", cfg)); code != 201 {
		t.Fatalf("create asset: %d %v", code, out)
	}
	return e, c
}

// postNDJSON posts body to the records endpoint and returns the status and
// the answer's lines: results, then the summary.
func (e *env) postNDJSON(query string, body io.Reader, header map[string]string) (int, []map[string]any, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.srv.URL+"/v1/assets/k/records"+query, body)
	req.Header.Set("ph-auth-token", token)
	req.Header.Set("Content-Type", "application/x-ndjson")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var lines []map[string]any
	var summary map[string]any
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			e.t.Fatalf("answer line is not JSON: %s", sc.Bytes())
		}
		if s, ok := m["summary"].(map[string]any); ok {
			summary = s
			continue
		}
		if summary != nil {
			e.t.Fatalf("a result after the summary: %v", m)
		}
		lines = append(lines, m)
	}
	if resp.StatusCode == 200 && summary == nil {
		e.t.Fatal("no summary line")
	}
	return resp.StatusCode, lines, summary
}

func consumeAll(t *testing.T, c *kfake.Cluster, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := testenv.KafkaClient(t, c, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(recs), n, err)
		}
		recs = append(recs, fs.Records()...)
	}
	// Nothing more than n.
	short, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	recs = append(recs, cl.PollFetches(short).Records()...)
	return recs
}

func eventLines(n int) (string, []string) {
	var b strings.Builder
	var vals []string
	for i := range n {
		// Up to 2 KB each: a few thousand lines fill several of the
		// reader's blocks, which are reused while records are in flight.
		v := fmt.Sprintf(`{"_raw":"event %d","host":"h%d","n":%d,"pad":"%s"}`, i, i%7, i, strings.Repeat("p", i*37%2000))
		vals = append(vals, v)
		b.WriteString(v + "\n")
	}
	return b.String(), vals
}

func TestRecordsEvents(t *testing.T) {
	t.Parallel()
	e, c := recordsEnv(t, nil)
	const n = 4000 // 4 MB: the values are cut from 16 blocks, reused as records are acknowledged
	body, vals := eventLines(n)
	code, lines, sum := e.postNDJSON("", strings.NewReader(body), nil)
	if code != 200 || sum["status"] != "success" || sum["records"] != float64(n) || sum["succeeded"] != float64(n) || sum["topic"] != "events" {
		t.Fatalf("%d %v", code, sum)
	}
	if len(lines) != n {
		t.Fatalf("%d result lines, want %d", len(lines), n)
	}
	// Each result names its line and where it landed.
	where := map[string]float64{}
	for _, l := range lines {
		if l["status"] != "success" {
			t.Fatalf("result %v", l)
		}
		where[fmt.Sprintf("%v:%v", l["partition"], l["offset"])] = l["line"].(float64)
	}
	recs := consumeAll(t, c, "events", n)
	if len(recs) != n {
		t.Fatalf("consumed %d records", len(recs))
	}
	// Every value is its line: none was overwritten by a reused block.
	for _, r := range recs {
		line, ok := where[fmt.Sprintf("%d:%d", r.Partition, r.Offset)]
		if !ok || string(r.Value) != vals[int(line)-1] {
			t.Fatalf("record %d:%d = %s does not match line %v", r.Partition, r.Offset, r.Value, line)
		}
	}
}

func TestRecordsGzipAndCriblHeader(t *testing.T) {
	t.Parallel()
	e, c := recordsEnv(t, nil)
	body, _ := eventLines(8)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`{"format":"ndjson","count":8,"size":3960}` + "\n" + body))
	zw.Close()

	// Gzip said in Content-Encoding, and detected by its magic bytes.
	for _, hdr := range []map[string]string{{"Content-Encoding": "gzip"}, nil} {
		code, lines, sum := e.postNDJSON("?results=failed", bytes.NewReader(gz.Bytes()), hdr)
		if code != 200 || sum["status"] != "success" || sum["records"] != float64(8) || len(lines) != 0 {
			t.Fatalf("%v: %d %v %v", hdr, code, lines, sum)
		}
	}
	recs := consumeAll(t, c, "events", 16)
	for _, r := range recs {
		if strings.Contains(string(r.Value), `"format"`) {
			t.Fatal("the Cribl header was sent as a record")
		}
	}

	// A header whose count disagrees is reported, never silently accepted.
	code, _, sum := e.postNDJSON("", strings.NewReader(`{"format":"ndjson","count":9,"size":1}`+"\n"+body), nil)
	if code != 200 || sum["status"] != "failed" || !strings.Contains(sum["message"].(string), "header says 9 events but the body has 8") {
		t.Fatalf("%d %v", code, sum)
	}
}

func TestRecordsBadLines(t *testing.T) {
	t.Parallel()
	e, c := recordsEnv(t, map[string]any{"max_message_bytes": 2048})
	body := `{"ok":1}` + "\n" +
		`{"broken":` + "\n" +
		"\n" + // blank lines are skipped
		`{"big":"` + strings.Repeat("x", 3000) + `"}` + "\n" +
		`{"huge":"` + strings.Repeat("y", 100<<10) + `"}` + "\n" +
		`{"ok":2}` // no final newline
	code, lines, sum := e.postNDJSON("?results=failed", strings.NewReader(body), nil)
	if code != 200 || sum["status"] != "failed" || sum["records"] != float64(5) || sum["failed"] != float64(3) || sum["succeeded"] != float64(2) {
		t.Fatalf("%d %v", code, sum)
	}
	errs := map[float64]string{}
	for _, l := range lines {
		errs[l["line"].(float64)] = l["error"].(string)
	}
	if !strings.Contains(errs[2], "not a JSON object or array") || !strings.Contains(errs[4], "over producer.max_message_bytes 2048") || !strings.Contains(errs[5], "longer than producer.max_message_bytes") || len(errs) != 3 {
		t.Fatalf("errors %v", errs)
	}
	recs := consumeAll(t, c, "events", 2)
	if len(recs) != 2 {
		t.Fatalf("%d records sent, want 2", len(recs))
	}
}

func TestRecordsEnvelope(t *testing.T) {
	t.Parallel()
	e, c := recordsEnv(t, nil)
	body := `{"value": {"a": 1, "b": [1, 2]}, "key": "k1", "headers": {"src": "soar", "id": "7"}, "partition": 2, "timestamp": "2026-01-02T03:04:05Z"}` + "\n" +
		`{"value": "plain text", "topic": "other", "timestamp": 1700000000000}` + "\n" +
		`{"value": {"x": 1}, "partition": 9}` + "\n" +
		`{"key": "no value"}` + "\n" +
		`{"value": 1, "colour": "red"}` + "\n"
	code, lines, sum := e.postNDJSON("?format=envelope", strings.NewReader(body), nil)
	if code != 200 || sum["succeeded"] != float64(2) || sum["failed"] != float64(3) {
		t.Fatalf("%d %v %v", code, lines, sum)
	}
	byLine := map[float64]map[string]any{}
	for _, l := range lines {
		byLine[l["line"].(float64)] = l
	}
	if byLine[1]["partition"] != float64(2) {
		t.Fatalf("explicit partition not honoured: %v", byLine[1])
	}
	if !strings.Contains(byLine[3]["error"].(string), "partition 9 does not exist") {
		t.Fatalf("line 3: %v", byLine[3])
	}
	if !strings.Contains(byLine[4]["error"].(string), "no value") || !strings.Contains(byLine[5]["error"].(string), "colour") {
		t.Fatalf("lines 4, 5: %v %v", byLine[4], byLine[5])
	}
	r := consumeAll(t, c, "events", 1)[0]
	if string(r.Value) != `{"a":1,"b":[1,2]}` || string(r.Key) != "k1" || r.Partition != 2 || !r.Timestamp.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Fatalf("record %+v", r)
	}
	if len(r.Headers) != 2 || r.Headers[0].Key != "id" || string(r.Headers[1].Value) != "soar" {
		t.Fatalf("headers %v", r.Headers)
	}
	o := consumeAll(t, c, "other", 1)[0]
	if string(o.Value) != "plain text" || o.Timestamp.UnixMilli() != 1700000000000 {
		t.Fatalf("other topic record %+v", o)
	}
}

// The endpoint streams: a body far over max_body_bytes (64 KiB in these
// tests) goes through.
// validate=full parses each line; the default light check looks at its
// shape and encoding only.
func TestRecordsValidation(t *testing.T) {
	t.Parallel()
	e, c := recordsEnv(t, nil)
	body := `{"a": 1}` + "\n" + `{"a": 1,, "b"}` + "\n" + `plain text` + "\n" + "{\"bad\": \"\xff\"}" + "\n" + `[1, 2]` + "\n"
	_, lines, sum := e.postNDJSON("?results=failed", strings.NewReader(body), nil)
	if sum["succeeded"] != float64(3) || sum["failed"] != float64(2) {
		t.Fatalf("light: %v %v", lines, sum)
	}
	_, lines, sum = e.postNDJSON("?results=failed&validate=full", strings.NewReader(body), nil)
	if sum["succeeded"] != float64(2) || sum["failed"] != float64(3) {
		t.Fatalf("full: %v %v", lines, sum)
	}
	for _, l := range lines {
		if l["line"] == float64(2) && !strings.Contains(l["error"].(string), "not valid JSON") {
			t.Fatalf("line 2: %v", l)
		}
	}
	if n := len(consumeAll(t, c, "events", 5)); n != 5 {
		t.Fatalf("consumed %d, want 3 + 2", n)
	}
	if code, _, _ := e.postNDJSON("?validate=maybe", strings.NewReader("{}"), nil); code != 400 {
		t.Fatalf("validate=maybe: %d", code)
	}
}

func TestRecordsNotLimitedAsAWhole(t *testing.T) {
	t.Parallel()
	e, c := recordsEnv(t, nil)
	body, _ := eventLines(20000) // ~0.9 MB
	code, lines, sum := e.postNDJSON("?results=failed", strings.NewReader(body), nil)
	if code != 200 || sum["status"] != "success" || sum["succeeded"] != float64(20000) || len(lines) != 0 {
		t.Fatalf("%d %v", code, sum)
	}
	if n := len(consumeAll(t, c, "events", 20000)); n != 20000 {
		t.Fatalf("consumed %d", n)
	}
}

func TestRecordsRequestErrors(t *testing.T) {
	t.Parallel()
	e, _ := recordsEnv(t, nil)
	for _, tt := range []struct {
		query  string
		hdr    map[string]string
		body   string
		status int
		msg    string
	}{
		{"?format=csv", nil, "{}", 400, `format: "csv" is not events or envelope`},
		{"?results=some", nil, "{}", 400, "results:"},
		{"?topic=a%20b", nil, "{}", 400, "topic:"},
		{"", map[string]string{"Content-Encoding": "br"}, "{}", 400, `Content-Encoding "br" not supported`},
		{"", map[string]string{"Content-Encoding": "gzip"}, "not gzip", 400, "not gzip data"},
	} {
		code, _, _ := e.postNDJSON(tt.query, strings.NewReader(tt.body), tt.hdr)
		if code != tt.status {
			t.Errorf("%s %v: %d, want %d", tt.query, tt.hdr, code, tt.status)
		}
		req, _ := http.NewRequest("POST", e.srv.URL+"/v1/assets/k/records"+tt.query, strings.NewReader(tt.body))
		req.Header.Set("ph-auth-token", token)
		for k, v := range tt.hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if !strings.Contains(errText(out), tt.msg) {
			t.Errorf("%s: %v does not say %q", tt.query, out, tt.msg)
		}
	}
	req, _ := http.NewRequest("POST", e.srv.URL+"/v1/assets/nope/records", strings.NewReader("{}"))
	req.Header.Set("ph-auth-token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("unknown asset: %d", resp.StatusCode)
	}

	// A gzip body that breaks halfway: what came before is sent, and the
	// summary says the body could not be read to its end.
	body, _ := eventLines(50)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(body))
	zw.Close()
	cut := gz.Bytes()[:gz.Len()-12]
	_, _, sum := e.postNDJSON("?results=failed", bytes.NewReader(cut), map[string]string{"Content-Encoding": "gzip"})
	if sum["status"] != "failed" || !strings.Contains(sum["message"].(string), "reading the body") {
		t.Fatalf("truncated gzip: %v", sum)
	}
}

// Records to a topic the broker will not create fail, each reported.
func TestRecordsUnknownTopic(t *testing.T) {
	t.Parallel()
	e, _ := recordsEnv(t, nil)
	code, lines, sum := e.postNDJSON("?topic=missing", strings.NewReader("{}\n{}\n"), nil)
	if code != 200 || sum["status"] != "failed" || sum["failed"] != float64(2) || len(lines) != 2 {
		t.Fatalf("%d %v %v", code, lines, sum)
	}
	if !strings.Contains(lines[0]["error"].(string), `topic "missing" does not exist`) {
		t.Fatalf("error %v", lines[0])
	}
}

// A client that sends a line now and then has each line produced as it
// comes, not once a batch of them has gathered.
func TestRecordsTrickle(t *testing.T) {
	t.Parallel()
	e, c := recordsEnv(t, nil)
	pr, pw := io.Pipe()
	defer pw.Close() // on failure too, so that the request ends
	done := make(chan map[string]any, 1)
	go func() {
		_, _, sum := e.postNDJSON("?results=failed", pr, nil)
		done <- sum
	}()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("events"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range 3 {
		if _, err := fmt.Fprintf(pw, `{"trickle":%d}`+"\n", i); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		if err := fs.Err0(); err != nil {
			t.Fatalf("line %d was not produced while the body stayed open: %v", i+1, err)
		}
		if recs := fs.Records(); len(recs) != 1 || string(recs[0].Value) != fmt.Sprintf(`{"trickle":%d}`, i) {
			t.Fatalf("after line %d: %d records %v", i+1, len(recs), recs)
		}
	}
	pw.Close()
	if sum := <-done; sum["status"] != "success" || sum["succeeded"] != float64(3) {
		t.Fatalf("summary %v", sum)
	}
}

// A client that goes away mid-body ends the request: the handler returns
// (its reader goroutine with it), and what it read before is produced.
func TestRecordsClientGoesAway(t *testing.T) {
	t.Parallel()
	e, c := recordsEnv(t, nil)
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", e.srv.URL+"/v1/assets/k/records?results=failed", pr)
	req.Header.Set("ph-auth-token", token)
	sent := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		sent <- err
	}()
	body, _ := eventLines(300)
	if _, err := io.WriteString(pw, body); err != nil {
		t.Fatal(err)
	}
	if recs := consumeAll(t, c, "events", 300); len(recs) != 300 {
		t.Fatalf("%d records produced before the client went away, want 300", len(recs))
	}
	cancel() // the connection ends with the body still open
	// The client's transport waits for its body writer, which waits for
	// the pipe: end that too.
	pw.CloseWithError(errors.New("the client went away"))
	<-sent
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(e.logs.String(), `"path":"/v1/assets/k/records"`) {
		if time.Now().After(deadline) {
			t.Fatal("the records handler did not return within 10 s of the client going away")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
