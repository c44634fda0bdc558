package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/store"
)

// A pager reads the next page of one asset's containers and artifacts past
// the position it keeps, and says whether more remain. The tests below run
// with the store's cursor (pullPager) and with a plain id > since_id reader
// (idPager), which must be shown wrong where ids commit out of order.
type pager func(ctx context.Context) (got []appearance, more bool, err error)

// pullPager pages with store.Pull and its cursor, in small answers.
func pullPager(db *store.DB, asset string) pager {
	var cursor ingest.PullCursor
	return func(ctx context.Context) ([]appearance, bool, error) {
		page, err := db.Pull(ctx, ingest.PullRequest{Asset: asset, Cursor: cursor, MaxArtifacts: 7, MaxContainers: 3})
		if err != nil {
			return nil, false, err
		}
		var got []appearance
		for _, it := range page.Items {
			ap := appearance{container: itemName(it.Container)}
			for _, a := range it.Artifacts {
				ap.artifacts = append(ap.artifacts, a.SourceDataIdentifier)
			}
			got = append(got, ap)
		}
		cursor = page.Cursor
		return got, page.More, nil
	}
}

// idPager pages as a client of ?since_id= did before: new containers with
// id > the highest container id seen, and artifacts with id > the highest
// artifact id seen, straight from the tables.
func idPager(raw *sql.DB, asset string) pager {
	var c0, a0 int64
	return func(ctx context.Context) ([]appearance, bool, error) {
		var got []appearance
		rows, err := raw.QueryContext(ctx, `SELECT id, COALESCE(source_data_identifier, name) FROM containers
			WHERE asset = $1 AND id > $2 ORDER BY id LIMIT 3`, asset, c0)
		if err != nil {
			return nil, false, err
		}
		n := 0
		for rows.Next() {
			var name string
			if err := rows.Scan(&c0, &name); err != nil {
				rows.Close()
				return nil, false, err
			}
			got = append(got, appearance{container: name})
			n++
		}
		rows.Close()
		rows, err = raw.QueryContext(ctx, `SELECT a.id, a.source_data_identifier, COALESCE(c.source_data_identifier, c.name)
			FROM artifacts a JOIN containers c ON c.id = a.container_id
			WHERE a.asset = $1 AND a.id > $2 ORDER BY a.id LIMIT 7`, asset, a0)
		if err != nil {
			return nil, false, err
		}
		m := 0
		for rows.Next() {
			var sdi, name string
			if err := rows.Scan(&a0, &sdi, &name); err != nil {
				rows.Close()
				return nil, false, err
			}
			got = append(got, appearance{container: name, artifacts: []string{sdi}})
			m++
		}
		rows.Close()
		return got, n == 3 || m == 7, rows.Err()
	}
}

func itemName(c ingest.StoredContainer) string {
	if c.SourceDataIdentifier != "" {
		return c.SourceDataIdentifier
	}
	return c.Name
}

// storedOf returns the asset's containers as stored, each with its
// artifacts' identifiers.
func storedOf(t *testing.T, db *store.DB, asset string) map[string][]string {
	t.Helper()
	stored := map[string][]string{}
	cs, _, err := db.ListContainers(t.Context(), ingest.ContainerFilter{Asset: asset})
	if err != nil {
		t.Fatal(err)
	}
	names := map[int64]string{}
	for _, c := range cs {
		names[c.ID] = itemName(c)
		stored[itemName(c)] = nil
	}
	arts, _, err := db.ListArtifacts(t.Context(), ingest.ArtifactFilter{Asset: asset})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range arts {
		stored[names[a.ContainerID]] = append(stored[names[a.ContainerID]], a.SourceDataIdentifier)
	}
	return stored
}

