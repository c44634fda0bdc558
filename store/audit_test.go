package store_test

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/audit"
	"github.com/soarkafka/soarkafka/internal/testenv"
)

// Events are kept as recorded, listed newest first, filtered by object and
// time, paged, and pruned past a time.
func TestAuditRecordListPrune(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db := openMigrated(t, url)
		ctx := t.Context()
		base := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
		v := int64(7)
		for i := range 6 {
			e := &audit.Event{Time: base.Add(time.Duration(i) * time.Hour), Client: "10.0.0.1", Actor: audit.ActorAPI,
				Method: "PUT", Route: "PUT /v1/assets/{name}", Kind: audit.KindAsset, Name: fmt.Sprintf("a%d", i%2),
				Action: audit.ActionUpdate, Changes: map[string]any{"config.topic": map[string]any{"old": "x", "new": "y"}}}
			if i == 5 {
				e.Kind, e.Name, e.Version, e.Changes = audit.KindParser, "p", &v, nil
			}
			if err := db.RecordAudit(ctx, e); err != nil {
				t.Fatal(err)
			}
			if e.ID == 0 {
				t.Fatal("no id set")
			}
		}
		list, total, err := db.ListAudit(ctx, audit.Filter{})
		if err != nil || total != 6 || len(list) != 6 {
			t.Fatalf("all: %d %d %v", total, len(list), err)
		}
		first := list[0]
		if first.Name != "p" || first.Version == nil || *first.Version != 7 || len(first.Changes) != 0 ||
			!first.Time.Equal(base.Add(5*time.Hour).Truncate(time.Microsecond)) || first.Client != "10.0.0.1" || first.Route != "PUT /v1/assets/{name}" {
			t.Fatalf("newest event %+v", first)
		}
		if last := list[5]; last.Version != nil || fmt.Sprint(last.Changes) != "map[config.topic:map[new:y old:x]]" {
			t.Fatalf("oldest event %+v", last)
		}
		check := func(f audit.Filter, want int, names ...string) {
			t.Helper()
			list, total, err := db.ListAudit(ctx, f)
			if err != nil || total != want || len(list) != len(names) {
				t.Fatalf("%+v: total %d, %d events, %v; want %d, %v", f, total, len(list), err, want, names)
			}
			for i, n := range names {
				if list[i].Name != n {
					t.Fatalf("%+v: event %d is %s, want %s", f, i, list[i].Name, n)
				}
			}
		}
		check(audit.Filter{Kind: audit.KindAsset, Name: "a0"}, 3, "a0", "a0", "a0")
		check(audit.Filter{Kind: audit.KindParser}, 1, "p")
		check(audit.Filter{Since: base.Add(4 * time.Hour)}, 2, "p", "a0")                              // inclusive
		check(audit.Filter{Until: base.Add(time.Hour)}, 1, "a0")                                       // exclusive
		check(audit.Filter{Since: base.Add(time.Hour), Until: base.Add(3 * time.Hour)}, 2, "a0", "a1") // two hours
		check(audit.Filter{PageSize: 4, Page: 1}, 6, "a1", "a0")
		check(audit.Filter{PageSize: 4, Page: 2}, 6)
		if _, _, err := db.ListAudit(ctx, audit.Filter{Page: -1}); soarkafka.ErrorCode(err) != soarkafka.EINVALID {
			t.Fatalf("page -1: %v", err)
		}

		n, err := db.PruneAudit(ctx, base.Add(2*time.Hour))
		if err != nil || n != 2 {
			t.Fatalf("prune: %d %v, want 2", n, err)
		}
		check(audit.Filter{}, 4, "p", "a0", "a1", "a0")
	})
}

// The recorder prunes events past its retention as it records.
func TestAuditRecorderPrunesPastRetention(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db := openMigrated(t, url)
		ctx := t.Context()
		old := &audit.Event{Time: time.Now().Add(-3 * time.Hour), Actor: audit.ActorAPI, Method: "DELETE",
			Route: "DELETE /v1/parsers/{name}", Kind: audit.KindParser, Name: "old", Action: audit.ActionDelete}
		if err := db.RecordAudit(ctx, old); err != nil {
			t.Fatal(err)
		}
		r := audit.NewRecorder(db, slog.New(slog.NewTextHandler(io.Discard, nil)), 2*time.Hour, nil)
		if err := r.Record(ctx, audit.Event{Actor: audit.ConsoleActor("ab12cd"), Method: "POST", Route: "POST /v1/parsers",
			Kind: audit.KindParser, Name: "new", Action: audit.ActionCreate}); err != nil {
			t.Fatal(err)
		}
		list, total, err := db.ListAudit(ctx, audit.Filter{})
		if err != nil || total != 1 || list[0].Name != "new" || list[0].Actor != "console session ab12cd" {
			t.Fatalf("after a record with 2h retention: %d %+v %v", total, list, err)
		}
	})
}
