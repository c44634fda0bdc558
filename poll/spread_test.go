package poll_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/poll"
)

// spreadConfig is a continuous asset read by the replicas' consumer group.
func (e *env) spreadConfig(extra map[string]any) assets.Config {
	e.t.Helper()
	m := map[string]any{"read_from_beginning": true, "ingest.spread": true, "ingest.session_timeout_ms": 6000,
		"ingest.max_batch_wait_ms": 50, "ingest.group_id": "spread-" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	for k, v := range extra {
		m[k] = v
	}
	return e.continuous(m)
}

// runSpread runs p.Spread until the returned stop is called or the test
// ends; stop waits for it and returns its error.
func runSpread(t *testing.T, p *poll.Poller, asset string, cfg assets.Config) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Spread(ctx, poll.Request{Asset: asset, Config: cfg}) }()
	stopped := false
	var err error
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Error("the spread poll did not stop within 30s")
			}
		}
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// owners returns the owner of each partition of asset.
func (e *env) owners(asset string) map[string]int {
	e.t.Helper()
	out := map[string]int{}
	for _, o := range column[string](e, `SELECT owner FROM ingest_partition_owners WHERE asset = $1`, asset) {
		out[o]++
	}
	return out
}

// Two replicas share a spread asset's partitions through the consumer
// group: each partition is read by one of them, and when one leaves the
// other takes its partitions over from the stored positions; every message
// is stored once.
func TestSpreadTwoReplicasSharePartitions(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		e := newEnv(t, url, poll.WithReplica("replica-a"))
		cfg := e.spreadConfig(nil)
		b := poll.New(e.db, e.parsers, nil, poll.WithReplica("replica-b"))
		stopA := runSpread(t, e.poller, "duo", cfg)
		runSpread(t, b, "duo", cfg)
		waitFor(t, "both replicas to own partitions", func() bool {
			o := e.owners("duo")
			return len(o) == 2 && e.count(`SELECT count(*) FROM ingest_partition_owners WHERE asset = 'duo'`) == 4
		}, nil)
		e.produce(all, 0, 50)
		waitFor(t, "every message", func() bool { return len(e.sdis("duo")) == 200 }, nil)

		if err := stopA(); err != nil {
			t.Fatalf("replica-a stopped with %v", err)
		}
		waitFor(t, "replica-b to own every partition", func() bool {
			o := e.owners("duo")
			return len(o) == 1 && o[ownerOf(o)] == 4 && strings.HasPrefix(ownerOf(o), "replica-b/")
		}, nil)
		e.produce(all, 50, 50)
		waitFor(t, "every message after the handover", func() bool { return len(e.sdis("duo")) == 400 }, nil)
		if got := e.sdis("duo"); !equal(got, wantSDIs(all, 0, 100)) {
			t.Fatalf("stored %d artifacts, want each of the 400 messages once", len(got))
		}
		waitFor(t, "the positions at the end", func() bool {
			return equalOffsets(e.offsets("duo"), map[int32]int64{0: 100, 1: 100, 2: 100, 3: 100})
		}, nil)
	})
}

func ownerOf(o map[string]int) string {
	for k := range o {
		return k
	}
	return ""
}

// Batches of different partitions are parsed and stored at once, and each
// partition's batches are stored in their order: with the default parser
// one container is one batch, of one partition, so ordered by id (commit
// order) each partition's containers hold ascending offsets.
func TestSpreadParallelKeepsPartitionOrder(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		e := newEnv(t, url)
		e.produce(all, 0, 300)
		cfg := e.spreadConfig(map[string]any{"ingest.parse_concurrency": 4, "ingest.batch_size": 7})
		runSpread(t, e.poller, "order", cfg)
		waitFor(t, "every message", func() bool { return len(e.sdis("order")) == 1200 }, nil)
		type row struct {
			container int64
			sdi       string
		}
		rows, err := e.raw.QueryContext(t.Context(), e.sqlFor(`SELECT container_id, source_data_identifier FROM artifacts WHERE asset = $1 ORDER BY container_id, id`), "order")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		last := map[int32]int64{0: -1, 1: -1, 2: -1, 3: -1}
		containerPart := map[int64]int32{}
		batches := 0
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.container, &r.sdi); err != nil {
				t.Fatal(err)
			}
			var part int32
			var off int64
			if _, err := fmt.Sscanf(r.sdi, "%d:%d", &part, &off); err != nil {
				t.Fatalf("artifact %q: %v", r.sdi, err)
			}
			if p, ok := containerPart[r.container]; !ok {
				containerPart[r.container] = part
				batches++
			} else if p != part {
				t.Fatalf("container %d holds partitions %d and %d: a batch is one partition's", r.container, p, part)
			}
			if off != last[part]+1 {
				t.Fatalf("partition %d: offset %d stored after %d (container %d), want %d", part, off, last[part], r.container, last[part]+1)
			}
			last[part] = off
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if batches < 4*300/7 {
			t.Fatalf("%d batches, want at least %d of at most 7 messages", batches, 4*300/7)
		}
	})
}

// An on poll action of a spread asset has nothing to do.
func TestSpreadOnPollHasNothingToDo(t *testing.T) {
	e := newEnv(t, testenv.SQLiteURL(t))
	res, err := e.poller.Poll(t.Context(), poll.Request{Asset: "s", Config: e.spreadConfig(nil), Kind: ingest.PollAction})
	if err != nil || res.Stopped != poll.StoppedContinuous || len(res.Warnings) == 0 || !strings.Contains(res.Warnings[0], "ingest.spread") {
		t.Fatalf("on poll of a spread asset: %+v, %v", res, err)
	}
}
