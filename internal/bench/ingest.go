package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/parsers"
	"github.com/soarkafka/soarkafka/parsers/bundled"
	"github.com/soarkafka/soarkafka/parsers/sandbox"
	"github.com/soarkafka/soarkafka/poll"
	"github.com/soarkafka/soarkafka/store"
)

const (
	// ingestChildCommand is the hidden subcommand under which the bench
	// re-executes itself to run one poll, so that the peak RSS measured is
	// the poll's, not the bench's or kfake's.
	ingestChildCommand = "ingest-child"
	// parserWorkerCommand is the hidden subcommand that makes the bench
	// binary a sandbox parser worker, as the server's binary is one.
	parserWorkerCommand = "parser-worker"

	ingestTopic     = "bench-ingest"
	ingestAsset     = "bench"
	userParserName  = "default-script"
	ingestRSSTarget = 250 << 20
)

// ingestCase is one way of running the poll, with its target.
type ingestCase struct {
	name   string
	store  string // sqlite or postgres
	parser string // "": the bundled default natively; else a user parser of that name (the default's source, sandboxed)
	target float64
}

var ingestCases = []ingestCase{
	{name: "sqlite-native", store: "sqlite", target: 100_000},
	{name: "sqlite-sandbox", store: "sqlite", parser: userParserName, target: 50_000},
	{name: "postgres-native", store: "postgres", target: 50_000},
}

type ingestFlags struct {
	messages      int
	size          int
	partitions    int
	batchSize     int
	cases         string
	rawReps       int
	reps          int
	postgresURL   string
	cpuProfileDir string
}

// ingestChildSpec is what the bench hands a child on its stdin.
type ingestChildSpec struct {
	Case        string `json:"case"`
	DatabaseURL string `json:"database_url"`
	Brokers     string `json:"brokers"`
	Topic       string `json:"topic"`
	Messages    int    `json:"messages"`
	BatchSize   int    `json:"batch_size"`
	Parser      string `json:"parser"`
	CPUProfile  string `json:"cpu_profile,omitempty"`
}

// ingestChildResult is what a child reports on its stdout, as JSON.
type ingestChildResult struct {
	Case              string  `json:"case"`
	MessagesRead      int     `json:"messages_read"`
	ArtifactsCreated  int     `json:"artifacts_created"`
	ContainersCreated int     `json:"containers_created"`
	ContainersUpdated int     `json:"containers_updated"`
	DuplicatesSkipped int     `json:"duplicates_skipped"`
	Stopped           string  `json:"stopped"`
	DurationS         float64 `json:"duration_s"`
	FetchS            float64 `json:"fetch_s"`
	ParseS            float64 `json:"parse_s"`
	StoreS            float64 `json:"store_s"`
	// PeakRSS is the child's VmHWM at the end: the poll's own process.
	PeakRSS int64 `json:"peak_rss_bytes"`
	// CPUS is the CPU time (user + system) the child used during the poll.
	CPUS float64 `json:"cpu_s"`
	// Sandbox workers (children of the child), sampled every 50 ms.
	Workers       int     `json:"workers,omitempty"`
	WorkerPeakRSS int64   `json:"worker_peak_rss_bytes,omitempty"` // largest VmHWM of one worker
	TotalPeakRSS  int64   `json:"total_peak_rss_bytes,omitempty"`  // largest child + workers VmRSS in one sample
	WorkersCPUS   float64 `json:"workers_cpu_s,omitempty"`         // the workers' CPU, validation run included
	SetupS        float64 `json:"setup_s"`                         // store, migrations, parser save: not in the rate
	Error         string  `json:"error,omitempty"`

	// BenchCPUS is the bench process's CPU while the child ran: kfake's.
	BenchCPUS float64 `json:"-"`
}

func (r ingestChildResult) rate() float64 { return float64(r.MessagesRead) / r.DurationS }

