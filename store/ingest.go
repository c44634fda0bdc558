package store

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/ingest"
)

var _ ingest.Repository = (*DB)(nil)

// SaveBatch stores b in one transaction, so a crash at any point leaves
// either the whole batch, offsets included, or none of it:
//
//   - a container whose source_data_identifier the asset has already is
//     reused: the new artifacts go into it, as SOAR does on save; otherwise
//     it is inserted, with name, label and severity copied out of its body;
//   - an artifact whose source_data_identifier the asset has already is a
//     duplicate and is skipped (ON CONFLICT DO NOTHING);
//   - a container without source_data_identifier has no identity to reuse,
//     so one whose artifacts all turn out to be duplicates is not kept: a
//     replayed batch (poll now reads from the beginning) must not leave
//     empty copies behind. One without artifacts is inserted every time;
//   - each offset is stored unless the stored one is higher: a position
//     never moves backwards, so a late or replayed batch cannot make the
//     next poll read again what is stored already;
//   - gaps and dead letters are stored once: a replayed batch finds them
//     stored already (ON CONFLICT DO NOTHING on the gap's first offset, the
//     dead-lettered message's offset) and counts nothing twice.
//
// A batch with a LeaseHolder is fenced: it is stored only if that holder
// holds an unexpired lease of the asset when the transaction checks, and
// nobody can take the lease over until it commits; else it is an ECONFLICT
// error and nothing is stored.
//
// A batch that is not well formed is an EINVALID error naming every bad
// field, and nothing is stored.
func (db *DB) SaveBatch(ctx context.Context, b *ingest.Batch) (*ingest.Outcome, error) {
	replaceNUL(b)
	heads, err := checkBatch(b)
	if err != nil {
		return nil, err
	}
	now := db.dialect.timeArg(db.now())
	var out *ingest.Outcome
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		w := batchWrite{db: db, tx: tx, b: b, now: now, out: &ingest.Outcome{}}
		out = w.out
		if err := w.fence(ctx); err != nil {
			return err
		}
		s, err := db.prepareIngest(ctx, tx)
		if err != nil {
			return err
		}
		defer s.close()
		w.s = s
		if err := w.containers(ctx, heads); err != nil {
			return err
		}
		if err := w.outbox(ctx); err != nil {
			return err
		}
		db.fault(FaultMidTransaction)
		if err := w.offsets(ctx); err != nil {
			return err
		}
		if err := w.gaps(ctx); err != nil {
			return err
		}
		return w.deadLetters(ctx)
	})
	if err != nil {
		if invalidJSON(err) {
			return nil, &soarkafka.Error{Code: soarkafka.EINVALID, Message: fmt.Sprintf(
				"batch of asset %q, topic %q is not well formed: a container or artifact body is not valid JSON (%v); nothing was stored", b.Asset, b.Topic, err)}
		}
		if soarkafka.ErrorCode(err) == soarkafka.EINTERNAL {
			return nil, fmt.Errorf("store: save batch of asset %q, topic %q: %w", b.Asset, b.Topic, err)
		}
		return nil, err
	}
	db.checkpoints.request()
	return out, nil
}

// batchWrite is one SaveBatch transaction: the batch, the statements
// prepared for it and the outcome it adds up. Its steps run in the order
// SaveBatch calls them, inside the one transaction.
type batchWrite struct {
	db  *DB
	tx  *sql.Tx
	s   *ingestStatements
	b   *ingest.Batch
	now any
	out *ingest.Outcome
	// added holds, per container id, the ids of the artifacts the batch
	// inserted into it, as the inserts returned them: the outbox's
	// ranges (see outbox).
	added map[int64]*idRange
}

// idRange is the lowest and highest of some ids, and how many there are.
type idRange struct{ first, last, n int64 }

func (r *idRange) add(id int64) {
	if r.n == 0 || id < r.first {
		r.first = id
	}
	r.last = max(r.last, id)
	r.n++
}

