package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Sessions live in this process's memory: a restart signs everyone out,
// and each replica behind a load balancer has its own (sticky sessions,
// or sign in again). docs/console.md says so.

const (
	sessionCookie = "soarkafka_session"
	// signInCookie carries the sign-in form's CSRF token before there is
	// a session (a double-submit cookie).
	signInCookie = "soarkafka_signin"
	// csrfHeader is how htmx requests send the session's CSRF token (the
	// layout sets it with hx-headers); forms send the csrf field.
	csrfHeader = "X-CSRF-Token"
	csrfField  = "csrf"
	// maxSessions bounds the memory sessions take; past it the least
	// recently used session ends.
	maxSessions = 10000
)

type session struct {
	id       string
	csrf     string
	created  time.Time
	lastSeen time.Time
}

type sessions struct {
	mu   sync.Mutex
	idle time.Duration
	now  func() time.Time
	byID map[string]*session
}

func newSessions(idle time.Duration, now func() time.Time) *sessions {
	return &sessions{idle: idle, now: now, byID: map[string]*session{}}
}

// randomToken is 32 bytes from crypto/rand, URL-safe.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// create starts a session; a new id every time, so an id planted before
// sign-in is never the one signed in.
func (ss *sessions) create() *session {
	now := ss.now()
	s := &session{id: randomToken(), csrf: randomToken(), created: now, lastSeen: now}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.sweepLocked(now)
	if len(ss.byID) >= maxSessions {
		var oldest *session
		for _, o := range ss.byID {
			if oldest == nil || o.lastSeen.Before(oldest.lastSeen) {
				oldest = o
			}
		}
		delete(ss.byID, oldest.id)
	}
	ss.byID[s.id] = s
	return s
}

// sweepLocked ends the sessions idle for too long.
func (ss *sessions) sweepLocked(now time.Time) {
	for id, s := range ss.byID {
		if now.Sub(s.lastSeen) > ss.idle {
			delete(ss.byID, id)
		}
	}
}

// get returns the live session of id, or nil with expired true when it
// existed but was idle too long (it ends then). touch records the request
// as activity.
func (ss *sessions) get(id string, touch bool) (s *session, expired bool) {
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s = ss.byID[id]
	if s == nil {
		return nil, false
	}
	if now.Sub(s.lastSeen) > ss.idle {
		delete(ss.byID, id)
		return nil, true
	}
	if touch {
		s.lastSeen = now
	}
	cp := *s
	return &cp, false
}

func (ss *sessions) end(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.byID, id)
}

// equalTokens compares two secrets in constant time whatever their
// lengths.
func equalTokens(a, b string) bool {
	x, y := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(x[:], y[:]) == 1 && a != ""
}

// secure reports whether the browser reached the console over TLS: served
// so by this process, or by a TLS-terminating proxy that says so in
// X-Forwarded-Proto. It sets the cookies' Secure attribute; a client that
// claims https over plain HTTP only keeps its own cookie from coming back.
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteStrictMode,
	})
}

// pollTrigger is the id of the element whose periodic refresh must not
// count as activity, or a tab left open would never be signed out.
const pollTrigger = "asset-health"

// signedIn wraps a page that needs a session: without one the browser
// goes to sign in (htmx requests are told with HX-Redirect), and a write
// without the session's CSRF token is refused.
func (c *Console) signedIn(page func(http.ResponseWriter, *http.Request, *session)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var s *session
		var expired bool
		if ck, err := r.Cookie(sessionCookie); err == nil {
			touch := r.Header.Get("HX-Trigger") != pollTrigger
			s, expired = c.sessions.get(ck.Value, touch)
		}
		if s == nil {
			target := "/signin"
			if expired {
				target += "?expired=1"
			} else if r.Method == http.MethodGet && r.Header.Get("HX-Request") == "" && r.URL.Path != "/" {
				target += "?next=" + url.QueryEscape(r.URL.RequestURI())
			}
			w.Header().Set("Cache-Control", "no-store")
			if r.Header.Get("HX-Request") != "" {
				w.Header().Set("HX-Redirect", target)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			tok := r.Header.Get(csrfHeader)
			if tok == "" {
				tok = r.PostFormValue(csrfField)
			}
			if !equalTokens(tok, s.csrf) {
				c.opts.Logger.Warn("console: request without a valid CSRF token refused", "method", r.Method, "path", r.URL.Path, "remote", peerAddr(r))
				http.Error(w, "This form is out of date or did not come from the console (no valid CSRF token). Reload the page and try again.", http.StatusForbidden)
				return
			}
		}
		// Pages show what the server holds now; none is kept by a cache.
		w.Header().Set("Cache-Control", "no-store")
		page(w, r, s)
	})
}
