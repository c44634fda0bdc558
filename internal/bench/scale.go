package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/parsers"
	"github.com/soarkafka/soarkafka/parsers/sandbox"
	"github.com/soarkafka/soarkafka/poll"
	"github.com/soarkafka/soarkafka/store"
)

// scale measures how ingest on PostgreSQL grows with what runs at once.
// Each part is a scalePart: it runs against the shared scaleEnv (one kfake
// topic seeded once, the PostgreSQL URL) and returns its table rows; a new
// part (replicas, say) is one more entry in scaleParts.
type scalePart struct {
	name string
	doc  string
	run  func(ctx context.Context, env *scaleEnv) ([]scaleRow, error)
}

var scaleParts = []scalePart{
	{name: "assets", doc: "one asset, then two assets at once, against the store's bare limit", run: runScaleAssets},
}

// scaleEnv is what every part shares.
type scaleEnv struct {
	f       scaleFlags
	brokers string
	logger  *slog.Logger
}

type scaleFlags struct {
	messages    int
	size        int
	partitions  int
	batchSize   int
	reps        int
	parts       string
	postgresURL string
}

// scaleRow is one line of the table: a figure, what it is compared with,
// and the target if it has one.
type scaleRow struct {
	part, name string
	messages   int
	d          time.Duration
	vs         string  // what ratio is against
	ratio      float64 // 0: none
	target     float64 // 0: information only
	// benchCPU and machineBusy are the median run's (scaleRun).
	benchCPU, machineBusy float64
}

func runScale(args []string) error {
	var f scaleFlags
	defaultPG := os.Getenv(testenv.PostgresURLEnv)
	if defaultPG == "" {
		defaultPG = testenv.DefaultPostgresURL
	}
	names := make([]string, len(scaleParts))
	for i, p := range scaleParts {
		names[i] = p.name
	}
	fs := flag.NewFlagSet("scale", flag.ContinueOnError)
	fs.IntVar(&f.messages, "messages", 100_000, "messages seeded on the topic; each asset polls all of them in one poll")
	fs.IntVar(&f.size, "size", 1024, "average message size in bytes (CloudTrail-like JSON)")
	fs.IntVar(&f.partitions, "partitions", 4, "partitions of the bench topic")
	fs.IntVar(&f.batchSize, "batch-size", 1000, "the assets' ingest.batch_size")
	fs.IntVar(&f.reps, "reps", 5, "rounds of the cases, each case on a fresh schema (median reported)")
	fs.StringVar(&f.parts, "parts", strings.Join(names, ","), "comma-separated parts to run: "+strings.Join(names, ", "))
	fs.StringVar(&f.postgresURL, "postgres-url", defaultPG, "PostgreSQL to measure (a schema per run is created in it and dropped); default $"+testenv.PostgresURLEnv+" or the test server")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if f.messages < 1 || f.partitions < 1 || f.batchSize < 1 || f.reps < 1 || f.size < 200 {
		return errors.New("counts must be positive and -size at least 200")
	}
	var parts []scalePart
	for name := range strings.SplitSeq(f.parts, ",") {
		i := slices.IndexFunc(scaleParts, func(p scalePart) bool { return p.name == strings.TrimSpace(name) })
		if i < 0 {
			return fmt.Errorf("-parts: unknown part %q; the parts are %s", name, strings.Join(names, ", "))
		}
		parts = append(parts, scaleParts[i])
	}

	start := time.Now()
	load0 := loadAverage()
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	pool, err := newEventPool(4096, f.size)
	if err != nil {
		return err
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(f.partitions), ingestTopic))
	if err != nil {
		return fmt.Errorf("start kfake: %w", err)
	}
	defer cluster.Close()
	env := &scaleEnv{f: f, brokers: strings.Join(cluster.ListenAddrs(), ","),
		logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if err := seedIngestTopic(ctx, env.brokers, pool, ingestFlags{messages: f.messages, partitions: f.partitions}); err != nil {
		return err
	}
	var rows []scaleRow
	for _, p := range parts {
		logf("scale %s: %s", p.name, p.doc)
		r, err := p.run(ctx, env)
		if err != nil {
			return fmt.Errorf("scale %s: %w", p.name, err)
		}
		rows = append(rows, r...)
	}
	fmt.Println()
	printScaleTable(os.Stdout, rows)
	fmt.Printf("\n%d messages ~%d B CloudTrail-like on %d partitions of one kfake topic (in the bench process, loopback); the bundled default parser, natively; "+
		"PostgreSQL at %s, a fresh schema per run; ingest.batch_size %d; median of %d run(s); GOMAXPROCS=%d; load average %s at the start, %s at the end; run took %s\n",
		f.messages, pool.avg, f.partitions, redactURL(f.postgresURL), f.batchSize, f.reps, runtimeProcs(), load0, loadAverage(), time.Since(start).Round(time.Second))
	return nil
}

