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

// Push delivery's outbox: SaveBatch writes its rows in the batch's
// transaction (batchWrite.outbox); the delivery worker reads and marks
// them with the methods below.

// outbox writes one outbox row per container the batch created or added
// artifacts to, in the order the batch first names them. A replayed batch
// that adds nothing lists no container in the outcome, so it writes none.
func (w *batchWrite) outbox(ctx context.Context) error {
	if !w.b.Outbox {
		return nil
	}
	var msgTime any
	if !w.b.MessageTime.IsZero() {
		msgTime = w.db.dialect.timeArg(w.b.MessageTime.UTC().Truncate(time.Microsecond))
	}
	for _, c := range w.out.Containers {
		// The ids the inserts returned: the batch holds the container
		// (SQLite's one writer; on PostgreSQL its row lock, see
		// batchWrite.containers), so no other batch's artifact falls
		// between them.
		var first, last sql.NullInt64
		if r := w.added[c.ID]; r != nil && c.Artifacts > 0 {
			first = sql.NullInt64{Int64: r.first, Valid: true}
			last = sql.NullInt64{Int64: r.last, Valid: true}
		}
		if _, err := w.tx.ExecContext(ctx, w.db.dialect.rebind(`
			INSERT INTO delivery_outbox (asset, container_id, first_artifact_id, last_artifact_id, message_time, created_at, next_attempt_at)
			VALUES ($1, $2, $3, $4, $5, $6, $6)`),
			w.b.Asset, c.ID, first, last, msgTime, w.now); err != nil {
			return err
		}
	}
	return nil
}

const outboxColumns = `id, asset, container_id, first_artifact_id, last_artifact_id, message_time, created_at, state, attempts, last_error, next_attempt_at`

func scanOutbox(rows *sql.Rows) (ingest.OutboxRow, error) {
	var (
		r           ingest.OutboxRow
		first, last sql.NullInt64
	)
	err := rows.Scan(&r.ID, &r.Asset, &r.ContainerID, &first, &last, nullTimestamp{&r.MessageTime}, timestamp{&r.CreatedAt},
		&r.State, &r.Attempts, &r.LastError, timestamp{&r.NextAttemptAt})
	r.FirstArtifactID, r.LastArtifactID = first.Int64, last.Int64
	return r, err
}

// NextDeliveries returns up to limit outbox rows of the asset to send, at
// most one per container: a row whose container has an earlier row not
// delivered (pending, sending or dead) waits for it, so a container's rows
// reach the SOAR strictly in order. Rows found sending (their outcome is
// unknown) come first, then pending rows whose next attempt is due, in
// outbox order.
func (db *DB) NextDeliveries(ctx context.Context, asset string, limit int) ([]ingest.OutboxRow, error) {
	if limit < 1 {
		return nil, soarkafka.Errorf(soarkafka.EINVALID, "next deliveries of asset %q: limit %d: want at least 1", asset, limit)
	}
	rows, err := db.db.QueryContext(ctx, db.dialect.rebind(`
		SELECT `+outboxColumns+` FROM delivery_outbox o
		WHERE o.asset = $1 AND (o.state = 'sending' OR (o.state = 'pending' AND o.next_attempt_at <= $2))
		AND NOT EXISTS (SELECT 1 FROM delivery_outbox e
			WHERE e.container_id = o.container_id AND e.id < o.id AND e.state <> 'delivered')
		ORDER BY CASE o.state WHEN 'sending' THEN 0 ELSE 1 END, o.id
		LIMIT $3`), asset, db.dialect.timeArg(db.now()), limit)
	if err != nil {
		return nil, fmt.Errorf("store: next deliveries of asset %q: %w", asset, err)
	}
	defer rows.Close()
	var out []ingest.OutboxRow
	for rows.Next() {
		r, err := scanOutbox(rows)
		if err != nil {
			return nil, fmt.Errorf("store: next deliveries of asset %q: %w", asset, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: next deliveries of asset %q: %w", asset, err)
	}
	return out, nil
}

// markOutbox runs one state change of row id; a row that is not in one of
// the states from (delivered already, or gone with its container) is an
// ECONFLICT, so a worker that lost its lease learns it did not own the row.
func (db *DB) markOutbox(ctx context.Context, q execer, what string, id int64, from []string, set string, args ...any) error {
	cond := ""
	for i, s := range from {
		if i > 0 {
			cond += ", "
		}
		cond += "'" + s + "'"
	}
	n := len(args)
	res, err := q.ExecContext(ctx, db.dialect.rebind(`UPDATE delivery_outbox SET `+set+
		fmt.Sprintf(` WHERE id = $%d AND state IN (`, n+1)+cond+`)`), append(args, id)...)
	if err != nil {
		return fmt.Errorf("store: mark outbox row %d %s: %w", id, what, err)
	}
	if k, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: mark outbox row %d %s: %w", id, what, err)
	} else if k == 0 {
		return soarkafka.Errorf(soarkafka.ECONFLICT, "outbox row %d is not %v (delivered already, retried, or its container was deleted); not marked %s", id, from, what)
	}
	return nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// MarkSending marks row id as in flight and counts the attempt. It is
// committed before the request, so a row found sending later (after a
// crash, a timeout, a dropped connection) is known to have an unknown
// outcome.
func (db *DB) MarkSending(ctx context.Context, id int64) error {
	return db.markOutbox(ctx, queued{db}, "sending", id, []string{ingest.OutboxPending, ingest.OutboxSending},
		`state = 'sending', attempts = attempts + 1`)
}

// MarkDelivered marks row id delivered and, when soarContainerID is not
// 0, keeps the SOAR's id of its container for the rows that add artifacts
// to it later; both in one transaction.
func (db *DB) MarkDelivered(ctx context.Context, id, soarContainerID int64) error {
	now := db.dialect.timeArg(db.now())
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if err := db.markOutbox(ctx, tx, "delivered", id, []string{ingest.OutboxPending, ingest.OutboxSending},
			`state = 'delivered', delivered_at = $1, last_error = ''`, now); err != nil {
			return err
		}
		if soarContainerID == 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, db.dialect.rebind(`
			INSERT INTO delivery_containers (container_id, asset, soar_container_id)
			SELECT container_id, asset, $2 FROM delivery_outbox WHERE id = $1
			ON CONFLICT (container_id) DO UPDATE SET soar_container_id = excluded.soar_container_id`),
			id, soarContainerID); err != nil {
			return fmt.Errorf("store: keep the SOAR container id of outbox row %d: %w", id, err)
		}
		return nil
	})
}

