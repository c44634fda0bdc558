// Command bench measures soarkafka against the raw franz-go client in the
// same run, so every figure comes with a ratio, and checks each against its
// target. The figures and how they were measured are in docs/performance.md.
//
// Usage, from the module root:
//
//	go run ./internal/bench postdata [flags]
//	go run ./internal/bench ingest [flags]
//	go run ./internal/bench deliver [flags]
//	go run ./internal/bench scale [flags]
//	go run ./internal/bench replicas [flags]
//
// postdata runs an in-process kfake broker on loopback
// (one broker, the topic seeded up front, kfake.BlackholeProduce so broker
// storage neither dominates nor fills memory; the raw client talks to the
// same broker) and a soarkafka server as its own process (built from
// ./cmd/soarkafka into a temporary directory, unless -server-bin is given),
// and prints, side by side with the raw franz-go producer (same acks,
// idempotence, linger, compression and batch size as the asset):
//
//  1. post data of one small JSON message with timeout > 0: p50/p99 latency
//     over -latency-requests sequential requests, against ProduceSync;
//     target p99 < 5 ms.
//  2. post data of a JSON list of -list-messages ~1 KB events (timeout 0,
//     json_format compact): messages/s, median of -list-reps runs, against
//     Produce + Flush of the same values (three raw runs per repetition);
//     target >= 50% of raw. Also, for information, timeout > 0 and
//     json_format pretty.
//  3. the NDJSON records endpoint with -ndjson-records ~1 KB events, the
//     body generated on the fly and the answer read as a stream, in a fresh
//     server process: messages/s against Produce + Flush (target >= 70% of
//     raw) and the server's peak RSS (VmHWM, target < 150 MB).
//  4. -concurrent-posts (20) post data lists of -concurrent-bytes (5 MB)
//     each, sent at once to a fresh server (with -concurrent-budget as its
//     server.body_memory_budget when given): how many succeeded and how
//     many were answered 503, the server's peak RSS, and its RSS 3 s later,
//     once idle (information only).
//
// Every run is checked: soarkafka's answer says success for every message,
// and the topic's end offsets moved by exactly the records sent. Progress,
// each run's figure and the CPU each process used go to stderr; the table
// goes to stdout. Peak RSS is the server's VmHWM read just before SIGTERM
// (not the exited child's rusage, which on Linux inherits the bench's own
// high-water mark through the vfork-style exec).
//
// Events are CloudTrail-like JSON objects generated from a fixed seed, each
// with a distinct eventID. Flags scale the counts down for a quick run:
//
//	go run ./internal/bench postdata -latency-requests 200 -list-messages 1000 -ndjson-records 50000
//
// -cpuprofile-dir DIR runs each server under a CPU profile (the bench
// re-executes itself as the server) and writes DIR/server-postdata.pprof
// and DIR/server-ndjson.pprof; read them with
// `go tool pprof -top DIR/server-ndjson.pprof`.
//
// ingest seeds an in-process kfake broker (one broker,
// one topic of 4 partitions, -partitions) with -messages (default 100,000)
// CloudTrail-like events of about -size bytes (default 1024), produced in
// full batches, and measures one scheduled poll that reads them all
// (ingest.max_messages = -messages, batch_size 1000 (-batch-size),
// read_from_beginning, timeout 600 s), against a raw franz-go consumer
// (kgo.ConsumePartitions from the start, the poll's fetch limits; median of
// -raw-reps runs) reading the same topic:
//
//  1. sqlite-native: a fresh SQLite file, the bundled default parser run
//     natively; target >= 100,000 messages/s.
//  2. sqlite-sandbox: the same with the default parser's source saved as
//     the user parser "default-script", run in sandbox worker processes
//     (the bench binary itself, under its hidden parser-worker
//     subcommand, as the server runs its own); target >= 50,000
//     messages/s.
//  3. postgres-native: like 1 on a fresh schema of the PostgreSQL at
//     -postgres-url (default $SOARKAFKA_TEST_POSTGRES_URL or the test
//     server), dropped afterwards; target >= 50,000 messages/s.
//
// Each case runs in a child process (the bench re-executes itself), fed
// its settings on stdin and answering JSON on stdout, so that its peak RSS
// (VmHWM read by the child at the end) is the poll's own, not the bench's
// or kfake's; target < 250 MB for every case. A run is an error unless the
// poll read and made an artifact of every message. The table gives
// messages/s (messages / the poll's duration), the ratio to raw, where the
// time went (the poll's Timing: fetch, parse, store, which overlap) and
// the peak RSS; a second table the CPU of the child and of kfake, what was
// created and, for the sandbox, the workers' memory and CPU. Every figure
// shares the machine with whatever else runs: the footer gives the load
// average. -cases picks cases
// (comma-separated), -reps runs each more than once (median), and
// -cpuprofile-dir DIR has each child profile its poll into
// DIR/ingest-<case>.pprof. A quick run:
//
//	go run ./internal/bench ingest -messages 20000
//
// deliver measures push delivery on the real path: an in-process kfake
// broker, a soarkafka server process (SQLite) whose push assets poll
// continuously (ingest.mode continuous, the bundled default parser,
// -batch-size and -max-batch-wait-ms) and deliver to a SOAR stand-in
// (internal/testenv's, in the bench process) that adds -soar-latency
// (5 ms) to every request, with the assets' delivery.concurrency
// (-concurrency, 4) and artifacts_per_request (-artifacts-per-request,
// 100):
//
//  1. latency: -rate (1,000) messages a second for -seconds (20), from
//     each record's Kafka timestamp to the stand-in storing its artifact
//     (matched by the default parser's source_data_identifier,
//     partition:offset): p50 and p99, targets < 1 s and < 3 s. The limit
//     in the same run is a bare path: a franz-go consumer that posts what
//     each fetch returns as one container, in the worker's request shape,
//     at the same rate. The details split soarkafka's latency into
//     produce to stored (the poll) and stored to the SOAR (delivery).
//  2. throughput: -backlog (50,000) messages on the topic before the
//     asset is made; messages/s from the asset made to the stand-in's last
//     answer, against a bare Go loop that posts the very request bodies
//     the worker sent (captured by the stand-in's recorder), container by
//     container, with the same concurrency, to a fresh stand-in with the
//     same latency, in the same run; target >= 80% of the bare loop.
//
// Every run is checked: every message produced is in the stand-in exactly
// once (counted by source_data_identifier), for soarkafka and for the
// bare paths. Where the time goes is printed under the table: requests
// and their latency at the stand-in, how many were in flight, the
// worker's own timing (from /metrics), and the CPU of each process. A
// quick run:
//
//	go run ./internal/bench deliver -seconds 5 -backlog 10000
//
// scale measures ingest on PostgreSQL as more runs at once, in parts
// (-parts; scale.go's scaleParts, one entry per part). Part assets: one
// kfake topic of -partitions (4) seeded with -messages (100,000), the
// bundled default parser natively, a fresh schema of -postgres-url per
// run; one asset polls the whole topic in one scheduled poll, then two
// assets poll it at once (each all of it). Next to them the store's own
// limit in the same run: the batches one poll stored, captured in an
// untimed poll, saved again with SaveBatch in a bare loop (the same rows,
// the same statements, no Kafka, no parser), one loop and then two at
// once. Targets: one asset >= 0.8 of one bare loop; two assets together
// >= 1.3 times one. Median of -reps (5) rounds, each running every case
// once, so that the machine's drifting load falls on all of them. A quick run:
//
//	go run ./internal/bench scale -messages 20000 -reps 1
//
// replicas runs 1, 2 and 3 soarkafka server processes (-replicas) sharing
// one PostgreSQL schema (fresh per run, at -postgres-url) and one asset of
// -partitions (6) partitions read through the replicas' consumer group
// (ingest.mode continuous, ingest.spread, the bundled default parser),
// pushing to a SOAR stand-in that answers after -soar-latency (20 ms),
// with delivery.concurrency -concurrency (16). Once every replica owns
// partitions, -messages (60,000) are produced; it reports messages/s until
// all are stored and until all are in the stand-in, and the ratio of 3
// replicas to one (target >= 2.2). Every run is checked: every message is
// in the stand-in exactly once. A quick run:
//
//	go run ./internal/bench replicas -messages 20000
package main

import (
	"fmt"
	"os"

	"github.com/soarkafka/soarkafka/parsers/sandbox"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case parserWorkerCommand:
		// A sandbox worker must do nothing before WorkerMain.
		os.Exit(sandbox.WorkerMain(os.Stdin, os.Stdout, os.Stderr))
	case serverChildCommand:
		os.Exit(serverChild(os.Args[2:]))
	case ingestChildCommand:
		os.Exit(ingestChild())
	case "postdata":
		err = runPostData(os.Args[2:])
	case "ingest":
		err = runIngest(os.Args[2:])
	case "deliver":
		err = runDeliver(os.Args[2:])
	case "scale":
		err = runScale(os.Args[2:])
	case "replicas":
		err = runReplicas(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: go run ./internal/bench postdata|ingest|deliver|scale|replicas [flags]   (-h for the flags)")
	os.Exit(2)
}
