package store_test

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/store"
)

// queryT0 has nanoseconds, which the store drops: stored times are whole
// microseconds.
var queryT0 = time.Date(2026, 11, 23, 12, 0, 0, 123456789, time.UTC)

func labelled(sdi, name, label, severity string, artifacts ...string) ingest.Container {
	c := ingest.Container{SourceDataIdentifier: sdi, Body: json.RawMessage(fmt.Sprintf(
		`{"name":%q,"label":%q,"severity":%q,"description":"about %s","data":{"n":1}}`, name, label, severity, name))}
	for _, a := range artifacts {
		c.Artifacts = append(c.Artifacts, ingest.Artifact{SourceDataIdentifier: a,
			Body: json.RawMessage(`{"name":"artifact ` + a + `","cef":{"sdi":"` + a + `"}}`)})
	}
	return c
}

// queryFixture stores five containers over three batches an hour apart:
//
//	one   asset a  events/high    at T0, a 3rd artifact at T0+2h
//	two   asset a  alerts/low     at T0, without identifier
//	three asset a  events/medium  at T0, no artifact
//	four  asset b  events/high    at T0+1h
//	five  asset a  alerts/high    at T0+2h
//
// and returns their ids by name.
func queryFixture(t *testing.T, db *store.DB) map[string]int64 {
	t.Helper()
	clock := queryT0
	db.Now = func() time.Time { return clock }
	ids := map[string]int64{}
	save := func(asset string, cs ...ingest.Container) {
		t.Helper()
		out, err := db.SaveBatch(t.Context(), &ingest.Batch{Asset: asset, Topic: "events", Containers: cs})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range out.Containers {
			ids[c.Name] = c.ID
		}
	}
	save("a",
		labelled("c1", "one", "events", "high", "a:1", "a:2"),
		labelled("", "two", "alerts", "low", "a:3"),
		labelled("c3", "three", "events", "medium"))
	clock = queryT0.Add(time.Hour)
	save("b", labelled("c4", "four", "events", "high", "b:1", "b:2", "b:3"))
	clock = queryT0.Add(2 * time.Hour)
	save("a",
		labelled("c1", "one", "events", "high", "a:4"),
		labelled("c5", "five", "alerts", "high", "a:5"))
	if len(ids) != 5 {
		t.Fatalf("fixture stored %v, want five containers", ids)
	}
	return ids
}

func containerNames(cs []ingest.StoredContainer) []string {
	names := []string{}
	for _, c := range cs {
		names = append(names, c.Name)
	}
	return names
}

