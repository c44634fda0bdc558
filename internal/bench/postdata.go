package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	benchTopic      = "bench"
	maxMessageBytes = 1 << 20
)

type postDataFlags struct {
	latencyRequests int
	latencyWarmup   int
	listMessages    int
	listReps        int
	listExtras      bool
	ndjsonRecords   int
	ndjsonGzip      bool
	ndjsonChunked   bool
	ndjsonReps      int
	eventBytes      int
	partitions      int
	serverBin       string
	cpuProfileDir   string
	blackhole       bool
	// case 4
	concurrentPosts  int
	concurrentBytes  int
	concurrentBudget int64
}

func runPostData(args []string) error {
	var f postDataFlags
	fs := flag.NewFlagSet("postdata", flag.ContinueOnError)
	fs.IntVar(&f.latencyRequests, "latency-requests", 2000, "case 1: sequential single-message requests measured (after the warm-up)")
	fs.IntVar(&f.latencyWarmup, "latency-warmup", 200, "case 1: requests sent first and not measured")
	fs.IntVar(&f.listMessages, "list-messages", 10000, "case 2: messages in the JSON list")
	fs.IntVar(&f.listReps, "list-reps", 5, "case 2: measured repetitions (median reported), after one warm-up")
	fs.BoolVar(&f.listExtras, "list-extras", true, "case 2: also measure timeout > 0 and json_format pretty (information only)")
	fs.IntVar(&f.ndjsonRecords, "ndjson-records", 1000000, "case 3: records in the NDJSON body")
	fs.IntVar(&f.ndjsonReps, "ndjson-reps", 3, "case 3: runs of each path, taking turns (medians reported)")
	fs.BoolVar(&f.ndjsonChunked, "ndjson-chunked", true, "case 3: also send the body chunked, without Content-Length, as a client that does not know its size does (information only)")
	fs.BoolVar(&f.ndjsonGzip, "ndjson-gzip", false, "case 3: also send the body gzip-encoded (information only; compressing costs the client a core)")
	fs.IntVar(&f.eventBytes, "event-bytes", 1024, "average size of an event in bytes")
	fs.IntVar(&f.partitions, "partitions", 4, "partitions of the bench topic")
	fs.StringVar(&f.serverBin, "server-bin", "", "soarkafka binary to run (default: go build ./cmd/soarkafka)")
	fs.BoolVar(&f.blackhole, "blackhole", true, "kfake.BlackholeProduce: the broker stores nothing, so the raw figure is the client's alone; false stores every record (as a user's broker does; the 1M NDJSON case then holds ~1 GB in the bench process)")
	fs.IntVar(&f.concurrentPosts, "concurrent-posts", 20, "case 4: post data lists sent at once to a fresh server (0 skips the case)")
	fs.IntVar(&f.concurrentBytes, "concurrent-bytes", 5_000_000, "case 4: size of each list")
	fs.Int64Var(&f.concurrentBudget, "concurrent-budget", 0, "case 4: the server's server.body_memory_budget (0: its default)")
	fs.StringVar(&f.cpuProfileDir, "cpuprofile-dir", "", "write a CPU profile of each server process into this directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if f.latencyRequests < 1 || f.listMessages < 1 || f.listReps < 1 || f.ndjsonRecords < 1 || f.ndjsonReps < 1 || f.eventBytes < 200 {
		return errors.New("counts must be positive and -event-bytes at least 200")
	}

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()

	pool, err := newEventPool(4096, f.eventBytes)
	if err != nil {
		return err
	}
	logf("events: %d distinct CloudTrail-like events, %d bytes on average", len(pool.events), pool.avg)

	kopts := []kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(int32(f.partitions), benchTopic)}
	brokerMode := "storing"
	if f.blackhole {
		kopts = append(kopts, kfake.BlackholeProduce())
		brokerMode = "BlackholeProduce()"
	}
	cluster, err := kfake.NewCluster(kopts...)
	if err != nil {
		return fmt.Errorf("start kfake: %w", err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()[0]
	logf("kfake: %s, options NumBrokers(1), SeedTopics(%d, %q), %s", brokers, f.partitions, benchTopic, brokerMode)

	b := &bench{flags: f, pool: pool, brokers: brokers}
	if b.admin, err = kgo.NewClient(kgo.SeedBrokers(brokers)); err != nil {
		return err
	}
	defer b.admin.Close()

	tmp, err := os.MkdirTemp("", "soarkafka-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if f.cpuProfileDir != "" {
		if err := os.MkdirAll(f.cpuProfileDir, 0o755); err != nil {
			return err
		}
	}
	bin := f.serverBin
	if bin == "" && f.cpuProfileDir == "" {
		t := time.Now()
		if bin, err = buildServer(ctx, tmp); err != nil {
			return err
		}
		logf("built ./cmd/soarkafka in %s", time.Since(t).Round(time.Millisecond))
	}
	profile := func(name string) string {
		if f.cpuProfileDir == "" {
			return ""
		}
		p, _ := filepath.Abs(filepath.Join(f.cpuProfileDir, "server-"+name+".pprof"))
		return p
	}
	// The list body is a JSON string holding the list: escaped quotes
	// make it about a tenth larger than the list, over the server's
	// default max_body_bytes (10 MiB) at 10,000 x 1 KB.
	maxBody := int64(f.listMessages)*int64(pool.avg)*2 + 10<<20

	// Cases 1 and 2 share a server; case 3 gets a fresh one, so that its
	// peak RSS is the streaming endpoint's alone.
	srv, err := startServer(ctx, "postdata", bin, tmp, profile("postdata"), maxBody)
	if err != nil {
		return err
	}
	if err := srv.createAsset(ctx, brokers, benchTopic); err != nil {
		return srv.fail(err)
	}
	if err := b.latency(ctx, srv); err != nil {
		return srv.fail(err)
	}
	if err := b.list(ctx, srv); err != nil {
		return srv.fail(err)
	}
	rss, err := srv.stop()
	if err != nil {
		return fmt.Errorf("stop server: %w", err)
	}
	b.rows = append(b.rows, row{name: "post_data server peak RSS", ours: mb(rss), raw: "-", ratio: "-", target: "info", result: "-"})

	srv, err = startServer(ctx, "ndjson", bin, tmp, profile("ndjson"), maxBody)
	if err != nil {
		return err
	}
	if err := srv.createAsset(ctx, brokers, benchTopic); err != nil {
		return srv.fail(err)
	}
	if err := b.ndjson(ctx, srv); err != nil {
		return srv.fail(err)
	}
	rss, err = srv.stop()
	if err != nil {
		return fmt.Errorf("stop server: %w", err)
	}
	if b.ndjsonRan {
		b.rows = append(b.rows, row{name: "ndjson server peak RSS", ours: mb(rss), raw: "-", ratio: "-",
			target: "< 150 MB", result: passFail(rss < 150<<20)})
	}

	if f.concurrentPosts > 0 {
		var extra []string
		if f.concurrentBudget > 0 {
			extra = []string{"--server-body-memory-budget", strconv.FormatInt(f.concurrentBudget, 10)}
		}
		srv, err = startServer(ctx, "concurrent", bin, tmp, profile("concurrent"), maxBody+int64(f.concurrentBytes)*2, extra...)
		if err != nil {
			return err
		}
		if err := srv.createAsset(ctx, brokers, benchTopic); err != nil {
			return srv.fail(err)
		}
		if err := b.concurrent(ctx, srv); err != nil {
			return srv.fail(err)
		}
		if _, err := srv.stop(); err != nil {
			return fmt.Errorf("stop server: %w", err)
		}
	}

	fmt.Println()
	printTable(os.Stdout, b.rows)
	fmt.Printf("\nevents ~%d B CloudTrail-like; kfake NumBrokers(1) SeedTopics(%d) %s on loopback, shared by both paths; producer acks=all idempotent linger=0 compression=none; GOMAXPROCS=%d; run took %s\n",
		pool.avg, f.partitions, brokerMode, runtimeProcs(), time.Since(start).Round(time.Second))
	return nil
}

type bench struct {
	flags     postDataFlags
	pool      *eventPool
	brokers   string
	admin     *kgo.Client
	rows      []row
	ndjsonRan bool

	lastAnswerBytes int // of the last post data answer, for the log
}

// rawProducer returns a plain franz-go producer with the bench asset's
// producer settings.
func (b *bench) rawProducer(ctx context.Context) (*kgo.Client, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(b.brokers),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotence is kgo's default
		kgo.ProducerLinger(0),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerBatchMaxBytes(maxMessageBytes),
	)
	if err != nil {
		return nil, err
	}
	// Warm up: metadata, connection, producer id.
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: benchTopic, Value: []byte(`{}`)}).FirstErr(); err != nil {
		cl.Close()
		return nil, fmt.Errorf("raw producer warm-up: %w", err)
	}
	return cl, nil
}

