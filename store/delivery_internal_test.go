package store

import (
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/migrations"
)

// Migration 00007 adds the outbox and the SOAR container ids; Down takes
// them away and leaves the containers, and Up again works on the result.
// The outbox's foreign keys cascade from containers.
func TestMigrationDeliveryOutbox(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db, p := migrationProvider(t, url)
		ctx := t.Context()
		if _, err := p.UpTo(ctx, 6); err != nil {
			t.Fatal(err)
		}
		now := db.dialect.timeArg(db.now())
		exec := func(q string, args ...any) error {
			_, err := db.db.ExecContext(ctx, db.dialect.rebind(q), args...)
			return err
		}
		if err := exec(`INSERT INTO containers (id, asset, name, body, created_at, updated_at) VALUES (7, 'a', 'c', '{}', $1, $1)`, now); err != nil {
			t.Fatal(err)
		}
		tables := func() int {
			t.Helper()
			q := `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('delivery_outbox', 'delivery_containers')`
			if db.dialect.name == "postgres" {
				q = `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name IN ('delivery_outbox', 'delivery_containers')`
			}
			var n int
			if err := db.db.QueryRowContext(ctx, q).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		for _, step := range []string{"up", "down", "up"} {
			var err error
			if step == "up" {
				_, err = p.UpTo(ctx, 7)
			} else {
				_, err = p.DownTo(ctx, 6)
			}
			if err != nil {
				t.Fatalf("%s: %v", step, err)
			}
			want := map[string]int{"up": 2, "down": 0}[step]
			if n := tables(); n != want {
				t.Fatalf("after %s: %d delivery tables, want %d", step, n, want)
			}
			var c int
			if err := db.db.QueryRowContext(ctx, `SELECT count(*) FROM containers WHERE id = 7`).Scan(&c); err != nil || c != 1 {
				t.Fatalf("after %s: container 7 count %d, %v", step, c, err)
			}
			if step != "up" {
				continue
			}
			if err := exec(`INSERT INTO delivery_outbox (asset, container_id, created_at, next_attempt_at) VALUES ('a', 7, $1, $1)`, now); err != nil {
				t.Fatalf("after %s: %v", step, err)
			}
			if err := exec(`INSERT INTO delivery_outbox (asset, container_id, created_at, next_attempt_at) VALUES ('a', 99, $1, $1)`, now); err == nil {
				t.Fatalf("after %s: an outbox row of a container that does not exist was accepted", step)
			}
			if err := exec(`INSERT INTO delivery_outbox (asset, container_id, first_artifact_id, created_at, next_attempt_at) VALUES ('a', 7, 1, $1, $1)`, now); err == nil {
				t.Fatalf("after %s: a row with half an artifact range was accepted", step)
			}
			if err := exec(`INSERT INTO delivery_outbox (asset, container_id, state, created_at, next_attempt_at) VALUES ('a', 7, 'lost', $1, $1)`, now); err == nil {
				t.Fatalf("after %s: an unknown state was accepted", step)
			}
			if err := exec(`INSERT INTO delivery_containers (container_id, asset, soar_container_id) VALUES (7, 'a', 3)`); err != nil {
				t.Fatalf("after %s: %v", step, err)
			}
		}
		// Deleting the container takes its outbox rows and SOAR id along.
		if err := exec(`DELETE FROM containers WHERE id = 7`); err != nil {
			t.Fatal(err)
		}
		var left int
		if err := db.db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM delivery_outbox) + (SELECT count(*) FROM delivery_containers)`).Scan(&left); err != nil || left != 0 {
			t.Fatalf("%d delivery rows outlived their container, %v", left, err)
		}
	})
}

// migrationProvider opens url unmigrated, with a goose provider of the
// store's own migrations to step it up and down; both are closed with the
// test.
func migrationProvider(t *testing.T, url string) (*DB, *goose.Provider) {
	t.Helper()
	db, err := Open(t.Context(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	fsys, err := migrations.FS(db.dialect.name)
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(db.dialect.goose, db.db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	return db, p
}
