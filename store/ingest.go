package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"

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
//     next poll read again what is stored already.
//
// A batch that is not well formed is an EINVALID error naming every bad
// field, and nothing is stored.
func (db *DB) SaveBatch(ctx context.Context, b *ingest.Batch) (*ingest.Outcome, error) {
	heads, err := checkBatch(b)
	if err != nil {
		return nil, err
	}
	now := db.dialect.timeArg(db.now())
	var out *ingest.Outcome
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		out = &ingest.Outcome{}
		if db.dialect.name == "postgres" {
			// Batches of one asset run one after the other, so the lookup
			// then insert of a container cannot race another batch, and two
			// batches with overlapping identifiers cannot deadlock waiting
			// for each other's unique index entries. SQLite has this from
			// _txlock=immediate: one writer at a time. Advisory locks are
			// database-wide; two assets whose keys collide only wait.
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, ingestLockKey(b.Asset)); err != nil {
				return err
			}
		}
		s, err := db.prepareIngest(ctx, tx)
		if err != nil {
			return err
		}
		defer s.close()

		refs := map[int64]int{} // container id: its index in out.Containers
		var updated []int64
		for i, c := range b.Containers {
			id, name, inserted, err := s.container(ctx, b.Asset, c.SourceDataIdentifier, heads[i], now)
			if err != nil {
				return err
			}
			added := 0
			for _, a := range c.Artifacts {
				res, err := s.insertArtifact.ExecContext(ctx, id, b.Asset, a.SourceDataIdentifier, string(a.Body), now)
				if err != nil {
					return err
				}
				n, err := res.RowsAffected()
				if err != nil {
					return err
				}
				if n == 0 {
					out.DuplicatesSkipped++
				} else {
					added++
				}
			}
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
			if _, err := tx.ExecContext(ctx, db.dialect.rebind(`UPDATE containers SET updated_at = $1 WHERE id = $2`), now, id); err != nil {
				return err
			}
		}
		for _, o := range b.Offsets {
			if _, err := s.upsertOffset.ExecContext(ctx, b.Asset, b.Topic, o.Partition, o.Next, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if soarkafka.ErrorCode(err) == soarkafka.EINTERNAL {
			return nil, fmt.Errorf("store: save batch of asset %q, topic %q: %w", b.Asset, b.Topic, err)
		}
		return nil, err
	}
	return out, nil
}

// Offsets returns the stored next offset of each partition of the asset's
// topic; a partition never saved is absent.
func (db *DB) Offsets(ctx context.Context, asset, topic string) (map[int32]int64, error) {
	rows, err := db.db.QueryContext(ctx, db.dialect.rebind(`
		SELECT partition, next_offset FROM ingest_offsets WHERE asset = $1 AND topic = $2`), asset, topic)
	if err != nil {
		return nil, fmt.Errorf("store: read offsets of asset %q, topic %q: %w", asset, topic, err)
	}
	defer rows.Close()
	offsets := map[int32]int64{}
	for rows.Next() {
		var (
			p    int32
			next int64
		)
		if err := rows.Scan(&p, &next); err != nil {
			return nil, fmt.Errorf("store: read offsets of asset %q, topic %q: %w", asset, topic, err)
		}
		offsets[p] = next
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read offsets of asset %q, topic %q: %w", asset, topic, err)
	}
	return offsets, nil
}

// ingestStatements are the statements SaveBatch runs per container or
// artifact, prepared once per batch.
type ingestStatements struct {
	findContainer, insertContainer, deleteContainer, insertArtifact, upsertOffset *sql.Stmt
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
		{&s.insertArtifact, `
			INSERT INTO artifacts (container_id, asset, source_data_identifier, body, created_at)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (asset, source_data_identifier) DO NOTHING`},
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
	for _, stmt := range []*sql.Stmt{s.findContainer, s.insertContainer, s.deleteContainer, s.insertArtifact, s.upsertOffset} {
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

// ingestLockKey is the PostgreSQL advisory lock key of an asset's batches.
func ingestLockKey(asset string) int64 {
	h := fnv.New64a()
	h.Write([]byte("soarkafka ingest " + asset))
	return int64(h.Sum64())
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
		heads[i].body = c.Body
		for j, a := range c.Artifacts {
			field := field + ".artifacts[" + strconv.Itoa(j) + "]"
			if a.SourceDataIdentifier == "" {
				bad = append(bad, soarkafka.FieldError{Field: field + ".source_data_identifier",
					Message: "is empty; every artifact needs one so that a replay does not duplicate it"})
			}
			if !isJSONObject(a.Body) {
				bad = append(bad, soarkafka.FieldError{Field: field + ".body", Message: "is not a JSON object"})
			}
		}
	}
	for i, o := range b.Offsets {
		if o.Partition < 0 || o.Next < 0 {
			bad = append(bad, soarkafka.FieldError{Field: "offsets[" + strconv.Itoa(i) + "]",
				Message: fmt.Sprintf("partition %d, next offset %d: want both >= 0", o.Partition, o.Next)})
		}
	}
	if len(bad) > 0 {
		return nil, &soarkafka.Error{Code: soarkafka.EINVALID,
			Message: fmt.Sprintf("batch of asset %q, topic %q is not well formed", b.Asset, b.Topic), Fields: bad}
	}
	return heads, nil
}

func isJSONObject(b json.RawMessage) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{' && json.Valid(b)
}