// endOffsets is the sum of the bench topic's end offsets: blackholed
// produces still advance them, so the difference counts records written.
func (b *bench) endOffsets(ctx context.Context) (int64, error) {
	offs, err := kadm.NewClient(b.admin).ListEndOffsets(ctx, benchTopic)
	if err != nil {
		return 0, fmt.Errorf("list end offsets: %w", err)
	}
	var sum int64
	var ferr error
	offs.Each(func(o kadm.ListedOffset) {
		if o.Err != nil && ferr == nil {
			ferr = o.Err
		}
		sum += o.Offset
	})
	return sum, ferr
}

// written runs fn and checks that it wrote exactly want records.
func (b *bench) written(ctx context.Context, what string, want int, fn func() error) error {
	before, err := b.endOffsets(ctx)
	if err != nil {
		return err
	}
	if err := fn(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	after, err := b.endOffsets(ctx)
	if err != nil {
		return err
	}
	if got := after - before; got != int64(want) {
		return fmt.Errorf("%s: the topic's end offsets moved by %d, want %d", what, got, want)
	}
	return nil
}

// actionResult is the part of a post data answer the bench checks.
type actionResult struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	Data    []struct {
		Status string `json:"status"`
		Offset *int64 `json:"offset"`
	} `json:"data"`
	Summary map[string]any `json:"summary"`
}