// fence checks the batch's lease and partition epochs, and on PostgreSQL marks the transaction
// as a batch (a shared lock: batches never wait for each other on it) and
// gives it its id before it draws any container or artifact id.
//
// Batches are not serialised: on PostgreSQL batches of any asset, in any
// replica, commit concurrently (SQLite has one writer, from
// _txlock=immediate). What a lock bought is kept another way:
//   - a reader pages by (transaction, id) and reads only rows whose
//     transaction, and every one before it, has ended (Pull, the tx
//     stamps of migration 00010; docs/design.md, "Ordering without a
//     lock");
//   - the list routes answer only ids that no transaction in flight can
//     fall below (listBound), which holds because every id a batch draws
//     is drawn after its transaction id: a transaction holding an id was
//     in flight, with its transaction id, when that id was drawn;
//   - two batches naming one container take it in identifier order and
//     their artifacts in identifier order (containers, insertArtifacts),
//     so they wait for each other but never deadlock;
//   - the outbox's artifact ranges are the ids the inserts returned, in a
//     container the batch holds locked (containers).
func (w *batchWrite) fence(ctx context.Context) error {
	if w.db.dialect.name == "postgres" {
		// The lock first, then the transaction id: a reader that sees the
		// id in a snapshot finds the lock (order.go). The select list is
		// evaluated in order.
		if _, err := w.tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock_shared($1), pg_current_xact_id()`, ingestLockKey(w.db.schema)); err != nil {
			return err
		}
	}
	if w.b.LeaseHolder != "" {
		if err := w.db.checkLeaseHeld(ctx, w.tx, w.b.Asset, w.b.LeaseHolder); err != nil {
			return err
		}
	}
	return w.db.checkEpochs(ctx, w.tx, w.b)
}

// containers stores the batch's containers and their artifacts (heads[i]
// is what checkBatch copied out of container i's body), then touches the
// containers that gained artifacts.
//
// On PostgreSQL two batches of one asset can name the same container, or
// the same artifact, at once (containersAtOnce, insertArtifacts): each
// takes what it needs in identifier order, so they wait for each other but
// never deadlock. The container's lock (FOR NO KEY UPDATE, what the later
// UPDATE takes anyway; it does not block the foreign key checks of
// artifacts added by others) also keeps other batches from adding
// artifacts to it until this one commits, so the ids this batch adds to it
// are its own (the outbox's ranges). Ids are drawn up front in batch order,
// so they follow the batch's order though rows go in sorted; a container
// found existing leaves its drawn id unused. SQLite has one writer: it
// takes the containers one by one, in batch order.
func (w *batchWrite) containers(ctx context.Context, heads []containerHead) error {
	b, out, s := w.b, w.out, w.s
	pg := w.db.dialect.name == "postgres"
	// slot[i] numbers entry i among the containers the batch may insert,
	// in batch order: each identifier at its first naming, and each entry
	// without one. first holds the entry that names an identifier first
	// (its body is what an insert stores).
	slot := make([]int, len(b.Containers))
	first := map[string]int{}
	var sdis []string
	n := 0
	for i, c := range b.Containers {
		sdi := c.SourceDataIdentifier
		if sdi != "" {
			if f, ok := first[sdi]; ok {
				slot[i] = slot[f]
				continue
			}
			first[sdi] = i
			sdis = append(sdis, sdi)
		}
		slot[i] = n
		n++
	}
	// newIDs[k] is the id of slot k should it be inserted (PostgreSQL;
	// SQLite gives ids as it inserts, which it does in batch order).
	var newIDs []int64
	if pg {
		var err error
		if newIDs, err = w.drawIDs(ctx, "containers_id_seq", n); err != nil {
			return err
		}
	}
	idOf := func(i int) int64 { return newIDs[slot[i]] }
	res := make([]resolved, len(b.Containers))
	if pg {
		order := slices.Clone(sdis)
		slices.Sort(order)
		// Each try that finds an identifier taken leaves it committed for
		// the next to lock: as many tries as identifiers, and one more.
		for try := 0; ; try++ {
			done, err := w.containersAtOnce(ctx, heads, order, first, idOf, res)
			if err != nil {
				return err
			}
			if done {
				break
			}
			if try == len(order) {
				return fmt.Errorf("containers of the batch: other batches kept creating them, %d tries", try+1)
			}
		}
	} else {
		for i, c := range b.Containers {
			sdi := c.SourceDataIdentifier
			var err error
			if sdi == "" {
				res[i] = resolved{name: heads[i].Name, inserted: true}
				res[i].id, err = s.insert(ctx, b.Asset, "", heads[i], w.now)
			} else if first[sdi] == i {
				res[i].id, res[i].name, res[i].inserted, err = s.container(ctx, b.Asset, sdi, heads[i], w.now)
			}
			if err != nil {
				return err
			}
		}
	}
	// An identifier named again is the container its first naming
	// resolved; that one created it, if anyone did.
	for i, c := range b.Containers {
		if f, ok := first[c.SourceDataIdentifier]; ok && f != i {
			res[i] = res[f]
			res[i].inserted = false
		}
	}

	var rows []artifactRow
	for i, c := range b.Containers {
		for _, a := range c.Artifacts {
			rows = append(rows, artifactRow{containerID: res[i].id, containerTx: res[i].tx, Artifact: a})
		}
	}
	w.added = map[int64]*idRange{}
	if err := w.db.insertArtifacts(ctx, w.tx, b.Asset, rows, w.now, w.added); err != nil {
		return err
	}
	addedTo := func(id int64) int {
		if r := w.added[id]; r != nil {
			return int(r.n)
		}
		return 0
	}

	refs := map[int64]int{} // container id: its index in out.Containers
	var updated []int64
	total := 0
	for i, c := range b.Containers {
		r := res[i]
		total += len(c.Artifacts)
		if _, ok := refs[r.id]; ok {
			continue
		}
		added := addedTo(r.id)
		if r.inserted && c.SourceDataIdentifier == "" && len(c.Artifacts) > 0 && added == 0 {
			if _, err := s.deleteContainer.ExecContext(ctx, r.id); err != nil {
				return err
			}
			continue
		}
		if !r.inserted && added == 0 {
			continue
		}
		refs[r.id] = len(out.Containers)
		out.Containers = append(out.Containers, ingest.ContainerRef{ID: r.id, Name: r.name, Artifacts: added, Created: r.inserted})
		out.ArtifactsCreated += added
		if r.inserted {
			out.ContainersCreated++
		} else {
			out.ContainersUpdated++
			updated = append(updated, r.id)
		}
	}
	out.DuplicatesSkipped += total - out.ArtifactsCreated
	for _, id := range updated {
		if _, err := w.tx.ExecContext(ctx, w.db.dialect.rebind(`UPDATE containers SET updated_at = $1 WHERE id = $2`), w.now, id); err != nil {
			return err
		}
	}
	return nil
}

// containersAtOnce takes a batch's containers on PostgreSQL in two
// statements: lock those that exist, in identifier order (FOR NO KEY
// UPDATE), then insert the others, identified ones in identifier order (ON
// CONFLICT DO NOTHING, which waits for another batch's insert of the same
// identifier). No deadlock: every batch does the same two steps, so one
// waits in the first only for rows another locked in its first, in one
// order; in the second only for rows another inserted in its second (a
// committed one it skips without waiting), in one order; and later steps (artifacts, offsets) are ordered too and wait only for
// batches that are past both. When another batch created one of the
// containers meanwhile (the insert finds it taken, committed), locking it
// now, after inserting, would break the order: the try is rolled back to
// its savepoint, locks and inserts with it, and false says to try again,
// when the first step finds it. res gets, by entry, every container the
// batch names first.
func (w *batchWrite) containersAtOnce(ctx context.Context, heads []containerHead, order []string, first map[string]int,
	idOf func(int) int64, res []resolved) (bool, error) {
	b := w.b
	if _, err := w.tx.ExecContext(ctx, `SAVEPOINT containers_at_once`); err != nil {
		return false, err
	}
	found := map[string]resolved{}
	if len(order) > 0 {
		rows, err := w.tx.QueryContext(ctx, `SELECT id, source_data_identifier, name, tx::text FROM containers
			WHERE asset = $1 AND source_data_identifier = ANY($2::text[])
			ORDER BY source_data_identifier FOR NO KEY UPDATE`, b.Asset, order)
		if err != nil {
			return false, err
		}
		for rows.Next() {
			var (
				r   resolved
				sdi string
			)
			if err := rows.Scan(&r.id, &sdi, &r.name, &r.tx); err != nil {
				rows.Close()
				return false, err
			}
			found[sdi] = r
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return false, err
		}
	}
	// The entries to insert: identified ones not found, in identifier
	// order, then those without identifier, in batch order.
	var entries []int
	for _, sdi := range order {
		if r, ok := found[sdi]; ok {
			res[first[sdi]] = r
		} else {
			entries = append(entries, first[sdi])
		}
	}
	for i, c := range b.Containers {
		if c.SourceDataIdentifier == "" {
			entries = append(entries, i)
		}
	}
	if len(entries) > 0 {
		n := len(entries)
		ids := make([]int64, n)
		sdis, names, labels, severities, bodies := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		for k, i := range entries {
			h := heads[i]
			ids[k], sdis[k], names[k], labels[k], severities[k], bodies[k] = idOf(i), b.Containers[i].SourceDataIdentifier, h.Name, h.Label, h.Severity, bodyText(h.body)
		}
		rows, err := w.tx.QueryContext(ctx, `
			INSERT INTO containers (id, asset, source_data_identifier, name, label, severity, body, created_at, updated_at)
			SELECT u.id, $1, NULLIF(u.sdi, ''), u.name, u.label, u.severity, u.body::jsonb, $2, $2
			FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
				WITH ORDINALITY AS u(id, sdi, name, label, severity, body, n)
			ORDER BY u.n
			ON CONFLICT (asset, source_data_identifier) DO NOTHING
			RETURNING id, tx::text`, b.Asset, w.now, ids, sdis, names, labels, severities, bodies)
		if err != nil {
			return false, err
		}
		inserted := map[int64]string{}
		for rows.Next() {
			var (
				id int64
				tx string
			)
			if err := rows.Scan(&id, &tx); err != nil {
				rows.Close()
				return false, err
			}
			inserted[id] = tx
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return false, err
		}
		if len(inserted) < n {
			_, err := w.tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT containers_at_once`)
			return false, err
		}
		for _, i := range entries {
			id := idOf(i)
			res[i] = resolved{id: id, tx: inserted[id], name: heads[i].Name, inserted: true}
		}
	}
	_, err := w.tx.ExecContext(ctx, `RELEASE SAVEPOINT containers_at_once`)
	return err == nil, err
}

