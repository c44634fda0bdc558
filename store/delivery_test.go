package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/store"
)

// outboxRow is what a test compares of a stored outbox row.
type outboxRow struct {
	Container   int64
	First, Last sql.NullInt64
	State       string
}

func outboxRows(t *testing.T, raw *sql.DB, asset string) []outboxRow {
	t.Helper()
	rows, err := raw.QueryContext(t.Context(), "SELECT container_id, first_artifact_id, last_artifact_id, state FROM delivery_outbox WHERE asset = '"+asset+"' ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []outboxRow
	for rows.Next() {
		var r outboxRow
		if err := rows.Scan(&r.Container, &r.First, &r.Last, &r.State); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func artifactIDs(t *testing.T, raw *sql.DB, container int64) (first, last int64) {
	t.Helper()
	if err := raw.QueryRowContext(t.Context(), fmt.Sprintf("SELECT MIN(id), MAX(id) FROM artifacts WHERE container_id = %d", container)).Scan(&first, &last); err != nil {
		t.Fatal(err)
	}
	return first, last
}

func some(n int64) sql.NullInt64 { return sql.NullInt64{Int64: n, Valid: true} }

// A push batch writes one outbox row per container it created or added
// artifacts to, in the order it names them, with the id range of the
// artifacts it added; a pull batch and a replayed batch write none.
func TestOutboxWrittenWithTheBatch(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db, raw := openMigrated(t, url), rawDB(t, url)

		// Pull mode: no outbox.
		pull := firstBatch("pull")
		saveBatch(t, db, pull)
		if n := count(t, raw, "SELECT count(*) FROM delivery_outbox"); n != 0 {
			t.Fatalf("a pull batch wrote %d outbox rows", n)
		}

		b := firstBatch("a")
		b.Outbox = true
		b.MessageTime = time.Date(2026, 3, 1, 11, 59, 0, 123456789, time.UTC)
		out := saveBatch(t, db, b)
		one, two, three := out.Containers[0].ID, out.Containers[1].ID, out.Containers[2].ID
		f1, l1 := artifactIDs(t, raw, one)
		f2, l2 := artifactIDs(t, raw, two)
		want := []outboxRow{
			{one, some(f1), some(l1), "pending"},
			{two, some(f2), some(l2), "pending"},
			{three, sql.NullInt64{}, sql.NullInt64{}, "pending"}, // created without artifacts
		}
		if got := outboxRows(t, raw, "a"); !reflect.DeepEqual(got, want) {
			t.Fatalf("outbox %+v, want %+v", got, want)
		}
		rows, err := db.NextDeliveries(t.Context(), "a", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 3 || !rows[0].MessageTime.Equal(b.MessageTime.Truncate(time.Microsecond)) || rows[0].State != ingest.OutboxPending {
			t.Fatalf("next deliveries %+v, want 3 with the message time", rows)
		}

		// Replayed: nothing new, no row.
		replay := firstBatch("a")
		replay.Outbox = true
		saveBatch(t, db, replay)
		if got := outboxRows(t, raw, "a"); len(got) != 3 {
			t.Fatalf("a replayed batch wrote outbox rows: %+v", got)
		}

		// New artifacts into an existing container, one duplicate among
		// them: the row covers only what this batch added.
		later := &ingest.Batch{Asset: "a", Topic: "events", Outbox: true, Containers: []ingest.Container{
			container("c3", "three", "3:1", "3:2"),
			container("c1", "one", "0:1", "0:9"),
		}}
		saveBatch(t, db, later)
		got := outboxRows(t, raw, "a")
		f3, l3 := artifactIDs(t, raw, three)
		var new1 int64
		if err := raw.QueryRowContext(t.Context(), "SELECT id FROM artifacts WHERE source_data_identifier = '0:9'").Scan(&new1); err != nil {
			t.Fatal(err)
		}
		want = append(want, outboxRow{three, some(f3), some(l3), "pending"}, outboxRow{one, some(new1), some(new1), "pending"})
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("outbox %+v, want %+v", got, want)
		}
		arts, err := db.DeliveryArtifacts(t.Context(), ingest.OutboxRow{ID: 4, ContainerID: three, FirstArtifactID: f3, LastArtifactID: l3})
		if err != nil || len(arts) != 2 || arts[0].SourceDataIdentifier != "3:1" || arts[1].SourceDataIdentifier != "3:2" {
			t.Fatalf("artifacts of the row: %+v, %v", arts, err)
		}
	})
}

// A batch cut off in the middle of its transaction (the fault point
// between its containers and its offsets) leaves neither its containers
// nor its outbox rows.
func TestOutboxFaultMidTransaction(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db, raw := openMigrated(t, url), rawDB(t, url)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		reached := false
		// Cancelling the batch's context there stands for a kill: the
		// transaction cannot commit.
		db.SetFaultHook(func(point string) {
			if point == store.FaultMidTransaction {
				reached = true
				cancel()
			}
		})
		b := firstBatch("a")
		b.Outbox = true
		if _, err := db.SaveBatch(ctx, b); err == nil {
			t.Fatal("SaveBatch succeeded past a cancelled transaction")
		}
		if !reached {
			t.Fatal("the fault point was not reached")
		}
		wantRows(t, raw, "a", 0, 0)
		if n := count(t, raw, "SELECT count(*) FROM delivery_outbox"); n != 0 {
			t.Fatalf("%d outbox rows outlived their batch", n)
		}
		db.SetFaultHook(nil)
		saveBatch(t, db, firstBatch("a"))
	})
}

