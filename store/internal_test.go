package store

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"
)

func TestRebind(t *testing.T) {
	for _, tc := range []struct{ in, sqlite string }{
		{"SELECT 1", "SELECT 1"},
		{"WHERE a = $1", "WHERE a = ?1"},
		// Out of order and repeated: positional ?N keeps each value in place.
		{"VALUES ($2, $1, $10, $2)", "VALUES (?2, ?1, ?10, ?2)"},
		{"SELECT '$' || $1", "SELECT '$' || ?1"},
	} {
		if got := sqliteDialect.rebind(tc.in); got != tc.sqlite {
			t.Errorf("sqlite rebind(%q) = %q, want %q", tc.in, got, tc.sqlite)
		}
		if got := postgresDialect.rebind(tc.in); got != tc.in {
			t.Errorf("postgres rebind(%q) = %q, want it unchanged", tc.in, got)
		}
	}
}

// TestRebindBindsOutOfOrder runs a statement that uses its parameters out of
// order on SQLite, where a bare $2 would be numbered by first appearance.
func TestRebindBindsOutOfOrder(t *testing.T) {
	db, err := Open(t.Context(), "sqlite://"+t.TempDir()+"/t.db", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var first, second string
	if err := db.db.QueryRowContext(t.Context(), db.dialect.rebind("SELECT $2, $1"), "one", "two").Scan(&first, &second); err != nil {
		t.Fatal(err)
	}
	if first != "two" || second != "one" {
		t.Fatalf("SELECT $2, $1 with (one, two) = (%s, %s), want (two, one)", first, second)
	}
}

// TestSQLitePragmas checks the pragmas on several pooled connections at once,
// since SQLite pragmas other than journal_mode are per connection.
func TestSQLitePragmas(t *testing.T) {
	db, err := Open(t.Context(), "sqlite://"+t.TempDir()+"/t.db", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const n = 3
	conns := make([]*sql.Conn, n)
	for i := range conns {
		// Held open together, so each is a distinct connection.
		if conns[i], err = db.db.Conn(t.Context()); err != nil {
			t.Fatal(err)
		}
		defer conns[i].Close()
	}
	for i, conn := range conns {
		for pragma, want := range map[string]string{
			"journal_mode": "wal",
			"foreign_keys": "1",
			"busy_timeout": "5000",
			"synchronous":  "1", // NORMAL
			"temp_store":   "2", // MEMORY
			// A backstop: the checkpointer runs the checkpoints.
			"wal_autocheckpoint": "4096",
		} {
			var got string
			if err := conn.QueryRowContext(t.Context(), "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("connection %d: PRAGMA %s = %s, want %s", i, pragma, got, want)
			}
		}
	}
}

// TestSQLiteWritersQueue: a write transaction waits for another of the same
// process in line, however long that one takes, instead of failing with
// SQLITE_BUSY once SQLite's busy handler gives up (here after 50 ms).
func TestSQLiteWritersQueue(t *testing.T) {
	db, err := Open(t.Context(), "sqlite://"+t.TempDir()+"/t.db", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Two connections, each with a short busy timeout.
	db.db.SetMaxOpenConns(2)
	conns := make([]*sql.Conn, 2)
	for i := range conns {
		if conns[i], err = db.db.Conn(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := conns[i].ExecContext(t.Context(), "PRAGMA busy_timeout = 50"); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range conns {
		c.Close()
	}

	holding := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- db.inTx(t.Context(), func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(t.Context(), `INSERT INTO ingest_leases (asset, holder, expires_at, acquired_at) VALUES ('a', 'x', '2099-01-01T00:00:00Z', '2026-01-01T00:00:00Z')`); err != nil {
				return err
			}
			close(holding)
			time.Sleep(400 * time.Millisecond) // eight busy timeouts
			return nil
		})
	}()
	select {
	case <-holding:
	case err := <-first:
		t.Fatalf("first writer: %v", err)
	}
	second := db.inTx(t.Context(), func(tx *sql.Tx) error {
		_, err := tx.ExecContext(t.Context(), `INSERT INTO ingest_leases (asset, holder, expires_at, acquired_at) VALUES ('b', 'y', '2099-01-01T00:00:00Z', '2026-01-01T00:00:00Z')`)
		return err
	})
	if err := <-first; err != nil {
		t.Fatalf("first writer: %v", err)
	}
	if second != nil {
		t.Fatalf("second writer: %v; want it to wait for the first", second)
	}
	// So does a single statement outside a transaction.
	holding = make(chan struct{})
	go func() {
		first <- db.inTx(t.Context(), func(*sql.Tx) error { close(holding); time.Sleep(400 * time.Millisecond); return nil })
	}()
	<-holding
	if _, err := db.exec(t.Context(), `DELETE FROM ingest_leases WHERE asset = 'a'`); err != nil {
		t.Fatalf("a statement behind a transaction: %v; want it to wait for it", err)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	// A writer waiting in line still honours its context.
	holding = make(chan struct{})
	release := make(chan struct{})
	go func() {
		first <- db.inTx(t.Context(), func(*sql.Tx) error { close(holding); <-release; return nil })
	}()
	<-holding
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := db.inTx(ctx, func(*sql.Tx) error { return nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a waiting writer past its deadline: %v", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
}
