package store_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/store"
)

// rawDB opens url beneath the store (testenv.RawDB).
func rawDB(t *testing.T, url string) *sql.DB { return testenv.RawDB(t, url) }

// count returns the result of a SELECT count(*) query.
func count(t *testing.T, raw *sql.DB, query string) int {
	t.Helper()
	var n int
	if err := raw.QueryRowContext(t.Context(), query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func artifact(sdi string) ingest.Artifact {
	return ingest.Artifact{SourceDataIdentifier: sdi, Body: json.RawMessage(`{"name":"artifact ` + sdi + `","cef":{"sdi":"` + sdi + `"}}`)}
}

func container(sdi, name string, artifacts ...string) ingest.Container {
	c := ingest.Container{SourceDataIdentifier: sdi,
		Body: json.RawMessage(`{"name":"` + name + `","label":"events","severity":"high","data":{"n":1}}`)}
	for _, a := range artifacts {
		c.Artifacts = append(c.Artifacts, artifact(a))
	}
	return c
}

// firstBatch has a container with an identifier and two artifacts, one
// without identifier, and one with an identifier but no artifact.
func firstBatch(asset string) *ingest.Batch {
	return &ingest.Batch{Asset: asset, Topic: "events", Containers: []ingest.Container{
		container("c1", "one", "0:1", "0:2"),
		container("", "two", "1:1"),
		container("c3", "three"),
	}, Offsets: []ingest.Offset{{Partition: 0, Next: 3}, {Partition: 1, Next: 2}}}
}

func saveBatch(t *testing.T, db *store.DB, b *ingest.Batch) *ingest.Outcome {
	t.Helper()
	out, err := db.SaveBatch(t.Context(), b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func wantOffsets(t *testing.T, db *store.DB, asset string, want map[int32]int64) {
	t.Helper()
	got, err := db.Offsets(t.Context(), asset, "events")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("offsets of %s = %v, %v; want %v", asset, got, err, want)
	}
}

// wantRows checks how many containers and artifacts the asset has.
func wantRows(t *testing.T, raw *sql.DB, asset string, containers, artifacts int) {
	t.Helper()
	c := count(t, raw, "SELECT count(*) FROM containers WHERE asset = '"+asset+"'")
	a := count(t, raw, "SELECT count(*) FROM artifacts WHERE asset = '"+asset+"'")
	if c != containers || a != artifacts {
		t.Fatalf("asset %s has %d containers and %d artifacts, want %d and %d", asset, c, a, containers, artifacts)
	}
}

func TestSaveBatch(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db, raw := openMigrated(t, url), rawDB(t, url)
		if got, err := db.Offsets(t.Context(), "a", "events"); err != nil || got == nil || len(got) != 0 {
			t.Fatalf("offsets before any batch = %v, %v; want an empty map", got, err)
		}

		out := saveBatch(t, db, firstBatch("a"))
		ids := []int64{}
		for _, c := range out.Containers {
			ids = append(ids, c.ID)
		}
		want := &ingest.Outcome{ContainersCreated: 3, ArtifactsCreated: 3, Containers: []ingest.ContainerRef{
			{ID: ids[0], Name: "one", Artifacts: 2, Created: true},
			{ID: ids[1], Name: "two", Artifacts: 1, Created: true},
			{ID: ids[2], Name: "three", Artifacts: 0, Created: true},
		}}
		if !reflect.DeepEqual(out, want) || ids[0] == 0 || ids[0] >= ids[1] || ids[1] >= ids[2] {
			t.Fatalf("outcome %+v, want %+v with increasing ids", out, want)
		}
		wantRows(t, raw, "a", 3, 3)
		wantOffsets(t, db, "a", map[int32]int64{0: 3, 1: 2})

		// The columns copied out of the body, the body kept, the artifacts
		// in their container.
		var name, label, severity, body string
		var sdi sql.NullString
		if err := raw.QueryRowContext(t.Context(), fmt.Sprintf(
			"SELECT name, label, severity, source_data_identifier, body FROM containers WHERE id = %d", ids[0])).
			Scan(&name, &label, &severity, &sdi, &body); err != nil {
			t.Fatal(err)
		}
		if name != "one" || label != "events" || severity != "high" || sdi.String != "c1" || !sameJSON(body, string(container("c1", "one").Body)) {
			t.Fatalf("container row: %q %q %q %v %s", name, label, severity, sdi, body)
		}
		if n := count(t, raw, fmt.Sprintf("SELECT count(*) FROM containers WHERE id = %d AND source_data_identifier IS NULL", ids[1])); n != 1 {
			t.Fatal("a container without identifier is not stored with a NULL one")
		}
		if n := count(t, raw, fmt.Sprintf("SELECT count(*) FROM artifacts WHERE container_id = %d", ids[0])); n != 2 {
			t.Fatalf("container one has %d artifacts, want 2", n)
		}
		if err := raw.QueryRowContext(t.Context(), "SELECT body FROM artifacts WHERE source_data_identifier = '0:2'").Scan(&body); err != nil {
			t.Fatal(err)
		} else if !sameJSON(body, string(artifact("0:2").Body)) {
			t.Fatalf("artifact body %s", body)
		}
	})
}

// Saving the same batch again stores nothing: every artifact is a
// duplicate, the containers are reused, the container without identifier
// is not copied, the offsets stay.
func TestSaveBatchReplay(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db, raw := openMigrated(t, url), rawDB(t, url)
		saveBatch(t, db, firstBatch("a"))
		out := saveBatch(t, db, firstBatch("a"))
		if want := (&ingest.Outcome{DuplicatesSkipped: 3}); !reflect.DeepEqual(out, want) {
			t.Fatalf("replay outcome %+v, want %+v", out, want)
		}
		wantRows(t, raw, "a", 3, 3)
		wantOffsets(t, db, "a", map[int32]int64{0: 3, 1: 2})
	})
}

