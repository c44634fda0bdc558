package store_test

import (
	"strings"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/internal/testenv"
)

// sessionRow is a console session whose id hash is h repeated to 64
// characters (the column takes a SHA-256 in hex, nothing else).
func sessionRow(h string, lastSeen time.Time) soarkafka.ConsoleSession {
	return soarkafka.ConsoleSession{
		IDHash: strings.Repeat(h, 64/len(h)), CSRF: "csrf-" + h, Actor: "console session " + h,
		Created: lastSeen.Add(-time.Hour), LastSeen: lastSeen,
	}
}

// TestConsoleSessionLifecycle: a session reads back as stored, its
// last-seen time only moves forward, and deleting it ends it.
func TestConsoleSessionLifecycle(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		ctx := t.Context()
		db := openMigrated(t, url)
		t0 := time.Date(2026, 12, 5, 12, 0, 0, 123456000, time.UTC)
		want := sessionRow("ab", t0)
		if err := db.CreateConsoleSession(ctx, want, t0.Add(-time.Hour), 10); err != nil {
			t.Fatal(err)
		}
		got, ok, err := db.ConsoleSession(ctx, want.IDHash)
		if err != nil || !ok || got != want {
			t.Fatalf("ConsoleSession = %+v, %v, %v; want %+v", got, ok, err, want)
		}
		if _, ok, err := db.ConsoleSession(ctx, strings.Repeat("cd", 32)); ok || err != nil {
			t.Fatalf("an unknown session: found %v, err %v", ok, err)
		}
		if err := db.TouchConsoleSession(ctx, want.IDHash, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		// Another replica with an older request must not move it back.
		if err := db.TouchConsoleSession(ctx, want.IDHash, t0.Add(30*time.Second)); err != nil {
			t.Fatal(err)
		}
		if got, _, _ := db.ConsoleSession(ctx, want.IDHash); !got.LastSeen.Equal(t0.Add(time.Minute)) || !got.Created.Equal(want.Created) {
			t.Fatalf("after touches at +1m then +30s: last seen %s, created %s; want +1m and unchanged", got.LastSeen, got.Created)
		}
		if err := db.DeleteConsoleSession(ctx, want.IDHash); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := db.ConsoleSession(ctx, want.IDHash); ok || err != nil {
			t.Fatalf("a deleted session: found %v, err %v", ok, err)
		}
		if err := db.DeleteConsoleSession(ctx, want.IDHash); err != nil {
			t.Fatalf("deleting a session twice: %v", err)
		}
		// The column holds a SHA-256 in hex: a raw cookie id (43
		// characters of base64) is refused by the schema itself.
		if err := db.CreateConsoleSession(ctx, soarkafka.ConsoleSession{IDHash: strings.Repeat("x", 43), LastSeen: t0, Created: t0},
			t0.Add(-time.Hour), 10); err == nil {
			t.Fatal("a 43-character id_hash was stored")
		}
	})
}

// TestConsoleSessionsBounded: a sign-in deletes the expired sessions and
// keeps at most max, the least recently seen going first.
func TestConsoleSessionsBounded(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		ctx := t.Context()
		db := openMigrated(t, url)
		t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
		// a is expired at the next sign-in; b is the least recently seen
		// of the live ones.
		for _, s := range []soarkafka.ConsoleSession{
			sessionRow("a1", t0), sessionRow("b1", t0.Add(10*time.Minute)),
			sessionRow("c1", t0.Add(12*time.Minute)), sessionRow("d1", t0.Add(11*time.Minute)),
		} {
			if err := db.CreateConsoleSession(ctx, s, t0.Add(-time.Hour), 4); err != nil {
				t.Fatal(err)
			}
		}
		if n := countSessions(t, url); n != 4 {
			t.Fatalf("%d sessions, want 4", n)
		}
		// Idle before t0+5m is expired: a goes; then 3 are left, so with
		// a max of 3 the least recently seen (b) goes for the new one.
		if err := db.CreateConsoleSession(ctx, sessionRow("e1", t0.Add(20*time.Minute)), t0.Add(5*time.Minute), 3); err != nil {
			t.Fatal(err)
		}
		for h, want := range map[string]bool{"a1": false, "b1": false, "c1": true, "d1": true, "e1": true} {
			if _, ok, err := db.ConsoleSession(ctx, strings.Repeat(h, 32)); err != nil || ok != want {
				t.Errorf("session %s: found %v (err %v), want %v", h, ok, err, want)
			}
		}
	})
}

func countSessions(t *testing.T, url string) int {
	t.Helper()
	var n int
	if err := testenv.RawDB(t, url).QueryRowContext(t.Context(), "SELECT count(*) FROM console_sessions").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
