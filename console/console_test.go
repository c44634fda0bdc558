package console

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a test's hand-moved time.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestSignInLimiterWindow(t *testing.T) {
	clk := &clock{now: time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)}
	l := newSignInLimiter(5, time.Minute, clk.Now)
	for i := 1; i <= 5; i++ {
		if w := l.blocked("10.0.0.1"); w != 0 {
			t.Fatalf("failure %d: blocked for %s before the limit", i, w)
		}
		if n := l.fail("10.0.0.1"); n != i {
			t.Fatalf("failure %d counted as %d", i, n)
		}
		clk.add(10 * time.Second)
	}
	// The first failure was 50s ago: 10s to wait.
	if w := l.blocked("10.0.0.1"); w != 10*time.Second {
		t.Fatalf("after 5 failures: wait %s, want 10s", w)
	}
	if w := l.blocked("10.0.0.2"); w != 0 {
		t.Fatalf("another address blocked for %s", w)
	}
	clk.add(10 * time.Second)
	if w := l.blocked("10.0.0.1"); w != 0 {
		t.Fatalf("once the first failure left the window: still blocked for %s", w)
	}
	l.fail("10.0.0.1")
	if w := l.blocked("10.0.0.1"); w != 10*time.Second {
		t.Fatalf("a sixth failure: wait %s, want 10s (until the second leaves the window)", w)
	}
	l.succeed("10.0.0.1")
	if w := l.blocked("10.0.0.1"); w != 0 {
		t.Fatalf("after a success: blocked for %s", w)
	}
}

func TestLocalTarget(t *testing.T) {
	for next, want := range map[string]string{
		"":                     "/assets",
		"/integrations":        "/integrations",
		"/assets?x=1":          "/assets?x=1",
		"//evil.example/x":     "/assets",
		"/\\evil.example":      "/assets",
		"https://evil.example": "/assets",
		"javascript:alert(1)":  "/assets",
		"/signin?next=/x":      "/assets",
		"/static/console.css":  "/assets",
	} {
		if got := localTarget(next); got != want {
			t.Errorf("localTarget(%q) = %q, want %q", next, got, want)
		}
	}
}

var csrfInForm = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signIn posts the sign-in form through the handler and returns the
// session cookie.
func signIn(t *testing.T, h http.Handler, secret string) *http.Cookie {
	t.Helper()
	return signInAt(t, h, "", secret)
}

// signInAt signs in at base ("https://host" makes the requests TLS ones),
// with the headers given as name, value pairs.
func signInAt(t *testing.T, h http.Handler, base, secret string, hdr ...string) *http.Cookie {
	t.Helper()
	rec := httptest.NewRecorder()
	get := httptest.NewRequest("GET", base+"/signin", nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		get.Header.Set(hdr[i], hdr[i+1])
	}
	h.ServeHTTP(rec, get)
	m := csrfInForm.FindStringSubmatch(rec.Body.String())
	if m == nil {
		t.Fatalf("no csrf in the sign-in form: %s", rec.Body)
	}
	var form *http.Cookie
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == signInCookie {
			form = ck
		}
	}
	req := httptest.NewRequest("POST", base+"/signin", strings.NewReader(url.Values{"csrf": {m[1]}, "secret": {secret}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	req.AddCookie(form)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == sessionCookie && ck.Value != "" {
			return ck
		}
	}
	return nil
}

// TestSessionIdleExpiry: a session ends console.idle_timeout after its
// last request, and the assets list's own refresh does not keep it alive.
func TestSessionIdleExpiry(t *testing.T) {
	clk := &clock{now: time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)}
	const token = "a-token-of-the-api-1234"
	c := New(Options{APIToken: token, Password: "a console password", IdleTimeout: 10 * time.Minute, Now: clk.Now})
	get := func(ck *http.Cookie, hdr ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/integrations", nil)
		req.AddCookie(ck)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, req)
		return rec
	}
	if signIn(t, c, "wrong") != nil {
		t.Fatal("a wrong secret started a session")
	}
	if signIn(t, c, "a console password") == nil {
		t.Fatal("console.password did not sign in")
	}
	first := signIn(t, c, token)
	// Signing in again from the same browser ends its earlier session.
	ck := signInAgain(t, c, token, first)
	if rec := get(first); rec.Code != http.StatusSeeOther {
		t.Fatalf("the session before signing in again: %d, want it ended", rec.Code)
	}
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure {
		t.Fatalf("session cookie %+v", ck)
	}
	clk.add(9 * time.Minute)
	if rec := get(ck); rec.Code != 200 {
		t.Fatalf("9 minutes idle: %d, want the page", rec.Code)
	}
	// Only the list's refresh for 9 more minutes: not activity.
	clk.add(9 * time.Minute)
	if rec := get(ck, "HX-Request", "true", "HX-Trigger", pollTrigger); rec.Code != 200 {
		t.Fatalf("refresh within the idle time: %d", rec.Code)
	}
	clk.add(2 * time.Minute)
	rec := get(ck, "HX-Request", "true", "HX-Trigger", pollTrigger)
	if rec.Code != http.StatusUnauthorized || rec.Header().Get("HX-Redirect") != "/signin?expired=1" {
		t.Fatalf("11 minutes after the last real request, an htmx refresh: %d %v", rec.Code, rec.Header())
	}
	if rec := get(ck); rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/signin") {
		t.Fatalf("an ended session: %d to %q", rec.Code, rec.Header().Get("Location"))
	}
}