// A container whose identifier exists receives the new artifacts; the
// duplicates among them are skipped.
func TestSaveBatchUpdatesExistingContainer(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db, raw := openMigrated(t, url), rawDB(t, url)
		first := saveBatch(t, db, firstBatch("a"))
		one, three := first.Containers[0].ID, first.Containers[2].ID
		later := time.Now().Add(time.Hour)
		db.Now = func() time.Time { return later }
		out := saveBatch(t, db, &ingest.Batch{Asset: "a", Topic: "events", Containers: []ingest.Container{
			container("c1", "renamed, ignored", "0:2", "0:3", "0:4"),
			container("c4", "four", "0:5"),
			container("c3", "three again", "0:6"),
			// Named twice in one batch: one container, its artifacts summed.
			container("c4", "four", "0:7", "0:5"),
		}, Offsets: []ingest.Offset{{Partition: 0, Next: 8}}})
		four := out.Containers[1].ID
		want := &ingest.Outcome{ContainersCreated: 1, ContainersUpdated: 2, ArtifactsCreated: 5, DuplicatesSkipped: 2,
			Containers: []ingest.ContainerRef{
				{ID: one, Name: "one", Artifacts: 2},
				{ID: four, Name: "four", Artifacts: 2, Created: true},
				{ID: three, Name: "three", Artifacts: 1},
			}}
		if !reflect.DeepEqual(out, want) {
			t.Fatalf("outcome %+v, want %+v", out, want)
		}
		wantRows(t, raw, "a", 4, 8)
		if n := count(t, raw, fmt.Sprintf("SELECT count(*) FROM artifacts WHERE container_id = %d", one)); n != 4 {
			t.Fatalf("container one has %d artifacts, want 4", n)
		}
		if n := count(t, raw, fmt.Sprintf("SELECT count(*) FROM containers WHERE id = %d AND updated_at > created_at", one)); n != 1 {
			t.Fatal("updated_at of an updated container did not move")
		}
		wantOffsets(t, db, "a", map[int32]int64{0: 8, 1: 2})
	})
}

// A stored offset only moves forwards, within a batch as across them.
func TestSaveBatchOffsetsNeverMoveBackwards(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db := openMigrated(t, url)
		offsets := func(o ...ingest.Offset) *ingest.Batch {
			return &ingest.Batch{Asset: "a", Topic: "events", Offsets: o}
		}
		saveBatch(t, db, offsets(ingest.Offset{Partition: 0, Next: 100}, ingest.Offset{Partition: 1, Next: 50}))
		saveBatch(t, db, offsets(ingest.Offset{Partition: 0, Next: 10}, ingest.Offset{Partition: 1, Next: 60}, ingest.Offset{Partition: 2, Next: 0}))
		wantOffsets(t, db, "a", map[int32]int64{0: 100, 1: 60, 2: 0})
		saveBatch(t, db, offsets(ingest.Offset{Partition: 2, Next: 7}, ingest.Offset{Partition: 2, Next: 5}))
		wantOffsets(t, db, "a", map[int32]int64{0: 100, 1: 60, 2: 7})
		// Another topic of the asset has positions of its own.
		if got, err := db.Offsets(t.Context(), "a", "other"); err != nil || len(got) != 0 {
			t.Fatalf("offsets of another topic: %v %v", got, err)
		}
	})
}

