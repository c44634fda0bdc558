package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/ingest"
)

var _ ingest.QueryRepository = (*DB)(nil)

// containerColumns are what scanContainer reads. artifact_count is a
// correlated subquery: it runs only for the rows of the page, each an index
// range on artifacts (container_id, id), where a join and GROUP BY would
// count the artifacts of every matching container before paging.
const containerColumns = `c.id, c.asset, c.source_data_identifier, c.name, c.label, c.severity, c.body,
	(SELECT count(*) FROM artifacts a WHERE a.container_id = c.id), c.created_at, c.updated_at`

const artifactColumns = `a.id, a.container_id, a.asset, a.source_data_identifier, a.body, a.created_at`

// ListContainers returns the page of containers f selects, in ID order
// (descending for f.NewestFirst), and how many match f. On PostgreSQL,
// where batches commit concurrently, only ids nothing in flight can fall
// below are listed (boundList), so paging by since_id skips none. The
// count and the page are two statements: a batch
// stored between them can make count one page ahead of data, which a client
// paging by since_id does not notice.
func (db *DB) ListContainers(ctx context.Context, f ingest.ContainerFilter) ([]ingest.StoredContainer, int, error) {
	if err := checkQuery(f.SinceID, f.Page, f.PageSize); err != nil {
		return nil, 0, err
	}
	var w conditions
	if err := db.boundList(ctx, &w, "containers", "c"); err != nil {
		return nil, 0, err
	}
	if f.Asset != "" {
		w.add("c.asset =", f.Asset)
	}
	if f.Label != "" {
		w.add("c.label =", f.Label)
	}
	if f.Severity != "" {
		w.add("c.severity =", f.Severity)
	}
	if f.SinceID > 0 {
		w.add("c.id >", f.SinceID)
	}
	if !f.CreatedFrom.IsZero() {
		w.add("c.created_at >=", db.dialect.timeArg(ceilMicrosecond(f.CreatedFrom)))
	}
	if !f.CreatedTo.IsZero() {
		w.add("c.created_at <", db.dialect.timeArg(ceilMicrosecond(f.CreatedTo)))
	}
	order := "c.id"
	if f.NewestFirst {
		order = "c.id DESC"
	}
	list := []ingest.StoredContainer{}
	total, err := db.page(ctx, "containers c", containerColumns, order, w, f.Page, f.PageSize, func(rows *sql.Rows) error {
		var c ingest.StoredContainer
		if err := scanContainer(rows, &c); err != nil {
			return err
		}
		list = append(list, c)
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: list containers: %w", err)
	}
	return list, total, nil
}

// Container returns the container with that ID, or an ENOTFOUND error.
func (db *DB) Container(ctx context.Context, id int64) (*ingest.StoredContainer, error) {
	c := &ingest.StoredContainer{}
	err := scanContainer(db.db.QueryRowContext(ctx, db.dialect.rebind(
		`SELECT `+containerColumns+` FROM containers c WHERE c.id = $1`), id), c)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, soarkafka.Errorf(soarkafka.ENOTFOUND, "container %d not found", id)
	} else if err != nil {
		return nil, fmt.Errorf("store: read container %d: %w", id, err)
	}
	return c, nil
}