// resolved is the container an entry of a batch names.
type resolved struct {
	id       int64
	tx       string // the container's transaction (PostgreSQL)
	name     string
	inserted bool
}

// drawIDs draws n ids of sequence seq, in increasing order (PostgreSQL).
func (w *batchWrite) drawIDs(ctx context.Context, seq string, n int) ([]int64, error) {
	ids := make([]int64, 0, n)
	if n == 0 {
		return ids, nil
	}
	rows, err := w.tx.QueryContext(ctx, `SELECT nextval('`+seq+`') FROM generate_series(1, $1)`, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.Sort(ids)
	return ids, nil
}

// offsets stores the batch's next offsets; the statement keeps a higher
// stored one.
func (w *batchWrite) offsets(ctx context.Context) error {
	// In partition order, so two batches of one asset (partitions moving
	// between replicas) wait for each other's rows in one order.
	offsets := slices.Clone(w.b.Offsets)
	slices.SortStableFunc(offsets, func(a, b ingest.Offset) int { return cmp.Compare(a.Partition, b.Partition) })
	for _, o := range offsets {
		if _, err := w.s.upsertOffset.ExecContext(ctx, w.b.Asset, w.b.Topic, o.Partition, o.Next, w.now); err != nil {
			return err
		}
	}
	return nil
}

// gaps records the batch's gaps, once each.
func (w *batchWrite) gaps(ctx context.Context) error {
	for _, g := range w.b.Gaps {
		if _, err := w.tx.ExecContext(ctx, w.db.dialect.rebind(`
			INSERT INTO ingest_gaps (asset, topic, partition, from_offset, to_offset, count, detected_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (asset, topic, partition, from_offset) DO NOTHING`),
			w.b.Asset, w.b.Topic, g.Partition, g.From, g.To, g.Count, w.now); err != nil {
			return err
		}
	}
	return nil
}

// deadLetters records the batch's dead-lettered messages, once each.
func (w *batchWrite) deadLetters(ctx context.Context) error {
	for _, d := range w.b.DeadLetters {
		if _, err := w.tx.ExecContext(ctx, w.db.dialect.rebind(`
			INSERT INTO ingest_dead_letters (asset, topic, partition, message_offset, dead_letter_topic, parser, error, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (asset, topic, partition, message_offset) DO NOTHING`),
			w.b.Asset, w.b.Topic, d.Partition, d.Offset, d.Topic, d.Parser, d.Error, w.now); err != nil {
			return err
		}
	}
	return nil
}

// Offsets returns the stored next offset of each partition of the asset's
// topic; a partition never saved is absent.
func (db *DB) Offsets(ctx context.Context, asset, topic string) (map[int32]int64, error) {
	offsets, err := db.offsets(ctx, db.db, asset, topic)
	if err != nil {
		return nil, fmt.Errorf("store: read offsets of asset %q, topic %q: %w", asset, topic, err)
	}
	return offsets, nil
}

func (db *DB) offsets(ctx context.Context, q queryer, asset, topic string) (map[int32]int64, error) {
	rows, err := q.QueryContext(ctx, db.dialect.rebind(`
		SELECT partition, next_offset FROM ingest_offsets WHERE asset = $1 AND topic = $2`), asset, topic)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	offsets := map[int32]int64{}
	for rows.Next() {
		var (
			p    int32
			next int64
		)
		if err := rows.Scan(&p, &next); err != nil {
			return nil, err
		}
		offsets[p] = next
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return offsets, nil
}

// checkLeaseHeld is SaveBatch's fence: an ECONFLICT unless holder holds an
// unexpired lease of the asset. On PostgreSQL FOR SHARE keeps the lease row
// as it is until the batch commits: another poll taking over the lease
// (its upsert locks the row) waits for the batch, then reads the offsets it
// stored. On SQLite the immediate transaction holds the database's write
// lock, which AcquireLease needs too.
func (db *DB) checkLeaseHeld(ctx context.Context, tx *sql.Tx, asset, holder string) error {
	now, args := db.leaseNow(3)
	lock := ""
	if db.dialect.name == "postgres" {
		lock = " FOR SHARE"
	}
	var one int
	err := tx.QueryRowContext(ctx, db.dialect.rebind(`
		SELECT 1 FROM ingest_leases WHERE asset = $1 AND holder = $2 AND expires_at > `+now+lock),
		append([]any{asset, holder}, args...)...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return soarkafka.Errorf(soarkafka.ECONFLICT,
			"asset %q: this poll no longer holds its lease (it expired, and another poll may have taken over); nothing of this batch was stored", asset)
	}
	return err
}

// ingestStatements are the statements SaveBatch runs per container or
// artifact, prepared once per batch. findContainer and insertContainer are
// SQLite's (PostgreSQL takes a batch's containers at once,
// containersAtOnce).
type ingestStatements struct {
	findContainer, insertContainer, deleteContainer, upsertOffset *sql.Stmt
}

func (db *DB) prepareIngest(ctx context.Context, tx *sql.Tx) (*ingestStatements, error) {
	s := &ingestStatements{}
	for _, p := range []struct {
		stmt  **sql.Stmt
		query string
	}{
		{&s.findContainer, `SELECT id, name FROM containers WHERE asset = $1 AND source_data_identifier = $2`},
		{&s.insertContainer, `
			INSERT INTO containers (asset, source_data_identifier, name, label, severity, body, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id`},
		{&s.deleteContainer, `DELETE FROM containers WHERE id = $1`},
		// The WHERE makes a lower offset a no-op: positions never go back.
		{&s.upsertOffset, `
			INSERT INTO ingest_offsets (asset, topic, partition, next_offset, updated_at)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (asset, topic, partition) DO UPDATE
			SET next_offset = excluded.next_offset, updated_at = excluded.updated_at
			WHERE ingest_offsets.next_offset < excluded.next_offset`},
	} {
		stmt, err := tx.PrepareContext(ctx, db.dialect.rebind(p.query))
		if err != nil {
			s.close()
			return nil, err
		}
		*p.stmt = stmt
	}
	return s, nil
}

func (s *ingestStatements) close() {
	for _, stmt := range []*sql.Stmt{s.findContainer, s.insertContainer, s.deleteContainer, s.upsertOffset} {
		if stmt != nil {
			stmt.Close()
		}
	}
}

// container returns the container of the asset with identifier sdi (not
// empty), or inserts it; inserted says which (SQLite).
func (s *ingestStatements) container(ctx context.Context, asset, sdi string, h containerHead, now any) (id int64, name string, inserted bool, err error) {
	err = s.findContainer.QueryRowContext(ctx, asset, sdi).Scan(&id, &name)
	if err == nil {
		return id, name, false, nil
	} else if !errors.Is(err, sql.ErrNoRows) {
		return 0, "", false, err
	}
	id, err = s.insert(ctx, asset, sdi, h, now)
	return id, h.Name, true, err
}

// insert inserts a container (SQLite).
func (s *ingestStatements) insert(ctx context.Context, asset, sdi string, h containerHead, now any) (id int64, err error) {
	err = s.insertContainer.QueryRowContext(ctx, asset, sql.NullString{String: sdi, Valid: sdi != ""},
		h.Name, h.Label, h.Severity, string(h.body), now).Scan(&id)
	return id, err
}

// containerHead is what the store copies out of a container body.
type containerHead struct {
	Name     string `json:"name"`
	Label    string `json:"label"`
	Severity string `json:"severity"`

	body json.RawMessage
}

// artifactRow is an artifact to insert into its container.
type artifactRow struct {
	containerID int64
	// containerTx is the container's transaction (PostgreSQL): an
	// artifact's is the later of it and the batch's (see Pull).
	containerTx string
	id          int64 // drawn up front (PostgreSQL)
	ingest.Artifact
}

// ingestLockKey is the PostgreSQL advisory lock key that marks the batches
// of the deployment in schema as in flight (batchWrite.fence, order.go).
func ingestLockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("soarkafka ingest " + schema))
	return int64(h.Sum64())
}

