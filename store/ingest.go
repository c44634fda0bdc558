package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
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
		if err := w.artifactsBefore(ctx); err != nil {
			return err
		}
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
	// lastArtifact is the highest artifact id before the batch (when it
	// writes outbox rows): every artifact the batch adds has a higher one.
	lastArtifact int64
}

// fence serialises batches on PostgreSQL and checks the batch's lease and
// partition epochs.
func (w *batchWrite) fence(ctx context.Context) error {
	if w.db.dialect.name == "postgres" {
		// Batches run one after the other, as SQLite has it from
		// _txlock=immediate (one writer at a time): the lookup then
		// insert of a container cannot race another batch, two batches
		// with overlapping identifiers cannot deadlock on each other's
		// unique index entries, and ids commit in the order they are
		// given, so a client pulling containers with ?since_id= never
		// sees a higher id before a lower one commits. The lock is
		// per schema, so separate deployments in one database do not
		// wait for each other.
		if _, err := w.tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, ingestLockKey(w.db.schema)); err != nil {
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
func (w *batchWrite) containers(ctx context.Context, heads []containerHead) error {
	b, out, s := w.b, w.out, w.s
	refs := map[int64]int{} // container id: its index in out.Containers
	var updated []int64
	for i, c := range b.Containers {
		id, name, inserted, err := s.container(ctx, b.Asset, c.SourceDataIdentifier, heads[i], w.now)
		if err != nil {
			return err
		}
		added, err := w.db.insertArtifacts(ctx, w.tx, id, b.Asset, c.Artifacts, w.now)
		if err != nil {
			return err
		}
		out.DuplicatesSkipped += len(c.Artifacts) - added
		out.ArtifactsCreated += added
		if inserted && c.SourceDataIdentifier == "" && len(c.Artifacts) > 0 && added == 0 {
			if _, err := s.deleteContainer.ExecContext(ctx, id); err != nil {
				return err
			}
			continue
		}
		if k, ok := refs[id]; ok {
			out.Containers[k].Artifacts += added
			continue
		}
		if !inserted && added == 0 {
			continue
		}
		refs[id] = len(out.Containers)
		out.Containers = append(out.Containers, ingest.ContainerRef{ID: id, Name: name, Artifacts: added, Created: inserted})
		if inserted {
			out.ContainersCreated++
		} else {
			out.ContainersUpdated++
			updated = append(updated, id)
		}
	}
	for _, id := range updated {
		if _, err := w.tx.ExecContext(ctx, w.db.dialect.rebind(`UPDATE containers SET updated_at = $1 WHERE id = $2`), w.now, id); err != nil {
			return err
		}
	}
	return nil
}

// offsets stores the batch's next offsets; the statement keeps a higher
// stored one.
func (w *batchWrite) offsets(ctx context.Context) error {
	for _, o := range w.b.Offsets {
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
// artifact, prepared once per batch.
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

// container returns the container of the asset with identifier sdi, or
// inserts it; inserted says which.
func (s *ingestStatements) container(ctx context.Context, asset, sdi string, h containerHead, now any) (id int64, name string, inserted bool, err error) {
	if sdi != "" {
		err := s.findContainer.QueryRowContext(ctx, asset, sdi).Scan(&id, &name)
		if err == nil {
			return id, name, false, nil
		} else if !errors.Is(err, sql.ErrNoRows) {
			return 0, "", false, err
		}
	}
	err = s.insertContainer.QueryRowContext(ctx, asset, sql.NullString{String: sdi, Valid: sdi != ""},
		h.Name, h.Label, h.Severity, string(h.body), now).Scan(&id)
	if err != nil {
		return 0, "", false, err
	}
	return id, h.Name, true, nil
}

// containerHead is what the store copies out of a container body.
type containerHead struct {
	Name     string `json:"name"`
	Label    string `json:"label"`
	Severity string `json:"severity"`

	body json.RawMessage
}

// ingestLockKey is the PostgreSQL advisory lock key of the batches of the
// deployment in schema.
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

// insertArtifacts inserts a container's artifacts, skipping those whose
// source_data_identifier the asset has already, and returns how many it
// inserted.
func (db *DB) insertArtifacts(ctx context.Context, tx *sql.Tx, containerID int64, asset string, arts []ingest.Artifact, now any) (int, error) {
	sqlite := db.dialect.name == "sqlite"
	added := 0
	var args []any
	for len(arts) > 0 {
		n := min(len(arts), artifactRows)
		args = args[:0]
		if sqlite {
			// Anonymous ? placeholders, the shared values repeated: SQLite
			// looks a numbered placeholder's name up in a list once per
			// bound value, quadratic in a statement of 1000 of them.
			for _, a := range arts[:n] {
				args = append(args, containerID, asset, a.SourceDataIdentifier, bodyText(a.Body), now)
			}
		} else {
			// Two array parameters, unnested server-side: binding 1000
			// scalar parameters per statement cost PostgreSQL more than
			// inserting the rows.
			sdis, bodies := make([]string, n), make([]string, n)
			for i, a := range arts[:n] {
				sdis[i], bodies[i] = a.SourceDataIdentifier, bodyText(a.Body)
			}
			args = append(args, containerID, asset, now, sdis, bodies)
		}
		var res sql.Result
		var err error
		if stmt := db.fullArtifactInsert(ctx, n); stmt != nil {
			res, err = tx.StmtContext(ctx, stmt).ExecContext(ctx, args...)
		} else {
			res, err = tx.ExecContext(ctx, db.artifactInsert(n), args...)
		}
		if err != nil {
			return 0, err
		}
		k, err := res.RowsAffected()
		if err != nil {
			return 0, err
		}
		added += int(k)
		arts = arts[n:]
	}
	return added, nil
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

// artifactInsert returns the statement inserting n artifacts. On
// PostgreSQL $1 is the container id, $2 the asset, $3 the time, $4 and $5
// the arrays of identifiers and bodies; on SQLite each row has its five
// values.
func (db *DB) artifactInsert(n int) string {
	if q, ok := db.artifactInserts.Load(n); ok {
		return q.(string)
	}
	if db.dialect.name == "postgres" {
		// One statement for any n: the rows come as two arrays.
		return `INSERT INTO artifacts (container_id, asset, source_data_identifier, body, created_at)
			SELECT $1, $2, u.sdi, u.body::jsonb, $3 FROM unnest($4::text[], $5::text[]) WITH ORDINALITY AS u(sdi, body, n)
			ORDER BY u.n
			ON CONFLICT (asset, source_data_identifier) DO NOTHING`
	}
	var b strings.Builder
	b.WriteString("INSERT INTO artifacts (container_id, asset, source_data_identifier, body, created_at) VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?, ?, ?, ?, ?)")
	}
	b.WriteString(" ON CONFLICT (asset, source_data_identifier) DO NOTHING")
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