// redactURL is a database URL fit to print: no password, no query (which
// may carry one).
func redactURL(u string) string {
	if i := strings.Index(u, "?"); i >= 0 {
		u = u[:i]
	}
	if i := strings.LastIndex(u, "@"); i >= 0 {
		if j := strings.Index(u, "://"); j >= 0 && j < i {
			return u[:j+3] + "…" + u[i:]
		}
	}
	return u
}

// runScaleAssets: one asset polls the topic; two assets poll it at once
// (each all of it, into its own containers); and the store's bare limit:
// the batches one asset's poll stored (captured in an untimed run) saved
// again with SaveBatch in a loop, the same statements without Kafka or the
// parser, one loop, then two loops at once (two assets).
func runScaleAssets(ctx context.Context, env *scaleEnv) ([]scaleRow, error) {
	f := env.f
	batches, err := captureBatches(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("capture the poll's batches: %w", err)
	}
	logf("captured %d batches of the poll", len(batches))

	type scaleCase struct {
		name   string
		assets int
		run    func(ctx context.Context, db *store.DB, asset string) (int, error)
	}
	poller := func(ctx context.Context, db *store.DB, asset string) (int, error) {
		return pollOnce(ctx, env, db, asset)
	}
	bare := func(ctx context.Context, db *store.DB, asset string) (int, error) {
		n := 0
		for _, b := range batches {
			// SaveBatch may rewrite identifiers in place (replaceNUL): each
			// loop saves its own copy of the slices, the bodies shared.
			b := *b
			b.Asset = asset
			b.Containers = slices.Clone(b.Containers)
			for i := range b.Containers {
				b.Containers[i].Artifacts = slices.Clone(b.Containers[i].Artifacts)
			}
			out, err := db.SaveBatch(ctx, &b)
			if err != nil {
				return n, err
			}
			n += out.ArtifactsCreated
		}
		return n, nil
	}
	cases := []scaleCase{
		{"bare SaveBatch loop, 1 asset", 1, bare},
		{"poll, 1 asset", 1, poller},
		{"bare SaveBatch loops, 2 assets at once", 2, bare},
		{"polls, 2 assets at once", 2, poller},
	}
	// Round by round, every case in each: the machine's load drifts, and
	// this spreads it over the cases instead of loading one.
	runs := map[string][]scaleRun{}
	for rep := range f.reps {
		for _, c := range cases {
			busy0, total0 := machineCPU()
			cpu0 := rusageCPU(syscall.RUSAGE_SELF)
			d, err := timeAssets(ctx, env, c.assets, c.run)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.name, err)
			}
			r := scaleRun{d: d, benchCPU: (rusageCPU(syscall.RUSAGE_SELF) - cpu0).Seconds() / d.Seconds()}
			if busy1, total1 := machineCPU(); total1 > total0 {
				r.machineBusy = float64(busy1-busy0) / float64(total1-total0)
			}
			logf("%s, run %d: %d messages in %s, %s; bench process %.2f cores, machine %s busy", c.name, rep+1, c.assets*f.messages,
				d.Round(time.Millisecond), msgs(rate(c.assets*f.messages, d)), r.benchCPU, pct(r.machineBusy))
			runs[c.name] = append(runs[c.name], r)
		}
	}
	durations := map[string]time.Duration{}
	medians := map[string]scaleRun{}
	for name, rs := range runs {
		slices.SortFunc(rs, func(a, b scaleRun) int { return cmp.Compare(a.d, b.d) })
		medians[name] = rs[(len(rs)-1)/2]
		durations[name] = medians[name].d
	}
	r := func(name string) float64 {
		n := f.messages
		if strings.Contains(name, "2 assets") {
			n *= 2
		}
		return rate(n, durations[name])
	}
	rows := []scaleRow{
		{part: "assets", name: cases[0].name, messages: f.messages, d: durations[cases[0].name]},
		{part: "assets", name: cases[1].name, messages: f.messages, d: durations[cases[1].name],
			vs: "bare, 1 asset", ratio: r(cases[1].name) / r(cases[0].name), target: 0.8},
		{part: "assets", name: cases[2].name, messages: 2 * f.messages, d: durations[cases[2].name],
			vs: "bare, 1 asset", ratio: r(cases[2].name) / r(cases[0].name)},
		{part: "assets", name: cases[3].name, messages: 2 * f.messages, d: durations[cases[3].name],
			vs: "poll, 1 asset", ratio: r(cases[3].name) / r(cases[1].name), target: 1.3},
		{part: "assets", name: cases[3].name, messages: 2 * f.messages, d: durations[cases[3].name],
			vs: "bare, 2 assets", ratio: r(cases[3].name) / r(cases[2].name)},
	}
	for i := range rows {
		m := medians[rows[i].name]
		rows[i].benchCPU, rows[i].machineBusy = m.benchCPU, m.machineBusy
	}
	return rows, nil
}

// scaleRun is one timed run: its duration, the cores the bench process
// used (the polls or loops: parse, driver; kfake's serving too), and how
// busy the whole machine was (PostgreSQL, the bench, anything else).
type scaleRun struct {
	d                     time.Duration
	benchCPU, machineBusy float64
}

