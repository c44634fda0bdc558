package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresURLEnv names the variable that overrides DefaultPostgresURL.
const PostgresURLEnv = "SOARKAFKA_TEST_POSTGRES_URL"

// DefaultPostgresURL is the server tests use when PostgresURLEnv is unset: a
// local PostgreSQL with trust authentication and a database named test.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test"

// PostgresURL returns a URL to the test PostgreSQL whose connections work in
// a schema of their own, created for t and dropped (CASCADE) when t ends, so
// tests can run in parallel and leave nothing behind. The schema is chosen by
// the search_path runtime parameter of the URL, so everything unqualified,
// goose's version table included, lands in it.
//
// When PostgreSQL cannot be reached, t is skipped with what to do about it;
// with CI=true it fails instead, since a skip there would hide a gap.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(PostgresURLEnv)
	if base == "" {
		base = DefaultPostgresURL
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("testenv: %s is not a URL: %v", PostgresURLEnv, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		msg := "testenv: PostgreSQL at " + u.Redacted() + " unreachable (" + err.Error() + "); " +
			"install and start it (apt-get install postgresql; trust auth for 127.0.0.1, a database named test), " +
			"or set " + PostgresURLEnv
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	defer conn.Close(ctx)

	schema := "test_" + randomHex(8)
	// The schema name is ours (letters, digits, underscore): no quoting
	// question arises.
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("testenv: create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("testenv: drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("testenv: drop schema %s: %v", schema, err)
		}
	})

	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// SQLiteURL returns the URL of a new SQLite database file in t's temporary
// directory, removed when t ends.
func SQLiteURL(t testing.TB) string {
	t.Helper()
	return "sqlite://" + t.TempDir() + "/test.db"
}

// ForEachDialect runs fn as a subtest per store dialect, named "sqlite" and
// "postgres", each with a fresh, unmigrated database URL for store.Open. It
// is how a package runs the same behaviour tests against both dialects; a
// subtest rather than a map of URLs so that an unreachable PostgreSQL skips
// only the postgres half.
func ForEachDialect(t *testing.T, fn func(t *testing.T, url string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLiteURL(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, PostgresURL(t)) })
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand since Go 1.24)
	return hex.EncodeToString(b)
}

// RawDB opens url (as SQLiteURL or PostgresURL give it) with database/sql
// directly, for what a test checks beneath the store: counting rows,
// planting a failing trigger. It is closed when the test ends.
func RawDB(t testing.TB, url string) *sql.DB {
	t.Helper()
	driver, dsn := "pgx", url
	if file, ok := strings.CutPrefix(url, "sqlite://"); ok {
		driver, dsn = "sqlite", file+"?_pragma=busy_timeout(5000)"
	}
	raw, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return raw
}
