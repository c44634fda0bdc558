package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/soarkafka/soarkafka/app"
	"github.com/soarkafka/soarkafka/internal/testenv"
)

// When the test binary is started with SOARKAFKA_TEST_MAIN=1 it runs the
// soarkafka command line instead of the tests (testenv.StartSoarkafka
// starts the server so), and as "parser-worker" it is a parser worker.
func TestMain(m *testing.M) {
	if os.Getenv("SOARKAFKA_TEST_MAIN") == "1" || (len(os.Args) > 1 && os.Args[1] == "parser-worker") {
		// SOARKAFKA_SERVER_CPUPROFILE=FILE profiles the server (not its
		// parser workers), for the page-load benchmark.
		if p := os.Getenv("SOARKAFKA_SERVER_CPUPROFILE"); p != "" && len(os.Args) > 1 && os.Args[1] == "serve" {
			if f, err := os.Create(p); err == nil && pprof.StartCPUProfile(f) == nil {
				code := app.Main(context.Background(), os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
				pprof.StopCPUProfile()
				f.Close()
				os.Exit(code)
			}
		}
		os.Exit(app.Main(context.Background(), os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// xss is an asset description that would run if a page pasted it in.
const xss = `<script>alert(1)</script><img src=x onerror=alert(2)>`

// api calls the REST API with the token and decodes the answer into out.
func api(t testing.TB, srv *testenv.Soarkafka, method, path string, body any, out any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, srv.URL+path, bytes.NewReader(b))
	req.Header.Set("ph-auth-token", srv.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
}

func produce(t *testing.T, broker, topic string, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Value: fmt.Appendf(nil, `{"n": %d}`, i)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// noRedirect is a client that shows redirects instead of following them,
// from the local address given ("" for any).
func noRedirect(t testing.TB, local string) *http.Client {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if local != "" {
		tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}).DialContext
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var formToken = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signInForm reads the sign-in page: its form token and the cookie that
// goes with it.
func signInForm(t testing.TB, c *http.Client, base string) (token string, cookie *http.Cookie) {
	t.Helper()
	resp, err := c.Get(base + "/signin")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := formToken.FindSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf field in the sign-in page:\n%s", body)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == "soarkafka_signin" {
			cookie = ck
		}
	}
	if cookie == nil {
		t.Fatal("the sign-in page set no form cookie")
	}
	return string(m[1]), cookie
}

func postSignIn(t testing.TB, c *http.Client, base, secret string) *http.Response {
	t.Helper()
	tok, ck := signInForm(t, c, base)
	req, _ := http.NewRequest("POST", base+"/signin", strings.NewReader(url.Values{"csrf": {tok}, "secret": {secret}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(ck)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// browserEvents collects what the page reports that a test must not see:
// console errors, uncaught exceptions, CSP violations, dialogs.
type browserEvents struct {
	mu       sync.Mutex
	problems []string
}

func (b *browserEvents) add(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, s)
}

func (b *browserEvents) list() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

// cspReporter runs before any page script, outside the page's CSP (the
// browser adds it), and reports each CSP violation to the console.
const cspReporter = `document.addEventListener('securitypolicyviolation', function (e) {
  console.error('CSP violation: ' + e.violatedDirective + ' blocked ' + e.blockedURI);
});`

// startConsole starts soarkafka (this test binary, run as the server by
// TestMain) on its embedded defaults, and a browser whose CSP violations,
// exceptions and console errors are recorded for wantNoBrowserEvents.
func startConsole(t *testing.T) (context.Context, *browserEvents, *testenv.Soarkafka) {
	t.Helper()
	ctx := startBrowser(t)
	events := watchBrowser(t, ctx)
	return ctx, events, startServer(t)
}

// startServer starts soarkafka from this test binary on its embedded
// defaults (SQLite in a temporary directory, the dev broker).
func startServer(t testing.TB) *testenv.Soarkafka {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return testenv.StartSoarkafka(t, exe)
}

func startBrowser(t *testing.T) context.Context {
	t.Helper()
	exe := testenv.Chromium(t)
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(exe), chromedp.WindowSize(1280, 800), chromedp.UserDataDir(t.TempDir())}
	for _, f := range testenv.ChromiumFlags {
		opts = append(opts, chromedp.Flag(strings.TrimPrefix(f, "--"), true))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	return bctx
}

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func run[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// wantCSRFRefused posts form to path with the session's cookie but not
// its CSRF token, and wants it refused with 403.
func wantCSRFRefused(t *testing.T, client *http.Client, base string, session *network.Cookie, path string, form url.Values) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: session.Name, Value: session.Value})
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST %s without a CSRF token: %d, want 403", path, resp.StatusCode)
	}
}

// waitPage waits until the page the browser shows meets cond, a
// JavaScript expression, across a navigation: asked while the page is
// being replaced, the expression fails, and is asked again.
func waitPage(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](cond))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s still not true after 15 s (last error: %v)", what, cond, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// screenshot saves the viewport as dir/name.png when SOARKAFKA_SCREENSHOTS
// names a directory (docs/console/ keeps a committed set).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("SOARKAFKA_SCREENSHOTS")
	if dir == "" {
		return
	}
	png := run(t, ctx, "screenshot "+name, chromedp.CaptureScreenshot())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestConsoleInBrowser signs in to the console of a real server in
// Debian's chromium, looks at the assets list and the integrations page,
// and signs out; on the way it checks the security headers, the CSRF
// checks, the escaping of an asset's description and that no page breaks
// its Content-Security-Policy.
func TestConsoleInBrowser(t *testing.T) {
	ctx, events, srv := startConsole(t)

	// An asset with a polled topic, described by markup that must not run.
	produce(t, srv.Broker, "alerts", 7)
	api(t, srv, "POST", "/v1/assets", map[string]any{"name": "edge", "description": xss,
		"config": map[string]any{"hosts": srv.Broker, "topic": "alerts", "read_from_beginning": true, "timeout": 3000}}, nil)
	var poll map[string]any
	api(t, srv, "POST", "/v1/actions/on_poll", map[string]any{"asset": "edge"}, &poll)
	if poll["status"] != "success" {
		t.Fatalf("on poll: %v", poll)
	}

	// An asset whose broker is down: its poll failed, and the list says so.
	api(t, srv, "POST", "/v1/assets", map[string]any{"name": "down",
		"config": map[string]any{"hosts": "127.0.0.1:1", "topic": "alerts", "timeout": 1000}}, nil)
	var failed map[string]any
	api(t, srv, "POST", "/v1/actions/on_poll", map[string]any{"asset": "down"}, &failed)
	if failed["status"] != "failed" {
		t.Fatalf("on poll of an asset whose broker is down: %v", failed)
	}

	// Closed to a browser without a session.
	do(t, ctx, "open /assets signed out", chromedp.Navigate(srv.URL+"/assets"), chromedp.WaitVisible(chromedp.CSS("#secret")))
	if loc := run(t, ctx, "location", chromedp.Location()); !strings.HasPrefix(loc, srv.URL+"/signin?next=%2Fassets") {
		t.Fatalf("signed out, /assets went to %s, want the sign-in page", loc)
	}
	screenshot(t, ctx, "signin")

	// A wrong token: the form says so, and the log says so without the
	// value tried.
	const wrong = "not-the-token-but-a-guess"
	do(t, ctx, "sign in wrong", chromedp.SendKeys(chromedp.CSS("#secret"), wrong), chromedp.Submit(chromedp.CSS("#secret")),
		chromedp.WaitVisible(chromedp.CSS("#signin-error")))
	if msg := run(t, ctx, "error text", chromedp.Text(chromedp.CSS("#signin-error"))); !strings.Contains(msg, "not right") {
		t.Fatalf("wrong token: error %q", msg)
	}
	screenshot(t, ctx, "signin-error")

	// The right token: the assets list, with the asset's health once htmx
	// has fetched it.
	do(t, ctx, "sign in", chromedp.SendKeys(chromedp.CSS("#secret"), srv.Token), chromedp.Submit(chromedp.CSS("#secret")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-asset="edge"] .state`)))
	if loc := run(t, ctx, "location", chromedp.Location()); loc != srv.URL+"/assets" {
		t.Fatalf("after sign-in at %s, want %s/assets", loc, srv.URL)
	}
	row := run(t, ctx, "asset row", chromedp.Text(chromedp.CSS(`tr[data-asset="edge"]`)))
	sum := poll["summary"].(map[string]any)
	lastPoll := fmt.Sprintf("success · messages %v · containers %v", sum["messages_read"], sum["containers_created"])
	for _, want := range []string{"edge", xss, "alerts", "ok", lastPoll, "polled when the SOAR asks", "pull (the SOAR fetches)"} {
		if !strings.Contains(row, want) {
			t.Errorf("asset row lacks %q:\n%s", want, row)
		}
	}
	if lag := run(t, ctx, "lag", chromedp.Text(chromedp.CSS(`tr[data-asset="edge"] td.num`))); lag != "0" {
		t.Errorf("lag %q, want 0", lag)
	}
	down := run(t, ctx, "down row", chromedp.Text(chromedp.CSS(`tr[data-asset="down"]`)))
	for _, want := range []string{"error", "last poll: ", "127.0.0.1:1", "unknown"} {
		if !strings.Contains(down, want) {
			t.Errorf("the down asset's row lacks %q:\n%s", want, down)
		}
	}

	// The description is text, not markup: one script (htmx), no image.
	nodes := run(t, ctx, "scripts and images", chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll('script, img')).map(e => e.tagName + ' ' + (e.getAttribute('src') || ''))`))
	if len(nodes) != 1 || nodes[0] != "SCRIPT /static/vendor/htmx.org/htmx.min.js" {
		t.Errorf("the page's scripts and images: %v, want htmx's script only", nodes)
	}
	screenshot(t, ctx, "assets")

	// The page source has the description escaped, as the browser was
	// sent it (the session cookie taken from the browser).
	cookies := run(t, ctx, "cookies", func(ctx context.Context, tg *chromedp.Target) ([]*network.Cookie, error) {
		r, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{})
		if err != nil {
			return nil, err
		}
		return r.Cookies, nil
	})
	var session *network.Cookie
	for _, ck := range cookies {
		if ck.Name == "soarkafka_session" {
			session = ck
		}
	}
	if session == nil || !session.HTTPOnly || session.SameSite != network.CookieSameSiteStrict || session.Secure {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, not Secure over plain HTTP", session)
	}
	client := noRedirect(t, "")
	get := func(path string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.AddCookie(&http.Cookie{Name: session.Name, Value: session.Value})
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, path := range []string{"/assets", "/assets/health"} {
		resp, src := get(path)
		if resp.StatusCode != 200 || strings.Contains(src, "<script>alert") || strings.Contains(src, "<img src=x") ||
			!strings.Contains(src, "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;") {
			t.Errorf("%s: %d, description not escaped in the source:\n%s", path, resp.StatusCode, src)
		}
	}

	// Security headers on pages, redirects, files and sign-in alike.
	for _, path := range []string{"/assets", "/integrations", "/static/console.css", "/signin", "/nowhere"} {
		resp, _ := get(path)
		h := resp.Header
		if h.Get("Content-Security-Policy") == "" || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'self'") ||
			!strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") || strings.Contains(h.Get("Content-Security-Policy"), "unsafe-inline") ||
			h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: security headers %v", path, h)
		}
	}
	if resp, _ := get("/nowhere"); resp.StatusCode != 404 {
		t.Errorf("/nowhere signed in: %d, want the console's 404", resp.StatusCode)
	}
	// The API keeps its own answers: JSON, and its token.
	if resp, body := get("/v1/assets"); resp.StatusCode != 401 || !strings.Contains(body, "missing API token") {
		t.Errorf("/v1/assets with a console session but no token: %d %s, want 401", resp.StatusCode, body)
	}

	if resp, body := get("/v1/nothing"); resp.StatusCode != 401 && resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(body, `"error"`) {
		t.Errorf("/v1/nothing: %d %s %s, want the API's JSON error", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}

	// A POST without the session's CSRF token is refused, and the session
	// stays.
	wantCSRFRefused(t, client, srv.URL, session, "/signout", nil)
	if resp, _ := get("/assets"); resp.StatusCode != 200 {
		t.Errorf("after a refused CSRF-less POST the session ended: %d", resp.StatusCode)
	}

	// Integrations: the downloads and what to paste.
	do(t, ctx, "open integrations", chromedp.Click(chromedp.CSS(`nav a[href="/integrations"]`)), chromedp.WaitVisible(chromedp.CSS("#token")))
	text := run(t, ctx, "integrations text", chromedp.Text(chromedp.CSS("main")))
	for _, want := range []string{srv.URL, "Download the Splunk SOAR app", "Download the XSOAR integration", "api-token", "ph-auth-token"} {
		if !strings.Contains(text, want) {
			t.Errorf("integrations page lacks %q", want)
		}
	}
	screenshot(t, ctx, "integrations")
	for path, ctype := range map[string]string{"/integrations/splunk-soar.tgz": "application/gzip", "/integrations/xsoar.yml": "application/yaml"} {
		resp, body := get(path)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ctype || len(body) < 100 ||
			!strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") {
			t.Errorf("%s: %d %v (%d bytes)", path, resp.StatusCode, resp.Header, len(body))
		}
	}

	// htmx requests carry the session's CSRF token (hx-headers on the
	// body): a POST through htmx passes the check (and finds no page),
	// where the same POST without the header is refused.
	const htmxPost = `new Promise(done => {
  document.body.addEventListener('htmx:afterRequest', e => done(e.detail.xhr.status), {once: true});
  htmx.ajax('POST', '/no-such-form', {source: '#main', swap: 'none'});
})`
	if st := run(t, ctx, "htmx POST", chromedp.Evaluate[int](htmxPost, chromedp.EvalAwaitPromise)); st != http.StatusNotFound {
		t.Errorf("an htmx POST with the page's CSRF header: %d, want 404 (past the CSRF check)", st)
	}
	const fetchPost = `fetch('/no-such-form', {method: 'POST'}).then(r => r.status)`
	if st := run(t, ctx, "fetch POST", chromedp.Evaluate[int](fetchPost, chromedp.EvalAwaitPromise)); st != http.StatusForbidden {
		t.Errorf("a POST without the CSRF header: %d, want 403", st)
	}

	// A narrow window still shows the list.
	do(t, ctx, "narrow", chromedp.EmulateViewport(420, 800), chromedp.Navigate(srv.URL+"/assets"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-asset="edge"] .state`)))
	screenshot(t, ctx, "assets-narrow")
	do(t, ctx, "wide again", chromedp.EmulateViewport(1280, 800))

	// Sign out: every page goes back to the sign-in page, in the browser
	// and for the old cookie.
	do(t, ctx, "sign out", chromedp.Click(chromedp.CSS(`.signout button`)), chromedp.WaitVisible(chromedp.CSS("#secret")))
	if txt := run(t, ctx, "signed out", chromedp.Text(chromedp.CSS(".notice"))); !strings.Contains(txt, "signed out") {
		t.Errorf("after sign out: %q", txt)
	}
	for _, path := range []string{"/", "/assets", "/assets/health", "/integrations", "/integrations/xsoar.yml", "/integrations/splunk-soar.tgz", "/nowhere"} {
		do(t, ctx, "open "+path, chromedp.Navigate(srv.URL+path), chromedp.WaitVisible(chromedp.CSS("#secret")))
		if loc := run(t, ctx, "location", chromedp.Location()); !strings.HasPrefix(loc, srv.URL+"/signin") {
			t.Errorf("signed out, %s went to %s", path, loc)
		}
		if resp, _ := get(path); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/signin") {
			t.Errorf("with the signed-out cookie, %s: %d to %q", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}

	// The two POSTs above fail on purpose; the browser logs their
	// statuses.
	wantNoBrowserEvents(t, events, "/no-such-form")
	logs := srv.Logs()
	if !strings.Contains(logs, "console: sign-in failed") || strings.Contains(logs, wrong) || strings.Contains(logs, session.Value) {
		t.Errorf("the log should record the failed sign-in without the value tried or the session id:\n%s", logs)
	}

	// Failed sign-ins are limited per client address: from another
	// loopback address, five wrong tokens, then 429 with Retry-After, the
	// right token included; the browser's address is not affected.
	other := noRedirect(t, "127.0.0.2")
	for i := 1; i <= 5; i++ {
		if resp := postSignIn(t, other, srv.URL, fmt.Sprintf("wrong-%d", i)); resp.StatusCode != http.StatusOK {
			t.Fatalf("wrong token %d: %d, want the form again (200)", i, resp.StatusCode)
		}
	}
	for _, secret := range []string{"wrong-6", srv.Token} {
		resp := postSignIn(t, other, srv.URL, secret)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Errorf("sign-in after 5 failures: %d, Retry-After %q; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	if resp := postSignIn(t, client, srv.URL, srv.Token); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/assets" {
		t.Errorf("sign-in from the browser's address meanwhile: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// X-Forwarded-For does not choose the address counted.
	tok, ck := signInForm(t, other, srv.URL)
	req, _ := http.NewRequest("POST", srv.URL+"/signin", strings.NewReader(url.Values{"csrf": {tok}, "secret": {srv.Token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.AddCookie(ck)
	if resp, err := other.Do(req); err != nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("limited address with X-Forwarded-For: %v %v, want 429", resp, err)
	}
}

// watchBrowser collects the console errors, exceptions, security log
// entries (CSP violations) and dialogs of the browser's pages.
func watchBrowser(t *testing.T, ctx context.Context) *browserEvents {
	t.Helper()
	var events browserEvents
	if err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				events.add(fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
			}
		case *runtime.EventExceptionThrown:
			events.add("exception: " + ev.ExceptionDetails.Text)
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError || ev.Entry.Source == cdplog.EntrySourceSecurity {
				events.add(fmt.Sprintf("log %s/%s: %s %s", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text, ev.Entry.URL))
			}
		case *page.EventJavascriptDialogOpening:
			events.add("dialog: " + ev.Message)
		}
	}); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "add the CSP reporter", func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspReporter})
		return chromedp.Void{}, err
	})
	return &events
}

// wantNoBrowserEvents fails the test for every event the browser reported
// but those containing one of allowed (the statuses of requests the test
// makes fail on purpose, which the browser logs).
func wantNoBrowserEvents(t *testing.T, events *browserEvents, allowed ...string) {
	t.Helper()
	var p []string
next:
	for _, e := range events.list() {
		for _, a := range allowed {
			if strings.Contains(e, a) {
				continue next
			}
		}
		p = append(p, e)
	}
	if len(p) > 0 {
		t.Errorf("the browser reported:\n%s", strings.Join(p, "\n"))
	}
}
