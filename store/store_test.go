package store_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/store"
)

// open opens url, closing it when t ends.
func open(t *testing.T, url string, logger *slog.Logger) *store.DB {
	t.Helper()
	db, err := store.Open(t.Context(), url, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// openMigrated opens and migrates url.
func openMigrated(t *testing.T, url string) *store.DB {
	t.Helper()
	db := open(t, url, nil)
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return db
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := soarkafka.ErrorCode(err); got != code {
		t.Fatalf("error %v: code %q, want %q", err, got, code)
	}
}

func TestMigrate(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		var logs testenv.LogBuffer
		db := open(t, url, slog.New(slog.NewTextHandler(&logs, nil)))
		if got, want := db.Dialect(), strings.SplitN(t.Name(), "/", 2)[1]; got != want {
			t.Errorf("Dialect() = %q, want %q", got, want)
		}
		if err := db.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		first := logs.String()
		if !strings.Contains(first, "applied database migration") || !strings.Contains(first, "file=00001_assets.sql") {
			t.Errorf("first Migrate logged %q, want the applied migration", first)
		}
		if err := db.Migrate(t.Context()); err != nil {
			t.Fatalf("second Migrate: %v", err)
		}
		if again := logs.String()[len(first):]; strings.Contains(again, "applied") {
			t.Errorf("second Migrate applied something: %q", again)
		}
		if err := db.CreateAsset(t.Context(), &assets.Asset{Name: "after-migrate"}); err != nil {
			t.Fatalf("the assets table is not usable: %v", err)
		}
	})
}

func TestAssetLifecycle(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		ctx := t.Context()
		db := openMigrated(t, url)
		// Nanoseconds and a zone other than UTC: stored as UTC microseconds.
		clock := time.Date(2024, 3, 9, 14, 5, 7, 123456789, time.FixedZone("CET", 3600))
		db.Now = func() time.Time { return clock }
		created := clock.UTC().Truncate(time.Microsecond)

		a := &assets.Asset{Name: "prod", Description: "production cluster", Config: map[string]any{"topic": "alerts"}}
		if err := db.CreateAsset(ctx, a); err != nil {
			t.Fatal(err)
		}
		if a.ID <= 0 || a.Version != 1 || !a.CreatedAt.Equal(created) || !a.UpdatedAt.Equal(created) {
			t.Fatalf("after create: ID %d, Version %d, CreatedAt %v, UpdatedAt %v; want ID > 0, 1, %v, %v",
				a.ID, a.Version, a.CreatedAt, a.UpdatedAt, created, created)
		}

		got, err := db.Asset(ctx, "prod")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, a) {
			t.Fatalf("Asset(prod) = %+v, want what CreateAsset returned, %+v", got, a)
		}
		if got.CreatedAt.Location() != time.UTC {
			t.Errorf("CreatedAt in %v, want UTC", got.CreatedAt.Location())
		}

		clock = clock.Add(90 * time.Minute)
		updated := clock.UTC().Truncate(time.Microsecond)
		u := &assets.Asset{Name: "prod", Description: "moved", Config: map[string]any{"topic": "events", "timeout": 500.0}}
		if err := db.UpdateAsset(ctx, u); err != nil {
			t.Fatal(err)
		}
		want := &assets.Asset{ID: a.ID, Name: "prod", Description: "moved",
			Config:  map[string]any{"topic": "events", "timeout": 500.0},
			Version: 2, CreatedAt: created, UpdatedAt: updated}
		if !reflect.DeepEqual(u, want) {
			t.Fatalf("after update: %+v, want %+v", u, want)
		}
		if got, err := db.Asset(ctx, "prod"); err != nil {
			t.Fatal(err)
		} else if !reflect.DeepEqual(got, want) {
			t.Fatalf("Asset(prod) after update = %+v, want %+v", got, want)
		}
		if err := db.UpdateAsset(ctx, u); err != nil {
			t.Fatal(err)
		}
		if u.Version != 3 {
			t.Errorf("Version after a second update = %d, want 3", u.Version)
		}

		if err := db.DeleteAsset(ctx, "prod"); err != nil {
			t.Fatal(err)
		}
		_, err = db.Asset(ctx, "prod")
		wantCode(t, err, soarkafka.ENOTFOUND)
		if list, err := db.Assets(ctx); err != nil || len(list) != 0 {
			t.Fatalf("Assets after delete = %v, %v; want none", list, err)
		}
	})
}

