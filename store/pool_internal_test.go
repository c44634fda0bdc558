package store

import (
	"sync"
	"testing"
)

// Concurrent readers on SQLite reuse their connections: before the pool
// kept them, every read past the second closed its connection after use
// and the next opened one again (its pragmas, the schema), which was most
// of the console's assets list's time with 50 assets.
func TestSQLiteKeepsConnectionsOfConcurrentReaders(t *testing.T) {
	db, err := Open(t.Context(), "sqlite://"+t.TempDir()+"/t.db", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				tx, err := db.db.BeginTx(t.Context(), nil)
				if err != nil {
					t.Error(err)
					return
				}
				defer tx.Rollback()
				var n int
				if err := tx.QueryRowContext(t.Context(), "SELECT count(*) FROM assets").Scan(&n); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if st := db.db.Stats(); st.MaxIdleClosed > 0 {
			t.Fatalf("round %d: %d connections closed for want of idle room (%d open)", round, st.MaxIdleClosed, st.OpenConnections)
		}
	}
}
