package store

import (
	"database/sql"
	"testing"
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
