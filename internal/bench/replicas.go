package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, to count what the replicas stored
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/soarkafka/soarkafka/internal/testenv"
)

const (
	replicasTopic = "bench-replicas"
	// replicasRatioTarget is what 3 replicas should reach against one.
	replicasRatioTarget = 2.2
)

type replicasFlags struct {
	serverBin   string
	postgresURL string
	counts      string
	messages    int
	partitions  int
	size        int
	soarLatency time.Duration
	batchSize   int
	concurrency int
	perRequest  int
	timeout     time.Duration
}

func runReplicas(args []string) error {
	var f replicasFlags
	fs := flag.NewFlagSet("replicas", flag.ContinueOnError)
	defaultPG := os.Getenv(testenv.PostgresURLEnv)
	if defaultPG == "" {
		defaultPG = testenv.DefaultPostgresURL
	}
	fs.StringVar(&f.serverBin, "server-bin", "", "soarkafka binary to run (default: built from ./cmd/soarkafka into a temporary directory; \"self\": this binary)")
	fs.StringVar(&f.postgresURL, "postgres-url", defaultPG, "PostgreSQL the replicas share (a schema per run is created in it and dropped)")
	fs.StringVar(&f.counts, "replicas", "1,2,3", "comma-separated replica counts to run, each on a fresh schema, broker and SOAR stand-in")
	fs.IntVar(&f.messages, "messages", 60_000, "messages produced to the asset's topic")
	fs.IntVar(&f.partitions, "partitions", 6, "partitions of the topic")
	fs.IntVar(&f.size, "size", 1024, "average message size in bytes (CloudTrail-like JSON)")
	fs.DurationVar(&f.soarLatency, "soar-latency", 20*time.Millisecond, "latency the SOAR stand-in adds to every request")
	fs.IntVar(&f.batchSize, "batch-size", 500, "the asset's ingest.batch_size")
	fs.IntVar(&f.concurrency, "concurrency", 16, "the asset's delivery.concurrency")
	fs.IntVar(&f.perRequest, "artifacts-per-request", 100, "the asset's delivery.artifacts_per_request")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Minute, "longest wait for every message to reach the stand-in, per run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return replicasBench(context.Background(), f, os.Stdout)
}

// replicasResult is one replica count's run.
type replicasResult struct {
	replicas        int
	stored, pushed  time.Duration // from the first message produced
	owners          int           // replicas that owned partitions
	requests        int
	delivererHolder string
}

func replicasBench(ctx context.Context, f replicasFlags, out io.Writer) error {
	var counts []int
	for c := range strings.SplitSeq(f.counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			return fmt.Errorf("-replicas: %q is not a replica count", c)
		}
		counts = append(counts, n)
	}
	if f.messages < 1 || f.partitions < 1 || f.batchSize < 1 || f.size < 200 {
		return errors.New("counts must be positive and -size at least 200")
	}
	load0 := loadAverage()
	tmp, err := os.MkdirTemp("", "soarkafka-bench-replicas-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := f.serverBin
	if bin == "" {
		logf("building ./cmd/soarkafka")
		if bin, err = buildServer(ctx, tmp); err != nil {
			return err
		}
	}
	pool, err := newEventPool(4096, f.size)
	if err != nil {
		return err
	}
	var results []replicasResult
	for _, n := range counts {
		r, err := replicasRun(ctx, f, bin, tmp, pool, n)
		if err != nil {
			return fmt.Errorf("%d replicas: %w", n, err)
		}
		results = append(results, r)
	}

	tw := tabwriter.NewWriter(out, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "replicas\tstored msg/s\tin the SOAR msg/s\tratio to 1 (SOAR)\ttarget\tresult")
	var one float64
	for _, r := range results {
		pushed := rate(f.messages, r.pushed)
		if r.replicas == 1 {
			one = pushed
		}
		ratio, target, result := "-", "-", "-"
		if one > 0 {
			ratio = fmt.Sprintf("%.2f", pushed/one)
		}
		if r.replicas == 3 && one > 0 {
			target = fmt.Sprintf(">= %.1f", replicasRatioTarget)
			result = "pass"
			if pushed/one < replicasRatioTarget {
				result = "FAIL"
			}
		}
		fmt.Fprintf(tw, "%d\t%.0f\t%.0f\t%s\t%s\t%s\n", r.replicas, rate(f.messages, r.stored), pushed, ratio, target, result)
	}
	tw.Flush()
	fmt.Fprintf(out, "\n%d messages of ~%d bytes on %d partitions, one asset (ingest.mode continuous, ingest.spread, batch_size %d, the bundled default parser), "+
		"push delivery to the SOAR stand-in answering after %s (delivery.concurrency %d, artifacts_per_request %d), PostgreSQL at %s; "+
		"times from the first message produced.\n",
		f.messages, pool.avg, f.partitions, f.batchSize, f.soarLatency, f.concurrency, f.perRequest, redactURL(f.postgresURL))
	for _, r := range results {
		fmt.Fprintf(out, "%d replicas: all stored after %s, all in the SOAR after %s; %d replicas owned partitions; %d requests to the SOAR; delivery worker of the first replica: %s\n",
			r.replicas, r.stored.Round(time.Millisecond), r.pushed.Round(time.Millisecond), r.owners, r.requests, r.delivererHolder)
	}
	fmt.Fprintf(out, "GOMAXPROCS %d of the bench; load average before %s, after %s\n", runtimeProcs(), load0, loadAverage())
	return nil
}