func runIngest(args []string) error {
	var f ingestFlags
	names := make([]string, len(ingestCases))
	for i, c := range ingestCases {
		names[i] = c.name
	}
	defaultPG := os.Getenv(testenv.PostgresURLEnv)
	if defaultPG == "" {
		defaultPG = testenv.DefaultPostgresURL
	}
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	fs.IntVar(&f.messages, "messages", 100_000, "messages seeded on the topic; every case polls all of them in one poll (ingest.max_messages)")
	fs.IntVar(&f.size, "size", 1024, "average message size in bytes (CloudTrail-like JSON)")
	fs.IntVar(&f.partitions, "partitions", 4, "partitions of the bench topic")
	fs.IntVar(&f.batchSize, "batch-size", 1000, "the asset's ingest.batch_size")
	fs.StringVar(&f.cases, "cases", strings.Join(names, ","), "comma-separated cases to run")
	fs.IntVar(&f.rawReps, "raw-reps", 3, "raw franz-go consumer runs (median reported)")
	fs.IntVar(&f.reps, "reps", 1, "runs of each case, each a fresh child and database (median reported)")
	fs.StringVar(&f.postgresURL, "postgres-url", defaultPG, "PostgreSQL for postgres-native (a schema is created in it and dropped); default $"+testenv.PostgresURLEnv+" or the test server")
	fs.StringVar(&f.cpuProfileDir, "cpuprofile-dir", "", "each child writes a CPU profile of its poll to DIR/ingest-<case>.pprof")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if f.messages < 1 || f.partitions < 1 || f.batchSize < 1 || f.rawReps < 1 || f.reps < 1 || f.size < 200 {
		return errors.New("counts must be positive and -size at least 200")
	}
	var cases []ingestCase
	for name := range strings.SplitSeq(f.cases, ",") {
		name = strings.TrimSpace(name)
		i := slices.IndexFunc(ingestCases, func(c ingestCase) bool { return c.name == name })
		if i < 0 {
			return fmt.Errorf("-cases: unknown case %q; the cases are %s", name, strings.Join(names, ", "))
		}
		cases = append(cases, ingestCases[i])
	}
	if f.cpuProfileDir != "" {
		if err := os.MkdirAll(f.cpuProfileDir, 0o755); err != nil {
			return err
		}
	}

	start := time.Now()
	// Other processes on the machine skew every figure: say how busy it was.
	load0 := loadAverage()
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()

	pool, err := newEventPool(4096, f.size)
	if err != nil {
		return err
	}
	logf("events: %d distinct CloudTrail-like events, %d bytes on average", len(pool.events), pool.avg)

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(f.partitions), ingestTopic))
	if err != nil {
		return fmt.Errorf("start kfake: %w", err)
	}
	defer cluster.Close()
	brokers := strings.Join(cluster.ListenAddrs(), ",")
	logf("kfake: %s, options NumBrokers(1), SeedTopics(%d, %q)", brokers, f.partitions, ingestTopic)

	if err := seedIngestTopic(ctx, brokers, pool, f); err != nil {
		return err
	}

	var rawRates []float64
	for i := range f.rawReps {
		d, err := rawConsume(ctx, brokers, f.partitions, f.messages)
		if err != nil {
			return fmt.Errorf("raw consumer: %w", err)
		}
		rawRates = append(rawRates, rate(f.messages, d))
		logf("raw franz-go consumer run %d: %d messages in %s, %s", i+1, f.messages, d.Round(time.Millisecond), msgs(rate(f.messages, d)))
	}
	raw := median(rawRates)
	logf("raw franz-go consumer: median %s (runs: %s)", msgs(raw), rateList(rawRates))

	tmp, err := os.MkdirTemp("", "soarkafka-bench-ingest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	var rows []ingestRow
	for _, c := range cases {
		var runs []ingestChildResult
		for rep := range f.reps {
			res, err := runIngestCase(ctx, c, rep, tmp, brokers, f)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			logf("%s: %d messages in %.2fs, %s; fetch %.2fs parse %.2fs store %.2fs; peak RSS %s; CPU %.2f cores (kfake %.2f)%s",
				c.name, res.MessagesRead, res.DurationS, msgs(res.rate()), res.FetchS, res.ParseS, res.StoreS, mb(res.PeakRSS),
				res.CPUS/res.DurationS, res.BenchCPUS/res.DurationS, workerSummary(res))
			runs = append(runs, res)
		}
		// The median run by rate (the lower middle one for an even count).
		slices.SortFunc(runs, func(a, b ingestChildResult) int { return cmp.Compare(a.rate(), b.rate()) })
		rows = append(rows, ingestRow{c: c, res: runs[(len(runs)-1)/2], raw: raw, reps: len(runs)})
	}

	fmt.Println()
	printIngestTable(os.Stdout, rows)
	fmt.Println()
	printIngestDetails(os.Stdout, rows)
	fmt.Printf("\n%d messages ~%d B CloudTrail-like on %d partitions, polled in one scheduled poll (ingest.batch_size %d, max_messages %d, read_from_beginning); "+
		"kfake NumBrokers(1) in the bench process on loopback; raw = kgo.ConsumePartitions from the start, same fetch limits as the poll (FetchMaxBytes 16 MiB, FetchMaxWait 500 ms), median of %d; "+
		"each case a child process (peak RSS = its VmHWM), %d run(s) each; SQLite in %s; GOMAXPROCS=%d; load average %s at the start, %s at the end; run took %s\n",
		f.messages, pool.avg, f.partitions, f.batchSize, f.messages, f.rawReps, f.reps, tmp, runtimeProcs(), load0, loadAverage(), time.Since(start).Round(time.Second))
	return nil
}

