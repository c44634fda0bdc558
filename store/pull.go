package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/ingest"
)

var _ ingest.PullRepository = (*DB)(nil)

// Pull answers what the asset's polls stored past the cursor. The cursor
// is two positions, of the last container and of the last artifact given
// out; an answer covers the containers with positions in (C0, C1] and the
// artifacts with positions in (A0, A1], and its cursor is (C1, A1).
//
// A position is (transaction, id) on PostgreSQL, where batches commit
// concurrently, and an answer reads only rows below the horizon, the
// oldest transaction still in flight (order.go): every row below it has
// committed, and a row committing later has a transaction at or above it,
// so it comes after any cursor given out now. An artifact added to a
// container another transaction wrote carries the later of the two
// transactions (SaveBatch): an artifact below the horizon has its
// container below it too. On SQLite (one writer) a position is the id:
// ids commit in order. The answer is read in one snapshot (a read-only
// transaction: SQLite's WAL snapshot, PostgreSQL's REPEATABLE READ), so its
// two ranges and the containers' rows agree; it first waits for the
// transactions in flight when it is asked (settle), so a batch stored
// before is in it. When they outlast the wait the answer holds less, never
// a gap.
//
// C1 and A1 are chosen so that a container comes with its artifacts:
// artifacts are taken in order up to MaxArtifacts, each bringing its
// container, and a new container brings every new container before it (C1
// is a high-water mark); then new containers without any artifact are
// added up to the first one that has artifacts still to come. The answer
// stops before an artifact whose containers would pass MaxContainers.
func (db *DB) Pull(ctx context.Context, req ingest.PullRequest) (*ingest.PullPage, error) {
	if err := checkPull(req); err != nil {
		return nil, err
	}
	if _, err := db.settle(ctx); err != nil {
		return nil, fmt.Errorf("store: pull of asset %q: %w", req.Asset, err)
	}
	var f inFlight
	if db.dialect.name == "postgres" {
		var err error
		if f, err = db.readInFlight(ctx); err != nil {
			return nil, fmt.Errorf("store: pull of asset %q: %w", req.Asset, err)
		}
	}
	opts := &sql.TxOptions{ReadOnly: true}
	if db.dialect.name == "postgres" {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := db.db.BeginTx(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("store: pull of asset %q: begin: %w", req.Asset, err)
	}
	defer tx.Rollback() // read only: nothing to commit
	var page *ingest.PullPage
	h, err := db.horizon(ctx, tx, f)
	if err == nil {
		if req.End {
			page, err = db.pullEnd(ctx, tx, req, h)
		} else {
			page, err = db.pull(ctx, tx, req, h)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("store: pull of asset %q from %s: %w", req.Asset, req.Cursor, err)
	}
	return page, nil
}

// pullEnd answers the cursor at the asset's current end (below horizon h),
// no items. A cursor given with it is kept where it is further.
func (db *DB) pullEnd(ctx context.Context, tx *sql.Tx, req ingest.PullRequest, h int64) (*ingest.PullPage, error) {
	cur := req.Cursor
	for _, q := range []struct {
		table  string
		tx, id *int64
	}{{"containers", &cur.ContainerTx, &cur.Container}, {"artifacts", &cur.ArtifactTx, &cur.Artifact}} {
		o := db.ordered("t", position{}, h, 2)
		var top position
		err := tx.QueryRowContext(ctx, db.dialect.rebind(`SELECT `+o.txCol+`, t.id FROM `+q.table+` t
			WHERE t.asset = $1 AND `+o.cond+` ORDER BY `+descending(o.order)+` LIMIT 1`), append([]any{req.Asset}, o.args...)...).Scan(&top.tx, &top.id)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		} else if err != nil {
			return nil, err
		}
		if top.after(position{*q.tx, *q.id}) {
			*q.tx, *q.id = top.tx, top.id
		}
	}
	return &ingest.PullPage{Items: []ingest.PullItem{}, Cursor: cur}, nil
}

// descending turns an ORDER BY of columns into its reverse.
func descending(order string) string {
	return strings.ReplaceAll(order, ",", " DESC,") + " DESC"
}

// newContainer is a container created past the cursor, at position at,
// with its first artifact's id (0: it has none below the horizon).
type newContainer struct {
	at                position
	id, firstArtifact int64
}

// pulledArtifact is an artifact past the cursor, at position at, whose
// container is at position container.
type pulledArtifact struct {
	ingest.StoredArtifact
	at, container position
}

func (db *DB) pull(ctx context.Context, tx *sql.Tx, req ingest.PullRequest, h int64) (*ingest.PullPage, error) {
	c0 := position{req.Cursor.ContainerTx, req.Cursor.Container}
	a0 := position{req.Cursor.ArtifactTx, req.Cursor.Artifact}
	// One more of each than an answer holds tells whether more remain.
	arts, err := db.pullArtifacts(ctx, tx, req.Asset, a0, h, req.MaxArtifacts+1)
	if err != nil {
		return nil, err
	}
	news, err := db.pullNewContainers(ctx, tx, req.Asset, c0, h, req.MaxContainers+1)
	if err != nil {
		return nil, err
	}

	members := map[int64][]ingest.StoredArtifact{} // container id: its artifacts in this answer
	next := 0                                      // news[:next] are in the answer
	c1 := c0
	// through returns how many new containers taking the container at p
	// brings in (those up to it not in yet), or -1 when that is past what
	// was read (more than MaxContainers).
	through := func(p position) int {
		if !p.after(c1) {
			return 0
		}
		n := 0
		for k := next; k < len(news); k++ {
			if _, in := members[news[k].id]; !in {
				n++
			}
			if news[k].at == p {
				return n
			}
		}
		return -1
	}
	take := func(p position) {
		for next < len(news) && !news[next].at.after(p) {
			if _, in := members[news[next].id]; !in {
				members[news[next].id] = nil
			}
			next++
		}
		if p.after(c1) {
			c1 = p
		}
	}

	taken := 0
	a1 := a0
	for _, a := range arts {
		if taken == req.MaxArtifacts {
			break
		}
		add := 0
		if a.container.after(c0) {
			if add = through(a.container); add < 0 {
				break
			}
		} else if _, in := members[a.ContainerID]; !in {
			add = 1
		}
		if len(members)+add > req.MaxContainers {
			break
		}
		if a.container.after(c0) {
			take(a.container)
		}
		members[a.ContainerID] = append(members[a.ContainerID], a.StoredArtifact)
		taken++
		a1 = a.at
	}
	// New containers with no artifact at all join up to the first one
	// whose artifacts are still to come: that one comes with them.
	for next < len(news) && len(members) < req.MaxContainers && news[next].firstArtifact == 0 {
		take(news[next].at)
	}
	// Nothing fits (the first artifact's container comes after more new
	// containers than an answer holds, and the first of them has artifacts
	// to come, stored after that artifact): the first new container comes
	// alone, as it was created, without artifacts; they follow.
	if taken == 0 && c1 == c0 && next < len(news) {
		take(news[next].at)
	}

	page := &ingest.PullPage{Items: make([]ingest.PullItem, 0, len(members)),
		Cursor: ingest.PullCursor{ContainerTx: c1.tx, Container: c1.id, ArtifactTx: a1.tx, Artifact: a1.id},
		More:   taken < len(arts) || next < len(news)}
	if len(members) == 0 {
		return page, nil
	}
	ids := make([]int64, 0, len(members))
	for id := range members {
		ids = append(ids, id)
	}
	containers, err := db.pullContainers(ctx, tx, ids)
	if err != nil {
		return nil, err
	}
	for _, c := range containers {
		arts := members[c.ID]
		// In id order within the container, as ever: across
		// transactions the reading order may differ from it.
		slices.SortFunc(arts, func(x, y ingest.StoredArtifact) int { return cmp.Compare(x.ID, y.ID) })
		page.Items = append(page.Items, ingest.PullItem{Container: c, Artifacts: arts})
	}
	if len(page.Items) != len(members) {
		// Every id came from this snapshot's rows.
		return nil, fmt.Errorf("read %d of the %d containers of the answer", len(page.Items), len(members))
	}
	return page, nil
}

// pullArtifacts reads up to limit artifacts of the asset past position a0
// and below horizon h, in reading order, with their containers' positions.
func (db *DB) pullArtifacts(ctx context.Context, tx *sql.Tx, asset string, a0 position, h int64, limit int) ([]pulledArtifact, error) {
	o := db.ordered("a", a0, h, 2)
	rows, err := tx.QueryContext(ctx, db.dialect.rebind(`SELECT `+artifactColumns+`, `+o.txCol+`, `+db.ordered("c", position{}, 0, 1).txCol+`
		FROM artifacts a JOIN containers c ON c.id = a.container_id
		WHERE a.asset = $1 AND `+o.cond+` ORDER BY `+o.order+` LIMIT $`+strconv.Itoa(2+len(o.args))),
		append(append([]any{asset}, o.args...), limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []pulledArtifact
	for rows.Next() {
		var (
			a    pulledArtifact
			body []byte
		)
		if err := rows.Scan(&a.ID, &a.ContainerID, &a.Asset, &a.SourceDataIdentifier, &body, timestamp{&a.CreatedAt},
			&a.at.tx, &a.container.tx); err != nil {
			return nil, err
		}
		a.Body = body
		a.at.id, a.container.id = a.ID, a.ContainerID
		out = append(out, a)
	}
	return out, rows.Err()
}

// pullNewContainers reads up to limit containers of the asset past
// position c0 and below horizon h, in reading order, each with its first
// artifact's id below the horizon.
func (db *DB) pullNewContainers(ctx context.Context, tx *sql.Tx, asset string, c0 position, h int64, limit int) ([]newContainer, error) {
	o := db.ordered("c", c0, h, 2)
	visible := ""
	if db.dialect.name == "postgres" {
		visible = " AND a.tx < c_h.h"
	}
	n := 2 + len(o.args)
	from := `containers c`
	if visible != "" {
		from += `, (SELECT $` + strconv.Itoa(n+1) + `::text::xid8 AS h) c_h`
	}
	args := append(append([]any{asset}, o.args...), limit)
	if visible != "" {
		args = append(args, strconv.FormatInt(h, 10))
	}
	rows, err := tx.QueryContext(ctx, db.dialect.rebind(`SELECT c.id, `+o.txCol+`, (SELECT min(a.id) FROM artifacts a WHERE a.container_id = c.id`+visible+`)
		FROM `+from+` WHERE c.asset = $1 AND `+o.cond+` ORDER BY `+o.order+` LIMIT $`+strconv.Itoa(n)), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []newContainer
	for rows.Next() {
		var (
			c     newContainer
			first sql.NullInt64
		)
		if err := rows.Scan(&c.id, &c.at.tx, &first); err != nil {
			return nil, err
		}
		c.at.id = c.id
		c.firstArtifact = first.Int64
		out = append(out, c)
	}
	return out, rows.Err()
}

// pullContainers reads the containers with these ids, in id order.
func (db *DB) pullContainers(ctx context.Context, tx *sql.Tx, ids []int64) ([]ingest.StoredContainer, error) {
	var in strings.Builder
	args := make([]any, len(ids))
	for i, id := range ids {
		if i > 0 {
			in.WriteByte(',')
		}
		in.WriteString("$" + strconv.Itoa(i+1))
		args[i] = id
	}
	rows, err := tx.QueryContext(ctx, db.dialect.rebind(`SELECT `+containerColumns+` FROM containers c
		WHERE c.id IN (`+in.String()+`) ORDER BY c.id`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ingest.StoredContainer
	for rows.Next() {
		var c ingest.StoredContainer
		if err := scanContainer(rows, &c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// checkPull refuses a request no answer can serve.
func checkPull(req ingest.PullRequest) error {
	var bad []soarkafka.FieldError
	if req.Asset == "" {
		bad = append(bad, soarkafka.FieldError{Field: "asset", Message: "is empty; name the asset whose containers to pull"})
	}
	if req.Cursor.Container < 0 || req.Cursor.Artifact < 0 || req.Cursor.ContainerTx < 0 || req.Cursor.ArtifactTx < 0 {
		bad = append(bad, soarkafka.FieldError{Field: "cursor", Message: req.Cursor.String() + ": positions are 0 or more"})
	}
	if req.MaxArtifacts < 1 {
		bad = append(bad, soarkafka.FieldError{Field: "max_artifacts", Message: strconv.Itoa(req.MaxArtifacts) + ": want 1 or more"})
	}
	if req.MaxContainers < 1 {
		bad = append(bad, soarkafka.FieldError{Field: "max_containers", Message: strconv.Itoa(req.MaxContainers) + ": want 1 or more"})
	}
	if len(bad) > 0 {
		return &soarkafka.Error{Code: soarkafka.EINVALID, Message: "pull request is not well formed", Fields: bad}
	}
	return nil
}
