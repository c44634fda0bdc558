package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka/parsers/sandbox"
)

// The test binary stands in for the bench binary when it re-executes
// itself: as the server (-server-bin self) and as a parser worker.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case serverChildCommand:
			os.Exit(serverChild(os.Args[2:]))
		case parserWorkerCommand:
			os.Exit(sandbox.WorkerMain(os.Stdin, os.Stdout, os.Stderr))
		}
	}
	os.Exit(m.Run())
}

// The deliver bench, scaled down to a few hundred messages, on a real
// server process, kfake and the SOAR stand-in: both cases and both limits
// run, every message reaches the stand-in once on each path (the bench
// fails otherwise), the bare loop sends exactly the requests the worker
// sent, and the table has its three rows.
func TestDeliverBenchScaledDown(t *testing.T) {
	f := deliverFlags{serverBin: selfServer, rate: 200, seconds: 1.5, backlog: 600, partitions: 2, size: 400,
		soarLatency: 5 * time.Millisecond, batchSize: 100, maxBatchWaitMS: 200, concurrency: 4, perRequest: 30,
		drainTimeout: 30 * time.Second, cases: "latency,throughput"}
	var out bytes.Buffer
	rep, err := deliverBench(t.Context(), f, &out)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())

	for name, l := range map[string]*latencyResult{"soarkafka": rep.latency, "bare path": rep.rawLatency} {
		if l == nil || l.messages != 300 || l.containers == 0 {
			t.Fatalf("latency, %s: %+v, want 300 messages in some containers", name, l)
		}
		if l.p50 <= 0 || l.p99 < l.p50 || l.max < l.p99 {
			t.Fatalf("latency, %s: p50 %s p99 %s max %s", name, l.p50, l.p99, l.max)
		}
	}
	l := rep.latency
	// A batch waits for max_batch_wait_ms unless it fills: the poll's
	// share is measured, and stored to SOAR includes at least one request.
	if l.storedP50 <= 0 || l.deliverP50 < f.soarLatency {
		t.Fatalf("latency split: to stored p50 %s, stored to SOAR p50 %s", l.storedP50, l.deliverP50)
	}
	if l.worker.requests == 0 || l.worker.requestMean < f.soarLatency {
		t.Fatalf("latency: worker's requests from /metrics: %+v", l.worker)
	}

	tp := rep.throughput
	if tp == nil || tp.messages != 600 || tp.containers < 600/100 || tp.ours <= 0 || tp.bare <= 0 {
		t.Fatalf("throughput: %+v", tp)
	}
	// Each container: one container request with 30 artifacts inline,
	// then requests of 30: the bare loop repeats them one for one.
	for _, path := range []string{"POST /rest/container", "POST /rest/artifact"} {
		if n, bare := tp.sink.requests[path], tp.bareSink.requests[path]; n == 0 || n != bare {
			t.Fatalf("%s: the worker sent %d, the bare loop %d", path, n, bare)
		}
	}
	if got, want := tp.sink.requests["POST /rest/container"], tp.containers; got != want {
		t.Fatalf("%d container requests for %d containers", got, want)
	}

	if len(rep.rows) != 3 {
		t.Fatalf("rows %+v", rep.rows)
	}
	table := out.String()
	for _, want := range []string{"case", "limit, same run", ": p50", ": p99", "throughput, backlog of 600", "where the time goes"} {
		if !strings.Contains(table, want) {
			t.Fatalf("the report lacks %q:\n%s", want, table)
		}
	}
}