// seedIngestTopic produces f.messages events to the topic, partition
// i % partitions, through a lingering producer, so the topic holds full
// batches (about 1 MB each) as a busy producer leaves them.
func seedIngestTopic(ctx context.Context, brokers string, pool *eventPool, f ingestFlags) error {
	t := time.Now()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(brokers, ",")...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(20*time.Millisecond),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	var failed atomic.Int64
	var first atomic.Value
	var total int64
	for i := range f.messages {
		v := pool.appendEvent(make([]byte, 0, pool.avg+pool.avg/4), i)
		total += int64(len(v))
		cl.Produce(ctx, &kgo.Record{Topic: ingestTopic, Partition: int32(i % f.partitions), Value: v}, func(_ *kgo.Record, err error) {
			if err != nil && failed.Add(1) == 1 {
				first.Store(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("seed topic: %w", err)
	}
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("seed topic: %d records failed: %v", n, first.Load())
	}
	offs, err := kadm.NewClient(cl).ListEndOffsets(ctx, ingestTopic)
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		return fmt.Errorf("seed topic: list end offsets: %w", err)
	}
	var sum int64
	offs.Each(func(o kadm.ListedOffset) { sum += o.Offset })
	if sum != int64(f.messages) {
		return fmt.Errorf("seed topic: %d records on the topic, want %d", sum, f.messages)
	}
	logf("seeded %s with %d messages (%.1f MB) in %s", ingestTopic, f.messages, float64(total)/1e6, time.Since(t).Round(time.Millisecond))
	return nil
}

// rawConsume reads every message of the topic with a plain franz-go client,
// from the start of each partition, with the poll's fetch limits.
func rawConsume(ctx context.Context, brokers string, partitions, n int) (time.Duration, error) {
	offsets := map[int32]kgo.Offset{}
	for p := range partitions {
		offsets[int32(p)] = kgo.NewOffset().AtStart()
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	t := time.Now()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(brokers, ",")...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{ingestTopic: offsets}),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.FetchMaxBytes(16<<20),
	)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	read, size := 0, 0
	for read < n {
		fs := cl.PollFetches(rctx)
		for _, e := range fs.Errors() {
			return 0, fmt.Errorf("read partition %d of topic %s: %w", e.Partition, e.Topic, e.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			read++
			size += len(r.Value)
		})
	}
	d := time.Since(t)
	if read != n || size == 0 {
		return 0, fmt.Errorf("read %d messages, want %d", read, n)
	}
	return d, nil
}

// runIngestCase prepares a fresh database for c, runs the child on it and
// removes the database.
func runIngestCase(ctx context.Context, c ingestCase, rep int, tmp, brokers string, f ingestFlags) (ingestChildResult, error) {
	spec := ingestChildSpec{Case: c.name, Brokers: brokers, Topic: ingestTopic, Messages: f.messages, BatchSize: f.batchSize, Parser: c.parser}
	switch c.store {
	case "sqlite":
		dir := filepath.Join(tmp, fmt.Sprintf("%s-%d", c.name, rep))
		spec.DatabaseURL = "sqlite://" + filepath.Join(dir, "soarkafka.db")
		defer os.RemoveAll(dir)
	case "postgres":
		u, drop, err := postgresSchema(ctx, f.postgresURL)
		if err != nil {
			return ingestChildResult{}, err
		}
		defer drop()
		spec.DatabaseURL = u
	}
	if f.cpuProfileDir != "" {
		name := "ingest-" + c.name + ".pprof"
		if f.reps > 1 {
			name = fmt.Sprintf("ingest-%s-%d.pprof", c.name, rep+1)
		}
		p, err := filepath.Abs(filepath.Join(f.cpuProfileDir, name))
		if err != nil {
			return ingestChildResult{}, err
		}
		spec.CPUProfile = p
	}
	logf("%s: child polls %d messages (run %d of %d)", c.name, f.messages, rep+1, f.reps)
	cpu0 := rusageCPU(syscall.RUSAGE_SELF)
	res, err := startIngestChild(ctx, spec)
	if err != nil {
		return res, err
	}
	// The bench does nothing else meanwhile: its CPU is kfake serving the
	// poll's fetches (and the child's start-up, a few milliseconds).
	res.BenchCPUS = (rusageCPU(syscall.RUSAGE_SELF) - cpu0).Seconds()
	if res.MessagesRead != f.messages || res.ArtifactsCreated != f.messages {
		return res, fmt.Errorf("the poll read %d messages and created %d artifacts, want %d of each (stopped: %s, duplicates %d)",
			res.MessagesRead, res.ArtifactsCreated, f.messages, res.Stopped, res.DuplicatesSkipped)
	}
	return res, nil
}

// postgresSchema creates a schema of its own in the PostgreSQL at base and
// returns a URL whose connections work in it (search_path, as testenv does)
// and a function that drops it.
func postgresSchema(ctx context.Context, base string) (string, func(), error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, fmt.Errorf("-postgres-url is not a URL: %w", err)
	}
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", nil, fmt.Errorf("PostgreSQL at %s unreachable (%v); start it, set -postgres-url, or leave postgres-native out of -cases", u.Redacted(), err)
	}
	defer conn.Close(ctx)
	var b [8]byte
	_, _ = rand.Read(b[:])
	schema := "bench_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, fmt.Errorf("create schema %s: %w", schema, err)
	}
	drop := func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err == nil {
			defer conn.Close(ctx)
			_, err = conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
		}
		if err != nil {
			logf("drop schema %s: %v", schema, err)
		}
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}