// The delivery worker's view of the outbox: one row per container at a
// time and in order, sending rows first, retries at their time, dead
// letters holding their container's later rows until retried, stats.
func TestOutboxDeliveryStates(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db := openMigrated(t, url)
		clk := newClock(db)
		ctx := t.Context()
		b := firstBatch("a")
		b.Outbox = true
		out := saveBatch(t, db, b)
		one, two, three := out.Containers[0].ID, out.Containers[1].ID, out.Containers[2].ID
		clk.Add(time.Second)
		saveBatch(t, db, &ingest.Batch{Asset: "a", Topic: "events", Outbox: true, Containers: []ingest.Container{
			container("c1", "one", "0:3"), container("c4", "four", "4:1")}})
		next := func(limit int) []int64 {
			t.Helper()
			rows, err := db.NextDeliveries(ctx, "a", limit)
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for _, r := range rows {
				ids = append(ids, r.ContainerID)
			}
			return ids
		}
		rowOf := func(container int64) int64 {
			t.Helper()
			rows, err := db.NextDeliveries(ctx, "a", 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				if r.ContainerID == container {
					return r.ID
				}
			}
			t.Fatalf("container %d has no row due", container)
			return 0
		}
		var four int64
		{
			rows, _ := db.NextDeliveries(ctx, "a", 100)
			four = rows[len(rows)-1].ContainerID
		}
		// Container one's second row waits for its first.
		if got := next(10); !reflect.DeepEqual(got, []int64{one, two, three, four}) {
			t.Fatalf("due %v, want one row per container in order", got)
		}
		if got := next(2); !reflect.DeepEqual(got, []int64{one, two}) {
			t.Fatalf("limit 2: %v", got)
		}

		// A row found sending comes first.
		r3 := rowOf(three)
		if err := db.MarkSending(ctx, r3); err != nil {
			t.Fatal(err)
		}
		if got := next(10); !reflect.DeepEqual(got, []int64{three, one, two, four}) {
			t.Fatalf("with three sending: %v", got)
		}
		if err := db.MarkDelivered(ctx, r3, 77); err != nil {
			t.Fatal(err)
		}
		if id, ok, err := db.SOARContainerID(ctx, three); err != nil || !ok || id != 77 {
			t.Fatalf("SOAR container id of three: %d, %v, %v", id, ok, err)
		}
		if _, ok, err := db.SOARContainerID(ctx, one); err != nil || ok {
			t.Fatalf("SOAR container id of one before delivery: %v, %v", ok, err)
		}
		if err := db.MarkDelivered(ctx, r3, 77); soarkafka.ErrorCode(err) != soarkafka.ECONFLICT {
			t.Fatalf("delivering a delivered row again: %v, want ECONFLICT", err)
		}

		// Container one delivered: its second row is due.
		r1 := rowOf(one)
		if err := db.MarkSending(ctx, r1); err != nil {
			t.Fatal(err)
		}
		if err := db.MarkDelivered(ctx, r1, 5); err != nil {
			t.Fatal(err)
		}
		if got := next(10); !reflect.DeepEqual(got, []int64{two, one, four}) {
			t.Fatalf("after one's first row: %v", got)
		}

		// A retry waits for its time.
		r2 := rowOf(two)
		if err := db.MarkSending(ctx, r2); err != nil {
			t.Fatal(err)
		}
		if err := db.MarkRetry(ctx, r2, "SOAR answered HTTP 503", clk.Now().Add(10*time.Second)); err != nil {
			t.Fatal(err)
		}
		if got := next(10); !reflect.DeepEqual(got, []int64{one, four}) {
			t.Fatalf("with two backing off: %v", got)
		}
		clk.Add(10 * time.Second)
		if got := next(10); !reflect.DeepEqual(got, []int64{two, one, four}) {
			t.Fatalf("with two due again: %v", got)
		}

		// A dead letter leaves the others going.
		r4 := rowOf(four)
		if err := db.MarkDead(ctx, r4, "SOAR refused the container (HTTP 400)", `{"failed": true, "message": "Invalid label"}`); err != nil {
			t.Fatal(err)
		}
		if got := next(10); !reflect.DeepEqual(got, []int64{two, one}) {
			t.Fatalf("with four dead: %v", got)
		}
		st, err := db.DeliveryStats(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		if st.Pending != 2 || st.Sending != 0 || st.Delivered != 2 || st.Dead != 1 ||
			!strings.Contains(st.LastError, "HTTP 400") || !st.OldestPending.Equal(created) {
			t.Fatalf("stats %+v", st)
		}
		if n, err := db.RetryDead(ctx, "a"); err != nil || n != 1 {
			t.Fatalf("retry dead: %d, %v", n, err)
		}
		if got := next(10); !reflect.DeepEqual(got, []int64{two, one, four}) {
			t.Fatalf("after retrying the dead letter: %v", got)
		}
		if st, err := db.DeliveryStats(ctx, "b"); err != nil || *st != (ingest.DeliveryStats{}) {
			t.Fatalf("stats of an asset without outbox: %+v, %v", st, err)
		}
	})
}