func TestAssetsOrderedByName(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db := openMigrated(t, url)
		for _, name := range []string{"kafka-b", "a.first", "Zulu", "kafka-a"} {
			if err := db.CreateAsset(t.Context(), &assets.Asset{Name: name}); err != nil {
				t.Fatal(err)
			}
		}
		list, err := db.Assets(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, a := range list {
			names = append(names, a.Name)
		}
		// Byte order in both dialects (upper case first), whatever the
		// PostgreSQL database's locale: see the migration.
		want := []string{"Zulu", "a.first", "kafka-a", "kafka-b"}
		if !reflect.DeepEqual(names, want) {
			t.Fatalf("Assets() names = %q, want %q", names, want)
		}
	})
}

func TestAssetErrors(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		ctx := t.Context()
		db := openMigrated(t, url)
		first := &assets.Asset{Name: "dup", Description: "first"}
		if err := db.CreateAsset(ctx, first); err != nil {
			t.Fatal(err)
		}

		second := &assets.Asset{Name: "dup", Description: "second"}
		err := db.CreateAsset(ctx, second)
		wantCode(t, err, soarkafka.ECONFLICT)
		if msg := soarkafka.ErrorMessage(err); msg != `asset "dup" already exists` {
			t.Errorf("conflict message %q", msg)
		}
		if second.ID != 0 || second.Version != 0 {
			t.Errorf("a failed create filled the asset: %+v", second)
		}
		if got, err := db.Asset(ctx, "dup"); err != nil || got.Description != "first" {
			t.Errorf("after the conflict Asset(dup) = %+v, %v; want the first one", got, err)
		}

		_, err = db.Asset(ctx, "nope")
		wantCode(t, err, soarkafka.ENOTFOUND)
		if msg := soarkafka.ErrorMessage(err); msg != `asset "nope" not found` {
			t.Errorf("not found message %q", msg)
		}
		wantCode(t, db.UpdateAsset(ctx, &assets.Asset{Name: "nope"}), soarkafka.ENOTFOUND)
		wantCode(t, db.DeleteAsset(ctx, "nope"), soarkafka.ENOTFOUND)

		// A config that is not JSON is a plain, wrapped error, not a code
		// a client could act on.
		err = db.CreateAsset(ctx, &assets.Asset{Name: "bad", Config: map[string]any{"f": func() {}}})
		wantCode(t, err, soarkafka.EINTERNAL)
		if !strings.Contains(err.Error(), `store: create asset "bad"`) {
			t.Errorf("error %q does not say what failed", err)
		}
	})
}

func TestConfigRoundTrip(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		ctx := t.Context()
		db := openMigrated(t, url)
		config := map[string]any{
			"hosts":               "broker1:9092,broker2:9092",
			"timeout":             30000,
			"ratio":               0.25,
			"big":                 int64(1) << 53,
			"read_from_beginning": true,
			"use_ssl":             false,
			"ca_cert":             nil,
			"unicode":             "Grüße, 東京 \"quoted\" \\ tab\t",
			"list":                []any{"a", 1, true, map[string]any{"x": "y"}},
			"kerberos":            map[string]any{"principal": "svc@EXAMPLE.COM", "nested": map[string]any{"deep": []any{}}},
			"empty":               map[string]any{},
		}
		// Numbers come back as float64, as encoding/json decodes them
		// from a request body.
		want := map[string]any{
			"hosts":               "broker1:9092,broker2:9092",
			"timeout":             30000.0,
			"ratio":               0.25,
			"big":                 float64(int64(1) << 53),
			"read_from_beginning": true,
			"use_ssl":             false,
			"ca_cert":             nil,
			"unicode":             "Grüße, 東京 \"quoted\" \\ tab\t",
			"list":                []any{"a", 1.0, true, map[string]any{"x": "y"}},
			"kerberos":            map[string]any{"principal": "svc@EXAMPLE.COM", "nested": map[string]any{"deep": []any{}}},
			"empty":               map[string]any{},
		}
		if err := db.CreateAsset(ctx, &assets.Asset{Name: "json", Config: config}); err != nil {
			t.Fatal(err)
		}
		got, err := db.Asset(ctx, "json")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Config, want) {
			t.Fatalf("config read back\n%#v\nwant\n%#v", got.Config, want)
		}

		if err := db.CreateAsset(ctx, &assets.Asset{Name: "nil-config"}); err != nil {
			t.Fatal(err)
		}
		if got, err := db.Asset(ctx, "nil-config"); err != nil {
			t.Fatal(err)
		} else if got.Config == nil || len(got.Config) != 0 {
			t.Fatalf("nil config read back as %#v, want an empty map", got.Config)
		}
	})
}

