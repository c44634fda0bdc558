package console

import (
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/soarkafka/soarkafka/audit"
)

// Failed sign-ins are limited per client address: past signInFailures in
// signInWindow, every attempt from that address is answered 429 until the
// oldest failure leaves the window.
const (
	signInFailures = 5
	signInWindow   = time.Minute
	// maxLimitedAddrs bounds the limiter's memory under a spray of
	// addresses; past it, addresses with no failure in the window go.
	maxLimitedAddrs = 10000
)

type signInLimiter struct {
	mu       sync.Mutex
	max      int
	window   time.Duration
	now      func() time.Time
	failures map[string][]time.Time
}

func newSignInLimiter(max int, window time.Duration, now func() time.Time) *signInLimiter {
	return &signInLimiter{max: max, window: window, now: now, failures: map[string][]time.Time{}}
}

// recentLocked is addr's failures still in the window.
func (l *signInLimiter) recentLocked(addr string, now time.Time) []time.Time {
	f := l.failures[addr]
	i := 0
	for i < len(f) && now.Sub(f[i]) >= l.window {
		i++
	}
	f = f[i:]
	if len(f) == 0 {
		delete(l.failures, addr)
	} else {
		l.failures[addr] = f
	}
	return f
}

// blocked reports how long addr must wait before it may try again; 0 when
// it may try now.
func (l *signInLimiter) blocked(addr string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	f := l.recentLocked(addr, now)
	if len(f) < l.max {
		return 0
	}
	return f[len(f)-l.max].Add(l.window).Sub(now)
}

// fail records a failed attempt and returns the failures in the window.
func (l *signInLimiter) fail(addr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.failures) >= maxLimitedAddrs {
		for a := range l.failures {
			l.recentLocked(a, now)
		}
	}
	f := append(l.recentLocked(addr, now), now)
	l.failures[addr] = f
	return len(f)
}

func (l *signInLimiter) succeed(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.failures, addr)
}

// peerAddr is the client's address without its port: the connection's
// own (audit.Peer), which a client cannot choose by sending
// X-Forwarded-For, so the sign-in limit counts per connected address.
func peerAddr(r *http.Request) string {
	addr := audit.Peer(r)
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// localTarget is where to go after signing in: a path of this console
// only, never another site (//host, /\host or a scheme).
func localTarget(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.HasPrefix(next, "/signin") || strings.HasPrefix(next, "/static/") {
		return "/assets"
	}
	// Browsers read a backslash as a slash and drop tabs and newlines
	// from URLs, so "/\t/host" would be "//host": none of them is taken.
	for _, b := range []byte(next) {
		if b <= ' ' || b == 0x7f || b == '\\' {
			return "/assets"
		}
	}
	if u, err := url.Parse(next); err != nil || u.Scheme != "" || u.Host != "" {
		return "/assets"
	}
	return next
}

type signInData struct {
	pageData
	FormToken string
	Next      string
	Error     string
	Notice    string
	Password  bool
}

// signInPage shows the form, with a fresh CSRF token in both a cookie and
// the form (there is no session yet to hold it).
func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	d := signInData{pageData: pageData{Title: "Sign in"}, Next: r.URL.Query().Get("next"), Password: c.opts.Password != ""}
	if r.URL.Query().Get("expired") != "" {
		d.Notice = "Your session ended after " + c.opts.IdleTimeout.String() + " without activity. Sign in again."
	}
	if r.URL.Query().Get("signedout") != "" {
		d.Notice = "You are signed out."
	}
	c.showSignIn(w, r, http.StatusOK, d)
}

func (c *Console) showSignIn(w http.ResponseWriter, r *http.Request, status int, d signInData) {
	// The token a browser holds already is kept, so that a second tab (or
	// any request that lands here meanwhile) does not void the first form.
	if ck, err := r.Cookie(signInCookie); err == nil && len(ck.Value) == len(randomToken()) {
		d.FormToken = ck.Value
	} else {
		d.FormToken = randomToken()
	}
	setCookie(w, r, signInCookie, d.FormToken, 3600)
	w.Header().Set("Cache-Control", "no-store")
	c.render(w, r, status, "signin", nil, &d)
}

// signIn checks the token or password. The value tried is never logged;
// a failure is logged with the client's address and its count.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	addr := peerAddr(r)
	d := signInData{pageData: pageData{Title: "Sign in"}, Next: r.PostFormValue("next"), Password: c.opts.Password != ""}
	if wait := c.limiter.blocked(addr); wait > 0 {
		secs := int((wait + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		c.opts.Logger.Warn("console: sign-in refused, too many failures from this address", "remote", addr, "retry_after_seconds", secs)
		d.Error = "Too many failed sign-ins from your address. Try again in " + strconv.Itoa(secs) + " seconds."
		c.showSignIn(w, r, http.StatusTooManyRequests, d)
		return
	}
	ck, err := r.Cookie(signInCookie)
	if err != nil || !equalTokens(r.PostFormValue(csrfField), ck.Value) {
		d.Error = "The sign-in form had expired or did not come from this console. Try again."
		c.showSignIn(w, r, http.StatusForbidden, d)
		return
	}
	secret := r.PostFormValue("secret")
	ok := equalTokens(secret, c.opts.APIToken)
	if c.opts.Password != "" && equalTokens(secret, c.opts.Password) {
		ok = true
	}
	if !ok {
		n := c.limiter.fail(addr)
		c.opts.Logger.Warn("console: sign-in failed", "remote", addr, "failures_in_window", n)
		d.Error = "That token or password is not right."
		if secret == "" {
			d.Error = "Enter the API token or the console password."
		}
		// 200, not 401: the form is shown again, as a page; a 401 would
		// want a WWW-Authenticate scheme the browser cannot answer.
		c.showSignIn(w, r, http.StatusOK, d)
		return
	}
	c.limiter.succeed(addr)
	// A session this browser held before ends: one browser, one session.
	if old, err := r.Cookie(sessionCookie); err == nil {
		if err := c.sessions.end(r.Context(), old.Value); err != nil {
			c.sessionsUnavailable(w, r, err)
			return
		}
	}
	s, err := c.sessions.create(r.Context())
	if err != nil {
		c.sessionsUnavailable(w, r, err)
		return
	}
	setCookie(w, r, signInCookie, "", -1)
	setCookie(w, r, sessionCookie, s.id, 0)
	c.opts.Logger.Info("console: signed in", "remote", addr)
	http.Redirect(w, r, localTarget(d.Next), http.StatusSeeOther)
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request, s *session) {
	if err := c.sessions.end(r.Context(), s.id); err != nil {
		c.sessionsUnavailable(w, r, err)
		return
	}
	setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, "/signin?signedout=1", http.StatusSeeOther)
}
