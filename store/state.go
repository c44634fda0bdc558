package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/ingest"
)

var _ ingest.StateRepository = (*DB)(nil)

// Lease clocks. On PostgreSQL a lease's expiry is set and compared with the
// database's clock, statement_timestamp(): replicas share the database, not
// a clock, and two replicas whose clocks disagree by more than a lease's
// margin would otherwise both believe they hold it. statement_timestamp() is
// fixed within a statement and fresh for each, so a check made after a wait
// inside a transaction (SaveBatch's may wait for another batch's rows) sees
// the time of the check, not of BEGIN as now() would. SQLite serves one
// process, whose clock is db.now(): DB.Now controls lease time in tests.

// leaseTimes returns SQL expressions for the current time and for ttl from
// it, by the dialect's lease clock, and their arguments, numbered from
// $first.
func (db *DB) leaseTimes(first int, ttl time.Duration) (now, until string, args []any) {
	if db.dialect.name == "postgres" {
		// make_interval rounds to the microsecond, timestamptz's precision.
		return "statement_timestamp()", fmt.Sprintf("statement_timestamp() + make_interval(secs => $%d)", first),
			[]any{ttl.Seconds()}
	}
	t := db.now()
	return fmt.Sprintf("$%d", first), fmt.Sprintf("$%d", first+1),
		[]any{db.dialect.timeArg(t), db.dialect.timeArg(t.Add(ttl))}
}

// leaseNow returns the SQL expression for the current time by the dialect's
// lease clock, and its arguments, numbered from $first.
func (db *DB) leaseNow(first int) (now string, args []any) {
	if db.dialect.name == "postgres" {
		return "statement_timestamp()", nil
	}
	return fmt.Sprintf("$%d", first), []any{db.dialect.timeArg(db.now())}
}

// AcquireLease takes the asset's lease for holder until now + ttl when it is
// free, expired, or held by holder already (then it is extended), and
// reports true with holder's lease; otherwise it reports false and the lease
// of the holder that has it.
//
// The upsert decides atomically: of several acquirers only one finds the
// lease free. Reading the lease it lost to happens in the same transaction,
// with the row locked (PostgreSQL's ON CONFLICT DO UPDATE locks the row even
// when its WHERE is false; SQLite's immediate transaction locks the
// database), so the lease reported is the one that won.
func (db *DB) AcquireLease(ctx context.Context, asset, holder string, ttl time.Duration) (bool, ingest.Lease, error) {
	if err := checkLease(asset, holder, ttl); err != nil {
		return false, ingest.Lease{}, err
	}
	now, until, clockArgs := db.leaseTimes(3, ttl)
	var (
		acquired bool
		current  ingest.Lease
	)
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		acquired, current = false, ingest.Lease{Asset: asset}
		// acquired_at is when holder took the lease, kept when it acquires
		// it again.
		err := tx.QueryRowContext(ctx, db.dialect.rebind(`
			INSERT INTO ingest_leases (asset, holder, expires_at, acquired_at)
			VALUES ($1, $2, `+until+`, `+now+`)
			ON CONFLICT (asset) DO UPDATE
			SET holder = excluded.holder, expires_at = excluded.expires_at,
				acquired_at = CASE WHEN ingest_leases.holder = excluded.holder
					THEN ingest_leases.acquired_at ELSE excluded.acquired_at END
			WHERE ingest_leases.expires_at <= `+now+` OR ingest_leases.holder = excluded.holder
			RETURNING holder, expires_at`), append([]any{asset, holder}, clockArgs...)...).
			Scan(&current.Holder, timestamp{&current.Expires})
		if err == nil {
			acquired = true
			return nil
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		return tx.QueryRowContext(ctx, db.dialect.rebind(`SELECT holder, expires_at FROM ingest_leases WHERE asset = $1`), asset).
			Scan(&current.Holder, timestamp{&current.Expires})
	})
	if err != nil {
		if soarkafka.ErrorCode(err) == soarkafka.EINTERNAL {
			return false, ingest.Lease{}, fmt.Errorf("store: acquire the poll lease of asset %q: %w", asset, err)
		}
		return false, ingest.Lease{}, err
	}
	return acquired, current, nil
}

