package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/soarkafka/soarkafka/internal/testenv"
)

// Three replicas (server processes) on PostgreSQL share one spread asset
// of 6 partitions while 60,000 messages arrive: one is killed with SIGKILL,
// another paused with SIGSTOP past the group's session timeout and then
// resumed. Every message is stored exactly once (each stored, none read
// again by a later owner), and the paused replica's late batch is refused
// by its partition's epoch.
func TestThreeReplicasSIGKILLAndSIGSTOPStoreEveryMessageOnce(t *testing.T) {
	const (
		partitions = 6
		perPart    = 10000
		total      = partitions * perPart
		topic      = "events"
		burstFrom  = 20
		burstTo    = 54
	)
	dbURL := testenv.PostgresURL(t)
	raw := testenv.RawDB(t, dbURL)
	cluster := testenv.NewKafka(t, kfake.SeedTopics(partitions, topic))
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	token := "replicas-token-" + hex.EncodeToString(key[:8])
	env := []string{"SOARKAFKA_SECRET_KEY=" + hex.EncodeToString(key), "SOARKAFKA_API_TOKEN=" + token}
	names := []string{"replica-a", "replica-b", "replica-c"}
	replicas := map[string]*testenv.Replica{}
	for _, name := range names {
		// application_name tells the replica's sessions apart in
		// pg_stat_activity.
		replicas[name] = testenv.StartReplica(t, exe, env, "--database-url="+dbURL+"&application_name="+name, "--replica-name="+name,
			"--data-dir="+t.TempDir(), "--shutdown-timeout=10s")
	}
	a, b, c := replicas["replica-a"], replicas["replica-b"], replicas["replica-c"]

	doc := map[string]any{"name": "shared", "config": map[string]any{
		"hosts": strings.Join(cluster.ListenAddrs(), ","), "topic": topic, "read_from_beginning": true,
		"ingest": map[string]any{"mode": "continuous", "spread": true, "session_timeout_ms": 6000, "batch_size": 500, "max_batch_wait_ms": 100},
	}}
	body, _ := json.Marshal(doc)
	if code, out := call(t, "POST", a.URL+"/v1/assets", token, string(body)); code != 201 {
		t.Fatalf("create the asset: %d %v", code, out)
	}

	owners := func() map[string]int {
		rows, err := raw.QueryContext(t.Context(), `SELECT owner FROM ingest_partition_owners WHERE asset = 'shared'`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]int{}
		for rows.Next() {
			var o string
			if err := rows.Scan(&o); err != nil {
				t.Fatal(err)
			}
			out[o[:strings.IndexByte(o, '/')]]++
		}
		return out
	}
	stored := func() int {
		var n int
		if err := raw.QueryRowContext(t.Context(), `SELECT count(*) FROM artifacts WHERE asset = 'shared'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// busy counts the replica's sessions inside a transaction.
	busy := func(name string) int {
		var n int
		if err := raw.QueryRowContext(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state <> 'idle'`, name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	wait := func(what string, limit time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(limit)
		for !cond() {
			if time.Now().After(deadline) {
				rows, _ := raw.QueryContext(t.Context(), `SELECT o.partition, o.next_offset, w.owner, w.epoch,
					(SELECT count(*) FROM artifacts a WHERE a.asset = 'shared' AND split_part(a.source_data_identifier, ':', 1) = o.partition::text)
					FROM ingest_offsets o JOIN ingest_partition_owners w USING (asset, topic, partition) WHERE o.asset = 'shared' ORDER BY 1`)
				for rows != nil && rows.Next() {
					var p, next, epoch, n int
					var owner string
					_ = rows.Scan(&p, &next, &owner, &epoch, &n)
					t.Logf("partition %d: stored position %d, %d artifacts, owner %s epoch %d", p, next, n, owner, epoch)
				}
				t.Fatalf("%s: not within %s (owners %v, %d stored)", what, limit, owners(), stored())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	wait("the three replicas to share the partitions", 60*time.Second, func() bool {
		o := owners()
		return len(o) == 3 && o["replica-a"] == 2 && o["replica-b"] == 2 && o["replica-c"] == 2
	})

	// The messages arrive in 60 rounds 200 ms apart, but for a burst of
	// 35 rounds at once.
	cl := testenv.KafkaClient(t, cluster)
	rounds := make(chan int, 100)
	produced := make(chan error, 1)
	go func() {
		defer close(rounds)
		const perRound = perPart / 60
		var recs []*kgo.Record
		for r := range 60 {
			for p := range int32(partitions) {
				n := perRound
				if r == 59 {
					n = perPart - 59*perRound
				}
				for i := range n {
					recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, `{"round":%d,"i":%d}`, r, i)})
				}
			}
			if r >= burstFrom && r < burstTo {
				continue // the burst's rounds go in one
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := cl.ProduceSync(ctx, recs...).FirstErr()
			cancel()
			if err != nil {
				produced <- err
				return
			}
			recs = recs[:0]
			rounds <- r
			time.Sleep(200 * time.Millisecond)
		}
		produced <- nil
	}()
	var killedAt, pausedAt int
	for r := range rounds {
		switch r {
		case 15:
			if err := a.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killedAt = stored()
		case burstTo:
			// replica-b is paused with a backlog, as a replica that hangs
			// while it works: once resumed, it goes on with the batches it
			// holds, which the epoch refuses.
			for n := stored(); stored() < n+2000; {
				time.Sleep(5 * time.Millisecond)
			}
			// Between two of its transactions: stopped inside one, it would
			// hold its partitions' rows, and no other replica could claim
			// them before it resumed and committed (rightly).
			for attempt := 0; ; attempt++ {
				if attempt == 500 {
					t.Fatal("replica-b was never seen between two transactions")
				}
				if busy("replica-b") > 0 {
					time.Sleep(2 * time.Millisecond)
					continue
				}
				if err := b.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
					t.Fatal(err)
				}
				time.Sleep(50 * time.Millisecond) // a statement sent just before shows
				if busy("replica-b") == 0 {
					break
				}
				if err := b.Cmd.Process.Signal(syscall.SIGCONT); err != nil {
					t.Fatal(err)
				}
			}
			pausedAt = stored()
		}
	}
	if err := <-produced; err != nil {
		t.Fatalf("produce: %v", err)
	}
	<-a.Exited()
	// Past the session timeout (6 s): the group gives replica-b's
	// partitions to replica-c, which claims them with new epochs.
	wait("replica-c to own every partition", 30*time.Second, func() bool { return owners()["replica-c"] == partitions })
	if err := b.Cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	wait("every message stored", 90*time.Second, func() bool { return stored() >= total })
	wait("replica-b to rejoin", 30*time.Second, func() bool { return owners()["replica-b"] > 0 })

	var distinct, count, maxOffsets int
	if err := raw.QueryRowContext(t.Context(), `SELECT count(DISTINCT source_data_identifier), count(*) FROM artifacts WHERE asset = 'shared'`).Scan(&distinct, &count); err != nil {
		t.Fatal(err)
	}
	if err := raw.QueryRowContext(t.Context(), `SELECT count(*) FROM ingest_offsets WHERE asset = 'shared' AND next_offset = $1`, perPart).Scan(&maxOffsets); err != nil {
		t.Fatal(err)
	}
	if distinct != total || count != total || maxOffsets != partitions {
		t.Fatalf("%d artifacts (%d distinct), %d partitions at their end; want %d once each and all %d partitions at %d", count, distinct, maxOffsets, total, partitions, perPart)
	}
	for p := range partitions {
		var n, lo, hi int
		if err := raw.QueryRowContext(t.Context(), `SELECT count(*), min(split_part(source_data_identifier, ':', 2)::int), max(split_part(source_data_identifier, ':', 2)::int)
			FROM artifacts WHERE asset = 'shared' AND split_part(source_data_identifier, ':', 1) = $1`, fmt.Sprint(p)).Scan(&n, &lo, &hi); err != nil {
			t.Fatal(err)
		}
		if n != perPart || lo != 0 || hi != perPart-1 {
			t.Fatalf("partition %d: %d artifacts, offsets %d to %d; want %d, 0 to %d", p, n, lo, hi, perPart, perPart-1)
		}
	}

	// Stopped, the live replicas record their last period: nothing they
	// stored was read again (a later owner starts at the stored position).
	for _, r := range []*testenv.Replica{b, c} {
		if err := r.Stop(20 * time.Second); err != nil {
			t.Errorf("replica stopped with %v", err)
		}
	}
	dups, refused := 0, 0
	for _, r := range []*testenv.Replica{b, c} {
		for _, line := range strings.Split(r.Logs(), "\n") {
			var l struct {
				Msg        string
				Duplicates int
			}
			if json.Unmarshal([]byte(line), &l) != nil {
				continue
			}
			switch l.Msg {
			case "spread poll period":
				dups += l.Duplicates
			case "spread poll: batch refused by the partition's epoch; this replica dropped the partition":
				if r == b {
					refused++
				}
			}
		}
	}
	if dups != 0 {
		t.Errorf("%d messages stored again (skipped as duplicates): a new owner read from before the stored position", dups)
	}
	if refused == 0 {
		for _, line := range strings.Split(b.Logs(), "\n") {
			if strings.Contains(line, "spread poll") || strings.Contains(line, "session") || strings.Contains(line, "heartbeat") {
				t.Log(line)
			}
		}
		t.Errorf("replica-b's log has no batch refused by the epoch after it resumed")
	}
	t.Logf("replica-a killed with %d stored, replica-b paused with %d stored; replica-b's late batches refused: %d", killedAt, pausedAt, refused)
}
