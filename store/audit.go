package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/soarkafka/soarkafka/audit"
)

var _ audit.Store = (*DB)(nil)

const auditColumns = `id, at, client, actor, method, route, object_kind, object_name, action, version, changes`

// RecordAudit stores e and sets its ID and, when zero, its Time.
func (db *DB) RecordAudit(ctx context.Context, e *audit.Event) error {
	if e.Time.IsZero() {
		e.Time = db.now()
	} else {
		e.Time = e.Time.UTC().Truncate(time.Microsecond)
	}
	changes, err := json.Marshal(e.Changes)
	if err != nil {
		return fmt.Errorf("store: record audit event: changes: %w", err)
	}
	if e.Changes == nil {
		changes = []byte("{}")
	}
	var version sql.NullInt64
	if e.Version != nil {
		version = sql.NullInt64{Int64: *e.Version, Valid: true}
	}
	unlock, err := db.lockWriter(ctx)
	if err != nil {
		return fmt.Errorf("store: record audit event: %w", err)
	}
	defer unlock()
	err = db.db.QueryRowContext(ctx, db.dialect.rebind(`INSERT INTO audit_events
		(at, client, actor, method, route, object_kind, object_name, action, version, changes)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`),
		db.dialect.timeArg(e.Time), e.Client, e.Actor, e.Method, e.Route, e.Kind, e.Name, e.Action, version, string(changes)).Scan(&e.ID)
	if err != nil {
		return fmt.Errorf("store: record audit event: %w", err)
	}
	return nil
}

// ListAudit returns the page of events f selects, newest first, and how
// many match f.
func (db *DB) ListAudit(ctx context.Context, f audit.Filter) ([]audit.Event, int, error) {
	if err := checkQuery(0, f.Page, f.PageSize); err != nil {
		return nil, 0, err
	}
	var w conditions
	if f.Kind != "" {
		w.add("object_kind =", f.Kind)
	}
	if f.Name != "" {
		w.add("object_name =", f.Name)
	}
	if !f.Since.IsZero() {
		w.add("at >=", db.dialect.timeArg(ceilMicrosecond(f.Since)))
	}
	if !f.Until.IsZero() {
		w.add("at <", db.dialect.timeArg(ceilMicrosecond(f.Until)))
	}
	list := []audit.Event{}
	total, err := db.page(ctx, "audit_events", auditColumns, "id DESC", w, f.Page, f.PageSize, func(rows *sql.Rows) error {
		var (
			e       audit.Event
			version sql.NullInt64
			changes string
		)
		if err := rows.Scan(&e.ID, timestamp{&e.Time}, &e.Client, &e.Actor, &e.Method, &e.Route, &e.Kind, &e.Name,
			&e.Action, &version, &changes); err != nil {
			return err
		}
		if version.Valid {
			e.Version = &version.Int64
		}
		if err := json.Unmarshal([]byte(changes), &e.Changes); err != nil {
			return fmt.Errorf("audit event %d: changes: %w", e.ID, err)
		}
		list = append(list, e)
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: list audit events: %w", err)
	}
	return list, total, nil
}

// PruneAudit deletes the events older than before and says how many.
func (db *DB) PruneAudit(ctx context.Context, before time.Time) (int64, error) {
	res, err := db.exec(ctx, db.dialect.rebind(`DELETE FROM audit_events WHERE at < $1`),
		db.dialect.timeArg(before.UTC().Truncate(time.Microsecond)))
	if err != nil {
		return 0, fmt.Errorf("store: prune audit events: %w", err)
	}
	return res.RowsAffected()
}