// RenewLease extends holder's lease to now + ttl. A lease that expired but
// that nobody took since is still holder's, as AcquireLease would give it
// back: renewing it is safe, since nobody else can have written meanwhile.
// A lease another holder took, or one released, is a *soarkafka.Error
// ECONFLICT.
func (db *DB) RenewLease(ctx context.Context, asset, holder string, ttl time.Duration) error {
	if err := checkLease(asset, holder, ttl); err != nil {
		return err
	}
	_, until, clockArgs := db.leaseTimes(3, ttl)
	res, err := db.exec(ctx, db.dialect.rebind(`
		UPDATE ingest_leases SET expires_at = `+until+` WHERE asset = $1 AND holder = $2`),
		append([]any{asset, holder}, clockArgs...)...)
	if err != nil {
		return fmt.Errorf("store: renew the poll lease of asset %q: %w", asset, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: renew the poll lease of asset %q: %w", asset, err)
	}
	if n == 0 {
		return soarkafka.Errorf(soarkafka.ECONFLICT,
			"asset %q: poll %s no longer holds the poll lease: it expired and another poll took it, or it was released", asset, holder)
	}
	return nil
}

// ReleaseLease frees holder's lease; releasing a lease holder does not hold
// is not an error, and leaves the lease to whoever holds it.
func (db *DB) ReleaseLease(ctx context.Context, asset, holder string) error {
	if _, err := db.exec(ctx, db.dialect.rebind(`DELETE FROM ingest_leases WHERE asset = $1 AND holder = $2`),
		asset, holder); err != nil {
		return fmt.Errorf("store: release the poll lease of asset %q: %w", asset, err)
	}
	return nil
}

func checkLease(asset, holder string, ttl time.Duration) error {
	var bad []soarkafka.FieldError
	if asset == "" {
		bad = append(bad, soarkafka.FieldError{Field: "asset", Message: "is empty"})
	}
	if holder == "" {
		bad = append(bad, soarkafka.FieldError{Field: "holder", Message: "is empty"})
	}
	// Below a microsecond the stored expiry would round to now.
	if ttl < time.Microsecond {
		bad = append(bad, soarkafka.FieldError{Field: "ttl", Message: fmt.Sprintf("%s: want at least 1µs", ttl)})
	}
	if len(bad) > 0 {
		return &soarkafka.Error{Code: soarkafka.EINVALID, Message: fmt.Sprintf("poll lease of asset %q", asset), Fields: bad}
	}
	return nil
}

// RecordPoll stores r as the asset's last poll, replacing the one before.
// Times are stored in UTC to the microsecond, as Status returns them. The
// end of a successful poll (StartedAt + Duration) becomes the asset's last
// success; a failed poll leaves the last success as it was.
//
// In the same transaction it keeps the asset's history (see History): r
// joins the last polls when r.InHistory, and its messages and lag go to
// the minute it ended in; the polls past ingest.PollHistoryLimit and the
// minutes older than ingest.MinuteHistory before it are deleted. Both
// deletes walk the (asset, ...) index from its start, so they cost what
// they delete, once per poll.
func (db *DB) RecordPoll(ctx context.Context, r ingest.PollRecord) error {
	var bad []soarkafka.FieldError
	if r.Asset == "" {
		bad = append(bad, soarkafka.FieldError{Field: "asset", Message: "is empty"})
	}
	if r.Status != ingest.PollSucceeded && r.Status != ingest.PollFailed {
		bad = append(bad, soarkafka.FieldError{Field: "status",
			Message: fmt.Sprintf("%q: want %q or %q", r.Status, ingest.PollSucceeded, ingest.PollFailed)})
	}
	if len(bad) > 0 {
		return &soarkafka.Error{Code: soarkafka.EINVALID, Message: fmt.Sprintf("poll record of asset %q", r.Asset), Fields: bad}
	}
	started := r.StartedAt.UTC().Truncate(time.Microsecond)
	end := r.StartedAt.Add(r.Duration).UTC()
	var lastSuccess any // NULL: keep the stored one
	if r.Status == ingest.PollSucceeded {
		lastSuccess = db.dialect.timeArg(end.Truncate(time.Microsecond))
	}
	var lag sql.NullInt64
	if r.Lag != nil {
		lag = sql.NullInt64{Int64: *r.Lag, Valid: true}
	}
	minute := end.Truncate(time.Minute)
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.dialect.rebind(`
			INSERT INTO ingest_polls (asset, topic, kind, started_at, duration_ns, status, error,
				messages_read, containers_created, artifacts_created, duplicates_skipped, dead_lettered, gaps,
				last_success_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
			ON CONFLICT (asset) DO UPDATE
			SET topic = excluded.topic, kind = excluded.kind, started_at = excluded.started_at,
				duration_ns = excluded.duration_ns, status = excluded.status, error = excluded.error,
				messages_read = excluded.messages_read, containers_created = excluded.containers_created,
				artifacts_created = excluded.artifacts_created, duplicates_skipped = excluded.duplicates_skipped,
				dead_lettered = excluded.dead_lettered, gaps = excluded.gaps,
				last_success_at = COALESCE(excluded.last_success_at, ingest_polls.last_success_at)`),
			r.Asset, r.Topic, r.Kind, db.dialect.timeArg(started), int64(r.Duration), r.Status, r.Error,
			r.MessagesRead, r.ContainersCreated, r.ArtifactsCreated, r.DuplicatesSkipped, r.DeadLettered, r.Gaps,
			lastSuccess); err != nil {
			return fmt.Errorf("last poll: %w", err)
		}
		if r.InHistory() {
			if _, err := tx.ExecContext(ctx, db.dialect.rebind(`
				INSERT INTO ingest_poll_history (asset, kind, started_at, duration_ns, status, error,
					messages_read, containers_created, artifacts_created, duplicates_skipped, dead_lettered, gaps)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`),
				r.Asset, r.Kind, db.dialect.timeArg(started), int64(r.Duration), r.Status, r.Error,
				r.MessagesRead, r.ContainersCreated, r.ArtifactsCreated, r.DuplicatesSkipped, r.DeadLettered, r.Gaps); err != nil {
				return fmt.Errorf("poll history: %w", err)
			}
			// The newest PollHistoryLimit stay: everything at or below the
			// id one past them goes (none when there are not that many).
			if _, err := tx.ExecContext(ctx, db.dialect.rebind(`
				DELETE FROM ingest_poll_history WHERE asset = $1 AND id <= (
					SELECT id FROM ingest_poll_history WHERE asset = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)`),
				r.Asset, ingest.PollHistoryLimit); err != nil {
				return fmt.Errorf("prune poll history: %w", err)
			}
		}
		// A minute's lag is the last one known in it: a poll that could
		// not tell keeps the sample another gave.
		if _, err := tx.ExecContext(ctx, db.dialect.rebind(`
			INSERT INTO ingest_minutes (asset, minute, messages, lag) VALUES ($1, $2, $3, $4)
			ON CONFLICT (asset, minute) DO UPDATE
			SET messages = ingest_minutes.messages + excluded.messages, lag = COALESCE(excluded.lag, ingest_minutes.lag)`),
			r.Asset, db.dialect.timeArg(minute), r.MessagesRead, lag); err != nil {
			return fmt.Errorf("minute series: %w", err)
		}
		if _, err := tx.ExecContext(ctx, db.dialect.rebind(`DELETE FROM ingest_minutes WHERE asset = $1 AND minute <= $2`),
			r.Asset, db.dialect.timeArg(minute.Add(-ingest.MinuteHistory))); err != nil {
			return fmt.Errorf("prune minute series: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: record the last poll of asset %q: %w", r.Asset, err)
	}
	return nil
}