// startIngestChild re-executes the bench as an ingest child, hands it spec
// on stdin and decodes its result from stdout; its stderr is the bench's.
func startIngestChild(ctx context.Context, spec ingestChildSpec) (ingestChildResult, error) {
	self, err := os.Executable()
	if err != nil {
		return ingestChildResult{}, err
	}
	in, _ := json.Marshal(spec)
	cmd := exec.CommandContext(ctx, self, ingestChildCommand)
	cmd.Stdin = bytes.NewReader(in)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	runErr := cmd.Run()
	var res ingestChildResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		if runErr != nil {
			return res, fmt.Errorf("child: %v", runErr)
		}
		return res, fmt.Errorf("child's answer %.200q: %w", out.String(), err)
	}
	if res.Error != "" {
		return res, fmt.Errorf("child: %s", res.Error)
	}
	if runErr != nil {
		return res, fmt.Errorf("child: %v", runErr)
	}
	return res, nil
}

// ingestChild is the child's main: one poll as spec (on stdin) says, the
// result as JSON on stdout.
func ingestChild() int {
	var spec ingestChildSpec
	var res ingestChildResult
	err := json.NewDecoder(os.Stdin).Decode(&spec)
	if err == nil {
		res, err = runIngestChild(spec)
	}
	if err != nil {
		res.Error = err.Error()
	}
	res.Case = spec.Case
	_ = json.NewEncoder(os.Stdout).Encode(res)
	if err != nil {
		return 1
	}
	return 0
}