// When the database refuses a write halfway through a batch, nothing of the
// batch is stored: not the containers and artifacts before the failing
// one, not the offsets.
func TestSaveBatchIsAtomic(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db, raw := openMigrated(t, url), rawDB(t, url)
		saveBatch(t, db, firstBatch("a"))

		// A trigger refusing one artifact stands for any failure mid-way:
		// a full disk, a lost connection, a crash.
		ddl := []string{`CREATE TRIGGER refuse_poison BEFORE INSERT ON artifacts
			WHEN NEW.source_data_identifier = 'poison'
			BEGIN SELECT RAISE(ABORT, 'poison artifact'); END`}
		if db.Dialect() == "postgres" {
			ddl = []string{`CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN RAISE EXCEPTION 'poison artifact'; END $$`,
				`CREATE TRIGGER refuse_poison BEFORE INSERT ON artifacts FOR EACH ROW
				WHEN (NEW.source_data_identifier = 'poison') EXECUTE FUNCTION refuse_poison()`}
		}
		for _, q := range ddl {
			if _, err := raw.ExecContext(t.Context(), q); err != nil {
				t.Fatal(err)
			}
		}
		_, err := db.SaveBatch(t.Context(), &ingest.Batch{Asset: "a", Topic: "events", Containers: []ingest.Container{
			container("c1", "one", "0:3"),         // new artifact in an existing container
			container("c5", "five", "0:4", "0:5"), // new container
			container("", "six", "0:6", "poison", "0:7"),
		}, Offsets: []ingest.Offset{{Partition: 0, Next: 8}, {Partition: 2, Next: 1}}})
		if err == nil || !strings.Contains(err.Error(), "poison artifact") || soarkafka.ErrorCode(err) != soarkafka.EINTERNAL {
			t.Fatalf("SaveBatch error = %v, want the database's refusal as an internal error", err)
		}
		wantRows(t, raw, "a", 3, 3)
		wantOffsets(t, db, "a", map[int32]int64{0: 3, 1: 2})
		if n := count(t, raw, "SELECT count(*) FROM containers WHERE updated_at > created_at"); n != 0 {
			t.Fatal("a container was touched by the failed batch")
		}

		// A batch cancelled before it starts stores nothing either.
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := db.SaveBatch(ctx, &ingest.Batch{Asset: "a", Topic: "events",
			Containers: []ingest.Container{container("c9", "nine", "9:9")}}); err == nil {
			t.Fatal("SaveBatch with a cancelled context succeeded")
		}
		wantRows(t, raw, "a", 3, 3)
	})
}

// A batch that is not well formed is refused whole, naming every bad field.
func TestSaveBatchInvalid(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db, raw := openMigrated(t, url), rawDB(t, url)
		_, err := db.SaveBatch(t.Context(), &ingest.Batch{Asset: "a", Containers: []ingest.Container{
			container("c1", "fine", "0:1"),
			{Body: json.RawMessage(`[1]`), Artifacts: []ingest.Artifact{
				{Body: json.RawMessage(`{}`)},
				{SourceDataIdentifier: "x", Body: json.RawMessage(`{"cef": `)},
			}},
			{Body: json.RawMessage(`{"severity": 3}`)},
			{Body: json.RawMessage(`null`)},
		}, Offsets: []ingest.Offset{{Partition: 0, Next: -1}}})
		wantCode(t, err, soarkafka.EINVALID)
		for _, field := range []string{"topic: is empty", "containers[1].body: is not a JSON object",
			"containers[1].artifacts[0].source_data_identifier: is empty", "containers[1].artifacts[1].body",
			"containers[2].body: name, label and severity must be strings", "containers[3].body", "offsets[0]"} {
			if !strings.Contains(err.Error(), field) {
				t.Errorf("error %q does not name %s", err, field)
			}
		}
		wantRows(t, raw, "a", 0, 0)
	})
}

// Identifiers are unique per asset: two assets with the same identifiers
// each get their own containers and artifacts, and positions.
func TestSaveBatchAssetsDoNotCollide(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db, raw := openMigrated(t, url), rawDB(t, url)
		a := saveBatch(t, db, firstBatch("a"))
		b := firstBatch("b")
		b.Offsets = []ingest.Offset{{Partition: 0, Next: 1}}
		out := saveBatch(t, db, b)
		if out.ContainersCreated != 3 || out.ArtifactsCreated != 3 || out.DuplicatesSkipped != 0 || out.Containers[0].ID == a.Containers[0].ID {
			t.Fatalf("asset b outcome %+v", out)
		}
		wantRows(t, raw, "a", 3, 3)
		wantRows(t, raw, "b", 3, 3)
		wantOffsets(t, db, "a", map[int32]int64{0: 3, 1: 2})
		wantOffsets(t, db, "b", map[int32]int64{0: 1})
	})
}

