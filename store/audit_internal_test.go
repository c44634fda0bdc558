package store

import (
	"testing"

	"github.com/soarkafka/soarkafka/internal/testenv"
)

// Migration 00008 adds the audit trail; Down takes it away, and Up again
// works on the result. An action outside the list is refused.
func TestMigrationAuditEvents(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db, p := migrationProvider(t, url)
		ctx := t.Context()
		insert := func(action string) error {
			_, err := db.db.ExecContext(ctx, db.dialect.rebind(`INSERT INTO audit_events (at, actor, method, route, object_kind, object_name, action)
				VALUES ($1, 'api token', 'POST', 'POST /v1/assets', 'asset', 'a', $2)`), db.dialect.timeArg(db.now()), action)
			return err
		}
		for _, step := range []string{"up", "down", "up"} {
			var err error
			if step == "up" {
				_, err = p.UpTo(ctx, 8)
			} else {
				_, err = p.DownTo(ctx, 7)
			}
			if err != nil {
				t.Fatalf("%s: %v", step, err)
			}
			err = insert("create")
			if step == "down" {
				if err == nil {
					t.Fatal("after down: audit_events still takes rows")
				}
				continue
			}
			if err != nil {
				t.Fatalf("after %s: %v", step, err)
			}
			if err := insert("read"); err == nil {
				t.Fatalf("after %s: an action outside the list was accepted", step)
			}
		}
	})
}