// artifactRows is how many artifacts one INSERT statement writes: one
// statement per row costs a round trip (PostgreSQL) or a statement
// execution (SQLite) each, several times the row's own cost. 500 rows
// bind 1003 parameters, well within both databases' limits.
const artifactRows = 500

// insertArtifacts inserts the artifacts, skipping those whose
// source_data_identifier the asset has already (or an earlier row has), and
// adds the id of each one inserted to added, by container.
//
// On PostgreSQL the ids are drawn first, in the rows' order, and the rows
// are inserted in identifier order: two batches inserting the same
// identifiers wait for each other in one order (see batchWrite.containers).
func (db *DB) insertArtifacts(ctx context.Context, tx *sql.Tx, asset string, rows []artifactRow, now any, added map[int64]*idRange) error {
	if len(rows) == 0 {
		return nil
	}
	sqlite := db.dialect.name == "sqlite"
	if !sqlite {
		w := batchWrite{tx: tx}
		ids, err := w.drawIDs(ctx, "artifacts_id_seq", len(rows))
		if err != nil {
			return err
		}
		for i := range rows {
			rows[i].id = ids[i]
		}
		// Stable: of two rows with one identifier, the first named is
		// inserted, as in batch order.
		slices.SortStableFunc(rows, func(a, b artifactRow) int { return strings.Compare(a.SourceDataIdentifier, b.SourceDataIdentifier) })
	}
	var args []any
	for len(rows) > 0 {
		n := min(len(rows), artifactRows)
		args = args[:0]
		if sqlite {
			// Anonymous ? placeholders, the shared values repeated: SQLite
			// looks a numbered placeholder's name up in a list once per
			// bound value, quadratic in a statement of 1000 of them.
			for _, a := range rows[:n] {
				args = append(args, a.containerID, asset, a.SourceDataIdentifier, bodyText(a.Body), now)
			}
		} else {
			// Arrays, unnested server-side: binding 1000 scalar
			// parameters per statement cost PostgreSQL more than
			// inserting the rows.
			ids, cids := make([]int64, n), make([]int64, n)
			sdis, bodies, ctxs := make([]string, n), make([]string, n), make([]string, n)
			for i, a := range rows[:n] {
				ids[i], cids[i], sdis[i], bodies[i], ctxs[i] = a.id, a.containerID, a.SourceDataIdentifier, bodyText(a.Body), a.containerTx
			}
			args = append(args, asset, now, ids, cids, sdis, bodies, ctxs)
		}
		var res *sql.Rows
		var err error
		if stmt := db.fullArtifactInsert(ctx, n); stmt != nil {
			res, err = tx.StmtContext(ctx, stmt).QueryContext(ctx, args...)
		} else {
			res, err = tx.QueryContext(ctx, db.artifactInsert(n), args...)
		}
		if err != nil {
			return err
		}
		for res.Next() {
			var id, cid int64
			if err := res.Scan(&id, &cid); err != nil {
				res.Close()
				return err
			}
			r := added[cid]
			if r == nil {
				r = &idRange{}
				added[cid] = r
			}
			r.add(id)
		}
		if err := res.Close(); err != nil {
			return err
		}
		if err := res.Err(); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// fullArtifactInsert returns the SQLite statement inserting artifactRows
// artifacts, prepared once for the database, or nil for any other n, on
// PostgreSQL (pgx caches its statements itself), or when preparing fails
// (the caller then runs the text). A transaction reuses its connection's
// preparation of it: preparing the 500 rows' text anew for every statement
// showed in a poll's store time (docs/performance.md).
func (db *DB) fullArtifactInsert(ctx context.Context, n int) *sql.Stmt {
	if n != artifactRows || db.dialect.name != "sqlite" {
		return nil
	}
	db.fullInsertMu.Lock()
	defer db.fullInsertMu.Unlock()
	if db.fullInsert == nil {
		// A failure (a cancelled context) is tried again next time.
		if stmt, err := db.db.PrepareContext(ctx, db.artifactInsert(artifactRows)); err == nil {
			db.fullInsert = stmt
		}
	}
	return db.fullInsert
}

// artifactInsert returns the statement inserting n artifacts and returning
// the id and container id of each it inserted. On PostgreSQL $1 is the
// asset, $2 the time, $3 to $7 the arrays of ids, container ids,
// identifiers, bodies and container transactions; on SQLite each row has
// its five values.
func (db *DB) artifactInsert(n int) string {
	if q, ok := db.artifactInserts.Load(n); ok {
		return q.(string)
	}
	if db.dialect.name == "postgres" {
		// One statement for any n: the rows come as arrays. The
		// transaction stamp is the later of the batch's and the
		// container's (Pull relies on it); the column's default would be
		// the batch's alone.
		return `INSERT INTO artifacts (id, container_id, asset, source_data_identifier, body, created_at, tx)
			SELECT u.id, u.cid, $1, u.sdi, u.body::jsonb, $2, greatest(pg_current_xact_id(), u.ctx::xid8)
			FROM unnest($3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[]) WITH ORDINALITY AS u(id, cid, sdi, body, ctx, n)
			ORDER BY u.n
			ON CONFLICT (asset, source_data_identifier) DO NOTHING
			RETURNING id, container_id`
	}
	var b strings.Builder
	b.WriteString("INSERT INTO artifacts (container_id, asset, source_data_identifier, body, created_at) VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?, ?, ?, ?, ?)")
	}
	b.WriteString(" ON CONFLICT (asset, source_data_identifier) DO NOTHING RETURNING id, container_id")
	q := b.String()
	db.artifactInserts.Store(n, q)
	return q
}

// checkBatch reports every bad field of b at once, and returns what the
// store copies out of each container body.
func checkBatch(b *ingest.Batch) ([]containerHead, error) {
	var bad []soarkafka.FieldError
	if b.Asset == "" {
		bad = append(bad, soarkafka.FieldError{Field: "asset", Message: "is empty"})
	}
	if b.Topic == "" {
		bad = append(bad, soarkafka.FieldError{Field: "topic", Message: "is empty"})
	}
	heads := make([]containerHead, len(b.Containers))
	for i, c := range b.Containers {
		field := "containers[" + strconv.Itoa(i) + "]"
		if !isJSONObject(c.Body) {
			bad = append(bad, soarkafka.FieldError{Field: field + ".body", Message: "is not a JSON object"})
		} else if err := json.Unmarshal(c.Body, &heads[i]); err != nil {
			bad = append(bad, soarkafka.FieldError{Field: field + ".body", Message: "name, label and severity must be strings: " + err.Error()})
		}
		if heads[i].Label == "" {
			heads[i].Label = b.ContainerLabel
		}
		heads[i].body = c.Body
		for j, a := range c.Artifacts {
			field := field + ".artifacts[" + strconv.Itoa(j) + "]"
			if a.SourceDataIdentifier == "" {
				bad = append(bad, soarkafka.FieldError{Field: field + ".source_data_identifier",
					Message: "is empty; every artifact needs one so that a replay does not duplicate it"})
			}
			if !isJSONObject(a.Body) {
				bad = append(bad, soarkafka.FieldError{Field: field + ".body", Message: "is not a JSON object"})
			} else if !b.BodiesValid {
				if err := jsonError(a.Body); err != nil {
					bad = append(bad, soarkafka.FieldError{Field: field + ".body", Message: "is not valid JSON: " + err.Error()})
				}
			}
		}
	}
	for i, o := range b.Offsets {
		if o.Partition < 0 || o.Next < 0 {
			bad = append(bad, soarkafka.FieldError{Field: "offsets[" + strconv.Itoa(i) + "]",
				Message: fmt.Sprintf("partition %d, next offset %d: want both >= 0", o.Partition, o.Next)})
		}
	}
	for i, g := range b.Gaps {
		field := "gaps[" + strconv.Itoa(i) + "]"
		if g.Partition < 0 || g.From < 0 || g.To < 0 {
			bad = append(bad, soarkafka.FieldError{Field: field,
				Message: fmt.Sprintf("partition %d, from %d, to %d: want all >= 0", g.Partition, g.From, g.To)})
		}
		if g.From > g.To {
			bad = append(bad, soarkafka.FieldError{Field: field + ".from",
				Message: fmt.Sprintf("%d is after to %d: want from <= to", g.From, g.To)})
		} else if g.Count != g.To-g.From+1 {
			bad = append(bad, soarkafka.FieldError{Field: field + ".count",
				Message: fmt.Sprintf("%d: want to - from + 1 = %d", g.Count, g.To-g.From+1)})
		}
	}
	for i, d := range b.DeadLetters {
		field := "dead_letters[" + strconv.Itoa(i) + "]"
		if d.Partition < 0 || d.Offset < 0 {
			bad = append(bad, soarkafka.FieldError{Field: field,
				Message: fmt.Sprintf("partition %d, offset %d: want both >= 0", d.Partition, d.Offset)})
		}
		if d.Topic == "" {
			bad = append(bad, soarkafka.FieldError{Field: field + ".topic", Message: "is empty; name the dead-letter topic the message went to"})
		}
	}
	bad = append(bad, epochsCover(b)...)
	if len(bad) > 0 {
		return nil, &soarkafka.Error{Code: soarkafka.EINVALID,
			Message: fmt.Sprintf("batch of asset %q, topic %q is not well formed", b.Asset, b.Topic), Fields: bad}
	}
	return heads, nil
}

// isJSONObject reports whether b looks like one JSON object: it opens and
// closes as one. Whether it is valid JSON is jsonError's (for artifacts of
// a batch without BodiesValid) or the database's (container bodies:
// SQLite's CHECK (json_valid(body)), PostgreSQL's jsonb input; a body it
// refuses fails the batch as EINVALID, see invalidJSON).
func isJSONObject(b json.RawMessage) bool {
	b = bytes.TrimSpace(b)
	return len(b) >= 2 && b[0] == '{' && b[len(b)-1] == '}'
}

// jsonError says why b is not one valid JSON value, or returns nil. It
// accepts what SQLite's json_valid did before 00006 dropped that CHECK from
// artifacts: duplicate names, and bytes that are not UTF-8 (PostgreSQL's
// jsonb refuses those itself).
func jsonError(b json.RawMessage) error {
	opts := []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}
	if jsontext.Value(b).IsValid(opts...) {
		return nil
	}
	dec := jsontext.NewDecoder(bytes.NewReader(b), opts...)
	if err := dec.SkipValue(); err != nil {
		return err
	}
	return fmt.Errorf("more data after the object at byte %d", dec.InputOffset())
}

