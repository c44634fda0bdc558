package web_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/web"
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

// slowPost sends a request's head declaring a 100 KB body, then the body a
// byte every interval until the server closes the connection or the test
// ends: a trickling client that holds a connection open.
func slowPost(t *testing.T, srvURL, method, path, header string, every time.Duration) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(srvURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 102400\r\n%s\r\n{", method, path, header); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := c.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	t.Cleanup(func() { close(stop); c.Close(); <-done })
	return c
}

// answerAndClose reads the answer on c and then waits for the server to
// close the connection, each within limit; the closing is what frees the
// server's connection.
func answerAndClose(t *testing.T, c net.Conn, limit time.Duration) (*http.Response, string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(limit))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer within %s: %v", limit, err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(limit))
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the answer (%d %s), the connection is still open after %s: %v", resp.StatusCode, body, limit, err)
	}
	return resp, string(body)
}

// A client without the token that trickles its body gets its 401 at once,
// and its connection closed, whatever the read timeout.
func TestSlowBodyWithoutToken(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, testenv.SQLiteURL(t), func(o *web.Options) { o.ReadTimeout = time.Minute; o.IdleReadTimeout = time.Minute })
	for _, tt := range []struct{ method, path, header string }{
		{"POST", "/v1/assets", ""},
		{"PUT", "/v1/assets/x", "ph-auth-token: wrong-token-0123456789\r\n"},
		{"POST", "/v1/actions/post_data", "Authorization: Bearer wrong\r\n"},
		{"POST", "/v1/assets/x/records", ""},
		{"POST", "/v1/parsers", ""},
		{"GET", "/v1/containers", ""},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			c := slowPost(t, e.srv.URL, tt.method, tt.path, tt.header, 2*time.Second)
			resp, body := answerAndClose(t, c, 10*time.Second)
			if resp.StatusCode != 401 || !resp.Close || !strings.Contains(body, "unauthorized") {
				t.Fatalf("%d %v %s, want 401 with Connection: close", resp.StatusCode, resp.Header, body)
			}
		})
	}
}

// With the token, a trickling body is cut at server.read_timeout: the
// request is refused and the connection closed, on every route that is not
// streamed, and on a route that reads no body at all.
func TestSlowBodyWithTokenTimesOut(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, testenv.SQLiteURL(t), func(o *web.Options) {
		o.MaxBodyBytes = 1 << 20
		o.ReadTimeout = time.Second
		o.IdleReadTimeout = time.Minute
	})
	auth := "ph-auth-token: " + token + "\r\n"
	for _, tt := range []struct {
		method, path string
		status       int
		says         string
	}{
		{"POST", "/v1/assets", 400, "not received in full within the server's server.read_timeout"},
		{"POST", "/v1/actions/post_data", 400, "server.read_timeout"},
		{"POST", "/v1/parsers/test", 400, "server.read_timeout"},
		{"GET", "/healthz", 200, "ok"},
		{"GET", "/v1/assets", 200, "count"},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			c := slowPost(t, e.srv.URL, tt.method, tt.path, auth, 2*time.Second)
			resp, body := answerAndClose(t, c, 10*time.Second)
			if resp.StatusCode != tt.status || !strings.Contains(body, tt.says) {
				t.Fatalf("%d %s, want %d saying %q", resp.StatusCode, body, tt.status, tt.says)
			}
		})
	}
}