// exactlyOnce says what is wrong with what a reader saw against what is
// stored: every container must appear, one created without artifacts at
// most once without any (its creation), any other only with artifacts; and
// every artifact exactly once, with its container.
func exactlyOnce(seen []appearance, stored map[string][]string, emptyAtCreation map[string]bool) []string {
	var bad []string
	got := map[string][]string{}
	artifactSeen := map[string]int{}
	empty := map[string]int{}
	for _, ap := range seen {
		got[ap.container] = append(got[ap.container], ap.artifacts...)
		for _, a := range ap.artifacts {
			artifactSeen[a]++
		}
		if len(ap.artifacts) == 0 {
			empty[ap.container]++
		}
	}
	for a, n := range artifactSeen {
		if n != 1 {
			bad = append(bad, fmt.Sprintf("artifact %s seen %d times", a, n))
		}
	}
	for c, n := range empty {
		if n > 1 || !emptyAtCreation[c] {
			bad = append(bad, fmt.Sprintf("container %s appeared %d times without artifacts", c, n))
		}
	}
	for c, arts := range stored {
		g, ok := got[c]
		if !ok {
			bad = append(bad, fmt.Sprintf("container %s never seen", c))
			continue
		}
		a, b := slices.Clone(arts), slices.Clone(g)
		sort.Strings(a)
		sort.Strings(b)
		if !slices.Equal(a, b) {
			bad = append(bad, fmt.Sprintf("container %s stored with %v, seen with %v", c, a, b))
		}
	}
	for c := range got {
		if _, ok := stored[c]; !ok {
			bad = append(bad, fmt.Sprintf("container %s seen but not stored", c))
		}
	}
	sort.Strings(bad)
	return bad
}

// TestPullCursorExactlyOnceWhileWritersCommit: four writers (two assets,
// two replicas: two store handles on one database) commit batches of random
// size in random order, with containers that later batches add artifacts
// to, while a reader per asset pages with the cursor: each sees every
// container and artifact exactly once.
func TestPullCursorExactlyOnceWhileWritersCommit(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		replicas := []*store.DB{openMigrated(t, url), open(t, url, nil)}
		seed := time.Now().UnixNano()
		t.Logf("seed %d", seed)
		ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
		defer cancel()
		const batches = 30
		assets := []string{"a", "b"}

		var emptyMu sync.Mutex
		emptyAtCreation := map[string]map[string]bool{"a": {}, "b": {}}
		var writing atomic.Int32
		writing.Store(4)
		errs := make(chan error, 8)
		var writers sync.WaitGroup
		for _, asset := range assets {
			for w, db := range replicas {
				rng := rand.New(rand.NewPCG(uint64(seed), uint64(w)+uint64(len(asset))*7))
				writers.Go(func() {
					defer writing.Add(-1)
					for i := range batches {
						var cs []ingest.Container
						for j := range 1 + rng.IntN(6) {
							var arts []string
							for k := range rng.IntN(5) {
								arts = append(arts, fmt.Sprintf("w%d.%d.%d.%d", w, i, j, k))
							}
							sdi := fmt.Sprintf("w%d.%d.%d", w, i, j)
							switch rng.IntN(4) {
							case 0: // shared by both writers of the asset, filled by later batches
								sdi = fmt.Sprintf("shared%d", rng.IntN(5))
							case 1: // no identifier
								sdi = ""
							}
							name := sdi
							if sdi == "" {
								name = fmt.Sprintf("w%d.%d.%d.anon", w, i, j)
							}
							if len(arts) == 0 && !strings.HasPrefix(sdi, "shared") {
								emptyMu.Lock()
								emptyAtCreation[asset][name] = true
								emptyMu.Unlock()
							}
							cs = append(cs, container(sdi, name, arts...))
						}
						if _, err := db.SaveBatch(ctx, &ingest.Batch{Asset: asset, Topic: "events", Containers: cs}); err != nil {
							errs <- fmt.Errorf("asset %s writer %d batch %d: %w", asset, w, i, err)
							return
						}
						if rng.IntN(3) == 0 {
							time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
						}
					}
				})
			}
		}
		seen := make([][]appearance, len(assets))
		for k, asset := range assets {
			read := pullPager(replicas[(k+1)%2], asset)
			writers.Go(func() {
				for {
					done := writing.Load() == 0
					got, more, err := read(ctx)
					if err != nil {
						errs <- fmt.Errorf("asset %s: read: %w", asset, err)
						return
					}
					seen[k] = append(seen[k], got...)
					if done && !more {
						return
					}
				}
			})
		}
		writers.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for k, asset := range assets {
			// Shared containers may be created without artifacts too.
			for i := range 5 {
				emptyAtCreation[asset][fmt.Sprintf("shared%d", i)] = true
			}
			if bad := exactlyOnce(seen[k], storedOf(t, replicas[0], asset), emptyAtCreation[asset]); len(bad) > 0 {
				t.Fatalf("asset %s, seed %d: %s", asset, seed, strings.Join(bad, "; "))
			}
		}
	})
}