func runIngestChild(spec ingestChildSpec) (ingestChildResult, error) {
	var res ingestChildResult
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	setup := time.Now()
	// Warnings only: the poll's own "poll finished" line is reported by
	// the bench from the result.
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	db, err := store.Open(ctx, spec.DatabaseURL, logger)
	if err != nil {
		return res, err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return res, fmt.Errorf("migrate: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return res, err
	}
	// As the server wires it (app/server.go), with its defaults for
	// parser.memory_limit_mb and parser.timeout.
	engine := parsers.NewEngine(sandbox.PoolConfig{Worker: sandbox.Config{
		Exe: exe, Args: []string{parserWorkerCommand}, MemoryLimit: 512 << 20, Timeout: 10 * time.Second,
	}})
	engineClosed := false
	defer func() {
		if !engineClosed {
			engine.Close()
		}
	}()
	svc := parsers.NewService(db, engine)
	if spec.Parser != "" {
		def, ok := bundled.Get("default")
		if !ok {
			return res, errors.New("no bundled parser named default")
		}
		if _, err := svc.Create(ctx, parsers.Input{Name: spec.Parser, Description: "the bundled default parser's source, run in the sandbox", Source: def.Source}); err != nil {
			return res, fmt.Errorf("save parser %s: %w", spec.Parser, err)
		}
	}
	cfg, err := assets.Decode(map[string]any{
		"hosts":               spec.Brokers,
		"topic":               spec.Topic,
		"read_from_beginning": true,
		"timeout":             600000,
		"message_parser":      spec.Parser,
		"ingest":              map[string]any{"max_messages": spec.Messages, "batch_size": spec.BatchSize},
	}, assets.DecodeOptions{})
	if err != nil {
		return res, fmt.Errorf("asset config: %w", err)
	}
	poller := poll.New(db, svc, logger)
	defer poller.Close()
	res.SetupS = time.Since(setup).Seconds()

	var watch *workerWatch
	if spec.Parser != "" {
		watch = watchWorkers(50 * time.Millisecond)
	}
	if spec.CPUProfile != "" {
		f, err := os.Create(spec.CPUProfile)
		if err != nil {
			return res, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return res, err
		}
	}
	cpu0 := rusageCPU(syscall.RUSAGE_SELF)
	pr, pollErr := poller.Poll(ctx, poll.Request{Asset: ingestAsset, Config: cfg, Kind: ingest.PollScheduled})
	res.CPUS = (rusageCPU(syscall.RUSAGE_SELF) - cpu0).Seconds()
	if spec.CPUProfile != "" {
		pprof.StopCPUProfile()
	}
	if watch != nil {
		watch.stop()
		engine.Close() // waits for the workers: their CPU is then in RUSAGE_CHILDREN
		engineClosed = true
		res.Workers, res.WorkerPeakRSS, res.TotalPeakRSS = len(watch.peak), watch.maxWorker(), watch.maxTotal
		res.WorkersCPUS = rusageCPU(syscall.RUSAGE_CHILDREN).Seconds()
	}
	if pr != nil {
		res.MessagesRead, res.ArtifactsCreated = pr.MessagesRead, pr.ArtifactsCreated
		res.ContainersCreated, res.ContainersUpdated, res.DuplicatesSkipped = pr.ContainersCreated, pr.ContainersUpdated, pr.DuplicatesSkipped
		res.Stopped = pr.Stopped
		res.DurationS = pr.Duration.Seconds()
		res.FetchS, res.ParseS, res.StoreS = pr.Timing.Fetch.Seconds(), pr.Timing.Parse.Seconds(), pr.Timing.Store.Seconds()
	}
	if res.PeakRSS, err = procStatusBytes("self", "VmHWM"); err != nil {
		return res, err
	}
	if pollErr != nil {
		return res, fmt.Errorf("poll: %w", pollErr)
	}
	return res, nil
}

// loadAverage is the 1-minute load average, from /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

func rusageCPU(who int) time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(who, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procStatusBytes reads a kB field (VmHWM, VmRSS) of /proc/<pid>/status.
func procStatusBytes(pid, field string) (int64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%s/status", field, pid)
}

// workerWatch samples the sandbox workers, the child's own children, for
// their memory: each worker's peak (VmHWM, as last seen) and the largest
// resident total of the child and its workers at one instant.
type workerWatch struct {
	mu       sync.Mutex
	peak     map[int]int64
	maxTotal int64
	done     chan struct{}
	wg       sync.WaitGroup
}

func watchWorkers(every time.Duration) *workerWatch {
	w := &workerWatch{peak: map[int]int64{}, done: make(chan struct{})}
	w.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			w.sample()
			select {
			case <-w.done:
				return
			case <-t.C:
			}
		}
	})
	return w
}