func TestConcurrentWrites(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		ctx := t.Context()
		db := openMigrated(t, url)
		const writers, each = 8, 10
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					a := &assets.Asset{Name: fmt.Sprintf("w%d-%02d", w, i), Config: map[string]any{"i": i}}
					if err := db.CreateAsset(ctx, a); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		list, err := db.Assets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != writers*each {
			t.Fatalf("%d assets stored, want %d", len(list), writers*each)
		}

		// Concurrent updates of one asset: each bumps the version once.
		const updates = 20
		errs = make(chan error, updates)
		for range updates {
			wg.Go(func() {
				if err := db.UpdateAsset(ctx, &assets.Asset{Name: "w0-00"}); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if a, err := db.Asset(ctx, "w0-00"); err != nil {
			t.Fatal(err)
		} else if a.Version != 1+updates {
			t.Fatalf("Version after %d concurrent updates = %d, want %d", updates, a.Version, 1+updates)
		}
	})
}

func TestCloseTwice(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db, err := store.Open(t.Context(), url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Ping(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatalf("first Close: %v", err)
		}
		if err := db.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if err := db.Ping(t.Context()); err == nil {
			t.Fatal("Ping after Close succeeded")
		}
	})
}

func TestOpenBadURL(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"mysql://root:hunter2@db:3306/soar", `scheme "mysql" not supported`},
		{"./data/soarkafka.db", "has no scheme"},
		{"sqlite://", "want sqlite://<path>"},
		{"sqlite://x.db?_pragma=journal_mode(DELETE)", "without parameters"},
	} {
		_, err := store.Open(t.Context(), tc.url, nil)
		if err == nil {
			t.Errorf("Open(%q) succeeded", tc.url)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tc.want) {
			t.Errorf("Open(%q) error %q, want it to say %q", tc.url, msg, tc.want)
		}
		if !strings.Contains(msg, "sqlite://<path>") {
			t.Errorf("Open(%q) error %q does not show the accepted form", tc.url, msg)
		}
		if strings.Contains(msg, "hunter2") {
			t.Errorf("Open(%q) error %q shows the password", tc.url, msg)
		}
	}
}

func TestOpenPostgresUnreachable(t *testing.T) {
	// Port 1 on loopback refuses at once.
	_, err := store.Open(t.Context(), "postgres://postgres:hunter2@127.0.0.1:1/test?connect_timeout=5", nil)
	if err == nil {
		t.Fatal("Open succeeded against a closed port")
	}
	if msg := err.Error(); !strings.Contains(msg, "store: connect to postgres database") || strings.Contains(msg, "hunter2") {
		t.Fatalf("error %q: want it to say what failed, without the password", msg)
	}
}

func TestOpenSQLiteCreatesPrivateFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "nested")
	file := filepath.Join(dir, "soarkafka.db")
	db := openMigrated(t, "sqlite://"+file)
	if db.Dialect() != "sqlite" {
		t.Errorf("Dialect() = %q", db.Dialect())
	}
	for path, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, file: 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), want)
		}
	}

	// A relative path is relative to the working directory.
	t.Chdir(t.TempDir())
	openMigrated(t, "sqlite://./data/rel.db")
	if _, err := os.Stat(filepath.Join("data", "rel.db")); err != nil {
		t.Fatal(err)
	}
}

// TestPostgresSchemaPerTest checks testenv.PostgresURL: everything the store
// creates, goose's version table included, lands in the test's schema, and
// the schema is gone once the test ends.
func TestPostgresSchemaPerTest(t *testing.T) {
	var schema string
	t.Run("migrate", func(t *testing.T) {
		u := testenv.PostgresURL(t)
		parsed, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		schema = parsed.Query().Get("search_path")
		if !strings.HasPrefix(schema, "test_") {
			t.Fatalf("URL %q has no test schema as search_path", u)
		}
		openMigrated(t, u)

		conn := pgConnect(t, u)
		rows, err := conn.Query(t.Context(),
			`SELECT schemaname || '.' || tablename FROM pg_tables WHERE tablename IN ('assets', 'goose_db_version') ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		var ours []string
		for _, table := range tables {
			if strings.HasPrefix(table, schema+".") {
				ours = append(ours, table)
			} else if strings.HasPrefix(table, "public.") {
				t.Errorf("table %s landed in public", table)
			}
		}
		if want := []string{schema + ".assets", schema + ".goose_db_version"}; !reflect.DeepEqual(ours, want) {
			t.Errorf("tables in the test schema: %q, want %q", ours, want)
		}
	})
	if t.Skipped() || schema == "" {
		return
	}
	conn := pgConnect(t, testenvBaseURL())
	var exists bool
	if err := conn.QueryRow(t.Context(), `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("schema %s still exists after its test ended", schema)
	}
}

func pgConnect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func testenvBaseURL() string {
	if u := os.Getenv(testenv.PostgresURLEnv); u != "" {
		return u
	}
	return testenv.DefaultPostgresURL
}
