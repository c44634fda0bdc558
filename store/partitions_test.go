package store_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/store"
)

func claim(t *testing.T, db *store.DB, owner string, parts ...int32) *ingest.Claim {
	t.Helper()
	c, err := db.ClaimPartitions(t.Context(), "prod", "events", owner, parts)
	if err != nil {
		t.Fatalf("ClaimPartitions(%s, %v): %v", owner, parts, err)
	}
	return c
}

// epochBatch is a batch of one container on partition part, reaching next,
// carrying epoch.
func epochBatch(sdi string, part int32, next, epoch int64) *ingest.Batch {
	return &ingest.Batch{Asset: "prod", Topic: "events", Containers: []ingest.Container{container(sdi, sdi, sdi+":a")},
		Offsets: []ingest.Offset{{Partition: part, Next: next}}, Epochs: map[int32]int64{part: epoch}}
}

// A claim bumps each partition's epoch and returns the stored positions; a
// batch with an epoch that is no longer current is refused whole, and the
// new owner's batch is stored.
func TestClaimPartitionsRefusesStaleEpoch(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db, raw := openMigrated(t, url), rawDB(t, url)
		a := claim(t, db, "replica-a", 1, 0)
		if a.Epochs[0] != 1 || a.Epochs[1] != 1 || len(a.Offsets) != 0 {
			t.Fatalf("first claim = %+v, want epoch 1 for partitions 0 and 1 and no positions", a)
		}
		saveBatch(t, db, epochBatch("c1", 0, 10, 1))

		b := claim(t, db, "replica-b", 0)
		if b.Epochs[0] != 2 || b.Offsets[0] != 10 {
			t.Fatalf("claim after a rebalance = %+v, want epoch 2 and position 10", b)
		}
		_, err := db.SaveBatch(t.Context(), epochBatch("late", 0, 20, 1))
		if soarkafka.ErrorCode(err) != soarkafka.ECONFLICT {
			t.Fatalf("stale epoch's batch: %v, want ECONFLICT", err)
		}
		t.Logf("refused: %v", err)
		wantOffsets(t, db, "prod", map[int32]int64{0: 10})
		wantRows(t, raw, "prod", 1, 1)

		// The partition replica-a kept is still its own.
		saveBatch(t, db, epochBatch("c2", 1, 5, 1))
		saveBatch(t, db, epochBatch("c3", 0, 20, 2))
		wantOffsets(t, db, "prod", map[int32]int64{0: 20, 1: 5})
		wantRows(t, raw, "prod", 3, 3)

		// A partition never claimed, and a batch naming a partition without
		// an epoch.
		if _, err := db.SaveBatch(t.Context(), epochBatch("c4", 7, 1, 1)); soarkafka.ErrorCode(err) != soarkafka.ECONFLICT {
			t.Fatalf("unclaimed partition's batch: %v, want ECONFLICT", err)
		}
		bad := epochBatch("c5", 0, 30, 2)
		bad.Offsets = append(bad.Offsets, ingest.Offset{Partition: 1, Next: 9})
		if _, err := db.SaveBatch(t.Context(), bad); soarkafka.ErrorCode(err) != soarkafka.EINVALID {
			t.Fatalf("batch with an offset without epoch: %v, want EINVALID", err)
		}
		if _, err := db.ClaimPartitions(t.Context(), "prod", "events", "", []int32{0}); soarkafka.ErrorCode(err) != soarkafka.EINVALID {
			t.Fatalf("claim without owner: %v, want EINVALID", err)
		}
		wantOffsets(t, db, "prod", map[int32]int64{0: 20, 1: 5})
	})
}

// A claim racing a batch of the partition's old owner that is inside its
// transaction waits for that batch: it returns the position the batch
// stored, and the old owner's next batch is refused. Without the row lock
// the claim would read the position before the batch's commit and the new
// owner would read the batch's messages again.
func TestClaimPartitionsWaitsForBatchInFlight(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		db, raw := openMigrated(t, url), rawDB(t, url)
		var block atomic.Pointer[chan struct{}]
		inside := make(chan struct{})
		db.SetFaultHook(func(point string) {
			if point != store.FaultMidTransaction {
				return
			}
			if ch := block.Swap(nil); ch != nil {
				close(inside)
				<-*ch
			}
		})
		claim(t, db, "replica-a", 0)
		release := make(chan struct{})
		block.Store(&release)
		saved := make(chan error, 1)
		go func() {
			_, err := db.SaveBatch(t.Context(), epochBatch("c1", 0, 50, 1))
			saved <- err
		}()
		<-inside // the batch passed its epoch check and holds its transaction open

		claimed := make(chan *ingest.Claim, 1)
		claimErr := make(chan error, 1)
		go func() {
			c, err := db.ClaimPartitions(t.Context(), "prod", "events", "replica-b", []int32{0})
			claimErr <- err
			claimed <- c
		}()
		if db.Dialect() == "postgres" {
			// The claim's upsert waits on the row the batch holds FOR SHARE.
			deadline := time.Now().Add(10 * time.Second)
			for count(t, raw, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO ingest_partition_owners%'`) == 0 {
				if time.Now().After(deadline) {
					close(release)
					t.Fatal("the claim did not wait for the batch in flight")
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		close(release)
		if err := <-saved; err != nil {
			t.Fatalf("the old owner's batch in flight: %v", err)
		}
		if err := <-claimErr; err != nil {
			t.Fatal(err)
		}
		c := <-claimed
		if c.Epochs[0] != 2 || c.Offsets[0] != 50 {
			t.Fatalf("claim = %+v, want epoch 2 and the batch's position 50", c)
		}
		if _, err := db.SaveBatch(t.Context(), epochBatch("c2", 0, 60, 1)); soarkafka.ErrorCode(err) != soarkafka.ECONFLICT {
			t.Fatalf("the old owner's next batch: %v, want ECONFLICT", err)
		}
		wantOffsets(t, db, "prod", map[int32]int64{0: 50})
	})
}