// signInAgain signs in from a browser that holds the session old.
func signInAgain(t *testing.T, h http.Handler, secret string, old *http.Cookie) *http.Cookie {
	t.Helper()
	return signInAt(t, h, "", secret, "Cookie", old.Name+"="+old.Value)
}

// TestCookieSecureOverTLS: over TLS the cookies are Secure, also behind
// a TLS-terminating proxy that says so.
func TestCookieSecureOverTLS(t *testing.T) {
	const token = "a-token-of-the-api-1234"
	ck := signInAt(t, New(Options{APIToken: token}), "https://console.example", token)
	if ck == nil || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie over TLS: %+v", ck)
	}
	ck = signInAt(t, New(Options{APIToken: token}), "", token, "X-Forwarded-Proto", "https")
	if ck == nil || !ck.Secure {
		t.Fatalf("session cookie behind a TLS proxy: %+v", ck)
	}
}

// TestStaticFilesOnly: the embedded files are served, their folders are
// not listed, and each answer has the security headers.
func TestStaticFilesOnly(t *testing.T) {
	c := New(Options{APIToken: "a-token-of-the-api-1234"})
	for path, want := range map[string]int{
		"/static/console.css":                 200,
		"/static/vendor/htmx.org/htmx.min.js": 200,
		"/static/vendor/htmx.org/LICENSE":     200,
		"/static/vendor/":                     404,
		"/static/":                            404,
		"/static/vendor/htmx.org/":            404,
		"/static/../templates/layout.html":    404,
	} {
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != want && !(want == 404 && rec.Code >= 300 && rec.Code < 400) {
			t.Errorf("GET %s: %d, want %d", path, rec.Code, want)
		}
		if want == 404 && strings.Contains(rec.Body.String(), "htmx.min.js") {
			t.Errorf("GET %s lists files: %s", path, rec.Body)
		}
		if rec.Header().Get("Content-Security-Policy") != ContentSecurityPolicy || rec.Header().Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s: headers %v", path, rec.Header())
		}
	}
}

// FuzzLocalTarget: whatever next a sign-in link carries, the browser is
// sent to a path of this console, never to another host.
func FuzzLocalTarget(f *testing.F) {
	for _, s := range []string{"/assets", "//evil.example", "/\\evil", "/%2F%2Fevil", "/ /evil", "/\t/evil", "https://x", "/a?next=//b", "\\\\evil"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := localTarget(next)
		if got == "/assets" {
			return
		}
		if got != next {
			t.Fatalf("localTarget(%q) = %q: changed but not to the default", next, got)
		}
		// As a browser resolves it against the console's own URL.
		base, _ := url.Parse("http://console.example/signin")
		u, err := base.Parse(got)
		if err != nil || u.Host != "console.example" || u.Scheme != "http" {
			t.Fatalf("localTarget(%q) = %q resolves to %v (%v), off the console", next, got, u, err)
		}
		if strings.ContainsAny(got, "\\\t\r\n") {
			t.Fatalf("localTarget(%q) = %q holds characters a browser may read as a host separator", next, got)
		}
	})
}