// ListArtifacts returns the page of artifacts f selects, in ID order, and
// how many match f.
func (db *DB) ListArtifacts(ctx context.Context, f ingest.ArtifactFilter) ([]ingest.StoredArtifact, int, error) {
	if err := checkQuery(f.SinceID, f.Page, f.PageSize); err != nil {
		return nil, 0, err
	}
	if f.ContainerID < 0 {
		return nil, 0, soarkafka.Errorf(soarkafka.EINVALID, "container ID %d: want a container's ID, or 0 for any", f.ContainerID)
	}
	var w conditions
	if err := db.boundList(ctx, &w, "artifacts", "a"); err != nil {
		return nil, 0, err
	}
	if f.ContainerID != 0 {
		w.add("a.container_id =", f.ContainerID)
	}
	if f.Asset != "" {
		w.add("a.asset =", f.Asset)
	}
	if f.SinceID > 0 {
		w.add("a.id >", f.SinceID)
	}
	list := []ingest.StoredArtifact{}
	total, err := db.page(ctx, "artifacts a", artifactColumns, "a.id", w, f.Page, f.PageSize, func(rows *sql.Rows) error {
		var (
			a    ingest.StoredArtifact
			body []byte
		)
		if err := rows.Scan(&a.ID, &a.ContainerID, &a.Asset, &a.SourceDataIdentifier, &body, timestamp{&a.CreatedAt}); err != nil {
			return err
		}
		a.Body = body
		list = append(list, a)
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: list artifacts: %w", err)
	}
	return list, total, nil
}

// boundList limits a list of table (alias a) to the ids no transaction in
// flight can fall below (listBound), on PostgreSQL. A list without
// since_id is bounded too: a client takes the highest id of its first
// answer as the since_id of the next.
func (db *DB) boundList(ctx context.Context, w *conditions, table, a string) error {
	if db.dialect.name != "postgres" {
		return nil
	}
	bound, err := db.listBound(ctx, table)
	if err != nil {
		if soarkafka.ErrorCode(err) == soarkafka.EINTERNAL {
			return fmt.Errorf("store: list %s: %w", table, err)
		}
		return err
	}
	w.add(a+".id <=", bound)
	return nil
}

// page counts the rows of from that w selects, then reads the requested
// page of them ordered by order, calling scan for each row. A page past the
// last (or beyond what an int64 offset can address) reads nothing.
func (db *DB) page(ctx context.Context, from, columns, order string, w conditions, page, pageSize int,
	scan func(*sql.Rows) error) (int, error) {
	var total int64
	if err := db.db.QueryRowContext(ctx, db.dialect.rebind(`SELECT count(*) FROM `+from+w.where()), w.args...).Scan(&total); err != nil {
		return 0, err
	}
	query := `SELECT ` + columns + ` FROM ` + from + w.where() + ` ORDER BY ` + order
	args := w.args
	if pageSize > 0 {
		if int64(page) > math.MaxInt64/int64(pageSize) || int64(page)*int64(pageSize) >= total {
			return int(total), nil
		}
		n := len(args)
		query += ` LIMIT $` + strconv.Itoa(n+1) + ` OFFSET $` + strconv.Itoa(n+2)
		args = append(args[:n:n], pageSize, int64(page)*int64(pageSize))
	} else if total == 0 || page > 0 {
		return int(total), nil // all of them are on page 0
	}
	rows, err := db.db.QueryContext(ctx, db.dialect.rebind(query), args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return 0, err
		}
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	return int(total), nil
}

// conditions is a WHERE clause built one condition at a time, each with
// its argument as the next $N placeholder.
type conditions struct {
	conds []string
	args  []any
}

// add adds "lhs $N" with arg as $N; lhs is a constant of ours, never
// input.
func (c *conditions) add(lhs string, arg any) {
	c.args = append(c.args, arg)
	c.conds = append(c.conds, lhs+" $"+strconv.Itoa(len(c.args)))
}

func (c *conditions) where() string {
	if len(c.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(c.conds, " AND ")
}

// checkQuery rejects what no page can answer.
func checkQuery(sinceID int64, page, pageSize int) error {
	var bad []soarkafka.FieldError
	if sinceID < 0 {
		bad = append(bad, soarkafka.FieldError{Field: "since_id", Message: strconv.FormatInt(sinceID, 10) + ": want 0 or more"})
	}
	if page < 0 {
		bad = append(bad, soarkafka.FieldError{Field: "page", Message: strconv.Itoa(page) + ": want 0 or more (pages count from 0)"})
	}
	if pageSize < 0 {
		bad = append(bad, soarkafka.FieldError{Field: "page_size", Message: strconv.Itoa(pageSize) + ": want 0 (all) or more"})
	}
	if len(bad) > 0 {
		return &soarkafka.Error{Code: soarkafka.EINVALID, Message: "query is not well formed", Fields: bad}
	}
	return nil
}

// ceilMicrosecond rounds t up to the microsecond, the precision timestamps
// are stored with, so that a bound between two microseconds compares the
// same on both dialects: created_at >= t and created_at < t hold exactly
// when they hold for the next whole microsecond. (SQLite compares text
// truncated to the microsecond; PostgreSQL would round to the nearest.)
func ceilMicrosecond(t time.Time) time.Time {
	t = t.UTC()
	c := t.Truncate(time.Microsecond)
	if c.Before(t) {
		c = c.Add(time.Microsecond)
	}
	return c
}

// scanContainer reads the containerColumns of one row into c.
func scanContainer(row interface{ Scan(...any) error }, c *ingest.StoredContainer) error {
	var (
		sdi   sql.NullString
		body  []byte
		count int64
	)
	if err := row.Scan(&c.ID, &c.Asset, &sdi, &c.Name, &c.Label, &c.Severity, &body, &count,
		timestamp{&c.CreatedAt}, timestamp{&c.UpdatedAt}); err != nil {
		return err
	}
	c.SourceDataIdentifier, c.Body, c.ArtifactCount = sdi.String, body, int(count)
	return nil
}