// TestPullCursorOutOfOrderCommit orchestrates what concurrent batches do on
// PostgreSQL (SQLite's one writer cannot: the second writer waits for the
// first): writer A takes the lower ids and holds its transaction open,
// writer B, on another replica, commits higher ids, the reader reads, A
// commits, the reader reads again. The cursor sees both batches exactly
// once; a plain id > since_id reader misses A's. The list routes, paging by
// id, refuse while A is in flight rather than answer B's ids alone.
func TestPullCursorOutOfOrderCommit(t *testing.T) {
	for _, tc := range []struct {
		name     string
		reader   func(db *store.DB, raw *sql.DB) pager
		wantGood bool
	}{
		{"cursor", func(db *store.DB, _ *sql.DB) pager { return pullPager(db, "a") }, true},
		{"plain id", func(_ *store.DB, raw *sql.DB) pager { return idPager(raw, "a") }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := testenv.PostgresURL(t)
			writerA := openMigrated(t, url)
			writerB, readerDB := open(t, url, nil), open(t, url, nil)
			held, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			writerA.SetFaultHook(func(point string) {
				if point == store.FaultMidTransaction {
					once.Do(func() {
						close(held)
						<-release
					})
				}
			})
			read := tc.reader(readerDB, testenv.RawDB(t, url))
			var seen []appearance
			readAll := func() {
				for {
					got, more, err := read(t.Context())
					if err != nil {
						t.Fatal(err)
					}
					seen = append(seen, got...)
					if !more {
						return
					}
				}
			}

			aDone := make(chan error, 1)
			go func() {
				_, err := writerA.SaveBatch(t.Context(), &ingest.Batch{Asset: "a", Topic: "events",
					Containers: []ingest.Container{container("A", "A", "A.1", "A.2")}})
				aDone <- err
			}()
			select {
			case <-held:
			case err := <-aDone:
				t.Fatalf("writer A ended before its fault point: %v", err)
			}
			outB := saveBatch(t, writerB, &ingest.Batch{Asset: "a", Topic: "events",
				Containers: []ingest.Container{container("B", "B", "B.1")}})
			readAll()
			if tc.wantGood {
				// The list routes page by id: with A in flight below B's
				// ids, they answer nothing rather than B alone.
				_, _, err := readerDB.ListContainers(t.Context(), ingest.ContainerFilter{Asset: "a"})
				wantCode(t, err, soarkafka.EUNAVAILABLE)
			}
			close(release)
			if err := <-aDone; err != nil {
				t.Fatal(err)
			}
			readAll()

			stored := storedOf(t, readerDB, "a")
			if len(stored) != 2 {
				t.Fatalf("stored %v, want containers A and B", stored)
			}
			var aID int64
			cs, _, err := readerDB.ListContainers(t.Context(), ingest.ContainerFilter{Asset: "a"})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cs {
				if c.SourceDataIdentifier == "A" {
					aID = c.ID
				}
			}
			if aID >= outB.Containers[0].ID {
				t.Fatalf("container A has id %d, B %d: the interleaving did not give A the lower id", aID, outB.Containers[0].ID)
			}
			bad := exactlyOnce(seen, stored, nil)
			switch {
			case tc.wantGood && len(bad) > 0:
				t.Fatalf("the cursor reader saw %v: %s", seen, strings.Join(bad, "; "))
			case !tc.wantGood && len(bad) == 0:
				t.Fatalf("the plain id reader saw %v, every item exactly once: the interleaving did not happen", seen)
			}
			t.Logf("%s reader saw %v (%s)", tc.name, seen, strings.Join(bad, "; "))
		})
	}
}