func TestListContainers(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db := openMigrated(t, url)
		ids := queryFixture(t, db)
		t0 := queryT0.Truncate(time.Microsecond)

		all, total, err := db.ListContainers(t.Context(), ingest.ContainerFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if got := containerNames(all); total != 5 || !reflect.DeepEqual(got, []string{"one", "two", "three", "four", "five"}) {
			t.Fatalf("all containers: %v of %d, want the five in id order", got, total)
		}
		one := all[0]
		if one.ID != ids["one"] || one.Asset != "a" || one.SourceDataIdentifier != "c1" || one.Label != "events" || one.Severity != "high" ||
			one.ArtifactCount != 3 || !one.CreatedAt.Equal(t0) || !one.UpdatedAt.Equal(t0.Add(2*time.Hour)) ||
			one.CreatedAt.Location() != time.UTC || !sameJSON(string(one.Body), string(labelled("c1", "one", "events", "high").Body)) {
			t.Fatalf("container one: %+v (body %s)", one, one.Body)
		}
		if two := all[1]; two.SourceDataIdentifier != "" || two.ArtifactCount != 1 || !two.UpdatedAt.Equal(t0) {
			t.Fatalf("container two: %+v", two)
		}
		for i, want := range []int{3, 1, 0, 3, 1} {
			if all[i].ArtifactCount != want {
				t.Errorf("%s: artifact_count %d, want %d", all[i].Name, all[i].ArtifactCount, want)
			}
		}

		for _, tt := range []struct {
			name string
			f    ingest.ContainerFilter
			want []string
		}{
			{"asset", ingest.ContainerFilter{Asset: "a"}, []string{"one", "two", "three", "five"}},
			{"label", ingest.ContainerFilter{Label: "events"}, []string{"one", "three", "four"}},
			{"severity", ingest.ContainerFilter{Severity: "high"}, []string{"one", "four", "five"}},
			{"severity is exact", ingest.ContainerFilter{Severity: "High"}, []string{}},
			{"asset and label", ingest.ContainerFilter{Asset: "a", Label: "alerts"}, []string{"two", "five"}},
			{"since_id", ingest.ContainerFilter{SinceID: ids["three"]}, []string{"four", "five"}},
			{"since_id past the last", ingest.ContainerFilter{SinceID: ids["five"]}, []string{}},
			{"created from, inclusive", ingest.ContainerFilter{CreatedFrom: t0.Add(time.Hour)}, []string{"four", "five"}},
			{"created to, exclusive", ingest.ContainerFilter{CreatedTo: t0.Add(time.Hour)}, []string{"one", "two", "three"}},
			{"created window", ingest.ContainerFilter{CreatedFrom: t0.Add(time.Hour), CreatedTo: t0.Add(2 * time.Hour)}, []string{"four"}},
			// Bounds between two microseconds: both dialects compare with the
			// next whole microsecond.
			{"from a nanosecond after", ingest.ContainerFilter{CreatedFrom: t0.Add(time.Hour + time.Nanosecond)}, []string{"five"}},
			{"to a nanosecond after", ingest.ContainerFilter{CreatedTo: t0.Add(time.Hour + time.Nanosecond)}, []string{"one", "two", "three", "four"}},
			{"from in another zone", ingest.ContainerFilter{CreatedFrom: t0.Add(2 * time.Hour).In(time.FixedZone("CET", 3600))}, []string{"five"}},
			{"everything", ingest.ContainerFilter{Asset: "a", Label: "alerts", Severity: "high", SinceID: ids["one"],
				CreatedFrom: t0, CreatedTo: t0.Add(3 * time.Hour)}, []string{"five"}},
			{"nothing matches", ingest.ContainerFilter{Label: "nope"}, []string{}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				got, total, err := db.ListContainers(t.Context(), tt.f)
				if err != nil {
					t.Fatal(err)
				}
				if names := containerNames(got); !reflect.DeepEqual(names, tt.want) || total != len(tt.want) {
					t.Fatalf("%+v: %v of %d, want %v", tt.f, names, total, tt.want)
				}
			})
		}

		// The count is of every page; the items are the page's.
		for _, tt := range []struct {
			name      string
			f         ingest.ContainerFilter
			want      []string
			wantTotal int
		}{
			{"first page", ingest.ContainerFilter{PageSize: 2}, []string{"one", "two"}, 5},
			{"middle page", ingest.ContainerFilter{Page: 1, PageSize: 2}, []string{"three", "four"}, 5},
			{"last page, short", ingest.ContainerFilter{Page: 2, PageSize: 2}, []string{"five"}, 5},
			{"page past the end", ingest.ContainerFilter{Page: 3, PageSize: 2}, []string{}, 5},
			{"page far past the end", ingest.ContainerFilter{Page: math.MaxInt / 2, PageSize: 1000}, []string{}, 5},
			{"page size 0 is all", ingest.ContainerFilter{PageSize: 0}, []string{"one", "two", "three", "four", "five"}, 5},
			{"page size 0, a later page", ingest.ContainerFilter{Page: 1}, []string{}, 5},
			{"page size over the count", ingest.ContainerFilter{PageSize: 10}, []string{"one", "two", "three", "four", "five"}, 5},
			{"filtered page", ingest.ContainerFilter{Asset: "a", Page: 1, PageSize: 2}, []string{"three", "five"}, 4},
			{"since_id page", ingest.ContainerFilter{SinceID: ids["one"], PageSize: 3}, []string{"two", "three", "four"}, 4},
			{"no match, page 0", ingest.ContainerFilter{Asset: "nope", PageSize: 10}, []string{}, 0},
			// Newest first, as the console lists them: the same pages,
			// the highest ID first.
			{"newest first", ingest.ContainerFilter{NewestFirst: true}, []string{"five", "four", "three", "two", "one"}, 5},
			{"newest first, second page", ingest.ContainerFilter{NewestFirst: true, Page: 1, PageSize: 2}, []string{"three", "two"}, 5},
			{"newest first, filtered", ingest.ContainerFilter{NewestFirst: true, Asset: "a", Severity: "high", PageSize: 10}, []string{"five", "one"}, 2},
			{"newest first, time window", ingest.ContainerFilter{NewestFirst: true, CreatedFrom: t0, CreatedTo: t0.Add(2 * time.Hour)}, []string{"four", "three", "two", "one"}, 4},
		} {
			t.Run(tt.name, func(t *testing.T) {
				got, total, err := db.ListContainers(t.Context(), tt.f)
				if err != nil {
					t.Fatal(err)
				}
				if names := containerNames(got); !reflect.DeepEqual(names, tt.want) || total != tt.wantTotal {
					t.Fatalf("%+v: %v of %d, want %v of %d", tt.f, names, total, tt.want, tt.wantTotal)
				}
			})
		}

		for _, f := range []ingest.ContainerFilter{{Page: -1}, {PageSize: -1}, {SinceID: -1}} {
			_, _, err := db.ListContainers(t.Context(), f)
			wantCode(t, err, soarkafka.EINVALID)
		}
	})
}

