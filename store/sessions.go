package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/soarkafka/soarkafka"
)

// The web console's sessions (migration 00011). The console decides when a
// session expires and when its last-seen time is worth writing; the store
// keeps the rows and bounds the table.

// CreateConsoleSession stores s. In the same transaction it deletes the
// sessions last seen before idleBefore (expired: rows appear only here, so
// sweeping here bounds the table) and, when max are kept still, the least
// recently seen ones, so that at most max remain with s. Replicas signing
// people in at the same instant on PostgreSQL may leave a few more than max
// until the next sign-in.
func (db *DB) CreateConsoleSession(ctx context.Context, s soarkafka.ConsoleSession, idleBefore time.Time, max int) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.dialect.rebind(`DELETE FROM console_sessions WHERE last_seen_at < $1`),
			db.dialect.timeArg(idleBefore.UTC().Truncate(time.Microsecond))); err != nil {
			return fmt.Errorf("delete expired sessions: %w", err)
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM console_sessions`).Scan(&n); err != nil {
			return fmt.Errorf("count sessions: %w", err)
		}
		if over := n - max + 1; over > 0 {
			if _, err := tx.ExecContext(ctx, db.dialect.rebind(`DELETE FROM console_sessions WHERE id_hash IN
				(SELECT id_hash FROM console_sessions ORDER BY last_seen_at, id_hash LIMIT $1)`), over); err != nil {
				return fmt.Errorf("delete the least recently seen sessions: %w", err)
			}
		}
		_, err := tx.ExecContext(ctx, db.dialect.rebind(`INSERT INTO console_sessions
			(id_hash, csrf, actor, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $5)`),
			s.IDHash, s.CSRF, s.Actor, db.dialect.timeArg(s.Created.UTC().Truncate(time.Microsecond)),
			db.dialect.timeArg(s.LastSeen.UTC().Truncate(time.Microsecond)))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: create console session: %w", err)
	}
	return nil
}

// ConsoleSession returns the session whose id hashes to idHash; false when
// there is none (never created, signed out, or deleted as expired).
func (db *DB) ConsoleSession(ctx context.Context, idHash string) (soarkafka.ConsoleSession, bool, error) {
	s := soarkafka.ConsoleSession{IDHash: idHash}
	err := db.db.QueryRowContext(ctx, db.dialect.rebind(`SELECT csrf, actor, created_at, last_seen_at
		FROM console_sessions WHERE id_hash = $1`), idHash).
		Scan(&s.CSRF, &s.Actor, timestamp{&s.Created}, timestamp{&s.LastSeen})
	if errors.Is(err, sql.ErrNoRows) {
		return soarkafka.ConsoleSession{}, false, nil
	}
	if err != nil {
		return soarkafka.ConsoleSession{}, false, fmt.Errorf("store: read console session: %w", err)
	}
	return s, true, nil
}

// TouchConsoleSession sets the session's last-seen time to at, unless
// another replica wrote a later one already: last-seen never goes back.
func (db *DB) TouchConsoleSession(ctx context.Context, idHash string, at time.Time) error {
	at = at.UTC().Truncate(time.Microsecond)
	_, err := db.exec(ctx, db.dialect.rebind(`UPDATE console_sessions SET last_seen_at = $2
		WHERE id_hash = $1 AND last_seen_at < $2`), idHash, db.dialect.timeArg(at))
	if err != nil {
		return fmt.Errorf("store: touch console session: %w", err)
	}
	return nil
}

// DeleteConsoleSession deletes the session (signed out, or expired); it
// is not an error when it is gone already.
func (db *DB) DeleteConsoleSession(ctx context.Context, idHash string) error {
	if _, err := db.exec(ctx, db.dialect.rebind(`DELETE FROM console_sessions WHERE id_hash = $1`), idHash); err != nil {
		return fmt.Errorf("store: delete console session: %w", err)
	}
	return nil
}
