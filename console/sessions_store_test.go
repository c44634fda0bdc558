package console

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/store"
)

const replicaToken = "a-token-of-the-api-1234"

// openStore opens and migrates url as one replica's store.
func openStore(t *testing.T, url string) *store.DB {
	t.Helper()
	db, err := store.Open(t.Context(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return db
}

// request sends method path to h with the session cookie ck; a POST
// carries form.
func request(h http.Handler, ck *http.Cookie, method, path string, form url.Values, hdr ...string) *httptest.ResponseRecorder {
	var req *http.Request
	if form != nil {
		req = httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, path, nil)
	}
	req.AddCookie(ck)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestSessionsSharedByReplicas: two consoles over two stores on one
// PostgreSQL database, as two replicas behind one Service. A session
// started on one works on the other, with the same CSRF token, and
// signing out on the other ends it on the first at once.
func TestSessionsSharedByReplicas(t *testing.T) {
	pg := testenv.PostgresURL(t)
	clk := &clock{now: time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)}
	first := New(Options{APIToken: replicaToken, Sessions: openStore(t, pg), Now: clk.Now})
	second := New(Options{APIToken: replicaToken, Sessions: openStore(t, pg), Now: clk.Now})

	ck := signIn(t, first, replicaToken)
	if ck == nil {
		t.Fatal("no session cookie from the first replica")
	}
	rec := request(second, ck, "GET", "/integrations", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("the session on the second replica: %d, want the page", rec.Code)
	}
	m := csrfInForm.FindStringSubmatch(rec.Body.String())
	if m == nil {
		t.Fatalf("no CSRF token on the second replica's page: %s", rec.Body)
	}
	// A write needs the session's CSRF token, which the second replica
	// read from the store; a wrong one is refused there too.
	if rec := request(second, ck, "POST", "/signout", url.Values{"csrf": {"not-the-token"}}); rec.Code != http.StatusForbidden {
		t.Fatalf("sign out with a wrong CSRF token: %d, want 403", rec.Code)
	}
	clk.add(5 * time.Minute)
	if rec := request(first, ck, "GET", "/integrations", nil); rec.Code != http.StatusOK {
		t.Fatalf("the session back on the first replica: %d", rec.Code)
	}
	rec = request(second, ck, "POST", "/signout", url.Values{"csrf": {m[1]}})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/signin?signedout=1" {
		t.Fatalf("sign out on the second replica: %d to %q", rec.Code, rec.Header().Get("Location"))
	}
	for name, c := range map[string]*Console{"first": first, "second": second} {
		rec := request(c, ck, "GET", "/integrations", nil)
		if rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/signin") {
			t.Fatalf("the signed-out session on the %s replica: %d to %q, want the sign-in page", name, rec.Code, rec.Header().Get("Location"))
		}
	}
}