// postData sends one post data request and checks that all n messages
// succeeded (and, with wantData, that each has its offset). The time is to
// the answer's last byte: checking the answer is not counted.
func (b *bench) postData(ctx context.Context, srv *server, body []byte, n int, wantData bool) (time.Duration, error) {
	t := time.Now()
	resp, err := srv.do(ctx, http.MethodPost, "/v1/actions/post_data", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(t)
	if err != nil {
		return d, err
	}
	if resp.StatusCode != http.StatusOK {
		return d, fmt.Errorf("post_data: %s: %.300s", resp.Status, raw)
	}
	var res actionResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return d, fmt.Errorf("post_data answer: %w", err)
	}
	if res.Status != "success" {
		return d, fmt.Errorf("post_data: status %s: %s", res.Status, res.Message)
	}
	if wantData {
		if len(res.Data) != n {
			return d, fmt.Errorf("post_data: %d data entries for %d messages", len(res.Data), n)
		}
		for i, e := range res.Data {
			if e.Status != "success" || e.Offset == nil {
				return d, fmt.Errorf("post_data: message %d: status %q, offset %v", i+1, e.Status, e.Offset)
			}
		}
	}
	b.lastAnswerBytes = len(raw)
	return d, nil
}

func postDataBody(data []byte, timeout int, format string) []byte {
	body, _ := json.Marshal(map[string]any{
		"asset": "bench",
		"parameters": map[string]any{"data_type": "JSON", "data": string(data), "topic": benchTopic,
			"timeout": timeout, "json_format": format},
	})
	return body
}