// machineCPU returns the machine's busy and total CPU time, in clock
// ticks, from /proc/stat (0, 0 where there is none).
func machineCPU() (busy, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line)
	for i, f := range fields[1:] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			continue
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

// timeAssets runs run for n assets at once on a fresh schema, and checks
// each stored an artifact per message.
func timeAssets(ctx context.Context, env *scaleEnv, n int, run func(ctx context.Context, db *store.DB, asset string) (int, error)) (time.Duration, error) {
	u, drop, err := postgresSchema(ctx, env.f.postgresURL)
	if err != nil {
		return 0, err
	}
	defer drop()
	db, err := store.Open(ctx, u, env.logger)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return 0, err
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	t := time.Now()
	for i := range n {
		wg.Go(func() {
			asset := fmt.Sprintf("scale-%d", i)
			got, err := run(ctx, db, asset)
			if err == nil && got != env.f.messages {
				err = fmt.Errorf("asset %s stored %d artifacts, want %d", asset, got, env.f.messages)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	return time.Since(t), errors.Join(errs...)
}

// pollOnce runs one scheduled poll of the whole topic for asset, as the
// ingest bench's child does, and returns the artifacts it created.
func pollOnce(ctx context.Context, env *scaleEnv, st poll.Store, asset string) (int, error) {
	cfg, err := assets.Decode(map[string]any{
		"hosts":               env.brokers,
		"topic":               ingestTopic,
		"read_from_beginning": true,
		"timeout":             600000,
		"ingest":              map[string]any{"max_messages": env.f.messages, "batch_size": env.f.batchSize},
	}, assets.DecodeOptions{})
	if err != nil {
		return 0, fmt.Errorf("asset config: %w", err)
	}
	engine := parsers.NewEngine(sandbox.PoolConfig{})
	defer engine.Close()
	var ps poll.Parsers
	if db, ok := st.(*store.DB); ok {
		ps = parsers.NewService(db, engine)
	} else {
		ps = parsers.NewService(st.(*recordingStore).DB, engine)
	}
	pr, err := poll.New(st, ps, env.logger).Poll(ctx, poll.Request{Asset: asset, Config: cfg, Kind: ingest.PollScheduled})
	if err != nil {
		return 0, fmt.Errorf("poll of asset %s: %w", asset, err)
	}
	return pr.ArtifactsCreated, nil
}

// recordingStore keeps a copy of every batch the poll stores.
type recordingStore struct {
	*store.DB
	mu      sync.Mutex
	batches []*ingest.Batch
}

func (s *recordingStore) SaveBatch(ctx context.Context, b *ingest.Batch) (*ingest.Outcome, error) {
	c := *b
	c.LeaseHolder = "" // the bare loop holds no lease
	c.Containers = make([]ingest.Container, len(b.Containers))
	for i, ct := range b.Containers {
		ct.Body = slices.Clone(ct.Body)
		ct.Artifacts = slices.Clone(ct.Artifacts)
		for j := range ct.Artifacts {
			ct.Artifacts[j].Body = slices.Clone(ct.Artifacts[j].Body)
		}
		c.Containers[i] = ct
	}
	c.Offsets = slices.Clone(b.Offsets)
	s.mu.Lock()
	s.batches = append(s.batches, &c)
	s.mu.Unlock()
	return s.DB.SaveBatch(ctx, b)
}

// captureBatches polls the topic once into a throwaway schema and returns
// the batches the poll stored.
func captureBatches(ctx context.Context, env *scaleEnv) ([]*ingest.Batch, error) {
	u, drop, err := postgresSchema(ctx, env.f.postgresURL)
	if err != nil {
		return nil, err
	}
	defer drop()
	db, err := store.Open(ctx, u, env.logger)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return nil, err
	}
	rec := &recordingStore{DB: db}
	n, err := pollOnce(ctx, env, rec, "capture")
	if err != nil {
		return nil, err
	}
	if n != env.f.messages {
		return nil, fmt.Errorf("the capture poll stored %d artifacts, want %d", n, env.f.messages)
	}
	return rec.batches, nil
}

func printScaleTable(w io.Writer, rows []scaleRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "part\tcase\tmessages\ttime\tmsg/s\tratio\ttarget\tbench CPU\tmachine busy")
	for _, r := range rows {
		ratio, target := "", ""
		if r.ratio > 0 {
			ratio = fmt.Sprintf("%.2f× %s", r.ratio, r.vs)
		}
		if r.target > 0 {
			target = fmt.Sprintf(">= %.2f× %s", r.target, passFail(r.ratio >= r.target))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f cores\t%s\n", r.part, r.name, count(r.messages), r.d.Round(time.Millisecond),
			msgs(rate(r.messages, r.d)), ratio, target, r.benchCPU, pct(r.machineBusy))
	}
	tw.Flush()
}
