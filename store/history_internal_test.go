package store

import (
	"strings"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka/internal/testenv"
)

// Migration 00009 adds the poll history; Down takes it away, and Up again
// works on the result. A minute is stored once per asset.
func TestMigrationPollHistory(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db, p := migrationProvider(t, url)
		ctx := t.Context()
		insert := func() error {
			if _, err := db.db.ExecContext(ctx, db.dialect.rebind(`INSERT INTO ingest_poll_history (asset, kind, started_at, duration_ns, status)
				VALUES ('a', 'scheduled', $1, 5, 'success')`), db.dialect.timeArg(db.now())); err != nil {
				return err
			}
			_, err := db.db.ExecContext(ctx, db.dialect.rebind(`INSERT INTO ingest_minutes (asset, minute, messages) VALUES ('a', $1, 3)`),
				db.dialect.timeArg(db.now().Truncate(time.Minute)))
			return err
		}
		for _, step := range []string{"up", "down", "up"} {
			var err error
			if step == "up" {
				_, err = p.UpTo(ctx, 9)
			} else {
				_, err = p.DownTo(ctx, 8)
			}
			if err != nil {
				t.Fatalf("%s: %v", step, err)
			}
			err = insert()
			if step == "down" {
				if err == nil {
					t.Fatal("after down: the history tables still take rows")
				}
				continue
			}
			if err != nil {
				t.Fatalf("after %s: %v", step, err)
			}
			// The primary key: SQLite reports it apart from UNIQUE
			// (SQLITE_CONSTRAINT_PRIMARYKEY), in a message that says UNIQUE.
			if err := insert(); err == nil || !strings.Contains(strings.ToLower(err.Error()), "unique") {
				t.Fatalf("after %s: a second row for the same asset and minute: %v, want a unique violation", step, err)
			}
		}
	})
}
