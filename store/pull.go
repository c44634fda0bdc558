package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/ingest"
)

var _ ingest.PullRepository = (*DB)(nil)

// Pull answers what the asset's polls stored past the cursor. The cursor
// is two high-water marks, the last container id and the last artifact id
// given out; an answer covers the containers with ids in (C0, C1] and the
// artifacts with ids in (A0, A1], and its cursor is (C1, A1).
//
// That never skips an item because of how ids are given out: batches are
// stored one at a time (SQLite has one writer; on PostgreSQL each batch
// holds a transaction advisory lock, see batchWrite.fence, released only
// after its commit is visible), so an id is committed before any higher
// id is given out, in every replica. Whatever id a reader sees, every
// lower id is committed already, or will never be. The answer is read in
// one snapshot (a read-only transaction: SQLite's WAL snapshot, PostgreSQL's
// REPEATABLE READ), so its two ranges and the containers' rows agree.
//
// C1 and A1 are chosen so that a container comes with its artifacts:
// artifacts are taken in id order up to MaxArtifacts, each bringing its
// container, and a new container brings every new container of lower id
// (C1 is a high-water mark); then new containers without any artifact are
// added up to the first one that has artifacts still to come. The answer
// stops before an artifact whose containers would pass MaxContainers.
func (db *DB) Pull(ctx context.Context, req ingest.PullRequest) (*ingest.PullPage, error) {
	if err := checkPull(req); err != nil {
		return nil, err
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
	if req.End {
		page, err = db.pullEnd(ctx, tx, req)
	} else {
		page, err = db.pull(ctx, tx, req)
	}
	if err != nil {
		return nil, fmt.Errorf("store: pull of asset %q from %s: %w", req.Asset, req.Cursor, err)
	}
	return page, nil
}

// pullEnd answers the cursor at the asset's current end, no items. A
// cursor given with it is kept where it is further.
func (db *DB) pullEnd(ctx context.Context, tx *sql.Tx, req ingest.PullRequest) (*ingest.PullPage, error) {
	cur := req.Cursor
	for _, q := range []struct {
		table string
		into  *int64
	}{{"containers", &cur.Container}, {"artifacts", &cur.Artifact}} {
		var top sql.NullInt64
		if err := tx.QueryRowContext(ctx, db.dialect.rebind(`SELECT max(id) FROM `+q.table+` WHERE asset = $1`), req.Asset).Scan(&top); err != nil {
			return nil, err
		}
		*q.into = max(*q.into, top.Int64)
	}
	return &ingest.PullPage{Items: []ingest.PullItem{}, Cursor: cur}, nil
}

// newContainer is a container created past the cursor, with its first
// artifact's id (0: it has none).
type newContainer struct{ id, firstArtifact int64 }

func (db *DB) pull(ctx context.Context, tx *sql.Tx, req ingest.PullRequest) (*ingest.PullPage, error) {
	c0, a0 := req.Cursor.Container, req.Cursor.Artifact
	// One more of each than an answer holds tells whether more remain.
	arts, err := db.pullArtifacts(ctx, tx, req.Asset, a0, req.MaxArtifacts+1)
	if err != nil {
		return nil, err
	}
	news, err := db.pullNewContainers(ctx, tx, req.Asset, c0, req.MaxContainers+1)
	if err != nil {
		return nil, err
	}

	members := map[int64][]ingest.StoredArtifact{} // container id: its artifacts in this answer
	next := 0                                      // news[:next] are in the answer
	c1 := c0
	// through returns how many new containers taking container id brings
	// in (those up to id not in yet), or -1 when that is past what was
	// read (more than MaxContainers).
	through := func(id int64) int {
		if id <= c1 {
			return 0
		}
		n := 0
		for k := next; k < len(news); k++ {
			if _, in := members[news[k].id]; !in {
				n++
			}
			if news[k].id == id {
				return n
			}
		}
		return -1
	}
	take := func(id int64) {
		for next < len(news) && news[next].id <= id {
			if _, in := members[news[next].id]; !in {
				members[news[next].id] = nil
			}
			next++
		}
		c1 = max(c1, id)
	}

	taken := 0
	a1 := a0
	for _, a := range arts {
		if taken == req.MaxArtifacts {
			break
		}
		add := 0
		if a.ContainerID > c0 {
			if add = through(a.ContainerID); add < 0 {
				break
			}
		} else if _, in := members[a.ContainerID]; !in {
			add = 1
		}
		if len(members)+add > req.MaxContainers {
			break
		}
		if a.ContainerID > c0 {
			take(a.ContainerID)
		}
		members[a.ContainerID] = append(members[a.ContainerID], a)
		taken++
		a1 = a.ID
	}
	// New containers with no artifact at all join up to the first one
	// whose artifacts are still to come: that one comes with them.
	for next < len(news) && len(members) < req.MaxContainers && news[next].firstArtifact == 0 {
		take(news[next].id)
	}
	// Nothing fits (the first artifact's container comes after more new
	// containers than an answer holds, and the first of them has artifacts
	// to come, stored after that artifact): the first new container comes
	// alone, as it was created, without artifacts; they follow.
	if taken == 0 && c1 == c0 && next < len(news) {
		take(news[next].id)
	}

	page := &ingest.PullPage{Items: make([]ingest.PullItem, 0, len(members)), Cursor: ingest.PullCursor{Container: c1, Artifact: a1},
		More: taken < len(arts) || next < len(news)}
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
		page.Items = append(page.Items, ingest.PullItem{Container: c, Artifacts: members[c.ID]})
	}
	if len(page.Items) != len(members) {
		// Every id came from this snapshot's rows.
		return nil, fmt.Errorf("read %d of the %d containers of the answer", len(page.Items), len(members))
	}
	return page, nil
}

// pullArtifacts reads up to limit artifacts of the asset past id a0, in id
// order.
func (db *DB) pullArtifacts(ctx context.Context, tx *sql.Tx, asset string, a0 int64, limit int) ([]ingest.StoredArtifact, error) {
	rows, err := tx.QueryContext(ctx, db.dialect.rebind(`SELECT `+artifactColumns+` FROM artifacts a
		WHERE a.asset = $1 AND a.id > $2 ORDER BY a.id LIMIT $3`), asset, a0, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ingest.StoredArtifact
	for rows.Next() {
		var (
			a    ingest.StoredArtifact
			body []byte
		)
		if err := rows.Scan(&a.ID, &a.ContainerID, &a.Asset, &a.SourceDataIdentifier, &body, timestamp{&a.CreatedAt}); err != nil {
			return nil, err
		}
		a.Body = body
		out = append(out, a)
	}
	return out, rows.Err()
}

// pullNewContainers reads the ids of up to limit containers of the asset
// past id c0, in id order, each with its first artifact's id.
func (db *DB) pullNewContainers(ctx context.Context, tx *sql.Tx, asset string, c0 int64, limit int) ([]newContainer, error) {
	rows, err := tx.QueryContext(ctx, db.dialect.rebind(`SELECT c.id, (SELECT min(a.id) FROM artifacts a WHERE a.container_id = c.id)
		FROM containers c WHERE c.asset = $1 AND c.id > $2 ORDER BY c.id LIMIT $3`), asset, c0, limit)
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
		if err := rows.Scan(&c.id, &first); err != nil {
			return nil, err
		}
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
	if req.Cursor.Container < 0 || req.Cursor.Artifact < 0 {
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
