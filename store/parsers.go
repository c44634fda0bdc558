package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/parsers"
)

var _ parsers.Repository = (*DB)(nil)

// parserColumns read a parser at its current version.
const parserColumns = `p.id, p.name, p.description, p.version, v.source, p.created_at, p.updated_at
	FROM parsers p JOIN parser_versions v ON v.parser_id = p.id AND v.version = p.version`

// CreateParser inserts p as version 1. A name in use is an ECONFLICT error.
func (db *DB) CreateParser(ctx context.Context, p *parsers.Parser) error {
	now := db.now()
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, db.dialect.rebind(`
			INSERT INTO parsers (name, description, version, created_at, updated_at)
			VALUES ($1, $2, 1, $3, $3) RETURNING id`),
			p.Name, p.Description, db.dialect.timeArg(now)).Scan(&id)
		if isUniqueViolation(err) {
			return soarkafka.Errorf(soarkafka.ECONFLICT, "parser %q already exists", p.Name)
		} else if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.dialect.rebind(`
			INSERT INTO parser_versions (parser_id, version, source, created_at) VALUES ($1, 1, $2, $3)`),
			id, p.Source, db.dialect.timeArg(now)); err != nil {
			return err
		}
		p.ID, p.Version, p.CreatedAt, p.UpdatedAt = id, 1, now, now
		return nil
	})
	if err != nil && soarkafka.ErrorCode(err) == soarkafka.EINTERNAL {
		return fmt.Errorf("store: create parser %q: %w", p.Name, err)
	}
	return err
}

// Parser returns the named parser at its current version.
func (db *DB) Parser(ctx context.Context, name string) (*parsers.Parser, error) {
	p := &parsers.Parser{}
	err := scanParser(db.db.QueryRowContext(ctx, db.dialect.rebind(`SELECT `+parserColumns+` WHERE p.name = $1`), name), p)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, soarkafka.Errorf(soarkafka.ENOTFOUND, "parser %q not found", name)
	} else if err != nil {
		return nil, fmt.Errorf("store: read parser %q: %w", name, err)
	}
	return p, nil
}

// Parsers returns every parser at its current version, ordered by name.
func (db *DB) Parsers(ctx context.Context) ([]*parsers.Parser, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+parserColumns+` ORDER BY p.name`)
	if err != nil {
		return nil, fmt.Errorf("store: list parsers: %w", err)
	}
	defer rows.Close()
	var list []*parsers.Parser
	for rows.Next() {
		p := &parsers.Parser{}
		if err := scanParser(rows, p); err != nil {
			return nil, fmt.Errorf("store: list parsers: %w", err)
		}
		list = append(list, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list parsers: %w", err)
	}
	return list, nil
}

// UpdateParser saves p.Source as the parser's next version.
func (db *DB) UpdateParser(ctx context.Context, p *parsers.Parser) error {
	now := db.now()
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		// One statement bumps the version, so concurrent updates get
		// distinct versions.
		var id, version int64
		err := tx.QueryRowContext(ctx, db.dialect.rebind(`
			UPDATE parsers SET description = $1, version = version + 1, updated_at = $2
			WHERE name = $3 RETURNING id, version`),
			p.Description, db.dialect.timeArg(now), p.Name).Scan(&id, &version)
		if errors.Is(err, sql.ErrNoRows) {
			return soarkafka.Errorf(soarkafka.ENOTFOUND, "parser %q not found", p.Name)
		} else if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.dialect.rebind(`
			INSERT INTO parser_versions (parser_id, version, source, created_at) VALUES ($1, $2, $3, $4)`),
			id, version, p.Source, db.dialect.timeArg(now)); err != nil {
			return err
		}
		return scanParser(tx.QueryRowContext(ctx, db.dialect.rebind(`SELECT `+parserColumns+` WHERE p.id = $1`), id), p)
	})
	if err != nil && soarkafka.ErrorCode(err) == soarkafka.EINTERNAL {
		return fmt.Errorf("store: update parser %q: %w", p.Name, err)
	}
	return err
}

