package sandbox

import (
	"context"
	"flag"
	"slices"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka/parsers/bundled/defaultparser"
	"github.com/soarkafka/soarkafka/soar"
)

var workerProfile = flag.String("worker-cpuprofile", "", "write a CPU profile of BenchmarkWorkerCall's worker process to this file")

// benchBatch is the batch of the benchmarks: 500 messages of ~1 KB.
func benchBatch() []soar.Message { return sampleMessages(500, 1000) }

// loadInProcess compiles a script with yaegi in the test process, exactly as
// a worker does (same options, same symbols). Only the benchmarks do this:
// the server never runs a script in-process.
func loadInProcess(tb testing.TB, name, source string) *session {
	tb.Helper()
	s := &session{log: &boundedBuffer{max: MaxLogSize}, trace: &boundedBuffer{max: 16 << 10}}
	if f := s.load(name, source); f != nil {
		tb.Fatalf("load in-process: %s", f.Message)
	}
	return s
}

// BenchmarkInterpretedInProcess: the default parser's source interpreted by
// yaegi in the test process (no worker), with the JSON encoding of the
// results the worker also does. The baseline of the worker's added cost.
func BenchmarkInterpretedInProcess(b *testing.B) {
	s := loadInProcess(b, "default", defaultparser.Source)
	msgs := benchBatch()
	for b.Loop() {
		if _, f := s.call("events", msgs); f != nil {
			b.Fatal(f.Message)
		}
	}
	b.ReportMetric(float64(len(msgs))*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64((b.Elapsed()/time.Duration(b.N)).Microseconds())/1000, "ms/batch")
}

// BenchmarkWorkerCall: 500 messages of ~1 KB per call through one worker
// running the default parser; reports messages/s, ms/batch, the worker
// start and load, and then, from rounds that run the same batch in turn
// through the worker, interpreted in-process (yaegi in the test process,
// the worker's code path minus the process: ParseMessages and the JSON
// encoding of its results) and natively, the medians of each
// (worker-ms/batch, interp-json-ms/batch, interp-ms/batch for the call
// alone, native-ms/batch) and the worker's added cost, the median of
// worker − interpreted-in-process per round (added-ms/batch). Taking them
// in turn keeps a busy machine from favouring one side.
//
// -worker-cpuprofile=FILE writes a CPU profile of the worker process over
// the b.Loop part.
func BenchmarkWorkerCall(b *testing.B) {
	cfg := testConfig(b)
	cfg.Timeout = 30 * time.Second
	var start time.Duration
	const starts = 5
	for range starts {
		w := startWorker(b, cfg)
		start += w.StartDuration()
		w.Close()
	}
	if *workerProfile != "" {
		cfg.Env = append(cfg.Env, envTestWorkerProfile+"="+*workerProfile)
	}
	w := startWorker(b, cfg)
	ctx := context.Background()
	t0 := time.Now()
	if err := w.Load(ctx, "default", defaultparser.Source); err != nil {
		b.Fatal(err)
	}
	load := time.Since(t0)
	msgs := benchBatch()
	s := loadInProcess(b, "default", defaultparser.Source)
	call := func() {
		if _, err := w.Call(ctx, "events", msgs); err != nil {
			b.Fatal(err)
		}
	}
	for range 3 { // warm up
		call()
	}

	b.ResetTimer()
	for b.Loop() {
		call()
	}
	b.StopTimer()
	perBatch := b.Elapsed() / time.Duration(b.N)

	const rounds = 40
	var worker, interpJSON, interp, native, added []time.Duration
	timed := func(f func()) time.Duration {
		t := time.Now()
		f()
		return time.Since(t)
	}
	for range rounds {
		dw := timed(call)
		dj := timed(func() {
			if _, f := s.call("events", msgs); f != nil {
				b.Fatal(f.Message)
			}
		})
		di := timed(func() {
			if _, err := s.fn("events", msgs); err != nil {
				b.Fatal(err)
			}
		})
		dn := timed(func() {
			if _, err := defaultparser.ParseMessages("events", msgs); err != nil {
				b.Fatal(err)
			}
		})
		worker, interpJSON, interp, native = append(worker, dw), append(interpJSON, dj), append(interp, di), append(native, dn)
		added = append(added, dw-dj)
	}
	if *workerProfile != "" {
		stopGracefully(b, w)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	median := func(ds []time.Duration) float64 { slices.Sort(ds); return ms(ds[len(ds)/2]) }
	b.ReportMetric(float64(len(msgs))*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(ms(perBatch), "ms/batch")
	b.ReportMetric(float64(start.Microseconds())/starts/1000, "start-ms")
	b.ReportMetric(ms(load), "load-ms")
	b.ReportMetric(median(worker), "worker-ms/batch")
	b.ReportMetric(median(interpJSON), "interp-json-ms/batch")
	b.ReportMetric(median(interp), "interp-ms/batch")
	b.ReportMetric(median(native), "native-ms/batch")
	b.ReportMetric(median(added), "added-ms/batch")
}

// TestInProcessMatchesWorker: the in-process baseline of the benchmarks
// runs the same thing as the worker (same bytes out).
func TestInProcessMatchesWorker(t *testing.T) {
	src := body(`return []soar.Result{{Container: soar.Container{Name: topic}, Artifacts: []soar.Artifact{{CEF: map[string]any{"m": messages[0].Message, "k": string(messages[0].Key)}}}}}, nil`)
	s := loadInProcess(t, "p.go", src)
	msgs := sampleMessages(2, 10)
	frame, f := s.call("events", msgs)
	if f != nil {
		t.Fatal(f.Message)
	}
	d := dec{b: frame[frameHead:]}
	_, _ = d.string(), d.int() // log, memory
	want := d.b
	w := startWorker(t, testConfig(t))
	if err := w.Load(context.Background(), "p.go", src); err != nil {
		t.Fatal(err)
	}
	got, err := w.Call(context.Background(), "events", msgs)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Results) != string(want) {
		t.Errorf("worker %s\nin-process %s", got.Results, want)
	}
}

// BenchmarkPoolCall: 10,000 messages of ~1 KB in batches of 500 through a
// Pool, from two callers at once (two workers on two cores), as the poll of
// two assets would; reports messages/s.
func BenchmarkPoolCall(b *testing.B) {
	p := NewPool(PoolConfig{Worker: testConfig(b)})
	b.Cleanup(func() { p.Close() })
	msgs := benchBatch()
	ctx := context.Background()
	// Warm: start and load both workers outside the timing.
	done := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := p.Call(ctx, "bench", "default.go", defaultparser.Source, "events", msgs)
			done <- err
		}()
	}
	for range 2 {
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	n := 0
	for b.Loop() {
		for range 10 { // 2 callers x 10 batches x 500 = 10,000 messages
			for range 2 {
				go func() {
					_, err := p.Call(ctx, "bench", "default.go", defaultparser.Source, "events", msgs)
					done <- err
				}()
			}
			for range 2 {
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			}
			n += 2 * len(msgs)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
}