// latency is case 1.
func (b *bench) latency(ctx context.Context, srv *server) error {
	msg := []byte(`{"alert":"bench latency","severity":"high","source":"soarkafka-bench","count":1}`)
	body := postDataBody(msg, 5, "compact")
	n, warm := b.flags.latencyRequests, b.flags.latencyWarmup
	logf("case 1: post_data 1 message, timeout 5: %d warm-up + %d requests each path", warm, n)

	ours := make([]time.Duration, 0, n)
	err := b.written(ctx, "post_data 1 msg", warm+n, func() error {
		for i := 0; i < warm+n; i++ {
			d, err := b.postData(ctx, srv, body, 1, true)
			if err != nil {
				return fmt.Errorf("request %d: %w", i+1, err)
			}
			if i >= warm {
				ours = append(ours, d)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}

	cl, err := b.rawProducer(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	raw := make([]time.Duration, 0, n)
	err = b.written(ctx, "raw ProduceSync", warm+n, func() error {
		for i := 0; i < warm+n; i++ {
			t := time.Now()
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: benchTopic, Value: msg}).FirstErr(); err != nil {
				return err
			}
			if i >= warm {
				raw = append(raw, time.Since(t))
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	o50, o99 := percentile(ours, 50), percentile(ours, 99)
	r50, r99 := percentile(raw, 50), percentile(raw, 99)
	b.rows = append(b.rows, row{
		name:   "post_data 1 msg p50/p99",
		ours:   fmt.Sprintf("%s/%s ms", ms(o50), ms(o99)),
		raw:    fmt.Sprintf("%s/%s ms", ms(r50), ms(r99)),
		ratio:  "-",
		target: "p99 < 5 ms",
		result: passFail(o99 < 5*time.Millisecond),
	})
	logf("case 1: soarkafka p50 %s p99 %s ms (max %s); raw p50 %s p99 %s ms", ms(o50), ms(o99), ms(slices.Max(ours)), ms(r50), ms(r99))
	return nil
}

// list is case 2.
func (b *bench) list(ctx context.Context, srv *server) error {
	n, reps := b.flags.listMessages, b.flags.listReps
	list := b.pool.jsonList(n)
	// The raw producer sends the same values, split up front.
	var elems []json.RawMessage
	if err := json.Unmarshal(list, &elems); err != nil {
		return fmt.Errorf("bench list is not JSON: %w", err)
	}
	values := make([][]byte, len(elems))
	for i, e := range elems {
		values[i] = e
	}
	logf("case 2: post_data list of %d x ~%d B (%.1f MB), 1 warm-up + %d runs (raw: 3 per run)", n, b.pool.avg, float64(len(list))/1e6, reps)

	cl, err := b.rawProducer(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	rawRun := func() (time.Duration, error) {
		var d time.Duration
		err := b.written(ctx, "raw list", n, func() (err error) {
			d, err = rawProduce(ctx, cl, n, func(i int) []byte { return values[i] })
			return err
		})
		return d, err
	}
	oursRun := func(body []byte, wantData bool) (time.Duration, error) {
		var d time.Duration
		err := b.written(ctx, "post_data list", n, func() (err error) {
			d, err = b.postData(ctx, srv, body, n, wantData)
			return err
		})
		return d, err
	}

	compact := postDataBody(list, 0, "compact")
	var oursRates, rawRates []float64
	var cpu *cpuMeter
	for i := -1; i < reps; i++ { // -1: warm-up
		// A raw run takes milliseconds and varies with GC and scheduling:
		// three per repetition steady its median.
		for j := 0; j < 3; j++ {
			rd, err := rawRun()
			if err != nil {
				return err
			}
			if i >= 0 {
				rawRates = append(rawRates, rate(n, rd))
			}
		}
		if i == 0 {
			cpu = meterCPU(srv)
		}
		od, err := oursRun(compact, false)
		if err != nil {
			return err
		}
		if i >= 0 {
			oursRates = append(oursRates, rate(n, od))
		}
	}
	ours, raw := median(oursRates), median(rawRates)
	b.rows = append(b.rows, row{
		name: fmt.Sprintf("post_data list %s x 1KB", count(n)), ours: msgs(ours), raw: msgs(raw),
		ratio: pct(ours / raw), target: ">= 50%", result: passFail(ours/raw >= 0.5),
	})
	logf("case 2: %s (both paths, measured runs)", cpu)
	logf("case 2: soarkafka %s (runs %v; request %.1f MB, answer %.1f MB), raw %s (runs %v)", msgs(ours), rateList(oursRates),
		float64(len(compact))/1e6, float64(b.lastAnswerBytes)/1e6, msgs(raw), rateList(rawRates))

	if !b.flags.listExtras {
		return nil
	}
	extra := func(name string, body []byte, wantData bool) error {
		var rates []float64
		for i := 0; i < reps; i++ {
			d, err := oursRun(body, wantData)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			rates = append(rates, rate(n, d))
		}
		r := median(rates)
		b.rows = append(b.rows, row{name: name, ours: msgs(r), raw: msgs(raw), ratio: pct(r / raw), target: "info", result: "-"})
		logf("case 2: %s: %s (runs %v)", name, msgs(r), rateList(rates))
		return nil
	}
	if err := extra("  same, timeout 5 (per-msg data)", postDataBody(list, 5, "compact"), true); err != nil {
		return err
	}
	return extra("  same, json_format pretty", postDataBody(list, 0, "pretty"), false)
}

// rawProduce produces n records of the values value(0..n-1) with the raw
// producer, as fast as it takes them, and returns how long it took until
// every one was acknowledged.
func rawProduce(ctx context.Context, cl *kgo.Client, n int, value func(int) []byte) (time.Duration, error) {
	var failed atomic.Int64
	var first atomic.Value
	t := time.Now()
	for i := range n {
		cl.Produce(ctx, &kgo.Record{Topic: benchTopic, Value: value(i)}, func(_ *kgo.Record, err error) {
			if err != nil && failed.Add(1) == 1 {
				first.Store(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, err
	}
	d := time.Since(t)
	if failed.Load() > 0 {
		return 0, fmt.Errorf("%d records failed: %v", failed.Load(), first.Load())
	}
	return d, nil
}

// ndjson is case 3.
func (b *bench) ndjson(ctx context.Context, srv *server) error {
	n := b.flags.ndjsonRecords
	// Is the endpoint there? An empty body is a cheap probe.
	resp, err := srv.do(ctx, http.MethodPost, "/v1/assets/bench/records?topic="+benchTopic+"&results=failed", "application/x-ndjson", http.NoBody)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
		logf("case 3: skipped: POST /v1/assets/{name}/records answers %s (endpoint not there yet)", resp.Status)
		b.rows = append(b.rows, row{name: "ndjson", ours: "endpoint missing", raw: "-", ratio: "-", target: ">= 70%", result: "SKIP"})
		return nil
	}
	b.ndjsonRan = true
	if hwm, err := srv.peakRSS(); err == nil {
		logf("case 3: server peak RSS before the run: %s", mb(hwm))
	}
	logf("case 3: NDJSON %d x ~%d B (%.2f GB) streamed, results=failed", n, b.pool.avg, float64(n)*float64(b.pool.avg+1)/1e9)

	cl, err := b.rawProducer(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	rawRun := func() (float64, error) {
		var d time.Duration
		cpu := meterCPU(srv) // the server idles: this is the bench's
		err := b.written(ctx, "raw ndjson-equivalent", n, func() (err error) {
			// Each value built as the endpoint's reader would hand it over.
			d, err = rawProduce(ctx, cl, n, func(i int) []byte {
				return b.pool.appendEvent(make([]byte, 0, b.flags.eventBytes*5/4), i)
			})
			return err
		})
		if err != nil {
			return 0, err
		}
		logf("case 3: raw %s in %s; %s", msgs(rate(n, d)), d.Round(time.Millisecond), cpu)
		return rate(n, d), nil
	}
	run := func(framing bodyFraming) (float64, error) {
		var d time.Duration
		var cpu *cpuMeter
		err := b.written(ctx, "ndjson", n, func() error {
			t := time.Now()
			cpu = meterCPU(srv)
			err := b.postRecords(ctx, srv, n, framing)
			d = time.Since(t)
			return err
		})
		if err != nil {
			return 0, err
		}
		logf("case 3: soarkafka, %s: %s in %s; %s", framing, msgs(rate(n, d)), d.Round(time.Millisecond), cpu)
		return rate(n, d), nil
	}

	// Raw and ours take turns, and each figure is the median of its runs:
	// one run of either varies by a fifth from one to the next on two
	// shared cores.
	framings := []bodyFraming{sizedBody}
	if b.flags.ndjsonChunked {
		framings = append(framings, chunkedBody)
	}
	if b.flags.ndjsonGzip {
		framings = append(framings, gzipBody)
	}
	var rawRates []float64
	oursRates := map[bodyFraming][]float64{}
	for range b.flags.ndjsonReps {
		r, err := rawRun()
		if err != nil {
			return err
		}
		rawRates = append(rawRates, r)
		for _, f := range framings {
			o, err := run(f)
			if err != nil {
				return err
			}
			oursRates[f] = append(oursRates[f], o)
		}
	}
	raw := median(rawRates)
	logf("case 3: raw median %s (runs %v)", msgs(raw), rateList(rawRates))
	for _, f := range framings {
		ours := median(oursRates[f])
		logf("case 3: soarkafka, %s: median %s (runs %v)", f, msgs(ours), rateList(oursRates[f]))
		switch f {
		case sizedBody:
			b.rows = append(b.rows, row{name: fmt.Sprintf("ndjson %s x 1KB", count(n)), ours: msgs(ours), raw: msgs(raw),
				ratio: pct(ours / raw), target: ">= 70%", result: passFail(ours/raw >= 0.7)})
		case chunkedBody:
			b.rows = append(b.rows, row{name: "  same, chunked body", ours: msgs(ours), raw: msgs(raw), ratio: pct(ours / raw), target: "info", result: "-"})
		case gzipBody:
			b.rows = append(b.rows, row{name: "  same, gzip body", ours: msgs(ours), raw: msgs(raw), ratio: pct(ours / raw), target: "info", result: "-"})
		}
	}
	return nil
}

// bodyFraming is how the bench sends the NDJSON body.
type bodyFraming int

const (
	// sizedBody has a Content-Length, as curl --data-binary @file and
	// batching shippers (Cribl's HTTP destinations) send a body: the
	// server reads it in reads as large as its buffer.
	sizedBody bodyFraming = iota
	// chunkedBody has none, as a client streaming something of unknown
	// size sends: Go's client sends 32 KB chunks, and the server needs a
	// read (two system calls) per chunk. On two cores, moving a gigabyte
	// that way costs client and server together some 1.5 CPU-seconds (a
	// do-nothing Go server reads 1.1M lines/s chunked, 2M sized).
	chunkedBody
	// gzipBody is chunked and gzip-encoded.
	gzipBody
)

func (f bodyFraming) String() string {
	return [...]string{"Content-Length body", "chunked body (32 KB chunks)", "gzip chunked body"}[f]
}

// recordsSummary is the last line of the records endpoint's answer.
type recordsSummary struct {
	Summary *struct {
		Status    string `json:"status"`
		Message   string `json:"message"`
		Records   int    `json:"records"`
		Succeeded int    `json:"succeeded"`
		Failed    int    `json:"failed"`
	} `json:"summary"`
}

// postRecords streams n events as NDJSON (generated while being sent) and
// reads the answer as a stream, checking that all n succeeded.
func (b *bench) postRecords(ctx context.Context, srv *server, n int, framing bodyFraming) error {
	gz := framing == gzipBody
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var w io.Writer = pw
		var zw *gzip.Writer
		if gz {
			zw, _ = gzip.NewWriterLevel(pw, gzip.BestSpeed)
			w = zw
		}
		bw := bufio.NewWriterSize(w, 256<<10)
		line := make([]byte, 0, 4<<10)
		var err error
		for i := 0; i < n && err == nil; i++ {
			line = append(b.pool.appendEvent(line[:0], i), '\n')
			_, err = bw.Write(line)
		}
		if err == nil {
			err = bw.Flush()
		}
		if err == nil && zw != nil {
			err = zw.Close()
		}
		pw.CloseWithError(err) // nil: EOF
	}()
	defer wg.Wait()
	defer pr.Close() // unblocks the writer if the request ends early

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.url("/v1/assets/bench/records?topic="+benchTopic+"&results=failed"), pr)
	if err != nil {
		return err
	}
	req.Header.Set("ph-auth-token", srv.token)
	req.Header.Set("Content-Type", "application/x-ndjson")
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	if framing == sizedBody {
		req.ContentLength = b.pool.ndjsonSize(n) // the body is still generated while it is sent
	}
	resp, err := srv.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %.300s", resp.Status, b)
	}
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	failedLines := 0
	var firstFailed string
	for {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var s recordsSummary
			if bytes.HasPrefix(line, []byte(`{"summary"`)) && json.Unmarshal(line, &s) == nil && s.Summary != nil {
				sum := s.Summary
				if sum.Status != "success" || sum.Records != n || sum.Succeeded != n || sum.Failed != 0 {
					return fmt.Errorf("summary: status %s, records %d, succeeded %d, failed %d (want %d): %s",
						sum.Status, sum.Records, sum.Succeeded, sum.Failed, n, sum.Message)
				}
				if failedLines > 0 {
					return fmt.Errorf("summary says success but %d failed results came first (first: %s)", failedLines, firstFailed)
				}
				_, _ = io.Copy(io.Discard, br)
				return nil
			}
			if failedLines++; failedLines == 1 {
				firstFailed = string(bytes.TrimSpace(line))
			}
		}
		if err == io.EOF {
			return fmt.Errorf("answer ended without a summary line (%d failed results; first: %.300s)", failedLines, firstFailed)
		}
		if err != nil {
			return fmt.Errorf("reading the answer: %w", err)
		}
	}
}

// concurrent is case 4: concurrentPosts post data lists of about
// concurrentBytes each, sent at once, and what the server holds at its peak
// and once idle again. Answers are 200 with every message sent, or 503
// (over the server's body memory budget); anything else fails the run.
func (b *bench) concurrent(ctx context.Context, srv *server) error {
	n, size := b.flags.concurrentPosts, b.flags.concurrentBytes
	msgs := max(1, size/(b.pool.avg+1))
	body := postDataBody(b.pool.jsonList(msgs), 0, "compact")
	before, _ := srv.rss()
	logf("case 4: %d post_data lists of %d messages (%.1f MB body) at once; server RSS before %s", n, msgs, float64(len(body))/1e6, mb(before))
	var ok, busy atomic.Int64
	errc := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			resp, err := srv.do(ctx, http.MethodPost, "/v1/actions/post_data", "application/json", bytes.NewReader(body))
			if err != nil {
				errc <- err
				return
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
				busy.Add(1)
			case resp.StatusCode == http.StatusOK && bytes.Contains(raw, []byte(`"status":"success"`)):
				ok.Add(1)
			default:
				errc <- fmt.Errorf("post_data: %s: %.300s", resp.Status, raw)
			}
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	peak, err := srv.peakRSS()
	if err != nil {
		return err
	}
	time.Sleep(3 * time.Second) // the server gives memory back after 1 s idle
	idle, err := srv.rss()
	if err != nil {
		return err
	}
	logf("case 4: %d succeeded, %d answered 503; peak RSS %s, RSS 3 s after %s", ok.Load(), busy.Load(), mb(peak), mb(idle))
	name := fmt.Sprintf("post_data %d x %.0f MB at once", n, float64(len(body))/1e6)
	b.rows = append(b.rows,
		row{name: name + ": peak RSS", ours: mb(peak), raw: "-", ratio: "-", target: "info", result: fmt.Sprintf("%d ok, %d 503", ok.Load(), busy.Load())},
		row{name: "  same, RSS 3 s after", ours: mb(idle), raw: "-", ratio: "-", target: "info", result: "-"})
	return nil
}