// The records endpoint streams for longer than server.read_timeout while
// lines keep coming, and ends the stream once none came for
// server.idle_read_timeout: the lines before are produced, the summary says
// why it ended, and the connection is closed.
func TestRecordsIdleReadTimeout(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "events"))
	e := newEnvWith(t, testenv.SQLiteURL(t), func(o *web.Options) { o.ReadTimeout = 500 * time.Millisecond; o.IdleReadTimeout = time.Second })
	if code, out := e.do("POST", "/v1/assets", asset("k", map[string]any{"hosts": c.ListenAddrs()[0], "topic": "events"})); code != 201 {
		t.Fatalf("create asset: %d %v", code, out)
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/assets/k/records?results=failed HTTP/1.1\r\nHost: test\r\nph-auth-token: %s\r\nTransfer-Encoding: chunked\r\n\r\n", token)
	// Longer in all than read_timeout, never idle for idle_read_timeout.
	for i := range 8 {
		line := fmt.Sprintf(`{"n":%d}`+"\n", i)
		if _, err := fmt.Fprintf(conn, "%x\r\n%s\r\n", len(line), line); err != nil {
			t.Fatalf("line %d: the server stopped reading: %v", i, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	// Then silence, with the body still open.
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("the stream did not end within 15 s of silence: %v", err)
	}
	var sum map[string]any
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &struct{ Summary *map[string]any }{&sum}); err != nil {
		t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
	if sum["succeeded"] != float64(8) || sum["status"] != "failed" || !strings.Contains(sum["message"].(string), "nothing more came within the server's server.idle_read_timeout") {
		t.Fatalf("summary %v", sum)
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("the connection is still open after the stream ended: %v", err)
	}
}

// heldPost is a request whose head and first byte are sent, the rest held
// back until finish.
type heldPost struct {
	c    net.Conn
	rest []byte
	done chan heldAnswer
}

type heldAnswer struct {
	status int
	retry  string
	body   string
	err    error
}

func holdPost(t *testing.T, srvURL, path string, body []byte) *heldPost {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(srvURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: test\r\nph-auth-token: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%c", path, token, len(body), body[0]); err != nil {
		t.Fatal(err)
	}
	p := &heldPost{c: c, rest: body[1:], done: make(chan heldAnswer, 1)}
	go func() {
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			p.done <- heldAnswer{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		p.done <- heldAnswer{status: resp.StatusCode, retry: resp.Header.Get("Retry-After"), body: string(b), err: err}
	}()
	return p
}

// finish sends the rest of the body, on a goroutine: the server may not
// read it yet.
func (p *heldPost) finish() { go func() { _, _ = p.c.Write(p.rest) }() }

// postDataBody is a post_data request of exactly size bytes.
func postDataBody(t *testing.T, hosts string, size int) []byte {
	t.Helper()
	mk := func(pad int) []byte {
		b, _ := json.Marshal(map[string]any{"config": map[string]any{"hosts": hosts, "topic": "t"},
			"parameters": map[string]any{"data_type": "string", "data": strings.Repeat("x", pad), "topic": "t"}})
		return b
	}
	b := mk(size - len(mk(0)))
	if len(b) != size {
		t.Fatalf("body of %d bytes, want %d", len(b), size)
	}
	return b
}

// Concurrent large bodies are admitted while they fit in the body memory
// budget; past it a body waits server.body_wait, then is answered 503 with
// Retry-After and its connection closed. Every admitted one succeeds.
func TestBodyMemoryBudget(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "t"))
	const size = 200_000
	e := newEnvWith(t, testenv.SQLiteURL(t), func(o *web.Options) {
		o.MaxBodyBytes = 1 << 20
		o.BodyMemoryBudget = 2*size + size/2 // two at once
		o.BodyWait = 300 * time.Millisecond
	})
	body := postDataBody(t, c.ListenAddrs()[0], size)
	posts := make([]*heldPost, 6)
	for i := range posts {
		posts[i] = holdPost(t, e.srv.URL, "/v1/actions/post_data", body)
	}
	// Four are refused while two hold the budget, reading their bodies.
	answered := map[int]heldAnswer{}
	timeout := time.After(20 * time.Second)
	for len(answered) < 4 {
		for i, p := range posts {
			select {
			case a := <-p.done:
				answered[i] = a
			default:
			}
		}
		select {
		case <-timeout:
			t.Fatalf("only %d of 6 answered while two held the budget: %v", len(answered), answered)
		case <-time.After(20 * time.Millisecond):
		}
	}
	for i, a := range answered {
		if a.err != nil || a.status != 503 || a.retry != "1" || !strings.Contains(a.body, "server.body_memory_budget") {
			t.Errorf("post %d: %+v, want 503 with Retry-After", i, a)
		}
	}
	for i, p := range posts {
		if _, ok := answered[i]; ok {
			continue
		}
		p.finish()
		a := <-p.done
		if a.err != nil || a.status != 200 || !strings.Contains(a.body, `"status":"success"`) {
			t.Errorf("admitted post %d: %+v", i, a)
		}
	}
	// With the budget free again, a post is admitted at once.
	code, out := e.do("POST", "/v1/actions/post_data", json.RawMessage(body))
	if code != 200 || out["status"] != "success" {
		t.Fatalf("after: %d %v", code, out)
	}
	// A body larger than the whole budget is handled alone.
	code, out = e.do("POST", "/v1/actions/post_data", json.RawMessage(postDataBody(t, c.ListenAddrs()[0], 3*size)))
	if code != 200 || out["status"] != "success" {
		t.Fatalf("over the budget: %d %v", code, out)
	}
}

// A body that does not fit waits, up to server.body_wait, for the budget
// to free, and is then served.
func TestBodyMemoryBudgetWaits(t *testing.T) {
	t.Parallel()
	c := testenv.NewKafka(t, kfake.SeedTopics(1, "t"))
	const size = 200_000
	e := newEnvWith(t, testenv.SQLiteURL(t), func(o *web.Options) {
		o.MaxBodyBytes = 1 << 20
		o.BodyMemoryBudget = size
		o.BodyWait = time.Minute
	})
	body := postDataBody(t, c.ListenAddrs()[0], size)
	first := holdPost(t, e.srv.URL, "/v1/actions/post_data", body)
	time.Sleep(200 * time.Millisecond) // first is admitted first
	second := holdPost(t, e.srv.URL, "/v1/actions/post_data", body)
	second.finish()
	select {
	case a := <-second.done:
		t.Fatalf("the second post was answered while the first held the budget: %+v", a)
	case <-time.After(300 * time.Millisecond):
	}
	first.finish()
	for i, p := range []*heldPost{first, second} {
		if a := <-p.done; a.err != nil || a.status != 200 || !strings.Contains(a.body, `"status":"success"`) {
			t.Errorf("post %d: %+v", i, a)
		}
	}
}

// The same for text in a request body that names or describes a stored
// thing: JSON lets a string carry \u0000, which PostgreSQL refuses.
func TestBodyTextRefused(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		e := newEnv(t, url)
		if code, out := e.do("POST", "/v1/assets", asset("a1", map[string]any{"hosts": "h:1", "topic": "t"})); code != 201 {
			t.Fatalf("create: %d %v", code, out)
		}
		if code, out := e.do("POST", "/v1/parsers", map[string]any{"name": "p1", "source": goodParser}); code != 201 {
			t.Fatalf("create parser: %d %v", code, out)
		}
		src := mustJSON(goodParser)
		for _, tt := range []struct{ method, path, body, field string }{
			{"POST", "/v1/assets", `{"name":"a2","description":"a\u0000b","config":{"hosts":"h:1","topic":"t"}}`, "description"},
			{"PUT", "/v1/assets/a1", `{"description":"a\u0000b","config":{"hosts":"h:1","topic":"t"}}`, "description"},
			{"POST", "/v1/parsers", `{"name":"p2","description":"a\u0000b","source":` + src + `}`, "description"},
			{"PUT", "/v1/parsers/p1", `{"description":"\u0000","source":` + src + `}`, "description"},
			{"POST", "/v1/parsers/test", `{"parser":"a\u0000","messages":[{"value":"x"}]}`, "parser"},
			{"POST", "/v1/parsers/test", `{"asset":"a\u0000","source":` + src + `}`, "asset"},
			{"POST", "/v1/actions/on_poll", `{"asset":"a1\u0000"}`, "asset"},
			{"POST", "/v1/actions/test_connectivity", `{"asset":"\u0000"}`, "asset"},
		} {
			code, out := e.do(tt.method, tt.path, tt.body)
			if msg := errFields(out)[tt.field]; code != 400 || !strings.Contains(msg, "NUL byte") {
				t.Errorf("%s %s %s: %d %v, want 400 naming %s", tt.method, tt.path, tt.body[:min(50, len(tt.body))], code, out, tt.field)
			}
		}
		if strings.Contains(e.logs.String(), "request failed") {
			t.Errorf("a request failed with an internal error")
		}
	})
}
