// Package store owns the server's database: opening it (SQLite on local disk
// or PostgreSQL), migrating it to the current schema, and every SQL statement
// the server runs. Other packages see Go types and *soarkafka.Error values,
// never SQL, driver errors or a dialect.
//
// Both dialects share one implementation over database/sql, with a small
// dialect value for what differs (placeholders, timestamp encoding, how a
// unique violation is reported): one behaviour, two dialects, tested by the
// same tests. Statements are written for PostgreSQL ($1, $2) and rebound for
// SQLite. Paths that only make sense for one dialect (PostgreSQL COPY for bulk
// inserts) can be added beside the shared code when they are needed.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers database/sql driver "pgx"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	_ "modernc.org/sqlite" // registers database/sql driver "sqlite"

	"github.com/soarkafka/soarkafka/migrations"
)

// DB is an open database. It is safe for concurrent use.
type DB struct {
	// Now returns the current time; tests replace it to control timestamps.
	// Its result is stored in UTC truncated to microseconds, the precision
	// both dialects keep.
	Now func() time.Time

	db      *sql.DB
	dialect dialect
	logger  *slog.Logger

	closeOnce sync.Once
	closeErr  error

	// fault is called at the store's fault points (see SetFaultHook).
	fault func(point string)
	// schema is PostgreSQL's current schema at Open ("" on SQLite): it
	// keys the advisory locks (the migrations', and the batches' shared
	// one that readers look for, order.go), so deployments in separate
	// schemas of one database do not wait for each other.
	schema string
	// artifactInserts caches the multi-row artifact INSERT by row count.
	artifactInserts sync.Map
	// fullInsert is the prepared SQLite INSERT of artifactRows artifacts
	// (see fullArtifactInsert).
	fullInsertMu sync.Mutex
	fullInsert   *sql.Stmt
	// checkpoints runs SQLite's WAL checkpoints (nil on PostgreSQL).
	checkpoints *checkpointer
	// writer lets one write transaction of this process at a time into
	// SQLite (nil on PostgreSQL). SQLite has one writer anyway; without
	// this, transactions on the pool's other connections wait in SQLite's
	// busy handler, which retries by sleeping, serves no one in order, and
	// fails a transaction with SQLITE_BUSY after busy_timeout, as a poll
	// did beside three others under load. Here they queue in order, and
	// busy_timeout is left for another process on the same file.
	writer chan struct{}
}

// sqlitePragmas apply to every connection of the pool, since modernc runs
// DSN pragmas on each new connection:
//   - busy_timeout: a writer waits for another writer's lock instead of
//     failing with SQLITE_BUSY at once;
//   - journal_mode WAL: readers do not block the writer nor the writer them;
//   - foreign_keys: off by default in SQLite, and later tables rely on them;
//   - synchronous NORMAL: durable at every checkpoint, and with WAL a crash
//     cannot corrupt the file, for far fewer fsyncs than FULL;
//   - wal_autocheckpoint 4096: a backstop only: the checkpointer runs
//     the checkpoints off the writers' path (checkpoint.go);
//   - temp_store MEMORY: a multi-row INSERT … ON CONFLICT keeps a statement
//     journal of the pages it changes (to undo itself on a failed row); in
//     a temp file that is a pwrite per page, on the one writer's path; in
//     memory it is a copy.
//
// _txlock=immediate makes BEGIN take the write lock up front: a deferred
// transaction that reads then writes gets SQLITE_BUSY without waiting when
// another connection wrote in between, whatever the busy timeout.
const sqlitePragmas = "_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(ON)&_pragma=synchronous(NORMAL)&_pragma=temp_store(MEMORY)&_pragma=wal_autocheckpoint(4096)&_txlock=immediate"

// Open opens the database at url, by scheme: sqlite://<path> (a relative or,
// with a third slash, absolute file path; its directory is created when
// missing) or postgres://user@host:port/db (postgresql:// too, any parameter
// pgx accepts). It checks that the database answers, but does not migrate it:
// call Migrate.
func Open(ctx context.Context, url string, logger *slog.Logger) (*DB, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	scheme, _, ok := strings.Cut(url, ":")
	if !ok || scheme == "" {
		return nil, errors.New("store: database URL has no scheme: use sqlite://<path> or postgres://user@host:port/db")
	}

	var (
		d      dialect
		driver string
		dsn    string
	)
	switch strings.ToLower(scheme) {
	case "sqlite":
		file := strings.TrimPrefix(url[len(scheme)+1:], "//")
		if file == "" || strings.ContainsRune(file, '?') || file == ":memory:" {
			return nil, fmt.Errorf("store: database URL %q: want sqlite://<path> to a file, without parameters (the store sets the pragmas)", url)
		}
		if err := createSQLiteFile(file); err != nil {
			return nil, err
		}
		d, driver, dsn = sqliteDialect, "sqlite", file+"?"+sqlitePragmas
	case "postgres", "postgresql":
		d, driver, dsn = postgresDialect, "pgx", url
	default:
		// The URL itself may hold a password: name its scheme only.
		return nil, fmt.Errorf("store: database URL scheme %q not supported: use sqlite://<path> or postgres://user@host:port/db", scheme)
	}

	sqlDB, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s database: %w", d.name, err)
	}
	db := &DB{Now: time.Now, db: sqlDB, dialect: d, logger: logger, fault: func(string) {}}
	if err := db.Ping(ctx); err != nil {
		sqlDB.Close()
		return nil, err
	}
	if d.name == "postgres" {
		var schema sql.NullString
		if err := sqlDB.QueryRowContext(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
			sqlDB.Close()
			return nil, fmt.Errorf("store: read current schema: %w", err)
		}
		db.schema = schema.String
	} else {
		// Readers run side by side (the console's assets list reads each
		// asset's health 8 at a time): opening a SQLite connection runs
		// its pragmas and reads the schema again, so connections stay
		// open instead of database/sql's 2 idle ones.
		sqlDB.SetMaxIdleConns(sqliteIdleConns)
		db.checkpoints = startCheckpointer(db)
		db.writer = make(chan struct{}, 1)
	}
	return db, nil
}