// ParserVersion returns one version of the named parser.
func (db *DB) ParserVersion(ctx context.Context, name string, version int64) (*parsers.Version, error) {
	v := &parsers.Version{Parser: name}
	err := db.db.QueryRowContext(ctx, db.dialect.rebind(`
		SELECT v.version, v.source, v.created_at FROM parser_versions v JOIN parsers p ON p.id = v.parser_id
		WHERE p.name = $1 AND v.version = $2`), name, version).Scan(&v.Version, &v.Source, timestamp{&v.CreatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		if _, perr := db.Parser(ctx, name); perr != nil {
			return nil, perr
		}
		return nil, soarkafka.Errorf(soarkafka.ENOTFOUND, "parser %q has no version %d", name, version)
	} else if err != nil {
		return nil, fmt.Errorf("store: read parser %q version %d: %w", name, version, err)
	}
	return v, nil
}

// ParserVersions returns every version of the named parser, oldest first.
func (db *DB) ParserVersions(ctx context.Context, name string) ([]*parsers.Version, error) {
	if _, err := db.Parser(ctx, name); err != nil {
		return nil, err
	}
	rows, err := db.db.QueryContext(ctx, db.dialect.rebind(`
		SELECT v.version, v.source, v.created_at FROM parser_versions v JOIN parsers p ON p.id = v.parser_id
		WHERE p.name = $1 ORDER BY v.version`), name)
	if err != nil {
		return nil, fmt.Errorf("store: list versions of parser %q: %w", name, err)
	}
	defer rows.Close()
	var list []*parsers.Version
	for rows.Next() {
		v := &parsers.Version{Parser: name}
		if err := rows.Scan(&v.Version, &v.Source, timestamp{&v.CreatedAt}); err != nil {
			return nil, fmt.Errorf("store: list versions of parser %q: %w", name, err)
		}
		list = append(list, v)
	}
	return list, rows.Err()
}

// DeleteParser removes the parser and its versions, unless an asset uses
// it: then ECONFLICT, naming the assets.
func (db *DB) DeleteParser(ctx context.Context, name string) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, db.dialect.rebind(`SELECT name FROM assets WHERE `+
			db.dialect.jsonText("config", "message_parser")+` = $1 ORDER BY name`), name)
		if err != nil {
			return err
		}
		var users []string
		for rows.Next() {
			var a string
			if err := rows.Scan(&a); err != nil {
				rows.Close()
				return err
			}
			users = append(users, a)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(users) > 0 {
			return soarkafka.Errorf(soarkafka.ECONFLICT, "parser %q is used by asset %s; set their message_parser to another parser first",
				name, strings.Join(users, ", "))
		}
		res, err := tx.ExecContext(ctx, db.dialect.rebind(`DELETE FROM parsers WHERE name = $1`), name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return soarkafka.Errorf(soarkafka.ENOTFOUND, "parser %q not found", name)
		}
		return nil
	})
	if err != nil && soarkafka.ErrorCode(err) == soarkafka.EINTERNAL {
		return fmt.Errorf("store: delete parser %q: %w", name, err)
	}
	return err
}

func scanParser(row interface{ Scan(...any) error }, p *parsers.Parser) error {
	return row.Scan(&p.ID, &p.Name, &p.Description, &p.Version, &p.Source, timestamp{&p.CreatedAt}, timestamp{&p.UpdatedAt})
}

// lockWriter waits for this process's turn to write to SQLite (see
// DB.writer) and returns what ends it; on PostgreSQL it returns at once.
// Never call it while holding the turn: inside inTx, write through the
// transaction.
func (db *DB) lockWriter(ctx context.Context) (unlock func(), err error) {
	if db.writer == nil {
		return func() {}, nil
	}
	select {
	case db.writer <- struct{}{}:
		return func() { <-db.writer }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// exec runs one write statement outside a transaction, in this process's
// turn to write on SQLite: a statement left to SQLite's busy handler
// behind a batch slept in growing steps (1, 2, 5, ... 100 ms) past the
// batch's commit.
func (db *DB) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	unlock, err := db.lockWriter(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return db.db.ExecContext(ctx, query, args...)
}

// queued is db as an execer whose statements take the write turn.
type queued struct{ db *DB }

func (q queued) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return q.db.exec(ctx, query, args...)
}

// inTx runs fn in a transaction, committed when fn returns nil.
func (db *DB) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	unlock, err := db.lockWriter(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}