// History returns the asset's last polls, newest first, and its
// per-minute series of the last ingest.MinuteHistory by the store's clock,
// oldest first, from one snapshot. An asset never polled has an empty
// history.
func (db *DB) History(ctx context.Context, asset string) (*ingest.PollHistory, error) {
	h := &ingest.PollHistory{Polls: []ingest.PollRecord{}, Minutes: []ingest.PollMinute{}}
	since := db.now().Truncate(time.Minute).Add(-ingest.MinuteHistory)
	err := db.inReadTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, db.dialect.rebind(`
			SELECT kind, started_at, duration_ns, status, error,
				messages_read, containers_created, artifacts_created, duplicates_skipped, dead_lettered, gaps
			FROM ingest_poll_history WHERE asset = $1 ORDER BY id DESC LIMIT $2`), asset, ingest.PollHistoryLimit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r := ingest.PollRecord{Asset: asset}
			var durationNS int64
			if err := rows.Scan(&r.Kind, timestamp{&r.StartedAt}, &durationNS, &r.Status, &r.Error,
				&r.MessagesRead, &r.ContainersCreated, &r.ArtifactsCreated, &r.DuplicatesSkipped, &r.DeadLettered, &r.Gaps); err != nil {
				return err
			}
			r.Duration = time.Duration(durationNS)
			h.Polls = append(h.Polls, r)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		mrows, err := tx.QueryContext(ctx, db.dialect.rebind(`
			SELECT minute, messages, lag FROM ingest_minutes WHERE asset = $1 AND minute > $2 ORDER BY minute`),
			asset, db.dialect.timeArg(since))
		if err != nil {
			return err
		}
		defer mrows.Close()
		for mrows.Next() {
			var (
				m   ingest.PollMinute
				lag sql.NullInt64
			)
			if err := mrows.Scan(timestamp{&m.Minute}, &m.Messages, &lag); err != nil {
				return err
			}
			if lag.Valid {
				m.Lag = &lag.Int64
			}
			h.Minutes = append(h.Minutes, m)
		}
		return mrows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("store: read the poll history of asset %q: %w", asset, err)
	}
	return h, nil
}