// Concurrent batches of one asset with overlapping containers and artifacts
// never store an artifact or a container twice, and account for every
// artifact once as created or skipped.
func TestSaveBatchConcurrent(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db, raw := openMigrated(t, url), rawDB(t, url)
		const workers, containers, artifacts = 8, 4, 10
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			created  int
			skipped  int
			newConts int
		)
		for w := range workers {
			wg.Go(func() {
				b := &ingest.Batch{Asset: "a", Topic: "events", Offsets: []ingest.Offset{{Partition: 0, Next: int64(w)}}}
				// Each worker names the same containers, in an order of its
				// own, with overlapping artifacts.
				for i := range containers {
					c := (i + w) % containers
					var sdis []string
					for j := range artifacts {
						sdis = append(sdis, fmt.Sprintf("%d:%d", c, (j+w)%(artifacts+workers)))
					}
					b.Containers = append(b.Containers, container(fmt.Sprintf("c%d", c), fmt.Sprintf("c%d", c), sdis...))
				}
				out, err := db.SaveBatch(context.Background(), b)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				created += out.ArtifactsCreated
				skipped += out.DuplicatesSkipped
				newConts += out.ContainersCreated
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		// Worker w names artifacts w..w+artifacts-1 of each container.
		distinct := containers * (artifacts + workers - 1)
		wantRows(t, raw, "a", containers, distinct)
		if created != distinct || created+skipped != workers*containers*artifacts || newConts != containers {
			t.Fatalf("outcomes add up to %d artifacts created, %d skipped, %d containers created; want %d, %d, %d",
				created, skipped, newConts, distinct, workers*containers*artifacts-distinct, containers)
		}
		if n := count(t, raw, "SELECT count(*) FROM (SELECT source_data_identifier FROM artifacts GROUP BY source_data_identifier HAVING count(*) > 1) d"); n != 0 {
			t.Fatalf("%d artifacts stored twice", n)
		}
		wantOffsets(t, db, "a", map[int32]int64{0: workers - 1})
	})
}

func sameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// A body that opens and closes as an object but is not valid JSON is
// refused as EINVALID naming the field, with nothing stored: an artifact's
// by SaveBatch's own check, a container's when its name, label and
// severity are read.
func TestSaveBatchBodyNotJSON(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db, raw := openMigrated(t, url), rawDB(t, url)
		for _, tc := range []struct {
			batch *ingest.Batch
			field string
		}{
			{&ingest.Batch{Asset: "a", Topic: "t", Containers: []ingest.Container{container("c1", "fine", "0:1"),
				{Body: json.RawMessage(`{"name": "x"}`), Artifacts: []ingest.Artifact{{SourceDataIdentifier: "0:2", Body: json.RawMessage(`{"cef": }`)}}}}},
				"containers[1].artifacts[0].body"},
			{&ingest.Batch{Asset: "a", Topic: "t", Containers: []ingest.Container{{Body: json.RawMessage(`{"name": "x"}`),
				Artifacts: []ingest.Artifact{{SourceDataIdentifier: "0:3", Body: json.RawMessage(`{"a": 1} {"b": 2}`)}}}}},
				"containers[0].artifacts[0].body"},
			{&ingest.Batch{Asset: "a", Topic: "t", Containers: []ingest.Container{{Body: json.RawMessage(`{"name": x}`)}}},
				"containers[0].body"},
		} {
			_, err := db.SaveBatch(t.Context(), tc.batch)
			wantCode(t, err, soarkafka.EINVALID)
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q does not name %s", err, tc.field)
			}
			wantRows(t, raw, "a", 0, 0)
		}
	})
}

// BodiesValid is the caller's word that the artifact bodies are valid JSON
// (the poll's parse workers check them): SQLite stores them as given, with
// no second check on its one writer; PostgreSQL's jsonb still parses them
// and refuses one that is not JSON. A batch with valid bodies is stored the
// same either way.
func TestSaveBatchBodiesValid(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db, raw := openMigrated(t, url), rawDB(t, url)
		good := &ingest.Batch{Asset: "a", Topic: "t", BodiesValid: true, Containers: []ingest.Container{container("c1", "fine", "0:1", "0:2")}}
		if _, err := db.SaveBatch(t.Context(), good); err != nil {
			t.Fatal(err)
		}
		wantRows(t, raw, "a", 1, 2)

		trusted := &ingest.Batch{Asset: "a", Topic: "t", BodiesValid: true, Containers: []ingest.Container{{SourceDataIdentifier: "c2",
			Body: json.RawMessage(`{"name": "x"}`), Artifacts: []ingest.Artifact{{SourceDataIdentifier: "0:3", Body: json.RawMessage(`{"cef": }`)}}}}}
		_, err := db.SaveBatch(t.Context(), trusted)
		if db.Dialect() == "postgres" {
			wantCode(t, err, soarkafka.EINVALID)
			wantRows(t, raw, "a", 1, 2)
			return
		}
		if err != nil {
			t.Fatalf("SQLite checked a body the caller vouched for: %v", err)
		}
		wantRows(t, raw, "a", 2, 3)
	})
}
