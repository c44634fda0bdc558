package store

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect is what differs between SQLite and PostgreSQL for the shared code.
type dialect struct {
	name  string // "sqlite" or "postgres"; also the migrations folder
	goose goose.Dialect
}

var (
	sqliteDialect   = dialect{name: "sqlite", goose: goose.DialectSQLite3}
	postgresDialect = dialect{name: "postgres", goose: goose.DialectPostgres}
)

// rebind turns the PostgreSQL placeholders $1, $2 of query into SQLite's ?1,
// ?2. SQLite reads a bare $2 as a named parameter numbered by its first
// appearance, so $2 before $1 would bind the wrong values; ?N is positional.
// Our statements are constants with no '$' in literals, so no parsing needed.
func (d dialect) rebind(query string) string {
	if d.name != "sqlite" {
		return query
	}
	var b strings.Builder
	b.Grow(len(query))
	for i := 0; i < len(query); i++ {
		if query[i] == '$' && i+1 < len(query) && query[i+1] >= '0' && query[i+1] <= '9' {
			b.WriteByte('?')
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// jsonText is the SQL expression for the text of key in the JSON object in
// column col.
func (d dialect) jsonText(col, key string) string {
	if d.name == "sqlite" {
		return "json_extract(" + col + ", '$." + key + "')"
	}
	return col + "->>'" + key + "'"
}

// sqliteTimeLayout is how SQLite columns hold a timestamp (see the
// migration): fixed width, so text order is time order.
const sqliteTimeLayout = "2006-01-02T15:04:05.000000Z"

// timeArg returns t as a statement argument for the dialect's timestamp
// columns. t is already UTC and truncated to microseconds (DB.now).
func (d dialect) timeArg(t time.Time) any {
	if d.name == "sqlite" {
		return t.UTC().Format(sqliteTimeLayout)
	}
	return t
}

// timestamp scans a timestamp column of either dialect: time.Time from
// PostgreSQL, text from SQLite. The result is UTC.
type timestamp struct{ t *time.Time }

func (ts timestamp) Scan(src any) error {
	switch v := src.(type) {
	case time.Time:
		*ts.t = v.UTC()
		return nil
	case string:
		return ts.parse(v)
	case []byte:
		return ts.parse(string(v))
	}
	return fmt.Errorf("store: cannot scan %T into a timestamp", src)
}

func (ts timestamp) parse(s string) error {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("store: bad timestamp %q: %w", s, err)
	}
	*ts.t = t.UTC()
	return nil
}

// isUniqueViolation reports whether err is a unique constraint violation, as
// either driver reports it.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505" // unique_violation
	}
	var sqliteErr *sqlite.Error
	if errors.As(err, &sqliteErr) {
		return sqliteErr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
	}
	return false
}