func TestContainerByID(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db := openMigrated(t, url)
		ids := queryFixture(t, db)
		list, _, err := db.ListContainers(t.Context(), ingest.ContainerFilter{Asset: "b"})
		if err != nil {
			t.Fatal(err)
		}
		got, err := db.Container(t.Context(), ids["four"])
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(*got, list[0]) || got.ArtifactCount != 3 {
			t.Fatalf("Container(%d) = %+v, want what the list holds, %+v", ids["four"], got, list[0])
		}
		_, err = db.Container(t.Context(), ids["five"]+1)
		wantCode(t, err, soarkafka.ENOTFOUND)
	})
}

func TestListArtifacts(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db := openMigrated(t, url)
		ids := queryFixture(t, db)
		t0 := queryT0.Truncate(time.Microsecond)

		sdis := func(as []ingest.StoredArtifact) []string {
			out := []string{}
			for _, a := range as {
				out = append(out, a.SourceDataIdentifier)
			}
			return out
		}
		all, total, err := db.ListArtifacts(t.Context(), ingest.ArtifactFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if got := sdis(all); total != 8 || !reflect.DeepEqual(got, []string{"a:1", "a:2", "a:3", "b:1", "b:2", "b:3", "a:4", "a:5"}) {
			t.Fatalf("all artifacts: %v of %d", got, total)
		}
		for i := 1; i < len(all); i++ {
			if all[i].ID <= all[i-1].ID {
				t.Fatalf("artifacts not in id order: %d after %d", all[i].ID, all[i-1].ID)
			}
		}
		a4 := all[6]
		if a4.ContainerID != ids["one"] || a4.Asset != "a" || !a4.CreatedAt.Equal(t0.Add(2*time.Hour)) ||
			!sameJSON(string(a4.Body), `{"name":"artifact a:4","cef":{"sdi":"a:4"}}`) {
			t.Fatalf("artifact a:4: %+v (body %s)", a4, a4.Body)
		}

		for _, tt := range []struct {
			name      string
			f         ingest.ArtifactFilter
			want      []string
			wantTotal int
		}{
			{"container", ingest.ArtifactFilter{ContainerID: ids["one"]}, []string{"a:1", "a:2", "a:4"}, 3},
			{"container without artifacts", ingest.ArtifactFilter{ContainerID: ids["three"]}, []string{}, 0},
			{"unknown container", ingest.ArtifactFilter{ContainerID: ids["five"] + 100}, []string{}, 0},
			{"asset", ingest.ArtifactFilter{Asset: "b"}, []string{"b:1", "b:2", "b:3"}, 3},
			{"since_id", ingest.ArtifactFilter{SinceID: all[5].ID}, []string{"a:4", "a:5"}, 2},
			{"container and since_id", ingest.ArtifactFilter{ContainerID: ids["one"], SinceID: all[0].ID}, []string{"a:2", "a:4"}, 2},
			{"page", ingest.ArtifactFilter{Asset: "a", Page: 1, PageSize: 3}, []string{"a:4", "a:5"}, 5},
			{"page past the end", ingest.ArtifactFilter{Page: 8, PageSize: 1}, []string{}, 8},
			{"page size 0 is all", ingest.ArtifactFilter{ContainerID: ids["four"]}, []string{"b:1", "b:2", "b:3"}, 3},
		} {
			t.Run(tt.name, func(t *testing.T) {
				got, total, err := db.ListArtifacts(t.Context(), tt.f)
				if err != nil {
					t.Fatal(err)
				}
				if s := sdis(got); !reflect.DeepEqual(s, tt.want) || total != tt.wantTotal {
					t.Fatalf("%+v: %v of %d, want %v of %d", tt.f, s, total, tt.want, tt.wantTotal)
				}
			})
		}

		for _, f := range []ingest.ArtifactFilter{{Page: -1}, {PageSize: -1}, {SinceID: -1}, {ContainerID: -1}} {
			_, _, err := db.ListArtifacts(t.Context(), f)
			wantCode(t, err, soarkafka.EINVALID)
		}
	})
}
