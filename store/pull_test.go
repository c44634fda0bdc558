package store_test

import (
	"context"
	"fmt"
	"reflect"
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

// appearance is one container of one answer, by its source_data_identifier
// (its name for one without), with its artifacts'.
type appearance struct {
	container string
	artifacts []string
}

func (a appearance) String() string {
	return a.container + "{" + strings.Join(a.artifacts, ",") + "}"
}

// pullPage asks for one answer and checks what every answer must be: within
// its bounds, containers in id order, each once, artifacts in id order and
// of their container.
func pullPage(t *testing.T, db *store.DB, req ingest.PullRequest) ([]appearance, *ingest.PullPage) {
	t.Helper()
	page, err := db.Pull(t.Context(), req)
	if err != nil {
		t.Fatalf("pull %+v: %v", req, err)
	}
	if len(page.Items) > req.MaxContainers {
		t.Fatalf("pull %+v: %d containers, above the bound", req, len(page.Items))
	}
	var out []appearance
	arts := 0
	for i, it := range page.Items {
		if i > 0 && it.Container.ID <= page.Items[i-1].Container.ID {
			t.Fatalf("pull %+v: containers not in id order: %d after %d", req, it.Container.ID, page.Items[i-1].Container.ID)
		}
		if it.Container.Asset != req.Asset {
			t.Fatalf("pull of asset %s answered a container of asset %s", req.Asset, it.Container.Asset)
		}
		name := it.Container.SourceDataIdentifier
		if name == "" {
			name = it.Container.Name
		}
		ap := appearance{container: name}
		for j, a := range it.Artifacts {
			if a.ContainerID != it.Container.ID || (j > 0 && a.ID <= it.Artifacts[j-1].ID) {
				t.Fatalf("pull %+v: artifact %d in container %d, or out of order", req, a.ID, it.Container.ID)
			}
			ap.artifacts = append(ap.artifacts, a.SourceDataIdentifier)
		}
		arts += len(it.Artifacts)
		out = append(out, ap)
	}
	if arts > req.MaxArtifacts {
		t.Fatalf("pull %+v: %d artifacts, above the bound", req, arts)
	}
	if before(page.Cursor.ContainerTx, page.Cursor.Container, req.Cursor.ContainerTx, req.Cursor.Container) ||
		before(page.Cursor.ArtifactTx, page.Cursor.Artifact, req.Cursor.ArtifactTx, req.Cursor.Artifact) {
		t.Fatalf("pull %+v: cursor went back to %v", req, page.Cursor)
	}
	return out, page
}

// before reports whether position (tx, id) comes before (tx0, id0): a
// cursor's position is (transaction, id) on PostgreSQL, (0, id) on SQLite.
func before(tx, id, tx0, id0 int64) bool {
	return tx < tx0 || (tx == tx0 && id < id0)
}

// drain pages from cursor until more is false, and returns every
// appearance and the last cursor. An answer with more set must move.
func drain(t *testing.T, db *store.DB, asset string, cursor ingest.PullCursor, maxArtifacts, maxContainers int) ([]appearance, ingest.PullCursor) {
	t.Helper()
	var all []appearance
	for range 100000 {
		got, page := pullPage(t, db, ingest.PullRequest{Asset: asset, Cursor: cursor, MaxArtifacts: maxArtifacts, MaxContainers: maxContainers})
		all = append(all, got...)
		if page.More && page.Cursor == cursor {
			t.Fatalf("pull from %v: more, but the cursor did not move", cursor)
		}
		cursor = page.Cursor
		if !page.More {
			return all, cursor
		}
	}
	t.Fatal("pull never ended")
	return nil, cursor
}

func TestPullPaging(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db := openMigrated(t, url)
		saveBatch(t, db, &ingest.Batch{Asset: "a", Topic: "events", Containers: []ingest.Container{
			container("c1", "one", "a1", "a2"), container("", "two", "a3"), container("c3", "three")}})
		saveBatch(t, db, &ingest.Batch{Asset: "b", Topic: "events", Containers: []ingest.Container{container("c1", "b-one", "a1")}})
		saveBatch(t, db, &ingest.Batch{Asset: "a", Topic: "events", Containers: []ingest.Container{
			container("c1", "one", "a4"), container("c5", "five", "a5")}})

		// Everything at once: each container once, with all its artifacts.
		all, end := drain(t, db, "a", ingest.PullCursor{}, 500, 100)
		if want := "[c1{a1,a2,a4} two{a3} c3{} c5{a5}]"; fmt.Sprint(all) != want {
			t.Fatalf("first pull %v, want %s", all, want)
		}
		// Nothing new: nothing, the same cursor.
		if got, page := pullPage(t, db, ingest.PullRequest{Asset: "a", Cursor: end, MaxArtifacts: 500, MaxContainers: 100}); len(got) != 0 || page.More || page.Cursor != end {
			t.Fatalf("pull at the end: %v %+v", got, page)
		}
		// end: the cursor where paging stopped, no items.
		if got, page := pullPage(t, db, ingest.PullRequest{Asset: "a", End: true, MaxArtifacts: 1, MaxContainers: 1}); len(got) != 0 || page.More || page.Cursor != end {
			t.Fatalf("end: %v %+v, want cursor %v", got, page, end)
		}

		// An artifact added to an old container: it appears again with
		// that one only, with its count as it is now.
		saveBatch(t, db, &ingest.Batch{Asset: "a", Topic: "events", Containers: []ingest.Container{container("c3", "three", "a6")}})
		page, err := db.Pull(t.Context(), ingest.PullRequest{Asset: "a", Cursor: end, MaxArtifacts: 500, MaxContainers: 100})
		if err != nil || len(page.Items) != 1 || page.Items[0].Container.SourceDataIdentifier != "c3" ||
			len(page.Items[0].Artifacts) != 1 || page.Items[0].Container.ArtifactCount != 1 || page.Items[0].Container.Label != "events" {
			t.Fatalf("pull after a6: %+v, %v", page, err)
		}

		// The bounds: one artifact, or one container, an answer; paging
		// gives the same items, in the same order.
		oneArt, _ := drain(t, db, "a", ingest.PullCursor{}, 1, 100)
		if want := "[c1{a1} c1{a2} two{a3} c1{a4} c3{} c5{a5} c3{a6}]"; fmt.Sprint(oneArt) != want {
			t.Fatalf("one artifact an answer: %v, want %s", oneArt, want)
		}
		oneCont, _ := drain(t, db, "a", ingest.PullCursor{}, 500, 1)
		if want := "[c1{a1,a2} two{a3} c1{a4} c3{} c5{a5} c3{a6}]"; fmt.Sprint(oneCont) != want {
			t.Fatalf("one container an answer: %v, want %s", oneCont, want)
		}

		_, err = db.Pull(t.Context(), ingest.PullRequest{Asset: "", Cursor: ingest.PullCursor{Container: -1}, MaxArtifacts: 0, MaxContainers: -3})
		wantCode(t, err, soarkafka.EINVALID)
		var fields []string
		for _, f := range err.(*soarkafka.Error).Fields {
			fields = append(fields, f.Field)
		}
		if want := []string{"asset", "cursor", "max_artifacts", "max_containers"}; !reflect.DeepEqual(fields, want) {
			t.Fatalf("fields %v, want %v", fields, want)
		}
	})
}

