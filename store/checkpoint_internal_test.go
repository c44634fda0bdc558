package store

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/migrations"
)

// The checkpointer copies a batch's pages from the WAL into the database
// file soon after the batch commits, well before the connections' backstop
// (4096 pages) would: without it the database file would stay at its
// migrated size until the WAL reached 64 MiB.
func TestCheckpointerCopiesTheWALBack(t *testing.T) {
	file := t.TempDir() + "/t.db"
	db, err := Open(t.Context(), "sqlite://"+file, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Whatever the migrations left in the WAL is copied first, so that
	// the size below is the batch's.
	if _, err := db.db.ExecContext(t.Context(), "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	before := fileSize(t, file)

	const n, size = 2000, 1024 // 2 MB: some 130 pages of 16 KiB, far under the backstop
	c := ingest.Container{SourceDataIdentifier: "c", Body: json.RawMessage(`{"name":"c"}`)}
	for i := range n {
		c.Artifacts = append(c.Artifacts, ingest.Artifact{SourceDataIdentifier: strconv.Itoa(i),
			Body: json.RawMessage(`{"cef":{"message":"` + strings.Repeat("x", size) + `"}}`)})
	}
	if _, err := db.SaveBatch(t.Context(), &ingest.Batch{Asset: "a", Topic: "t", Containers: []ingest.Container{c}, BodiesValid: true}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for fileSize(t, file)-before < n*size {
		if time.Now().After(deadline) {
			t.Fatalf("database file grew %d bytes in 10 s after a %d-byte batch: the WAL was not checkpointed", fileSize(t, file)-before, n*size)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Close stops the checkpointer and returns.
	done := make(chan error, 1)
	go func() { done <- db.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return in 5 s")
	}
}

func fileSize(t *testing.T, file string) int64 {
	t.Helper()
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// Migration 00006 rebuilds SQLite's artifacts without CHECK (json_valid):
// rows, ids, the AUTOINCREMENT high-water mark, indexes and the foreign key
// survive it, and Down puts the CHECK back.
func TestMigrationDropsArtifactBodyCheck(t *testing.T) {
	db, err := Open(t.Context(), "sqlite://"+t.TempDir()+"/t.db", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fsys, err := migrations.FS("sqlite")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db.db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := p.UpTo(ctx, 5); err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) error {
		_, err := db.db.ExecContext(ctx, q, args...)
		return err
	}
	must := func(q string, args ...any) {
		t.Helper()
		if err := exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	must(`INSERT INTO containers (id, asset, name, body, created_at, updated_at) VALUES (7, 'a', 'c', '{}', 't', 't')`)
	for i := 1; i <= 3; i++ {
		must(`INSERT INTO artifacts (container_id, asset, source_data_identifier, body, created_at) VALUES (7, 'a', ?, ?, 't')`,
			strconv.Itoa(i), `{"n":`+strconv.Itoa(i)+`}`)
	}
	must(`DELETE FROM artifacts WHERE id = 3`) // the high-water mark stays 3
	insertBad := func() error {
		return exec(`INSERT INTO artifacts (container_id, asset, source_data_identifier, body, created_at) VALUES (7, 'a', 'bad', '{"cef": }', 't')`)
	}
	if err := insertBad(); err == nil {
		t.Fatal("before 00006 an artifact body that is not JSON was accepted")
	}

	for _, step := range []string{"up", "down", "up"} {
		var err error
		if step == "up" {
			_, err = p.UpTo(ctx, 6)
		} else {
			_, err = p.DownTo(ctx, 5)
		}
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		var ids string
		if err := db.db.QueryRowContext(ctx, `SELECT group_concat(id || ':' || body, ' ') FROM (SELECT id, body FROM artifacts ORDER BY id)`).Scan(&ids); err != nil {
			t.Fatal(err)
		}
		if ids != `1:{"n":1} 2:{"n":2}` {
			t.Fatalf("after %s the artifacts are %q, want ids 1 and 2 with their bodies", step, ids)
		}
		var indexes string
		if err := db.db.QueryRowContext(ctx, `SELECT group_concat(name, ' ') FROM (SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'artifacts' AND name NOT LIKE 'sqlite_autoindex%' ORDER BY name)`).Scan(&indexes); err != nil {
			t.Fatal(err)
		}
		if indexes != "artifacts_asset_id artifacts_container_id" {
			t.Fatalf("after %s the artifacts' indexes are %q", step, indexes)
		}
		if err := exec(`INSERT INTO artifacts (container_id, asset, source_data_identifier, body, created_at) VALUES (99, 'a', 'orphan', '{}', 't')`); err == nil {
			t.Fatalf("after %s an artifact of a container that does not exist was accepted", step)
		}
		if err := exec(`INSERT INTO artifacts (container_id, asset, source_data_identifier, body, created_at) VALUES (7, 'a', '1', '{}', 't')`); err == nil {
			t.Fatalf("after %s a duplicate source_data_identifier was accepted", step)
		}
	}
	must(`INSERT INTO artifacts (container_id, asset, source_data_identifier, body, created_at) VALUES (7, 'a', '4', '{}', 't')`)
	var id int
	if err := db.db.QueryRowContext(ctx, `SELECT id FROM artifacts WHERE source_data_identifier = '4'`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if id != 4 {
		t.Fatalf("the next artifact got id %d, want 4: the deleted id 3 must not be handed out again", id)
	}
	if err := insertBad(); err != nil {
		t.Fatalf("after 00006 the database still checks artifact bodies: %v", err)
	}
}