// TestStoredSessionIdleExpiry: with the store, last-seen is written at
// most once a minute, and the idle check allows for that minute: a session
// never ends before console.idle_timeout has passed since its last real
// request, and ends at most a minute after. The asset list's refresh is
// still not activity.
func TestStoredSessionIdleExpiry(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, dbURL string) {
		clk := &clock{now: time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)}
		t0 := clk.Now()
		c := New(Options{APIToken: replicaToken, Sessions: openStore(t, dbURL), IdleTimeout: 10 * time.Minute, Now: clk.Now})
		raw := testenv.RawDB(t, dbURL)
		lastSeen := func() time.Time {
			t.Helper()
			var at any
			if err := raw.QueryRowContext(t.Context(), "SELECT last_seen_at FROM console_sessions").Scan(&at); err != nil {
				t.Fatal(err)
			}
			switch v := at.(type) {
			case time.Time:
				return v.UTC()
			case string:
				p, err := time.Parse(time.RFC3339Nano, v)
				if err != nil {
					t.Fatal(err)
				}
				return p
			}
			t.Fatalf("last_seen_at scanned as %T", at)
			return time.Time{}
		}
		var ck *http.Cookie
		signInNow := func() {
			t.Helper()
			if ck = signIn(t, c, replicaToken); ck == nil {
				t.Fatal("sign-in started no session")
			}
		}
		get := func(hdr ...string) int {
			return request(c, ck, "GET", "/integrations", nil, hdr...).Code
		}
		signInNow()
		clk.add(59 * time.Second)
		if code := get(); code != http.StatusOK {
			t.Fatalf("59s after sign-in: %d", code)
		}
		if got := lastSeen(); !got.Equal(t0) {
			t.Fatalf("a request 59s after the last write wrote last-seen %s; want it left at %s", got, t0)
		}
		// Exactly idle_timeout after the last real request (t0+59s):
		// not ended, though the stored time is older.
		clk.add(10 * time.Minute)
		if code := get("HX-Request", "true", "HX-Trigger", pollTrigger); code != http.StatusOK {
			t.Fatalf("idle_timeout after the last real request, a refresh: %d, want the session kept", code)
		}
		if got := lastSeen(); !got.Equal(t0) {
			t.Fatalf("the list's refresh wrote last-seen %s", got)
		}
		// 1s later: idle_timeout and a second since the last real
		// request, 11 minutes since the stored time: ended.
		clk.add(time.Second)
		rec := request(c, ck, "GET", "/integrations", nil, "HX-Request", "true")
		if rec.Code != http.StatusUnauthorized || rec.Header().Get("HX-Redirect") != "/signin?expired=1" {
			t.Fatalf("11 minutes after the stored last-seen: %d %v", rec.Code, rec.Header())
		}
		var n int
		if err := raw.QueryRowContext(t.Context(), "SELECT count(*) FROM console_sessions").Scan(&n); err != nil || n != 0 {
			t.Fatalf("the expired session's row: %d rows (err %v), want it deleted", n, err)
		}

		// A request a minute or more after the stored time writes it.
		t1 := clk.Now()
		signInNow()
		clk.add(time.Minute)
		if code := get(); code != http.StatusOK {
			t.Fatalf("a minute after sign-in: %d", code)
		}
		if got := lastSeen(); !got.Equal(t1.Add(time.Minute)) {
			t.Fatalf("a request a minute after the last write: last-seen %s, want %s", got, t1.Add(time.Minute))
		}
		// Ended at most a minute past idle_timeout after that request.
		clk.add(11 * time.Minute)
		if code := get(); code != http.StatusSeeOther {
			t.Fatalf("idle_timeout and a minute after the last request: %d, want the session ended", code)
		}
	})
}

// TestSessionIDNotStoredInClear: the table holds the SHA-256 of the
// cookie's id, never the id, and the audit's actor label beside it.
func TestSessionIDNotStoredInClear(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, dbURL string) {
		c := New(Options{APIToken: replicaToken, Sessions: openStore(t, dbURL)})
		ck := signIn(t, c, replicaToken)
		if ck == nil || len(ck.Value) < 32 {
			t.Fatalf("session cookie %+v", ck)
		}
		rows, err := testenv.RawDB(t, dbURL).QueryContext(t.Context(),
			"SELECT id_hash, csrf, actor, CAST(created_at AS TEXT), CAST(last_seen_at AS TEXT) FROM console_sessions")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		n := 0
		sum := sha256.Sum256([]byte(ck.Value))
		for rows.Next() {
			n++
			var cols [5]string
			if err := rows.Scan(&cols[0], &cols[1], &cols[2], &cols[3], &cols[4]); err != nil {
				t.Fatal(err)
			}
			for i, v := range cols {
				if strings.Contains(v, ck.Value) {
					t.Fatalf("column %d holds the session id in clear: %q", i, v)
				}
			}
			if cols[0] != hex.EncodeToString(sum[:]) {
				t.Fatalf("id_hash %q, want the SHA-256 of the cookie's id", cols[0])
			}
			if want := "console session " + hex.EncodeToString(sum[:4]); cols[2] != want {
				t.Fatalf("actor %q, want %q", cols[2], want)
			}
		}
		if err := rows.Err(); err != nil || n != 1 {
			t.Fatalf("%d session rows (err %v), want 1", n, err)
		}
	})
}