// Status returns what the store knows of the asset's ingest on topic: the
// stored offsets of topic, and, for the asset whatever its topic, the last
// poll, the last success, the newest gaps with the totals of all of them,
// and the number of messages dead-lettered. An asset never polled has an
// empty status. It reads one snapshot, so the figures agree with each other
// even while a batch is being stored.
func (db *DB) Status(ctx context.Context, asset, topic string) (*ingest.Status, error) {
	st := &ingest.Status{Gaps: []ingest.GapRecord{}}
	err := db.inReadTx(ctx, func(tx *sql.Tx) error {
		var err error
		if st.Offsets, err = db.offsets(ctx, tx, asset, topic); err != nil {
			return err
		}
		if st.LastPoll, st.LastSuccess, err = db.lastPoll(ctx, tx, asset); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, db.dialect.rebind(`
			SELECT count(*), CAST(COALESCE(sum(count), 0) AS BIGINT) FROM ingest_gaps WHERE asset = $1`), asset).
			Scan(&st.GapCount, &st.GapMessages); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, db.dialect.rebind(`SELECT count(*) FROM ingest_dead_letters WHERE asset = $1`), asset).
			Scan(&st.DeadLettered); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, db.dialect.rebind(`
			SELECT topic, partition, from_offset, to_offset, count, detected_at FROM ingest_gaps
			WHERE asset = $1 ORDER BY id DESC LIMIT $2`), asset, ingest.StatusGapLimit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var g ingest.GapRecord
			if err := rows.Scan(&g.Topic, &g.Partition, &g.From, &g.To, &g.Count, timestamp{&g.DetectedAt}); err != nil {
				return err
			}
			st.Gaps = append(st.Gaps, g)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("store: read the ingest status of asset %q, topic %q: %w", asset, topic, err)
	}
	return st, nil
}

// lastPoll returns the asset's last poll, nil when it never polled, and the
// end of its last successful poll, zero when none.
func (db *DB) lastPoll(ctx context.Context, q queryer, asset string) (*ingest.PollRecord, time.Time, error) {
	r := &ingest.PollRecord{}
	var (
		durationNS  int64
		lastSuccess time.Time
	)
	err := q.QueryRowContext(ctx, db.dialect.rebind(`
		SELECT asset, topic, kind, started_at, duration_ns, status, error,
			messages_read, containers_created, artifacts_created, duplicates_skipped, dead_lettered, gaps,
			last_success_at
		FROM ingest_polls WHERE asset = $1`), asset).
		Scan(&r.Asset, &r.Topic, &r.Kind, timestamp{&r.StartedAt}, &durationNS, &r.Status, &r.Error,
			&r.MessagesRead, &r.ContainersCreated, &r.ArtifactsCreated, &r.DuplicatesSkipped, &r.DeadLettered, &r.Gaps,
			nullTimestamp{&lastSuccess})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, time.Time{}, nil
	} else if err != nil {
		return nil, time.Time{}, err
	}
	r.Duration = time.Duration(durationNS)
	return r, lastSuccess, nil
}

// inReadTx runs fn in a read-only transaction that sees one snapshot:
// REPEATABLE READ on PostgreSQL; on SQLite a read-only transaction is a
// deferred one (it does not take the write lock _txlock=immediate gives
// the others), and a WAL reader sees one snapshot from its first read.
func (db *DB) inReadTx(ctx context.Context, fn func(*sql.Tx) error) error {
	opts := &sql.TxOptions{ReadOnly: true}
	if db.dialect.name == "postgres" {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := db.db.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	defer tx.Rollback() // read only: nothing to commit
	return fn(tx)
}

// queryer is what *sql.DB and *sql.Tx share, for reads that run alone or
// inside a transaction.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// nullTimestamp scans a nullable timestamp column: NULL leaves the zero
// time.
type nullTimestamp struct{ t *time.Time }

func (ts nullTimestamp) Scan(src any) error {
	if src == nil {
		*ts.t = time.Time{}
		return nil
	}
	return timestamp(ts).Scan(src)
}