// replicasRun runs n replicas on a fresh schema, broker and stand-in.
func replicasRun(ctx context.Context, f replicasFlags, bin, tmp string, pool *eventPool, n int) (replicasResult, error) {
	res := replicasResult{replicas: n}
	dbURL, drop, err := postgresSchema(ctx, f.postgresURL)
	if err != nil {
		return res, err
	}
	defer drop()
	raw, err := sql.Open("pgx", dbURL)
	if err != nil {
		return res, err
	}
	defer raw.Close()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(f.partitions), replicasTopic))
	if err != nil {
		return res, fmt.Errorf("start kfake: %w", err)
	}
	defer cluster.Close()
	brokers := strings.Join(cluster.ListenAddrs(), ",")
	sink, err := newSOARSink(f.soarLatency, false)
	if err != nil {
		return res, err
	}
	defer sink.close()

	key := make([]byte, 32)
	rand.Read(key)
	var servers []*server
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	for i := range n {
		name := fmt.Sprintf("replica-%d-of-%d", i+1, n)
		s, err := startServer(ctx, name, bin, tmp, "", 1<<20, "--database-url", dbURL, "--replica-name", name,
			"--secret-key", hex.EncodeToString(key))
		if err != nil {
			return res, err
		}
		servers = append(servers, s)
	}
	logf("%d replicas started", n)
	if err := servers[0].call(ctx, http.MethodPost, "/v1/assets", map[string]any{
		"name": "shared",
		"config": map[string]any{
			"hosts": brokers, "topic": replicasTopic, "read_from_beginning": true,
			"ingest": map[string]any{"mode": "continuous", "spread": true, "batch_size": f.batchSize, "max_batch_wait_ms": 100, "session_timeout_ms": 10000},
			"delivery": map[string]any{"mode": "push", "url": sink.url, "token": sink.soar.Token, "asset_id": 1,
				"concurrency": f.concurrency, "artifacts_per_request": f.perRequest, "max_pending": 10_000_000},
		},
	}, http.StatusCreated, nil); err != nil {
		return res, err
	}
	// Every replica reads the asset at its next rescan (5 s): the clock
	// starts once each one owns partitions, so that it measures the
	// replicas sharing the work, not the rescan.
	owners := func() (int, error) {
		var k int
		err := raw.QueryRowContext(ctx, `SELECT count(DISTINCT split_part(owner, '/', 1)) FROM ingest_partition_owners WHERE asset = 'shared'`).Scan(&k)
		if err != nil && strings.Contains(err.Error(), "does not exist") {
			return 0, nil
		}
		return k, err
	}
	deadline := time.Now().Add(time.Minute)
	for {
		k, err := owners()
		if err != nil {
			return res, err
		}
		if k == n {
			break
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("%d of %d replicas own partitions after a minute", k, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // the last rebalance settles

	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		return res, err
	}
	defer cl.Close()
	set := newProducedSet()
	t0 := time.Now()
	for i := range f.messages {
		cl.Produce(ctx, &kgo.Record{Topic: replicasTopic, Value: pool.appendEvent(nil, i), Timestamp: time.Now()}, set.record)
	}
	if err := cl.Flush(ctx); err != nil {
		return res, err
	}
	if err := set.check(f.messages); err != nil {
		return res, err
	}
	logf("%d replicas: %d messages produced in %s", n, f.messages, time.Since(t0).Round(time.Millisecond))
	stored := false
	end := time.Now().Add(f.timeout)
	for {
		if !stored {
			var k int
			if err := raw.QueryRowContext(ctx, `SELECT count(*) FROM artifacts WHERE asset = 'shared'`).Scan(&k); err != nil {
				return res, err
			}
			if k >= f.messages {
				stored, res.stored = true, time.Since(t0)
			}
		}
		if _, arts := sink.soar.Counts(); arts >= f.messages && stored {
			res.pushed = time.Since(t0)
			break
		}
		if time.Now().After(end) {
			_, arts := sink.soar.Counts()
			return res, fmt.Errorf("%d of %d messages in the SOAR stand-in after %s (stored: %v)", arts, f.messages, f.timeout, stored)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := checkOnce(set.snapshot(), sink.delivered()); err != nil {
		return res, err
	}
	if res.owners, err = owners(); err != nil {
		return res, err
	}
	for _, c := range sink.stats().requests {
		res.requests += c
	}
	st, err := deliveryStatus(ctx, servers[0], "shared")
	if err != nil {
		return res, err
	}
	res.delivererHolder = st.Worker
	logf("%d replicas: stored in %s, in the SOAR in %s", n, res.stored.Round(time.Millisecond), res.pushed.Round(time.Millisecond))
	return res, nil
}