// invalidJSON reports whether err is the database refusing a body that is
// not valid JSON.
func invalidJSON(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "22P02" // invalid_text_representation: invalid input syntax for type json
	}
	var sqliteErr *sqlite.Error
	return errors.As(err, &sqliteErr) && sqliteErr.Code() == sqlite3.SQLITE_CONSTRAINT_CHECK
}

// bodyText passes a body to the driver as text without copying it: the
// driver copies it into the statement's binding, and the batch is not
// changed while SaveBatch runs (replaceNUL, which may change it, runs
// before). A copy per artifact showed in the store's time
// (docs/performance.md).
func bodyText(b json.RawMessage) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// nulEscape is how JSON text carries U+0000: it has no other way.
var nulEscape = []byte(`\u0000`)

// replaceNUL replaces U+0000 with U+FFFD in the batch's identifiers and
// bodies, in place. PostgreSQL holds no NUL in text or jsonb (and SOAR
// keeps its containers in PostgreSQL), so a Kafka message with a NUL byte
// would fail its batch at every poll and stop the asset's ingest on it for
// good. SQLite does the same, so both dialects store the same thing. The
// scan is one bytes.Index per body; only a body that has the escape is
// rewritten.
func replaceNUL(b *ingest.Batch) {
	for i := range b.Containers {
		c := &b.Containers[i]
		c.SourceDataIdentifier = strings.ReplaceAll(c.SourceDataIdentifier, "\x00", "\uFFFD")
		c.Body = bodyWithoutNUL(c.Body)
		for j := range c.Artifacts {
			a := &c.Artifacts[j]
			a.SourceDataIdentifier = strings.ReplaceAll(a.SourceDataIdentifier, "\x00", "\uFFFD")
			a.Body = bodyWithoutNUL(a.Body)
		}
	}
}

// bodyWithoutNUL rewrites the strings of a JSON body that hold U+0000, token
// by token, so that escaped text that only looks like the escape ("\\u0000")
// is kept. A body that does not parse is returned as it is, for checkBatch
// (or the database) to refuse.
func bodyWithoutNUL(b json.RawMessage) json.RawMessage {
	if bytes.Index(b, nulEscape) < 0 {
		return b
	}
	opts := []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}
	dec := jsontext.NewDecoder(bytes.NewReader(b), opts...)
	var out bytes.Buffer
	enc := jsontext.NewEncoder(&out, opts...)
	for {
		tok, err := dec.ReadToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return b
		}
		if tok.Kind() == '"' {
			if s := tok.String(); strings.Contains(s, "\x00") {
				tok = jsontext.String(strings.ReplaceAll(s, "\x00", "\uFFFD"))
			}
		}
		if err := enc.WriteToken(tok); err != nil {
			return b
		}
	}
	return bytes.TrimRight(out.Bytes(), "\n")
}