func (w *workerWatch) stop() {
	close(w.done)
	w.wg.Wait()
	w.sample()
}

func (w *workerWatch) sample() {
	total, _ := procStatusBytes("self", "VmRSS")
	self := os.Getpid()
	entries, _ := os.ReadDir("/proc")
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || parentPID(pid) != self {
			continue
		}
		if hwm, err := procStatusBytes(e.Name(), "VmHWM"); err == nil {
			w.peak[pid] = max(w.peak[pid], hwm)
		}
		if rss, err := procStatusBytes(e.Name(), "VmRSS"); err == nil {
			total += rss
		}
	}
	w.maxTotal = max(w.maxTotal, total)
}

func (w *workerWatch) maxWorker() int64 {
	var m int64
	for _, v := range w.peak {
		m = max(m, v)
	}
	return m
}

// parentPID is pid's parent, from /proc/<pid>/stat, or -1.
func parentPID(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	// After the command name, in parentheses: state, then ppid.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 2 {
		return -1
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return -1
	}
	return ppid
}

func workerSummary(r ingestChildResult) string {
	if r.Workers == 0 {
		return ""
	}
	return fmt.Sprintf("; %d parser workers, each at most %s peak RSS, child + workers at most %s at once, workers' CPU %.2f cores",
		r.Workers, mb(r.WorkerPeakRSS), mb(r.TotalPeakRSS), r.WorkersCPUS/r.DurationS)
}

// ingestRow is one case's line of the table.
type ingestRow struct {
	c    ingestCase
	res  ingestChildResult
	raw  float64
	reps int
}

func printIngestTable(w io.Writer, rows []ingestRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "case\tmessages/s\traw messages/s\tratio\tfetch s\tparse s\tstore s\tpeak RSS\ttarget\tresult")
	for _, r := range rows {
		ours := r.res.rate()
		var missed []string
		if ours < r.c.target {
			missed = append(missed, "rate")
		}
		if r.res.PeakRSS >= ingestRSSTarget {
			missed = append(missed, "RSS")
		}
		result := "met"
		if len(missed) > 0 {
			result = "not met (" + strings.Join(missed, ", ") + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2f\t%.2f\t%.2f\t%s\t%s\t%s\n", r.c.name, count(int(ours+0.5)), count(int(r.raw+0.5)),
			pct(ours/r.raw), r.res.FetchS, r.res.ParseS, r.res.StoreS, mb(r.res.PeakRSS),
			fmt.Sprintf(">= %s msg/s, < %s", count(int(r.c.target)), mb(ingestRSSTarget)), result)
	}
	tw.Flush()
}

// printIngestDetails prints what explains the figures: the poll's
// duration, the CPU it kept busy, what it created, and the workers.
func printIngestDetails(w io.Writer, rows []ingestRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "case\tpoll s\tchild CPU\tkfake CPU\tcontainers\tartifacts\tstopped\tsetup s\tparser workers")
	for _, r := range rows {
		workers := "-"
		if r.res.Workers > 0 {
			workers = fmt.Sprintf("%d, peak RSS %s each at most, child + workers %s at most, CPU %.2f cores",
				r.res.Workers, mb(r.res.WorkerPeakRSS), mb(r.res.TotalPeakRSS), r.res.WorkersCPUS/r.res.DurationS)
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f cores\t%.2f cores\t%s\t%s\t%s\t%.2f\t%s\n", r.c.name, r.res.DurationS, r.res.CPUS/r.res.DurationS,
			r.res.BenchCPUS/r.res.DurationS, count(r.res.ContainersCreated), count(r.res.ArtifactsCreated), r.res.Stopped, r.res.SetupS, workers)
	}
	tw.Flush()
}
