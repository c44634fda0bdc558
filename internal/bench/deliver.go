package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/soarkafka/soarkafka/internal/testenv"
)

const (
	deliverLatencyTopic = "bench-deliver-latency"
	deliverRawTopic     = "bench-deliver-raw"
	deliverBacklogTopic = "bench-deliver-backlog"

	deliverLatencyP50Target = time.Second
	deliverLatencyP99Target = 3 * time.Second
	deliverRatioTarget      = 0.80

	// warmupMessages go through the latency asset before the measured
	// run, so that its continuous poll and delivery worker are running:
	// their start is not what the latency target is about.
	warmupMessages = 10
)

type deliverFlags struct {
	serverBin      string
	rate           int
	seconds        float64
	backlog        int
	partitions     int
	size           int
	soarLatency    time.Duration
	batchSize      int
	maxBatchWaitMS int
	concurrency    int
	perRequest     int
	drainTimeout   time.Duration
	cases          string
	cpuProfileDir  string
}

func runDeliver(args []string) error {
	var f deliverFlags
	fs := flag.NewFlagSet("deliver", flag.ContinueOnError)
	fs.StringVar(&f.serverBin, "server-bin", "", "soarkafka binary to run (default: built from ./cmd/soarkafka into a temporary directory; \"self\": this binary)")
	fs.IntVar(&f.rate, "rate", 1000, "latency case: messages produced per second")
	fs.Float64Var(&f.seconds, "seconds", 20, "latency case: how long the rate is sustained")
	fs.IntVar(&f.backlog, "backlog", 50_000, "throughput case: messages on the topic before the asset is made")
	fs.IntVar(&f.partitions, "partitions", 4, "partitions of each topic")
	fs.IntVar(&f.size, "size", 1024, "average message size in bytes (CloudTrail-like JSON)")
	fs.DurationVar(&f.soarLatency, "soar-latency", 5*time.Millisecond, "latency the SOAR stand-in adds to every request")
	fs.IntVar(&f.batchSize, "batch-size", 1000, "the assets' ingest.batch_size")
	fs.IntVar(&f.maxBatchWaitMS, "max-batch-wait-ms", 500, "the assets' ingest.max_batch_wait_ms")
	fs.IntVar(&f.concurrency, "concurrency", 4, "the assets' delivery.concurrency, and the bare loop's")
	fs.IntVar(&f.perRequest, "artifacts-per-request", 100, "the assets' delivery.artifacts_per_request, and the bare loop's")
	fs.DurationVar(&f.drainTimeout, "drain-timeout", 2*time.Minute, "longest wait for every message to reach the stand-in")
	fs.StringVar(&f.cases, "cases", "latency,throughput", "comma-separated cases to run: latency, throughput")
	fs.StringVar(&f.cpuProfileDir, "cpuprofile-dir", "", "the server runs under a CPU profile written to DIR/server-deliver.pprof (the bench re-executes itself as the server)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	_, err := deliverBench(context.Background(), f, os.Stdout)
	return err
}

// deliverReport is what a run measured, for the table and the tests.
type deliverReport struct {
	latency, rawLatency *latencyResult
	throughput          *throughputResult
	rows                []deliverRow
}

func deliverBench(ctx context.Context, f deliverFlags, out io.Writer) (*deliverReport, error) {
	if f.rate < 1 || f.seconds <= 0 || f.backlog < 1 || f.partitions < 1 || f.batchSize < 1 || f.concurrency < 1 || f.perRequest < 1 || f.size < 200 {
		return nil, errors.New("counts must be positive and -size at least 200")
	}
	var doLatency, doThroughput bool
	for c := range strings.SplitSeq(f.cases, ",") {
		switch strings.TrimSpace(c) {
		case "latency":
			doLatency = true
		case "throughput":
			doThroughput = true
		default:
			return nil, fmt.Errorf("-cases: unknown case %q; the cases are latency, throughput", c)
		}
	}
	start := time.Now()
	load0 := loadAverage()
	ctx, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()

	pool, err := newEventPool(4096, f.size)
	if err != nil {
		return nil, err
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1),
		kfake.SeedTopics(int32(f.partitions), deliverLatencyTopic, deliverRawTopic, deliverBacklogTopic))
	if err != nil {
		return nil, fmt.Errorf("start kfake: %w", err)
	}
	defer cluster.Close()
	brokers := strings.Join(cluster.ListenAddrs(), ",")
	logf("kfake: %s, %d partitions per topic; events ~%d bytes", brokers, f.partitions, pool.avg)

	tmp, err := os.MkdirTemp("", "soarkafka-bench-deliver-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := f.serverBin
	if bin == "" {
		logf("building ./cmd/soarkafka")
		if bin, err = buildServer(ctx, tmp); err != nil {
			return nil, err
		}
	}
	profile := ""
	if f.cpuProfileDir != "" {
		if err := os.MkdirAll(f.cpuProfileDir, 0o755); err != nil {
			return nil, err
		}
		if profile, err = filepath.Abs(filepath.Join(f.cpuProfileDir, "server-deliver.pprof")); err != nil {
			return nil, err
		}
	}
	srv, err := startServer(ctx, "deliver", bin, tmp, profile, 10<<20)
	if err != nil {
		return nil, err
	}
	defer func() {
		if _, err := srv.stop(); err != nil {
			logf("stop the server: %v", err)
		}
	}()
	logf("soarkafka serving on %s (SQLite in %s)", srv.addr, tmp)

	rep := &deliverReport{}
	if doLatency {
		if rep.latency, err = soarkafkaLatency(ctx, srv, brokers, pool, f); err != nil {
			return nil, srv.fail(fmt.Errorf("latency: %w", err))
		}
		if rep.rawLatency, err = rawLatency(ctx, brokers, pool, f); err != nil {
			return nil, fmt.Errorf("latency, bare path: %w", err)
		}
	}
	if doThroughput {
		if rep.throughput, err = soarkafkaThroughput(ctx, srv, brokers, pool, f); err != nil {
			return nil, srv.fail(fmt.Errorf("throughput: %w", err))
		}
	}
	rep.rows = deliverRows(rep, f)
	fmt.Fprintln(out)
	printDeliverTable(out, rep.rows)
	fmt.Fprintln(out)
	printDeliverDetails(out, rep, f)
	fmt.Fprintf(out, "\nSOAR stand-in (internal/testenv) with %s added to every request, in the bench process on loopback; kfake NumBrokers(1) in the bench process, %d partitions; "+
		"soarkafka a server process on SQLite, assets in ingest.mode continuous (batch_size %d, max_batch_wait_ms %d), the bundled default parser, delivery.concurrency %d, artifacts_per_request %d; "+
		"events ~%d B CloudTrail-like; GOMAXPROCS=%d; load average %s at the start, %s at the end; run took %s\n",
		f.soarLatency, f.partitions, f.batchSize, f.maxBatchWaitMS, f.concurrency, f.perRequest, pool.avg, runtimeProcs(), load0, loadAverage(), time.Since(start).Round(time.Second))
	return rep, nil
}

// ---------------------------------------------------------------------
// The SOAR stand-in, behind a recorder.

// soarSink is the SOAR stand-in with its added latency, served through a
// recorder that times every request at the stand-in, counts how many are
// in flight and, when asked, keeps the POST bodies (the bare loop sends
// them again).
type soarSink struct {
	soar     *soarStandIn
	srv      *http.Server
	url      string
	capture  bool
	mu       sync.Mutex
	captured []capturedRequest
	durs     map[string][]time.Duration // by "POST /rest/container"
	inflight int
	maxIn    int
	busy     time.Duration
	first    time.Time
	last     time.Time
}

type capturedRequest struct {
	path string
	body []byte
}

func (k *soarSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	key := r.Method + " " + r.URL.Path
	t0 := time.Now()
	k.mu.Lock()
	k.inflight++
	k.maxIn = max(k.maxIn, k.inflight)
	if k.first.IsZero() {
		k.first = t0
	}
	if k.capture && r.Method == http.MethodPost {
		k.captured = append(k.captured, capturedRequest{path: r.URL.Path, body: body})
	}
	k.mu.Unlock()
	defer func() {
		now := time.Now()
		k.mu.Lock()
		k.inflight--
		k.durs[key] = append(k.durs[key], now.Sub(t0))
		k.busy += now.Sub(t0)
		k.last = now
		k.mu.Unlock()
	}()
	r.Body = io.NopCloser(bytes.NewReader(body))
	k.soar.ServeHTTP(w, r)
}

func (k *soarSink) close() {
	_ = k.srv.Close()
	k.soar.stop()
}

// sinkStats is what the stand-in saw of one run.
type sinkStats struct {
	requests map[string]int
	mean     time.Duration
	p50, p99 time.Duration
	meanConc float64 // busy time over the span from the first request to the last answer
	maxConc  int
	span     time.Duration
}

func (k *soarSink) stats() sinkStats {
	k.mu.Lock()
	defer k.mu.Unlock()
	st := sinkStats{requests: map[string]int{}, maxConc: k.maxIn, span: k.last.Sub(k.first)}
	var all []time.Duration
	for key, ds := range k.durs {
		st.requests[key] = len(ds)
		all = append(all, ds...)
	}
	if len(all) > 0 {
		st.mean = k.busy / time.Duration(len(all))
		st.p50, st.p99 = percentile(all, 50), percentile(all, 99)
	}
	if st.span > 0 {
		st.meanConc = k.busy.Seconds() / st.span.Seconds()
	}
	return st
}

func (st sinkStats) String() string {
	keys := make([]string, 0, len(st.requests))
	for k := range st.requests {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %s", count(st.requests[k]), strings.TrimPrefix(k, "POST /rest/")))
	}
	return fmt.Sprintf("%s requests; at the stand-in mean %s p50 %s p99 %s ms; in flight mean %.2f max %d over %.2fs",
		strings.Join(parts, ", "), ms(st.mean), ms(st.p50), ms(st.p99), st.meanConc, st.maxConc, st.span.Seconds())
}

// delivered is what the stand-in holds: per artifact
// source_data_identifier how many and when the first was stored.
type delivered struct {
	containers int
	stored     map[string]time.Time
	container  map[string]int // the SOAR container of the first
	times      map[string]int
}

func (k *soarSink) delivered() delivered {
	d := delivered{stored: map[string]time.Time{}, container: map[string]int{}, times: map[string]int{}}
	for _, c := range k.soar.Containers() {
		d.containers++
		for _, a := range k.soar.Artifacts(c.ID) {
			d.times[a.SourceDataIdentifier]++
			if _, ok := d.stored[a.SourceDataIdentifier]; !ok {
				d.stored[a.SourceDataIdentifier] = a.Created
				d.container[a.SourceDataIdentifier] = c.ID
			}
		}
	}
	return d
}

// checkOnce says whether every message produced (want, by
// source_data_identifier "partition:offset") is in the stand-in exactly
// once, and nothing else is.
func checkOnce(want map[string]time.Time, got delivered) error {
	var missing, twice, unknown []string
	for sdi := range want {
		switch n := got.times[sdi]; {
		case n == 0:
			missing = append(missing, sdi)
		case n > 1:
			twice = append(twice, fmt.Sprintf("%s ×%d", sdi, n))
		}
	}
	for sdi := range got.times {
		if _, ok := want[sdi]; !ok {
			unknown = append(unknown, sdi)
		}
	}
	if len(missing)+len(twice)+len(unknown) == 0 {
		return nil
	}
	first := func(s []string) string {
		slices.Sort(s)
		return strings.Join(s[:min(5, len(s))], ", ")
	}
	return fmt.Errorf("not every message in the SOAR once: %d produced, %d missing (%s), %d more than once (%s), %d not produced (%s)",
		len(want), len(missing), first(missing), len(twice), first(twice), len(unknown), first(unknown))
}

// waitDelivered waits until the stand-in holds n artifacts and, when
// asset is set, soarkafka's outbox of the asset has nothing waiting or in
// flight (so a late duplicate would be seen).
func waitDelivered(ctx context.Context, k *soarSink, srv *server, asset string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		_, arts := k.soar.Counts()
		if arts >= n {
			if asset == "" {
				return nil
			}
			st, err := deliveryStatus(ctx, srv, asset)
			if err != nil {
				return err
			}
			if st.Pending == 0 && st.Sending == 0 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			err := fmt.Errorf("the SOAR stand-in holds %d artifacts %s after the last message, want %d", arts, timeout, n)
			if asset != "" {
				st, _ := deliveryStatus(ctx, srv, asset)
				err = fmt.Errorf("%w (delivery status %+v)", err, st)
			}
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ---------------------------------------------------------------------
// Producing.

// producedSet is what was produced: the Kafka timestamp of each record,
// by the source_data_identifier the default parser gives it.
type producedSet struct {
	mu     sync.Mutex
	ts     map[string]time.Time
	failed int
	err    error
}

func newProducedSet() *producedSet { return &producedSet{ts: map[string]time.Time{}} }

func (p *producedSet) record(r *kgo.Record, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.failed++
		if p.err == nil {
			p.err = err
		}
		return
	}
	p.ts[sourceID(r.Partition, r.Offset)] = r.Timestamp
}

func (p *producedSet) check(want int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failed > 0 {
		return fmt.Errorf("%d records failed to produce: %w", p.failed, p.err)
	}
	if len(p.ts) != want {
		return fmt.Errorf("%d records produced, want %d", len(p.ts), want)
	}
	return nil
}

func (p *producedSet) snapshot() map[string]time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return copyTimes(p.ts)
}

func copyTimes(m map[string]time.Time) map[string]time.Time {
	out := make(map[string]time.Time, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// sourceID is the default parser's source_data_identifier of a record.
func sourceID(partition int32, offset int64) string {
	return strconv.FormatInt(int64(partition), 10) + ":" + strconv.FormatInt(offset, 10)
}

func newDeliverProducer(brokers string, linger time.Duration) (*kgo.Client, error) {
	return kgo.NewClient(
		kgo.SeedBrokers(strings.Split(brokers, ",")...),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.ProducerLinger(linger),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)
}

// producePaced produces rate messages a second for d, each stamped with
// the time it was handed to the client (its Kafka timestamp), and waits
// for every acknowledgement.
func producePaced(ctx context.Context, cl *kgo.Client, topic string, pool *eventPool, rate int, d time.Duration, seq0 int, set *producedSet) (int, error) {
	total := int(float64(rate) * d.Seconds())
	t0 := time.Now()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	n := 0
	for n < total {
		due := min(total, int(time.Since(t0).Seconds()*float64(rate))+1)
		for ; n < due; n++ {
			v := pool.appendEvent(make([]byte, 0, pool.avg+pool.avg/4), seq0+n)
			cl.Produce(ctx, &kgo.Record{Topic: topic, Value: v, Timestamp: time.Now()}, set.record)
		}
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-tick.C:
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return n, err
	}
	return n, nil
}

// ---------------------------------------------------------------------
// soarkafka through its API.

func (s *server) call(ctx context.Context, method, path string, body any, want int, into any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	resp, err := s.do(ctx, method, path, "application/json", rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if into != nil {
		if err := json.Unmarshal(b, into); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

// createPushAsset makes a continuous push asset on topic, delivering to
// the stand-in behind k.
func createPushAsset(ctx context.Context, srv *server, name, brokers, topic string, k *soarSink, assetID int, f deliverFlags) error {
	return srv.call(ctx, http.MethodPost, "/v1/assets", map[string]any{
		"name": name,
		"config": map[string]any{
			"hosts": brokers, "topic": topic, "read_from_beginning": true,
			"ingest": map[string]any{"mode": "continuous", "batch_size": f.batchSize, "max_batch_wait_ms": f.maxBatchWaitMS},
			"delivery": map[string]any{"mode": "push", "url": k.url, "token": k.soar.Token, "asset_id": assetID,
				"concurrency": f.concurrency, "artifacts_per_request": f.perRequest},
		},
	}, http.StatusCreated, nil)
}

type deliveryReport struct {
	Pending   int64  `json:"pending"`
	Sending   int64  `json:"sending"`
	Delivered int64  `json:"delivered"`
	Dead      int64  `json:"dead_lettered"`
	LastError string `json:"last_error"`
	Worker    string `json:"worker"`
}

func deliveryStatus(ctx context.Context, srv *server, asset string) (deliveryReport, error) {
	var r deliveryReport
	err := srv.call(ctx, http.MethodGet, "/v1/assets/"+asset+"/delivery", nil, http.StatusOK, &r)
	return r, err
}

// storedTimes is when soarkafka stored each artifact of asset (its
// create_time), by source_data_identifier.
func storedTimes(ctx context.Context, srv *server, asset string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	for page := 0; ; page++ {
		var ans struct {
			NumPages int `json:"num_pages"`
			Data     []struct {
				SDI        string `json:"source_data_identifier"`
				CreateTime string `json:"create_time"`
			} `json:"data"`
		}
		q := url.Values{"asset": {asset}, "page": {strconv.Itoa(page)}, "page_size": {"1000"}}
		if err := srv.call(ctx, http.MethodGet, "/v1/artifacts?"+q.Encode(), nil, http.StatusOK, &ans); err != nil {
			return nil, err
		}
		for _, a := range ans.Data {
			t, err := time.Parse("2006-01-02T15:04:05.000000Z", a.CreateTime)
			if err != nil {
				return nil, fmt.Errorf("artifact %s: create_time: %w", a.SDI, err)
			}
			out[a.SDI] = t
		}
		if page+1 >= ans.NumPages || len(ans.Data) == 0 {
			return out, nil
		}
	}
}

// workerStats is what soarkafka's metrics say of an asset's delivery.
type workerStats struct {
	requests    float64
	requestMean time.Duration
	delivered   float64
	failed      float64
}

func (w workerStats) String() string {
	return fmt.Sprintf("%.0f requests, mean %s ms as the worker times them; %.0f outbox rows delivered, %.0f failed attempts",
		w.requests, ms(w.requestMean), w.delivered, w.failed)
}

// scrapeWorker reads the asset's soarkafka_delivery_* series from
// /metrics.
func scrapeWorker(ctx context.Context, srv *server, asset string) (workerStats, error) {
	resp, err := srv.do(ctx, http.MethodGet, "/metrics", "", nil)
	if err != nil {
		return workerStats{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return workerStats{}, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	label := `asset="` + asset + `"`
	sum := func(name string) float64 {
		var total float64
		for line := range strings.SplitSeq(string(b), "\n") {
			if !strings.HasPrefix(line, name+"{") || !strings.Contains(line, label) {
				continue
			}
			i := strings.LastIndexByte(line, ' ')
			v, _ := strconv.ParseFloat(line[i+1:], 64)
			total += v
		}
		return total
	}
	w := workerStats{requests: sum("soarkafka_delivery_request_seconds_count"), delivered: sum("soarkafka_delivery_delivered_total"),
		failed: sum("soarkafka_delivery_failed_total")}
	if w.requests > 0 {
		w.requestMean = time.Duration(sum("soarkafka_delivery_request_seconds_sum") / w.requests * 1e9)
	}
	return w, nil
}

// ---------------------------------------------------------------------
// Case 1: latency at a sustained rate.

type latencyResult struct {
	messages, containers int
	p50, p99, max        time.Duration
	// Where it went (soarkafka only): Kafka timestamp to stored in
	// soarkafka's database, and stored to stored in the SOAR.
	storedP50, storedP99   time.Duration
	deliverP50, deliverP99 time.Duration
	sink                   sinkStats
	worker                 workerStats
	cpu                    string
}

// soarStandIn is the stand-in and what stops it.
type soarStandIn struct {
	*testenv.SOAR
	stop func()
}

func startSOARStandIn(latency time.Duration) (*soarStandIn, error) {
	s, stop, err := testenv.StartSOAR()
	if err != nil {
		return nil, err
	}
	s.SetLatency(latency)
	return &soarStandIn{SOAR: s, stop: stop}, nil
}

func listenLoopback() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

func newSOARSink(latency time.Duration, capture bool) (*soarSink, error) {
	soar, err := startSOARStandIn(latency)
	if err != nil {
		return nil, err
	}
	k := &soarSink{soar: soar, capture: capture, durs: map[string][]time.Duration{}}
	ln, err := listenLoopback()
	if err != nil {
		soar.stop()
		return nil, err
	}
	k.srv = &http.Server{Handler: k, ReadHeaderTimeout: 10 * time.Second}
	k.url = "http://" + ln.Addr().String()
	go func() { _ = k.srv.Serve(ln) }()
	return k, nil
}

func soarkafkaLatency(ctx context.Context, srv *server, brokers string, pool *eventPool, f deliverFlags) (*latencyResult, error) {
	k, err := newSOARSink(f.soarLatency, false)
	if err != nil {
		return nil, err
	}
	defer k.close()
	const asset = "bench-latency"
	if err := createPushAsset(ctx, srv, asset, brokers, deliverLatencyTopic, k, 1, f); err != nil {
		return nil, err
	}
	defer func() {
		// Its continuous poll and worker would share the machine with
		// the next case.
		if err := srv.call(ctx, http.MethodDelete, "/v1/assets/"+asset, nil, http.StatusNoContent, nil); err != nil {
			logf("delete asset %s: %v", asset, err)
		}
	}()
	cl, err := newDeliverProducer(brokers, 0)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	set := newProducedSet()
	if _, err := producePaced(ctx, cl, deliverLatencyTopic, pool, 1000, warmupMessages*time.Millisecond, 0, set); err != nil {
		return nil, fmt.Errorf("produce: %w", err)
	}
	if err := waitDelivered(ctx, k, srv, asset, warmupMessages, f.drainTimeout); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	warm := set.snapshot()
	w0, err := scrapeWorker(ctx, srv, asset)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.durs, k.busy, k.maxIn, k.first = map[string][]time.Duration{}, 0, 0, time.Time{}
	k.mu.Unlock()
	cpu := meterCPU(srv)
	d := time.Duration(f.seconds * float64(time.Second))
	logf("latency: soarkafka: producing %d msg/s for %s", f.rate, d)
	n, err := producePaced(ctx, cl, deliverLatencyTopic, pool, f.rate, d, warmupMessages, set)
	if err != nil {
		return nil, fmt.Errorf("produce: %w", err)
	}
	if err := set.check(warmupMessages + n); err != nil {
		return nil, err
	}
	if err := waitDelivered(ctx, k, srv, asset, warmupMessages+n, f.drainTimeout); err != nil {
		return nil, err
	}
	res := &latencyResult{messages: n, cpu: cpu.String(), sink: k.stats()}
	w1, err := scrapeWorker(ctx, srv, asset)
	if err != nil {
		return nil, err
	}
	res.worker = workerStats{requests: w1.requests - w0.requests, delivered: w1.delivered - w0.delivered, failed: w1.failed - w0.failed}
	if res.worker.requests > 0 {
		res.worker.requestMean = time.Duration((float64(w1.requestMean)*w1.requests - float64(w0.requestMean)*w0.requests) / res.worker.requests)
	}
	want := set.snapshot()
	got := k.delivered()
	if err := checkOnce(want, got); err != nil {
		return nil, err
	}
	stored, err := storedTimes(ctx, srv, asset)
	if err != nil {
		return nil, err
	}
	var lat, toStore, toSOAR []time.Duration
	measured := map[int]bool{} // containers of the measured messages
	for sdi, ts := range want {
		if _, ok := warm[sdi]; ok {
			continue
		}
		measured[got.container[sdi]] = true
		lat = append(lat, got.stored[sdi].Sub(ts))
		if st, ok := stored[sdi]; ok {
			toStore = append(toStore, st.Sub(ts))
			toSOAR = append(toSOAR, got.stored[sdi].Sub(st))
		}
	}
	res.containers = len(measured)
	res.p50, res.p99, res.max = percentile(lat, 50), percentile(lat, 99), percentile(lat, 100)
	if len(toStore) > 0 {
		res.storedP50, res.storedP99 = percentile(toStore, 50), percentile(toStore, 99)
		res.deliverP50, res.deliverP99 = percentile(toSOAR, 50), percentile(toSOAR, 99)
	}
	logf("latency: soarkafka: %d messages in %d containers, each in the SOAR once; p50 %s p99 %s max %s ms (to stored p50 %s p99 %s; stored to SOAR p50 %s p99 %s); %s",
		n, res.containers, ms(res.p50), ms(res.p99), ms(res.max), ms(res.storedP50), ms(res.storedP99), ms(res.deliverP50), ms(res.deliverP99), res.cpu)
	logf("latency: soarkafka: stand-in: %s; worker: %s", res.sink, res.worker)
	return res, nil
}

// rawLatency is the floor of the latency case: a franz-go consumer that
// posts what each fetch returns as one container (its first
// artifacts_per_request artifacts inline, the rest in requests of as
// many), up to concurrency containers at once, to a stand-in of its own,
// at the same rate for the same time. No batching wait, no database.
func rawLatency(ctx context.Context, brokers string, pool *eventPool, f deliverFlags) (*latencyResult, error) {
	k, err := newSOARSink(f.soarLatency, false)
	if err != nil {
		return nil, err
	}
	defer k.close()
	cons, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.ConsumeTopics(deliverRawTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond), kgo.FetchMaxBytes(16<<20))
	if err != nil {
		return nil, err
	}
	defer cons.Close()
	hc := bareClient(f.concurrency)
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	jobs := make(chan []*kgo.Record, f.concurrency)
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var postErr error
	for range f.concurrency {
		wg.Go(func() {
			for recs := range jobs {
				if err := postRecords(cctx, hc, k, recs, f.perRequest); err != nil && cctx.Err() == nil {
					errMu.Lock()
					postErr = firstErr(postErr, err)
					errMu.Unlock()
				}
			}
		})
	}
	wg.Go(func() {
		defer close(jobs)
		for cctx.Err() == nil {
			fs := cons.PollFetches(cctx)
			var recs []*kgo.Record
			fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
			if len(recs) > 0 {
				select {
				case jobs <- recs:
				case <-cctx.Done():
				}
			}
		}
	})
	defer wg.Wait()
	defer stop()

	cl, err := newDeliverProducer(brokers, 0)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	set := newProducedSet()
	cpu := meterCPUSelf()
	d := time.Duration(f.seconds * float64(time.Second))
	logf("latency: bare path: producing %d msg/s for %s", f.rate, d)
	n, err := producePaced(ctx, cl, deliverRawTopic, pool, f.rate, d, 0, set)
	if err != nil {
		return nil, fmt.Errorf("produce: %w", err)
	}
	if err := set.check(n); err != nil {
		return nil, err
	}
	if err := waitDelivered(ctx, k, nil, "", n, f.drainTimeout); err != nil {
		return nil, err
	}
	errMu.Lock()
	err = postErr
	errMu.Unlock()
	if err != nil {
		return nil, err
	}
	want := set.snapshot()
	got := k.delivered()
	if err := checkOnce(want, got); err != nil {
		return nil, err
	}
	var lat []time.Duration
	for sdi, ts := range want {
		lat = append(lat, got.stored[sdi].Sub(ts))
	}
	res := &latencyResult{messages: n, containers: got.containers, sink: k.stats(), cpu: cpu()}
	res.p50, res.p99, res.max = percentile(lat, 50), percentile(lat, 99), percentile(lat, 100)
	logf("latency: bare path: %d messages in %d containers, each once; p50 %s p99 %s max %s ms; %s",
		n, got.containers, ms(res.p50), ms(res.p99), ms(res.max), res.cpu)
	logf("latency: bare path: stand-in: %s", res.sink)
	return res, nil
}

func firstErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// meterCPUSelf measures the bench process's cores over a run.
func meterCPUSelf() func() string {
	self, start := cpuTime(os.Getpid()), time.Now()
	return func() string {
		return fmt.Sprintf("CPU: bench (client, kfake, stand-in) %.2f cores", (cpuTime(os.Getpid())-self).Seconds()/time.Since(start).Seconds())
	}
}

// rawContainer and rawArtifact are the shape the delivery worker posts
// for the default parser's output.
type rawContainer struct {
	Name          string        `json:"name"`
	Description   string        `json:"description"`
	Label         string        `json:"label"`
	AssetID       int           `json:"asset_id"`
	SDI           string        `json:"source_data_identifier"`
	RunAutomation bool          `json:"run_automation"`
	Artifacts     []rawArtifact `json:"artifacts,omitempty"`
}

type rawArtifact struct {
	Name          string         `json:"name"`
	SDI           string         `json:"source_data_identifier"`
	CEF           map[string]any `json:"cef"`
	RunAutomation *bool          `json:"run_automation,omitempty"`
	ContainerID   int64          `json:"container_id,omitempty"`
}

func postRecords(ctx context.Context, hc *http.Client, k *soarSink, recs []*kgo.Record, per int) error {
	arts := make([]rawArtifact, len(recs))
	no := false
	for i, r := range recs {
		msg := string(r.Value)
		arts[i] = rawArtifact{Name: msg[:min(100, len(msg))], SDI: sourceID(r.Partition, r.Offset), CEF: map[string]any{"message": msg}}
		if i < len(recs)-1 {
			arts[i].RunAutomation = &no
		}
	}
	first := arts[:min(per, len(arts))]
	body, err := json.Marshal(rawContainer{Name: "Messages ingested from " + recs[0].Topic, Description: "Some messages from Kafka", Label: "events",
		AssetID: 1, SDI: "bench:" + arts[0].SDI, Artifacts: first})
	if err != nil {
		return err
	}
	id, err := postContainerBody(ctx, hc, k, body)
	if err != nil {
		return err
	}
	for rest := arts[len(first):]; len(rest) > 0; {
		chunk := rest[:min(per, len(rest))]
		for i := range chunk {
			chunk[i].ContainerID = id
		}
		b, err := json.Marshal(chunk)
		if err != nil {
			return err
		}
		if _, err := soarPost(ctx, hc, k, "/rest/artifact", b); err != nil {
			return err
		}
		rest = rest[len(chunk):]
	}
	return nil
}

// ---------------------------------------------------------------------
// Case 2: throughput from a backlog, against a bare loop.

type throughputResult struct {
	messages, containers int
	ours, bare           time.Duration // first request (soarkafka: asset made) to the last answer
	storedAfter          time.Duration // soarkafka: asset made to the last artifact stored
	firstRequestAfter    time.Duration // soarkafka: asset made to the first request to the SOAR
	sink, bareSink       sinkStats
	worker               workerStats
	cpu, bareCPU         string
}

func (r *throughputResult) oursRate() float64 { return rate(r.messages, r.ours) }
func (r *throughputResult) bareRate() float64 { return rate(r.messages, r.bare) }

func soarkafkaThroughput(ctx context.Context, srv *server, brokers string, pool *eventPool, f deliverFlags) (*throughputResult, error) {
	cl, err := newDeliverProducer(brokers, 20*time.Millisecond)
	if err != nil {
		return nil, err
	}
	set := newProducedSet()
	t := time.Now()
	for i := range f.backlog {
		cl.Produce(ctx, &kgo.Record{Topic: deliverBacklogTopic, Value: pool.appendEvent(make([]byte, 0, pool.avg+pool.avg/4), i)}, set.record)
	}
	err = cl.Flush(ctx)
	cl.Close()
	if err == nil {
		err = set.check(f.backlog)
	}
	if err != nil {
		return nil, fmt.Errorf("seed the backlog: %w", err)
	}
	logf("throughput: %d messages on %s in %s", f.backlog, deliverBacklogTopic, time.Since(t).Round(time.Millisecond))

	k, err := newSOARSink(f.soarLatency, true)
	if err != nil {
		return nil, err
	}
	defer k.close()
	const asset = "bench-backlog"
	cpu := meterCPU(srv)
	t0 := time.Now()
	if err := createPushAsset(ctx, srv, asset, brokers, deliverBacklogTopic, k, 2, f); err != nil {
		return nil, err
	}
	defer func() {
		if err := srv.call(ctx, http.MethodDelete, "/v1/assets/"+asset, nil, http.StatusNoContent, nil); err != nil {
			logf("delete asset %s: %v", asset, err)
		}
	}()
	if err := waitDelivered(ctx, k, srv, asset, f.backlog, f.drainTimeout); err != nil {
		return nil, err
	}
	res := &throughputResult{messages: f.backlog, cpu: cpu.String(), sink: k.stats()}
	k.mu.Lock()
	res.ours, res.firstRequestAfter = k.last.Sub(t0), k.first.Sub(t0)
	captured := k.captured
	k.mu.Unlock()
	if res.worker, err = scrapeWorker(ctx, srv, asset); err != nil {
		return nil, err
	}
	want := set.snapshot()
	got := k.delivered()
	if err := checkOnce(want, got); err != nil {
		return nil, err
	}
	res.containers = got.containers
	stored, err := storedTimes(ctx, srv, asset)
	if err != nil {
		return nil, err
	}
	for _, st := range stored {
		res.storedAfter = max(res.storedAfter, st.Sub(t0))
	}
	logf("throughput: soarkafka: %d messages in %d containers, each in the SOAR once, in %.2fs: %s (all stored after %.2fs, first request after %.2fs); %s",
		res.messages, res.containers, res.ours.Seconds(), msgs(res.oursRate()), res.storedAfter.Seconds(), res.firstRequestAfter.Seconds(), res.cpu)
	logf("throughput: soarkafka: stand-in: %s; worker: %s", res.sink, res.worker)

	replay, err := buildReplay(captured, k)
	if err != nil {
		return nil, err
	}
	b, err := newSOARSink(f.soarLatency, false)
	if err != nil {
		return nil, err
	}
	defer b.close()
	bcpu := meterCPUSelf()
	if res.bare, err = bareLoop(ctx, b, replay, f.concurrency); err != nil {
		return nil, fmt.Errorf("bare loop: %w", err)
	}
	res.bareCPU, res.bareSink = bcpu(), b.stats()
	if err := checkOnce(want, b.delivered()); err != nil {
		return nil, fmt.Errorf("bare loop: %w", err)
	}
	logf("throughput: bare loop: the same %d containers' requests in %.2fs: %s; %s", len(replay), res.bare.Seconds(), msgs(res.bareRate()), res.bareCPU)
	logf("throughput: bare loop: stand-in: %s", res.bareSink)
	return res, nil
}

// replayContainer is one container as soarkafka's worker sent it: the
// container request's body, and the artifact requests' bodies with the
// container id left to fill in.
type replayContainer struct {
	container []byte
	artifacts [][]byte
}

// containerIDPlaceholder stands for the SOAR container id in a replayed
// artifact request; the bare loop puts the id its container got in.
var containerIDPlaceholder = []byte(`"container_id":999999999999`)

// buildReplay groups the requests soarkafka's worker sent (captured by
// the stand-in's recorder) by container, in the order they were sent.
func buildReplay(captured []capturedRequest, k *soarSink) ([]replayContainer, error) {
	idBySDI := map[string]int{}
	for _, c := range k.soar.Containers() {
		idBySDI[c.SourceDataIdentifier] = c.ID
	}
	index := map[int]int{} // SOAR container id: index in out
	var out []replayContainer
	for _, r := range captured {
		switch r.path {
		case "/rest/container":
			var head struct {
				SDI string `json:"source_data_identifier"`
			}
			if err := json.Unmarshal(r.body, &head); err != nil {
				return nil, fmt.Errorf("captured container request: %w", err)
			}
			id, ok := idBySDI[head.SDI]
			if !ok {
				return nil, fmt.Errorf("captured container request for %q: not in the stand-in", head.SDI)
			}
			if _, dup := index[id]; dup {
				return nil, fmt.Errorf("container %q was posted twice: a retry, not a clean run to replay", head.SDI)
			}
			index[id] = len(out)
			out = append(out, replayContainer{container: r.body})
		case "/rest/artifact":
			var list []map[string]json.RawMessage
			if err := json.Unmarshal(r.body, &list); err != nil || len(list) == 0 {
				return nil, fmt.Errorf("captured artifact request is not a list: %v", err)
			}
			id, err := strconv.Atoi(string(list[0]["container_id"]))
			if err != nil {
				return nil, fmt.Errorf("captured artifact request: container_id: %w", err)
			}
			i, ok := index[id]
			if !ok {
				return nil, fmt.Errorf("captured artifact request for container %d before its container", id)
			}
			for _, a := range list {
				a["container_id"] = json.RawMessage(containerIDPlaceholder[len(`"container_id":`):])
			}
			b, err := json.Marshal(list)
			if err != nil {
				return nil, err
			}
			out[i].artifacts = append(out[i].artifacts, b)
		default:
			return nil, fmt.Errorf("captured request to %s: not one the worker makes", r.path)
		}
	}
	return out, nil
}

func bareClient(conc int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = conc + 2
	return &http.Client{Transport: tr}
}

// bareLoop posts the containers as the worker did, up to conc at once,
// each container's requests one after the other, and returns how long it
// took from the first request to the last answer.
func bareLoop(ctx context.Context, k *soarSink, conts []replayContainer, conc int) (time.Duration, error) {
	hc := bareClient(conc)
	defer hc.CloseIdleConnections()
	jobs := make(chan replayContainer)
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	t0 := time.Now()
	for range conc {
		wg.Go(func() {
			for c := range jobs {
				if err := postReplay(ctx, hc, k, c); err != nil {
					mu.Lock()
					first = firstErr(first, err)
					mu.Unlock()
				}
			}
		})
	}
	for _, c := range conts {
		jobs <- c
	}
	close(jobs)
	wg.Wait()
	return time.Since(t0), first
}

func postReplay(ctx context.Context, hc *http.Client, k *soarSink, c replayContainer) error {
	id, err := postContainerBody(ctx, hc, k, c.container)
	if err != nil {
		return err
	}
	with := strconv.AppendInt([]byte(`"container_id":`), id, 10)
	for _, b := range c.artifacts {
		if _, err := soarPost(ctx, hc, k, "/rest/artifact", bytes.ReplaceAll(b, containerIDPlaceholder, with)); err != nil {
			return err
		}
	}
	return nil
}

func postContainerBody(ctx context.Context, hc *http.Client, k *soarSink, body []byte) (int64, error) {
	ans, err := soarPost(ctx, hc, k, "/rest/container", body)
	if err != nil {
		return 0, err
	}
	var res struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal(ans, &res); err != nil || res.ID == 0 {
		return 0, fmt.Errorf("POST /rest/container: no container id in %.200s", ans)
	}
	return res.ID, nil
}

func soarPost(ctx context.Context, hc *http.Client, k *soarSink, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, k.url+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("ph-auth-token", k.soar.Token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	ans, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("POST %s: %s: %.300s", path, resp.Status, ans)
	}
	return ans, nil
}

// ---------------------------------------------------------------------
// The report.

type deliverRow struct {
	name, ours, limit, ratio, target string
	pass                             bool
}

func deliverRows(rep *deliverReport, f deliverFlags) []deliverRow {
	var rows []deliverRow
	if l, r := rep.latency, rep.rawLatency; l != nil && r != nil {
		name := fmt.Sprintf("latency, %s msg/s for %gs", count(f.rate), f.seconds)
		times := func(a, b time.Duration) string { return fmt.Sprintf("%.0f×", float64(a)/float64(max(b, 1))) }
		rows = append(rows,
			deliverRow{name + ": p50", ms(l.p50) + " ms", ms(r.p50) + " ms (bare path)", times(l.p50, r.p50), "< " + deliverLatencyP50Target.String(), l.p50 < deliverLatencyP50Target},
			deliverRow{name + ": p99", ms(l.p99) + " ms", ms(r.p99) + " ms (bare path)", times(l.p99, r.p99), "< " + deliverLatencyP99Target.String(), l.p99 < deliverLatencyP99Target})
	}
	if t := rep.throughput; t != nil {
		ratio := t.oursRate() / t.bareRate()
		rows = append(rows, deliverRow{fmt.Sprintf("throughput, backlog of %s (%d containers)", count(t.messages), t.containers),
			msgs(t.oursRate()), msgs(t.bareRate()) + " (bare loop)", pct(ratio), ">= " + pct(deliverRatioTarget) + " of bare", ratio >= deliverRatioTarget})
	}
	return rows
}

func printDeliverTable(w io.Writer, rows []deliverRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "case\tsoarkafka\tlimit, same run\tratio\ttarget\tresult")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.name, r.ours, r.limit, r.ratio, r.target, passFail(r.pass))
	}
	tw.Flush()
}

// printDeliverDetails says where the time went: the requests and their
// latency at the stand-in, how many were in flight, the worker's own view
// of its requests, the poll's share (produce to stored) and the CPU.
func printDeliverDetails(w io.Writer, rep *deliverReport, f deliverFlags) {
	fmt.Fprintln(w, "where the time goes:")
	if l := rep.latency; l != nil {
		fmt.Fprintf(w, "- latency, soarkafka: %d messages in %d containers. Kafka timestamp to stored by the continuous poll p50 %s p99 %s ms "+
			"(a batch waits up to ingest.max_batch_wait_ms %d to fill); stored to stored in the SOAR p50 %s p99 %s ms.\n",
			l.messages, l.containers, ms(l.storedP50), ms(l.storedP99), f.maxBatchWaitMS, ms(l.deliverP50), ms(l.deliverP99))
		fmt.Fprintf(w, "  stand-in: %s.\n  worker: %s.\n  %s.\n", l.sink, l.worker, l.cpu)
	}
	if r := rep.rawLatency; r != nil {
		fmt.Fprintf(w, "- latency, bare path (franz-go consumer, each fetch posted as a container): %d messages in %d containers; p50 %s p99 %s max %s ms.\n  stand-in: %s.\n  %s.\n",
			r.messages, r.containers, ms(r.p50), ms(r.p99), ms(r.max), r.sink, r.cpu)
	}
	if t := rep.throughput; t != nil {
		fmt.Fprintf(w, "- throughput, soarkafka: %.2fs from the asset made to the last answer; first request to the SOAR after %.2fs, every message stored after %.2fs.\n",
			t.ours.Seconds(), t.firstRequestAfter.Seconds(), t.storedAfter.Seconds())
		fmt.Fprintf(w, "  stand-in: %s.\n  worker: %s.\n  %s.\n", t.sink, t.worker, t.cpu)
		fmt.Fprintf(w, "  %s\n", perContainer(t.sink, t.containers, f.concurrency))
		fmt.Fprintf(w, "- throughput, bare loop (the worker's captured request bodies, posted again by %d goroutines): %.2fs.\n  stand-in: %s.\n  %s.\n",
			f.concurrency, t.bare.Seconds(), t.bareSink, t.bareCPU)
		fmt.Fprintf(w, "  %s\n", perContainer(t.bareSink, t.containers, f.concurrency))
	}
}

// perContainer splits the time a container held one of the conc slots
// (from the first request to the last answer) into its requests at the
// stand-in and the rest: the sender's own work between and around them.
func perContainer(st sinkStats, containers, conc int) string {
	if containers == 0 {
		return ""
	}
	slot := time.Duration(float64(st.span) * float64(conc) / float64(containers))
	inReq := time.Duration(st.meanConc * float64(st.span) / float64(containers))
	return fmt.Sprintf("per container, with %d in flight: %s ms of slot time, %s ms of it in requests at the stand-in, %s ms between and around them.",
		conc, ms(slot), ms(inReq), ms(slot-inReq))
}