// A container created without artifacts that receives some after other
// containers were created comes alone, then again with its artifacts, even
// when one container an answer lets nothing else through.
func TestPullContainerFilledLater(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db := openMigrated(t, url)
		saveBatch(t, db, &ingest.Batch{Asset: "a", Topic: "events", Containers: []ingest.Container{container("e", "empty")}})
		saveBatch(t, db, &ingest.Batch{Asset: "a", Topic: "events", Containers: []ingest.Container{container("n", "next", "n1")}})
		saveBatch(t, db, &ingest.Batch{Asset: "a", Topic: "events", Containers: []ingest.Container{container("e", "empty", "e1")}})
		for _, bound := range [][2]int{{1, 1}, {1, 100}, {500, 1}, {500, 100}} {
			got, _ := drain(t, db, "a", ingest.PullCursor{}, bound[0], bound[1])
			want := "[e{} n{n1} e{e1}]"
			if bound == [2]int{500, 100} {
				want = "[e{e1} n{n1}]"
			}
			if fmt.Sprint(got) != want {
				t.Fatalf("bounds %v: %v, want %s", bound, got, want)
			}
		}
	})
}

// TestPullWhileBatchesCommit pages through two assets' containers while
// their polls commit batches, each batch through one of two store handles
// (on PostgreSQL, two replicas), and checks that every container and every
// artifact is seen, each artifact once.
func TestPullWhileBatchesCommit(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		replicas := []*store.DB{openMigrated(t, url), open(t, url, nil)}
		const batches = 40
		assetNames := []string{"a", "b"}
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()

		// emptyAtCreation[asset][sdi]: created in a batch without artifacts.
		emptyAtCreation := map[string]map[string]bool{}
		// Two writers per asset, one per replica, so that batches of one
		// asset commit concurrently too (the store's order must hold
		// without the poll's lease).
		for _, asset := range assetNames {
			emptyAtCreation[asset] = map[string]bool{}
			for w := range 2 {
				for i := range batches {
					emptyAtCreation[asset][fmt.Sprintf("w%d.empty%d", w, i)] = true
				}
			}
		}
		var writers sync.WaitGroup
		var writing atomic.Int32
		writing.Store(int32(2 * len(assetNames)))
		errs := make(chan error, 4*len(assetNames))
		for _, asset := range assetNames {
			for w, db := range replicas {
				writers.Go(func() {
					defer writing.Add(-1)
					for i := range batches {
						// A container per batch, one reused across batches
						// and writers, one filled a batch after it was
						// created empty, one without identifier, and an
						// artifact stored before.
						p := fmt.Sprintf("w%d.", w)
						cs := []ingest.Container{
							container(fmt.Sprintf("%snew%d", p, i), "n", fmt.Sprintf("%snew%d.1", p, i), fmt.Sprintf("%snew%d.2", p, i), fmt.Sprintf("%snew%d.3", p, i)),
							container(fmt.Sprintf("keep%d", i%4), "k", fmt.Sprintf("%skeep%d.1", p, i), fmt.Sprintf("%skeep%d.2", p, i)),
							container(fmt.Sprintf("%sempty%d", p, i), "e"),
							container("", fmt.Sprintf("%sanon%d", p, i), fmt.Sprintf("%sanon%d.1", p, i)),
						}
						if i > 0 {
							cs = append(cs, container(fmt.Sprintf("%sempty%d", p, i-1), "e", fmt.Sprintf("%sempty%d.1", p, i-1), fmt.Sprintf("%snew%d.1", p, i-1)))
						}
						if _, err := db.SaveBatch(ctx, &ingest.Batch{Asset: asset, Topic: "events", Containers: cs}); err != nil {
							errs <- fmt.Errorf("asset %s writer %d batch %d: %w", asset, w, i, err)
							return
						}
					}
				})
			}
		}

		// A reader per asset, on its own handle, pages with small bounds
		// while the writers run, then drains what is left.
		seen := make([][]appearance, len(assetNames))
		readsWhileWriting := make([]int, len(assetNames))
		var readers sync.WaitGroup
		for k, asset := range assetNames {
			reader := replicas[(k+1)%2]
			readers.Go(func() {
				var cursor ingest.PullCursor
				for {
					done := writing.Load() == 0
					page, err := reader.Pull(ctx, ingest.PullRequest{Asset: asset, Cursor: cursor, MaxArtifacts: 7, MaxContainers: 3})
					if err != nil {
						errs <- fmt.Errorf("pull of %s from %v: %w", asset, cursor, err)
						return
					}
					for _, it := range page.Items {
						name := it.Container.SourceDataIdentifier
						if name == "" {
							name = it.Container.Name
						}
						ap := appearance{container: name}
						for _, a := range it.Artifacts {
							ap.artifacts = append(ap.artifacts, a.SourceDataIdentifier)
						}
						seen[k] = append(seen[k], ap)
					}
					cursor = page.Cursor
					if !done {
						readsWhileWriting[k]++
					}
					if done && !page.More {
						return
					}
				}
			})
		}
		writers.Wait()
		readers.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}

		for k, asset := range assetNames {
			if readsWhileWriting[k] < 10 {
				t.Errorf("asset %s: only %d answers while the batches were written; the test did not read concurrently", asset, readsWhileWriting[k])
			}
			// What the store holds, by container.
			stored := map[string][]string{}
			cs, _, err := replicas[0].ListContainers(t.Context(), ingest.ContainerFilter{Asset: asset})
			if err != nil {
				t.Fatal(err)
			}
			names := map[int64]string{}
			for _, c := range cs {
				name := c.SourceDataIdentifier
				if name == "" {
					name = c.Name
				}
				names[c.ID] = name
				stored[name] = []string{}
			}
			arts, _, err := replicas[0].ListArtifacts(t.Context(), ingest.ArtifactFilter{Asset: asset})
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range arts {
				stored[names[a.ContainerID]] = append(stored[names[a.ContainerID]], a.SourceDataIdentifier)
			}

			got := map[string][]string{}
			artifactSeen := map[string]int{}
			emptyAppearances := map[string]int{}
			for _, ap := range seen[k] {
				if _, ok := got[ap.container]; !ok {
					got[ap.container] = []string{}
				}
				got[ap.container] = append(got[ap.container], ap.artifacts...)
				for _, a := range ap.artifacts {
					artifactSeen[a]++
				}
				if len(ap.artifacts) == 0 {
					emptyAppearances[ap.container]++
				}
			}
			for a, n := range artifactSeen {
				if n != 1 {
					t.Errorf("asset %s: artifact %s seen %d times", asset, a, n)
				}
			}
			for c, n := range emptyAppearances {
				if n > 1 || !emptyAtCreation[asset][c] {
					t.Errorf("asset %s: container %s appeared %d times without artifacts; only one created without any may, once", asset, c, n)
				}
			}
			for _, m := range []map[string][]string{stored, got} {
				for _, list := range m {
					sort.Strings(list)
				}
			}
			if !reflect.DeepEqual(got, stored) {
				for c, list := range stored {
					if !reflect.DeepEqual(got[c], list) {
						t.Errorf("asset %s: container %s stored with %v, pulled with %v", asset, c, list, got[c])
					}
				}
				t.Fatalf("asset %s: %d containers stored, %d pulled", asset, len(stored), len(got))
			}
			// new, empty and anon per batch and writer, and keep0..3.
			if want := 2*3*batches + 4; len(stored) != want {
				t.Fatalf("asset %s: %d containers stored, want %d", asset, len(stored), want)
			}
		}
	})
}