// createSQLiteFile creates the database file's directory and the file itself,
// readable by the server's user only: the database holds asset
// configurations. SQLite gives its -wal and -shm files the same mode.
func createSQLiteFile(file string) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("store: create database directory: %w", err)
	}
	f, err := os.OpenFile(file, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("store: create database file: %w", err)
	}
	fi, err := f.Stat()
	f.Close()
	if err != nil {
		return fmt.Errorf("store: create database file: %w", err)
	}
	if fi.Size() > 0 {
		return nil
	}
	// A new database gets its page size before anything else: the driver
	// applies DSN pragmas in alphabetical order, so journal_mode(WAL)
	// would materialise the first page, and fix the page size, before
	// page_size ran.
	db, err := sql.Open("sqlite", file)
	if err != nil {
		return fmt.Errorf("store: create database file: %w", err)
	}
	defer db.Close()
	if _, err := db.Exec("PRAGMA page_size = " + strconv.Itoa(sqlitePageSize) + "; PRAGMA journal_mode = WAL"); err != nil {
		return fmt.Errorf("store: create database file: %w", err)
	}
	return nil
}

// sqlitePageSize is the page size of a new SQLite database: the WAL and
// its checkpoints write a page per system call, and artifacts (a kilobyte
// or more of JSON each) fill four 4 KiB pages for one 16 KiB page, so a
// poll makes a quarter of the writes. Existing databases keep theirs.
const sqlitePageSize = 16384

// sqliteIdleConns is how many SQLite connections stay open between uses.
const sqliteIdleConns = 16

// Dialect returns "sqlite" or "postgres".
func (db *DB) Dialect() string { return db.dialect.name }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.db.PingContext(ctx); err != nil {
		return fmt.Errorf("store: connect to %s database: %w", db.dialect.name, err)
	}
	return nil
}

// Close closes the database; later calls return the first call's result.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.checkpoints.stop()
		db.fullInsertMu.Lock()
		if db.fullInsert != nil {
			db.fullInsert.Close()
		}
		db.fullInsertMu.Unlock()
		db.closeErr = db.db.Close()
	})
	return db.closeErr
}

// Migrate applies the migrations the database has not seen yet, logging each.
// On PostgreSQL it holds an advisory lock meanwhile, so replicas starting
// together migrate one after the other.
func (db *DB) Migrate(ctx context.Context) error {
	fsys, err := migrations.FS(db.dialect.name)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	opts := []goose.ProviderOption{
		goose.WithDisableGlobalRegistry(true), // only our embedded files, no process-wide state
		goose.WithSlog(db.logger),
	}
	if db.dialect.name == "postgres" {
		locker, err := db.migrationLocker(ctx)
		if err != nil {
			return err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(db.dialect.goose, db.db, fsys, opts...)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	results, err := p.Up(ctx)
	var partial *goose.PartialError
	if errors.As(err, &partial) {
		results = partial.Applied
	}
	for _, r := range results {
		db.logger.InfoContext(ctx, "applied database migration", "dialect", db.dialect.name,
			"version", r.Source.Version, "file", path.Base(r.Source.Path), "duration", r.Duration)
	}
	if err != nil {
		return fmt.Errorf("store: migrate %s database: %w", db.dialect.name, err)
	}
	return nil
}

// migrationLocker returns an advisory lock keyed by the current schema:
// deployments in different schemas of one database (tests do this) do not
// wait for each other, replicas of one deployment do.
func (db *DB) migrationLocker(ctx context.Context) (lock.SessionLocker, error) {
	var schema sql.NullString
	if err := db.db.QueryRowContext(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return nil, fmt.Errorf("store: migrate: read current schema: %w", err)
	}
	if !schema.Valid {
		return nil, errors.New("store: migrate: no schema of the search_path exists; create it or fix search_path")
	}
	h := fnv.New64a()
	h.Write([]byte("soarkafka migrations " + schema.String))
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(int64(h.Sum64())),
		lock.WithLockTimeout(1, 300), // poll every second, for up to 5 minutes
	)
	if err != nil {
		return nil, fmt.Errorf("store: migrate: %w", err)
	}
	return locker, nil
}

// now returns the time to store: UTC, to the microsecond, so that what a
// caller holds after a write equals what a later read returns.
func (db *DB) now() time.Time {
	return db.Now().UTC().Truncate(time.Microsecond)
}
