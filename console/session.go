package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/audit"
)

// Sessions are kept in a SessionStore: the server gives its store, so a
// session lives in the database and every replica on it knows it (signing
// out ends it on all of them, and a restart signs no one out). Only the
// SHA-256 of the cookie's id is stored, never the id.
//
// A request that counts as activity writes the session's last-seen time
// only when the stored one is touchEvery old or older: a write per request
// would make every page view, and every htmx fragment, a database write.
// So the stored time may lag the real last request, by less than
// touchEvery, and a session ends idle+touchEvery after its stored last-seen
// time: never before idle_timeout has passed since the real last request,
// and at most touchEvery after it.

const (
	sessionCookie = "soarkafka_session"
	// signInCookie carries the sign-in form's CSRF token before there is
	// a session (a double-submit cookie).
	signInCookie = "soarkafka_signin"
	// csrfHeader is how htmx requests send the session's CSRF token (the
	// layout sets it with hx-headers); forms send the csrf field.
	csrfHeader = "X-CSRF-Token"
	csrfField  = "csrf"
	// maxSessions bounds the sessions kept; past it the least recently
	// seen session ends.
	maxSessions = 10000
	// touchEvery is how stale a session's stored last-seen time may get
	// before a request writes it again (see above).
	touchEvery = time.Minute
)

// SessionStore keeps the console's sessions; *store.DB is one, shared by
// every replica on its database. Rows are keyed by the hex SHA-256 of the
// session's id.
type SessionStore interface {
	// CreateConsoleSession stores s, deleting first the sessions last
	// seen before idleBefore and, past max, the least recently seen.
	CreateConsoleSession(ctx context.Context, s soarkafka.ConsoleSession, idleBefore time.Time, max int) error
	// ConsoleSession returns the session of idHash, false when none.
	ConsoleSession(ctx context.Context, idHash string) (soarkafka.ConsoleSession, bool, error)
	// TouchConsoleSession moves the last-seen time forward to at.
	TouchConsoleSession(ctx context.Context, idHash string, at time.Time) error
	// DeleteConsoleSession ends the session, on every replica.
	DeleteConsoleSession(ctx context.Context, idHash string) error
}

// session is a live session as a request sees it: its id comes from the
// request's cookie, the rest from the store.
type session struct {
	id         string
	csrf       string
	actorLabel string
	created    time.Time
	lastSeen   time.Time
}

type sessions struct {
	store SessionStore
	idle  time.Duration
	now   func() time.Time
}

func newSessions(store SessionStore, idle time.Duration, now func() time.Time) *sessions {
	return &sessions{store: store, idle: idle, now: now}
}

// randomToken is 32 bytes from crypto/rand, URL-safe.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// idHash is what the store keeps of a session id: its SHA-256, in hex.
func idHash(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// expired reports whether a session last seen (as stored) at lastSeen has
// ended at now. The stored time lags the real last request by less than
// touchEvery, so only past idle+touchEvery is the real one surely idle
// longer than idle.
func (ss *sessions) expired(lastSeen, now time.Time) bool {
	return now.Sub(lastSeen) >= ss.idle+touchEvery
}

// create starts a session; a new id every time, so an id planted before
// sign-in is never the one signed in.
func (ss *sessions) create(ctx context.Context) (*session, error) {
	now := ss.now()
	id := randomToken()
	h := idHash(id)
	row := soarkafka.ConsoleSession{
		IDHash: h, CSRF: randomToken(),
		// A short hash of the id names the session in the audit trail
		// without revealing its cookie.
		Actor:   audit.ConsoleActor(h[:8]),
		Created: now, LastSeen: now,
	}
	if err := ss.store.CreateConsoleSession(ctx, row, now.Add(-(ss.idle + touchEvery)), maxSessions); err != nil {
		return nil, fmt.Errorf("console: start a session: %w", err)
	}
	return &session{id: id, csrf: row.CSRF, actorLabel: row.Actor, created: now, lastSeen: now}, nil
}

// get returns the live session of id, or nil with expired true when it
// existed but was idle too long (it ends then). touch records the request
// as activity.
func (ss *sessions) get(ctx context.Context, id string, touch bool) (s *session, expired bool, err error) {
	h := idHash(id)
	row, ok, err := ss.store.ConsoleSession(ctx, h)
	if err != nil {
		return nil, false, fmt.Errorf("console: read the session: %w", err)
	}
	if !ok {
		return nil, false, nil
	}
	now := ss.now()
	if ss.expired(row.LastSeen, now) {
		if err := ss.store.DeleteConsoleSession(ctx, h); err != nil {
			return nil, true, fmt.Errorf("console: end an expired session: %w", err)
		}
		return nil, true, nil
	}
	if touch && now.Sub(row.LastSeen) >= touchEvery {
		if err := ss.store.TouchConsoleSession(ctx, h, now); err != nil {
			return nil, false, fmt.Errorf("console: record the session's activity: %w", err)
		}
		row.LastSeen = now
	}
	return &session{id: id, csrf: row.CSRF, actorLabel: row.Actor, created: row.Created, lastSeen: row.LastSeen}, false, nil
}

// end ends the session of id, on every replica.
func (ss *sessions) end(ctx context.Context, id string) error {
	if err := ss.store.DeleteConsoleSession(ctx, idHash(id)); err != nil {
		return fmt.Errorf("console: end the session: %w", err)
	}
	return nil
}

// memorySessions keeps sessions in this process's memory: the console's
// default when Options.Sessions is nil, for tests and a console embedded
// without a store. The server always gives its store.
type memorySessions struct {
	mu   sync.Mutex
	rows map[string]soarkafka.ConsoleSession
}

func newMemorySessions() *memorySessions {
	return &memorySessions{rows: map[string]soarkafka.ConsoleSession{}}
}

func (m *memorySessions) CreateConsoleSession(_ context.Context, s soarkafka.ConsoleSession, idleBefore time.Time, max int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for h, o := range m.rows {
		if o.LastSeen.Before(idleBefore) {
			delete(m.rows, h)
		}
	}
	if over := len(m.rows) - max + 1; over > 0 {
		rest := make([]soarkafka.ConsoleSession, 0, len(m.rows))
		for _, o := range m.rows {
			rest = append(rest, o)
		}
		sort.Slice(rest, func(i, j int) bool { return rest[i].LastSeen.Before(rest[j].LastSeen) })
		for _, o := range rest[:over] {
			delete(m.rows, o.IDHash)
		}
	}
	m.rows[s.IDHash] = s
	return nil
}

func (m *memorySessions) ConsoleSession(_ context.Context, idHash string) (soarkafka.ConsoleSession, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.rows[idHash]
	return s, ok, nil
}

func (m *memorySessions) TouchConsoleSession(_ context.Context, idHash string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.rows[idHash]; ok && s.LastSeen.Before(at) {
		s.LastSeen = at
		m.rows[idHash] = s
	}
	return nil
}

func (m *memorySessions) DeleteConsoleSession(_ context.Context, idHash string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.rows, idHash)
	return nil
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
			var err error
			if s, expired, err = c.sessions.get(r.Context(), ck.Value, touch); err != nil {
				c.sessionsUnavailable(w, r, err)
				return
			}
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

// sessionsUnavailable answers a request whose session could not be read or
// written: the person is not signed out for a database that did not
// answer, only told to try again.
func (c *Console) sessionsUnavailable(w http.ResponseWriter, r *http.Request, err error) {
	c.opts.Logger.Error("console: sessions unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, "The console cannot reach its database to check your session. Try again in a moment.", http.StatusServiceUnavailable)
}
