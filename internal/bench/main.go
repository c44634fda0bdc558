// Command bench measures soarkafka against the raw franz-go client in the
// same run, so every figure comes with a ratio, and checks each against the
// target of its issue.
//
// Usage, from the module root:
//
//	go run ./internal/bench postdata [flags]
//
// postdata (issue 4, "Speed") runs an in-process kfake broker on loopback
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
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == serverChildCommand {
		os.Exit(serverChild(os.Args[2:]))
	}
	if len(os.Args) < 2 || os.Args[1] != "postdata" {
		fmt.Fprintln(os.Stderr, "usage: go run ./internal/bench postdata [flags]   (-h for the flags)")
		os.Exit(2)
	}
	if err := runPostData(os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