// MarkRetry puts row id back to pending, to be sent again at next, with
// the error of the failed attempt.
func (db *DB) MarkRetry(ctx context.Context, id int64, errText string, next time.Time) error {
	return db.markOutbox(ctx, queued{db}, "for retry", id, []string{ingest.OutboxPending, ingest.OutboxSending},
		`state = 'pending', last_error = $1, next_attempt_at = $2`, errText, db.dialect.timeArg(next.UTC().Truncate(time.Microsecond)))
}

// MarkDead moves row id to the dead letters with the error and the SOAR's
// answer.
func (db *DB) MarkDead(ctx context.Context, id int64, errText, answer string) error {
	return db.markOutbox(ctx, queued{db}, "dead", id, []string{ingest.OutboxPending, ingest.OutboxSending},
		`state = 'dead', last_error = $1, soar_answer = $2`, errText, answer)
}

// SOARContainerID returns the SOAR's id of a delivered container; ok is
// false when none is known.
func (db *DB) SOARContainerID(ctx context.Context, containerID int64) (id int64, ok bool, err error) {
	err = db.db.QueryRowContext(ctx, db.dialect.rebind(`SELECT soar_container_id FROM delivery_containers WHERE container_id = $1`),
		containerID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("store: SOAR container id of container %d: %w", containerID, err)
	}
	return id, true, nil
}

// RetryDead moves the asset's dead letters back to pending, due now, and
// returns how many. Their attempts are kept: a dead row may have reached
// the SOAR in part, and a row attempted before is checked before it is
// sent again.
func (db *DB) RetryDead(ctx context.Context, asset string) (int64, error) {
	res, err := db.exec(ctx, db.dialect.rebind(`
		UPDATE delivery_outbox SET state = 'pending', next_attempt_at = $2, soar_answer = ''
		WHERE asset = $1 AND state = 'dead'`), asset, db.dialect.timeArg(db.now()))
	if err != nil {
		return 0, fmt.Errorf("store: retry the delivery dead letters of asset %q: %w", asset, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: retry the delivery dead letters of asset %q: %w", asset, err)
	}
	return n, nil
}

// DeliveryStats returns where the asset's push delivery stands.
func (db *DB) DeliveryStats(ctx context.Context, asset string) (*ingest.DeliveryStats, error) {
	st := &ingest.DeliveryStats{}
	err := db.inReadTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, db.dialect.rebind(`
			SELECT state, count(*) FROM delivery_outbox WHERE asset = $1 GROUP BY state`), asset)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				state string
				n     int64
			)
			if err := rows.Scan(&state, &n); err != nil {
				return err
			}
			switch state {
			case ingest.OutboxPending:
				st.Pending = n
			case ingest.OutboxSending:
				st.Sending = n
			case ingest.OutboxDelivered:
				st.Delivered = n
			case ingest.OutboxDead:
				st.Dead = n
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, db.dialect.rebind(`
			SELECT MIN(created_at) FROM delivery_outbox WHERE asset = $1 AND state IN ('pending', 'sending')`), asset).
			Scan(nullTimestamp{&st.OldestPending}); err != nil {
			return err
		}
		err = tx.QueryRowContext(ctx, db.dialect.rebind(`
			SELECT last_error FROM delivery_outbox WHERE asset = $1 AND state IN ('pending', 'sending', 'dead') AND last_error <> ''
			ORDER BY id DESC LIMIT 1`), asset).Scan(&st.LastError)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: delivery stats of asset %q: %w", asset, err)
	}
	return st, nil
}