// TestSaveBatchOverlappingIdentifiersConcurrently: two batches of one
// asset, on two replicas, name overlapping containers and artifacts in
// opposite orders, at once, round after round (new identifiers and ones
// stored before): no deadlock, no error, no container or artifact twice.
func TestSaveBatchOverlappingIdentifiersConcurrently(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		replicas := []*store.DB{openMigrated(t, url), open(t, url, nil)}
		// Batches large enough that the two overlap in each statement,
		// whichever starts first.
		const rounds, size = 20, 240
		for r := range rounds {
			var cs []ingest.Container
			for i := range size {
				sdi := fmt.Sprintf("r%d.c%d", r, i)
				if i%3 == 0 && r%2 == 1 {
					// Stored by earlier rounds: the two batches wait on
					// their locks. In even rounds every container is new,
					// and the batches meet in their inserts instead.
					sdi = fmt.Sprintf("old%d", i)
				}
				cs = append(cs, container(sdi, sdi, fmt.Sprintf("r%d.a%d", r, i), fmt.Sprintf("r%d.a%d", r, (i+size/2)%size)))
			}
			reversed := slices.Clone(cs)
			slices.Reverse(reversed)
			for i := range reversed {
				reversed[i].Artifacts = slices.Clone(reversed[i].Artifacts)
				slices.Reverse(reversed[i].Artifacts)
			}
			start := make(chan struct{})
			errs := make(chan error, 2)
			outs := make([]*ingest.Outcome, 2)
			var wg sync.WaitGroup
			for k, batch := range [][]ingest.Container{cs, reversed} {
				wg.Go(func() {
					<-start
					out, err := replicas[k].SaveBatch(t.Context(), &ingest.Batch{Asset: "a", Topic: "events", Containers: batch})
					outs[k] = out
					errs <- err
				})
			}
			close(start)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("round %d: %v", r, err)
				}
			}
			if created := outs[0].ArtifactsCreated + outs[1].ArtifactsCreated; created != size {
				t.Fatalf("round %d: %d + %d artifacts created, want %d in all", r, outs[0].ArtifactsCreated, outs[1].ArtifactsCreated, size)
			}
		}
		raw := testenv.RawDB(t, url)
		for _, q := range []string{
			`SELECT count(*) FROM (SELECT source_data_identifier FROM containers GROUP BY asset, source_data_identifier HAVING count(*) > 1) d`,
			`SELECT count(*) FROM (SELECT source_data_identifier FROM artifacts GROUP BY asset, source_data_identifier HAVING count(*) > 1) d`,
		} {
			var dups int
			if err := raw.QueryRowContext(t.Context(), q).Scan(&dups); err != nil || dups != 0 {
				t.Fatalf("%s: %d, %v; want 0", q, dups, err)
			}
		}
		var containers int
		if err := raw.QueryRowContext(t.Context(), `SELECT count(*) FROM containers`).Scan(&containers); err != nil {
			t.Fatal(err)
		}
		if want := rounds/2*size + rounds/2*size*2/3 + size/3; containers != want {
			t.Fatalf("%d containers stored, want %d", containers, want)
		}
	})
}