// A dead row holds back the later rows of its container: they could only
// reach the SOAR out of order.
func TestOutboxDeadHoldsItsContainer(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db := openMigrated(t, url)
		ctx := t.Context()
		b := &ingest.Batch{Asset: "a", Topic: "events", Outbox: true, Containers: []ingest.Container{container("c1", "one", "1")}}
		saveBatch(t, db, b)
		saveBatch(t, db, &ingest.Batch{Asset: "a", Topic: "events", Outbox: true, Containers: []ingest.Container{container("c1", "one", "2")}})
		rows, err := db.NextDeliveries(ctx, "a", 10)
		if err != nil || len(rows) != 1 {
			t.Fatalf("due %+v, %v", rows, err)
		}
		if err := db.MarkDead(ctx, rows[0].ID, "refused", "{}"); err != nil {
			t.Fatal(err)
		}
		if rows, err := db.NextDeliveries(ctx, "a", 10); err != nil || len(rows) != 0 {
			t.Fatalf("due with the first row dead: %+v, %v", rows, err)
		}
	})
}

// What the polls' backpressure reads and what a settings change does to
// waiting rows: OutboxPending counts pending and sending rows only;
// ResetDeliveryBackoff makes a backed-off row due now and keeps its
// attempts, leaving delivered and dead rows alone.
func TestOutboxPendingAndBackoffReset(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db := openMigrated(t, url)
		newClock(db)
		ctx := t.Context()
		b := firstBatch("a")
		b.Outbox = true
		out := saveBatch(t, db, b)
		if len(out.Containers) != 3 {
			t.Fatalf("%d containers", len(out.Containers))
		}
		pending := func() int {
			t.Helper()
			n, err := db.OutboxPending(ctx, "a")
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		if n := pending(); n != 3 {
			t.Fatalf("pending %d, want the 3 rows", n)
		}
		if n, err := db.OutboxPending(ctx, "other"); err != nil || n != 0 {
			t.Fatalf("another asset: %d, %v", n, err)
		}
		rows, err := db.NextDeliveries(ctx, "a", 10)
		if err != nil || len(rows) != 3 {
			t.Fatalf("due %v, %v", rows, err)
		}
		if err := db.MarkSending(ctx, rows[0].ID); err != nil {
			t.Fatal(err)
		}
		if n := pending(); n != 3 {
			t.Fatalf("pending %d with one sending, want 3", n)
		}
		if err := db.MarkDelivered(ctx, rows[0].ID, 5); err != nil {
			t.Fatal(err)
		}
		if err := db.MarkDead(ctx, rows[1].ID, "refused", `{"failed": true}`); err != nil {
			t.Fatal(err)
		}
		if n := pending(); n != 1 {
			t.Fatalf("pending %d after one delivered and one dead, want 1", n)
		}

		// The last row backs off an hour: not due, until the settings change.
		if err := db.MarkSending(ctx, rows[2].ID); err != nil {
			t.Fatal(err)
		}
		if err := db.MarkRetry(ctx, rows[2].ID, "HTTP 401", time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if due, err := db.NextDeliveries(ctx, "a", 10); err != nil || len(due) != 0 {
			t.Fatalf("due during the back-off: %v, %v", due, err)
		}
		if err := db.ResetDeliveryBackoff(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		due, err := db.NextDeliveries(ctx, "a", 10)
		if err != nil || len(due) != 1 || due[0].ID != rows[2].ID || due[0].Attempts == 0 {
			t.Fatalf("due after the reset: %+v, %v; want the backed-off row, its attempts kept", due, err)
		}
		st, err := db.DeliveryStats(ctx, "a")
		if err != nil || st.Delivered != 1 || st.Dead != 1 || st.Pending != 1 {
			t.Fatalf("stats after the reset: %+v, %v", st, err)
		}
	})
}

// PruneDelivered deletes only the asset's rows delivered before the time
// given; waiting and dead rows stay.
func TestOutboxPruneDelivered(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db := openMigrated(t, url)
		clk := newClock(db)
		ctx := t.Context()
		b := firstBatch("a")
		b.Outbox = true
		saveBatch(t, db, b)
		rows, err := db.NextDeliveries(ctx, "a", 10)
		if err != nil || len(rows) != 3 {
			t.Fatalf("due %v, %v", rows, err)
		}
		if err := db.MarkDelivered(ctx, rows[0].ID, 5); err != nil {
			t.Fatal(err)
		}
		if err := db.MarkDead(ctx, rows[1].ID, "refused", "{}"); err != nil {
			t.Fatal(err)
		}
		if n, err := db.PruneDelivered(ctx, "a", clk.Now().Add(-time.Hour)); err != nil || n != 0 {
			t.Fatalf("pruning what was delivered before an hour ago: %d, %v", n, err)
		}
		if n, err := db.PruneDelivered(ctx, "other", clk.Now().Add(time.Hour)); err != nil || n != 0 {
			t.Fatalf("pruning another asset: %d, %v", n, err)
		}
		if n, err := db.PruneDelivered(ctx, "a", clk.Now().Add(time.Hour)); err != nil || n != 1 {
			t.Fatalf("pruning: %d, %v; want the delivered row", n, err)
		}
		st, err := db.DeliveryStats(ctx, "a")
		if err != nil || st.Delivered != 0 || st.Dead != 1 || st.Pending != 1 {
			t.Fatalf("stats after pruning: %+v, %v", st, err)
		}
		// The SOAR's id of the container is kept: later rows still find it.
		if id, ok, err := db.SOARContainerID(ctx, rows[0].ContainerID); err != nil || !ok || id != 5 {
			t.Fatalf("SOAR container id after pruning: %d, %v, %v", id, ok, err)
		}
	})
}