// DeliveryArtifacts returns the artifacts of an outbox row (its
// container's, with ids from FirstArtifactID to LastArtifactID), in id
// order; none for a row without artifacts.
func (db *DB) DeliveryArtifacts(ctx context.Context, r ingest.OutboxRow) ([]ingest.StoredArtifact, error) {
	if r.FirstArtifactID == 0 {
		return nil, nil
	}
	rows, err := db.db.QueryContext(ctx, db.dialect.rebind(`
		SELECT id, container_id, asset, source_data_identifier, body, created_at FROM artifacts
		WHERE container_id = $1 AND id >= $2 AND id <= $3 ORDER BY id`), r.ContainerID, r.FirstArtifactID, r.LastArtifactID)
	if err != nil {
		return nil, fmt.Errorf("store: artifacts of outbox row %d: %w", r.ID, err)
	}
	defer rows.Close()
	var out []ingest.StoredArtifact
	for rows.Next() {
		var (
			a    ingest.StoredArtifact
			body []byte
		)
		if err := rows.Scan(&a.ID, &a.ContainerID, &a.Asset, &a.SourceDataIdentifier, &body, timestamp{&a.CreatedAt}); err != nil {
			return nil, fmt.Errorf("store: artifacts of outbox row %d: %w", r.ID, err)
		}
		a.Body = body
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: artifacts of outbox row %d: %w", r.ID, err)
	}
	return out, nil
}

// SetSOARContainerID keeps the SOAR's id of a container as soon as the
// SOAR made (or was found to have) it, before the rest of its artifacts
// are sent: a failure after that must not lose where they go.
func (db *DB) SetSOARContainerID(ctx context.Context, containerID int64, asset string, soarContainerID int64) error {
	if _, err := db.exec(ctx, db.dialect.rebind(`
		INSERT INTO delivery_containers (container_id, asset, soar_container_id) VALUES ($1, $2, $3)
		ON CONFLICT (container_id) DO UPDATE SET soar_container_id = excluded.soar_container_id`),
		containerID, asset, soarContainerID); err != nil {
		return fmt.Errorf("store: keep the SOAR container id of container %d: %w", containerID, err)
	}
	return nil
}

// OutboxPending counts the asset's outbox rows waiting for delivery
// (pending or sending): what the polls' backpressure compares with
// delivery.max_pending. It reads only those rows, through the outbox's
// (asset, state, id) index, however many were delivered before.
func (db *DB) OutboxPending(ctx context.Context, asset string) (int, error) {
	var n int
	if err := db.db.QueryRowContext(ctx, db.dialect.rebind(`
		SELECT count(*) FROM delivery_outbox WHERE asset = $1 AND state IN ('pending', 'sending')`), asset).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count the outbox rows waiting for asset %q: %w", asset, err)
	}
	return n, nil
}

// ResetDeliveryBackoff makes the asset's waiting rows due now: its
// delivery settings changed (a token replaced, a URL fixed), so a back-off
// or pause earned under the old ones no longer says when to try again.
// Attempts are kept: a row attempted before is still checked against the
// SOAR before it is sent again.
func (db *DB) ResetDeliveryBackoff(ctx context.Context, asset string) error {
	now := db.dialect.timeArg(db.now())
	if _, err := db.exec(ctx, db.dialect.rebind(`
		UPDATE delivery_outbox SET next_attempt_at = $2
		WHERE asset = $1 AND state IN ('pending', 'sending') AND next_attempt_at > $2`), asset, now); err != nil {
		return fmt.Errorf("store: reset the delivery back-off of asset %q: %w", asset, err)
	}
	return nil
}

// PruneDelivered deletes the asset's outbox rows delivered before before:
// once delivered a row only counts in the status, and the outbox would
// otherwise grow with every batch ever pushed. Waiting and dead rows are
// never pruned.
func (db *DB) PruneDelivered(ctx context.Context, asset string, before time.Time) (int64, error) {
	res, err := db.exec(ctx, db.dialect.rebind(`
		DELETE FROM delivery_outbox WHERE asset = $1 AND state = 'delivered' AND delivered_at < $2`), asset, db.dialect.timeArg(before))
	if err != nil {
		return 0, fmt.Errorf("store: prune the delivered outbox rows of asset %q: %w", asset, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: prune the delivered outbox rows of asset %q: %w", asset, err)
	}
	return n, nil
}
