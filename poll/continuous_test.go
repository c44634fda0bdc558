package poll_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/metrics"
	"github.com/soarkafka/soarkafka/poll"
	"github.com/soarkafka/soarkafka/store"
)

// continuous is the configuration of a continuous asset on the env's
// cluster, with extra ingest fields.
func (e *env) continuous(extra map[string]any) assets.Config {
	e.t.Helper()
	m := map[string]any{"ingest.mode": "continuous"}
	for k, v := range extra {
		m[k] = v
	}
	return e.config(m)
}

// runContinuous runs p.Continuous in the background until the returned
// stop is called (or the test ends); stop waits for it and returns its
// error.
func runContinuous(t *testing.T, p *poll.Poller, asset string, cfg assets.Config) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Continuous(ctx, poll.Request{Asset: asset, Config: cfg}) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Error("the continuous poll did not stop within 30s")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// leaseHolder returns who holds asset's lease ("" when nobody).
func (e *env) leaseHolder(asset string) string {
	e.t.Helper()
	var h string
	err := e.raw.QueryRowContext(e.t.Context(), e.sqlFor(`SELECT holder FROM ingest_leases WHERE asset = $1`), asset).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return ""
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return h
}

// artifactCounts returns the artifact count of each of asset's containers,
// in id order: with the default parser, one container is one batch.
func (e *env) artifactCounts(asset string) []int {
	e.t.Helper()
	return column[int](e, `SELECT count(*) FROM artifacts WHERE asset = $1 GROUP BY container_id ORDER BY container_id`, asset)
}

func sum(offs map[int32]int64) (n int64) {
	for _, o := range offs {
		n += o
	}
	return n
}

// Messages produced while a continuous poll runs are stored about a second
// later, across the poll's periods, each once; its periods are recorded.
func TestContinuousStoresMessagesAsTheyCome(t *testing.T) {
	m := metrics.New()
	e := newEnv(t, testenv.SQLiteURL(t), poll.WithContinuous(time.Second, 0), poll.WithRecorder(m))
	e.produce(all, 0, 5) // before the first poll: not read, it starts at the latest
	cfg := e.continuous(nil)
	stop := runContinuous(t, e.poller, "live", cfg)
	// The start is stored before any message comes.
	waitFor(t, "the start positions", func() bool { return sum(e.offsets("live")) == 20 }, nil)
	if h := e.leaseHolder("live"); !strings.HasSuffix(h, "/continuous") {
		t.Fatalf("lease holder %q, want the continuous poll's", h)
	}

	var latencies []time.Duration
	for round := range 6 {
		first := 5 + round*3
		t0 := time.Now()
		e.produce(all, first, 3)
		want := 20 + (round+1)*12
		waitFor(t, fmt.Sprintf("round %d stored", round), func() bool { return len(e.sdis("live")) == want-20 }, nil)
		latencies = append(latencies, time.Since(t0))
		if round == 2 {
			time.Sleep(1200 * time.Millisecond) // let a period end with nothing to read
		}
	}
	slices.Sort(latencies)
	t.Logf("produce to stored, 6 rounds of 12 messages (max_batch_wait_ms 500): min %s, median %s, max %s",
		latencies[0], latencies[len(latencies)/2], latencies[len(latencies)-1])
	if med := latencies[len(latencies)/2]; med > 5*time.Second {
		t.Errorf("median latency %s; a continuous poll stores a batch at most max_batch_wait_ms after reading it", med)
	}
	if err := stop(); err != nil {
		t.Fatalf("stopped continuous poll returned %v", err)
	}
	if got := e.sdis("live"); !equal(got, wantSDIs(all, 5, 23)) {
		t.Fatalf("stored %d artifacts, want each of the 72 produced while polling once", len(got))
	}
	if h := e.leaseHolder("live"); h != "" {
		t.Fatalf("lease still held by %q after the stop", h)
	}
	st, err := e.db.Status(t.Context(), "live", topic)
	if err != nil || st.LastPoll == nil || st.LastPoll.Kind != ingest.PollContinuous || st.LastPoll.Status != ingest.PollSucceeded {
		t.Fatalf("last poll %+v, %v; want a successful continuous period", st.LastPoll, err)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if body := rec.Body.String(); !strings.Contains(body, `soarkafka_ingest_messages_total{asset="live"} 72`+"\n") ||
		!strings.Contains(body, `soarkafka_ingest_polls_total{asset="live",kind="continuous",status="success"}`) {
		t.Errorf("metrics lack the continuous poll's 72 messages and its periods:\n%s", body)
	}
}

// A batch is stored when it holds ingest.batch_size messages, or when its
// first message has waited ingest.max_batch_wait_ms; a batch held when the
// poll stops is read again by the next, so nothing is lost or stored twice.
func TestContinuousCutsBatchesBySizeAndAge(t *testing.T) {
	e := newEnv(t, testenv.SQLiteURL(t))
	// Size: 25 messages in one produce, batches of 10, a wait no test
	// sees end.
	slow := e.continuous(map[string]any{"ingest.batch_size": 10, "ingest.max_batch_wait_ms": 60000})
	stop := runContinuous(t, e.poller, "size", slow)
	waitFor(t, "the start positions", func() bool { return len(e.offsets("size")) == 4 }, nil)
	e.produce([]int32{0}, 0, 25)
	waitFor(t, "two full batches", func() bool { return len(e.sdis("size")) == 20 }, nil)
	time.Sleep(time.Second) // the 5 left wait for their batch to fill
	if got := e.artifactCounts("size"); !slices.Equal(got, []int{10, 10}) || e.offsets("size")[0] != 20 {
		t.Fatalf("containers of %v artifacts, position %d; want two batches of 10, position 20", got, e.offsets("size")[0])
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := len(e.sdis("size")); n != 20 || e.offsets("size")[0] != 20 {
		t.Fatalf("after the stop %d stored, position %d; the unfinished batch is left for the next poll", n, e.offsets("size")[0])
	}

	// Age: the next poll reads the 5 again and stores them once their
	// first has waited 700 ms; 3 more come as a batch of their own. (A
	// produce may reach the poll in two fetches a few ms apart: the wait
	// is well above that.)
	fast := e.continuous(map[string]any{"ingest.batch_size": 1000, "ingest.max_batch_wait_ms": 700})
	runContinuous(t, e.poller, "size", fast)
	waitFor(t, "the 5 left", func() bool { return len(e.sdis("size")) == 25 }, nil)
	e.produce([]int32{0}, 25, 3)
	waitFor(t, "3 more", func() bool { return len(e.sdis("size")) == 28 }, nil)
	if got := e.artifactCounts("size"); !slices.Equal(got, []int{10, 10, 5, 3}) {
		t.Fatalf("containers of %v artifacts, want batches of 10, 10, 5 and 3", got)
	}
	if got := e.sdis("size"); !equal(got, wantSDIs([]int32{0}, 0, 28)) {
		t.Fatalf("stored %v, want 0:0 to 0:27 once each", got)
	}
}

// Poison messages, dead letters and gaps are handled as in every poll.
func TestContinuousDeadLettersAndGaps(t *testing.T) {
	e := newEnv(t, testenv.SQLiteURL(t), poll.WithContinuous(500*time.Millisecond, 0))
	testenv.CreateKafkaTopic(t, e.kafka, "alerts-dlq", 1)
	e.savePoisonParser()
	e.produce([]int32{1}, 0, 10)
	cfg := e.continuous(map[string]any{"read_from_beginning": true, "message_parser": "picky",
		"ingest.dead_letter_topic": "alerts-dlq", "ingest.max_batch_wait_ms": 50})
	stop := runContinuous(t, e.poller, "dl", cfg)
	waitFor(t, "partition 1 stored", func() bool { return e.offsets("dl")[1] == 10 }, nil)

	testenv.ProduceKafka(t, e.kafka, []*kgo.Record{{Topic: topic, Partition: 0, Value: []byte("poison pill")}})
	e.produce([]int32{0}, 1, 4)
	waitFor(t, "past the poison message", func() bool { return e.offsets("dl")[0] == 5 }, nil)
	if n := e.count(`SELECT count(*) FROM ingest_dead_letters WHERE asset = 'dl'`); n != 1 {
		t.Fatalf("%d dead letters, want the poison message", n)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Retention deletes messages while no poll runs: the next period
	// records the gap and goes on from the log start.
	e.produce([]int32{2}, 0, 10)
	testenv.DeleteKafkaRecords(t, e.kafka, topic, 2, 6)
	runContinuous(t, e.poller, "dl", cfg)
	waitFor(t, "partition 2 past the gap", func() bool { return e.offsets("dl")[2] == 10 }, nil)
	st, err := e.db.Status(t.Context(), "dl", topic)
	if err != nil || st.GapCount != 1 || st.GapMessages != 6 {
		t.Fatalf("status %+v, %v; want one gap of 6", st, err)
	}
	want := append(wantSDIs([]int32{0}, 1, 5), wantSDIs([]int32{1}, 0, 10)...)
	want = append(want, wantSDIs([]int32{2}, 6, 10)...)
	slices.Sort(want)
	if got := e.sdis("dl"); !equal(got, want) {
		t.Fatalf("stored %v, want %v", got, want)
	}
}

// backpressure stands for the delivery's outbox, which decides in
// production: the test sets how many containers wait and the limit.
type backpressure struct {
	pending, limit atomic.Int64
	calls          atomic.Int64
	err            atomic.Pointer[error]
}

func (b *backpressure) Pending(ctx context.Context, asset string, cfg assets.Config) (int, int, error) {
	b.calls.Add(1)
	if err := b.err.Load(); err != nil {
		return 0, 0, *err
	}
	return int(b.pending.Load()), int(b.limit.Load()), nil
}

// While the backpressure says too many containers wait downstream, a
// continuous poll reads nothing; when it says go, the poll reads on.
func TestContinuousWaitsForBackpressure(t *testing.T) {
	bp := &backpressure{}
	bp.limit.Store(100)
	e := newEnv(t, testenv.SQLiteURL(t), poll.WithBackpressure(bp, 20*time.Millisecond), poll.WithContinuous(time.Second, 0))
	cfg := e.continuous(map[string]any{"ingest.max_batch_wait_ms": 50})
	runContinuous(t, e.poller, "bp", cfg)
	waitFor(t, "the start positions", func() bool { return len(e.offsets("bp")) == 4 }, nil)
	e.produce([]int32{0}, 0, 5)
	waitFor(t, "the first messages", func() bool { return len(e.sdis("bp")) == 5 }, nil)

	bp.pending.Store(100) // at the limit: hold
	calls, t0 := bp.calls.Load(), time.Now()
	waitFor(t, "the poll to ask again", func() bool { return bp.calls.Load() > calls+2 }, nil)
	e.produce([]int32{0}, 5, 5)
	time.Sleep(1500 * time.Millisecond) // past a period: the next one is held too
	if n := len(e.sdis("bp")); n != 5 {
		t.Fatalf("%d stored while held back, want the 5 from before", n)
	}
	if got, most := bp.calls.Load()-calls, 2*int64(time.Since(t0)/(20*time.Millisecond))+10; got > most {
		t.Errorf("%d checks in %s at one per 20ms: not bounded", got, time.Since(t0))
	}

	bp.pending.Store(99)
	waitFor(t, "the poll to read on", func() bool { return len(e.sdis("bp")) == 10 }, nil)
	if got := e.sdis("bp"); !equal(got, wantSDIs([]int32{0}, 0, 10)) {
		t.Fatalf("stored %v", got)
	}
}

// An interval poll held back until its timeout ends says so and stores
// nothing; one whose backpressure cannot answer reads on with a warning.
func TestIntervalPollWaitsForBackpressure(t *testing.T) {
	bp := &backpressure{}
	bp.limit.Store(10)
	bp.pending.Store(10)
	e := newEnv(t, testenv.SQLiteURL(t), poll.WithBackpressure(bp, 20*time.Millisecond))
	e.produce(all, 0, 5)
	cfg := e.config(map[string]any{"read_from_beginning": true, "timeout": 600})
	res := e.poll("held", cfg, ingest.PollScheduled)
	if res.MessagesRead != 0 || res.Stopped != poll.StoppedBackpressure || res.Timing.Held < 300*time.Millisecond {
		t.Fatalf("poll held back = %+v, want nothing read, stopped by backpressure", res)
	}
	boom := errors.New("outbox unreadable")
	bp.err.Store(&boom)
	res = e.poll("held", cfg, ingest.PollScheduled)
	if res.MessagesRead != 20 || len(res.Warnings) == 0 || !strings.Contains(res.Warnings[0], "outbox unreadable") {
		t.Fatalf("poll with a failing backpressure = %+v, want all 20 read with a warning", res)
	}
	// Poll now is not held back: it moves no position.
	bp.err.Store(nil)
	if res := e.poll("held", cfg, ingest.PollNow); res.MessagesRead != poll.DefaultPollNowCount {
		t.Fatalf("poll now read %d", res.MessagesRead)
	}
}

// replica is one soarkafka process: its own store handle, poller, metrics
// and scheduler over the shared database.
type replica struct {
	name    string
	db      *store.DB
	metrics *metrics.Metrics
	cancel  context.CancelFunc
	done    chan struct{}
	sched   *poll.Scheduler
}

func (e *env) startReplica(name string, key []byte, opts ...poll.Option) *replica {
	e.t.Helper()
	r := &replica{name: name, db: openStore(e.t, e.url), metrics: metrics.New(), done: make(chan struct{})}
	sealer, err := assets.NewSealer(key)
	if err != nil {
		e.t.Fatal(err)
	}
	svc := assets.NewService(r.db, sealer)
	p := poll.New(r.db, newParsers(e.t, r.db), nil, append([]poll.Option{poll.WithReplica(name), poll.WithRecorder(r.metrics),
		poll.WithContinuous(time.Second, 100*time.Millisecond)}, opts...)...)
	r.sched = poll.NewScheduler(p, svc, nil, 50*time.Millisecond)
	ctx, cancel := context.WithCancel(e.t.Context())
	r.cancel = cancel
	go func() { defer close(r.done); r.sched.Run(ctx) }()
	e.t.Cleanup(r.stop)
	return r
}

func (r *replica) stop() {
	r.cancel()
	<-r.done
}

// continuousPolls returns the continuous periods the replica recorded.
func (r *replica) continuousPolls(asset string) string {
	rec := httptest.NewRecorder()
	r.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	var out []string
	for _, l := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(l, `soarkafka_ingest_polls_total{asset="`+asset+`",kind="continuous"`) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "; ")
}

// Two replicas on one continuous asset: one polls, the other stands by and
// takes over when the first stops; every message is stored once.
func TestContinuousTwoReplicasOneLoop(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		e := newEnv(t, url)
		key, _ := assets.NewKey()
		sealer, _ := assets.NewSealer(key)
		svc := assets.NewService(e.db, sealer)
		if _, err := svc.Create(t.Context(), assets.Input{Name: "duo", Config: map[string]any{
			"hosts": strings.Join(e.kafka.ListenAddrs(), ","), "topic": topic, "read_from_beginning": true,
			"ingest": map[string]any{"mode": "continuous", "max_batch_wait_ms": 100}}}); err != nil {
			t.Fatal(err)
		}
		a := e.startReplica("replica-a", key)
		waitFor(t, "replica-a to hold the lease", func() bool { return strings.HasPrefix(e.leaseHolder("duo"), "replica-a/") }, nil)
		b := e.startReplica("replica-b", key)
		waitFor(t, "replica-b to list the asset", func() bool { return len(b.sched.Scheduled()) == 1 }, nil)

		e.produce(all, 0, 10)
		waitFor(t, "the first messages", func() bool { return len(e.sdis("duo")) == 40 }, nil)
		time.Sleep(1200 * time.Millisecond) // past a period and many of replica-b's tries
		if h := e.leaseHolder("duo"); !strings.HasPrefix(h, "replica-a/") {
			t.Fatalf("lease holder %q, want replica-a still", h)
		}
		if got := b.continuousPolls("duo"); got != "" {
			t.Fatalf("replica-b polled while replica-a held the lease: %s", got)
		}
		if got := a.continuousPolls("duo"); got == "" {
			t.Fatal("replica-a recorded no continuous period")
		}

		// Messages in flight while replica-a stops; replica-b takes over.
		e.produce(all, 10, 10)
		a.stop()
		waitFor(t, "replica-b to take over", func() bool { return strings.HasPrefix(e.leaseHolder("duo"), "replica-b/") }, nil)
		e.produce(all, 20, 10)
		waitFor(t, "every message", func() bool { return len(e.sdis("duo")) == 120 }, nil)
		if got := e.sdis("duo"); !equal(got, wantSDIs(all, 0, 30)) {
			t.Fatalf("stored %d artifacts, want each of the 120 messages once", len(got))
		}
	})
}

// The scheduler runs the continuous poll of a continuous asset, stops it
// when the asset changes to interval or is deleted (the lease is given
// up), and an on poll action meanwhile has nothing to do.
func TestSchedulerFollowsContinuousMode(t *testing.T) {
	e := newEnv(t, testenv.SQLiteURL(t))
	key, _ := assets.NewKey()
	sealer, _ := assets.NewSealer(key)
	svc := assets.NewService(e.db, sealer)
	doc := func(ing map[string]any) map[string]any {
		return map[string]any{"hosts": strings.Join(e.kafka.ListenAddrs(), ","), "topic": topic, "read_from_beginning": true, "ingest": ing}
	}
	if _, err := svc.Create(t.Context(), assets.Input{Name: "cont", Config: doc(map[string]any{"mode": "continuous", "max_batch_wait_ms": 100})}); err != nil {
		t.Fatal(err)
	}
	r := e.startReplica("replica-a", key)
	waitFor(t, "the continuous poll", func() bool { return strings.HasSuffix(e.leaseHolder("cont"), "/continuous") }, nil)
	e.produce(all, 0, 5)
	waitFor(t, "the messages", func() bool { return len(e.sdis("cont")) == 20 }, nil)

	// An on poll action finds the asset polled continuously: at once,
	// without waiting for the lease, and without failing.
	t0 := time.Now()
	res, err := e.poller.Poll(t.Context(), poll.Request{Asset: "cont", Config: e.config(map[string]any{"read_from_beginning": true}), Kind: ingest.PollAction})
	if err != nil || res.Stopped != poll.StoppedContinuous || time.Since(t0) > 5*time.Second {
		t.Fatalf("on poll of a continuous asset: %+v, %v after %s", res, err, time.Since(t0))
	}
	// Poll now cannot run beside it, and says why.
	if _, err := e.poller.Poll(t.Context(), poll.Request{Asset: "cont", Config: e.config(nil), Kind: ingest.PollNow}); err == nil ||
		!strings.Contains(err.Error(), "polled continuously") || !strings.Contains(err.Error(), "ingest.mode") {
		t.Fatalf("poll now beside a continuous poll: %v", err)
	}

	// Changed to interval: the continuous poll stops and gives the lease up.
	if _, err := svc.Update(t.Context(), "cont", assets.Input{Config: doc(map[string]any{"interval": "1h"})}); err != nil {
		t.Fatal(err)
	}
	r.sched.Wake()
	waitFor(t, "the lease given up", func() bool { return !strings.HasSuffix(e.leaseHolder("cont"), "/continuous") }, nil)
	if got := r.sched.Scheduled(); !equal(got, []string{"cont"}) {
		t.Fatalf("scheduled %v, want cont at its interval", got)
	}

	// Continuous again, then deleted: the loop stops, the lease is free.
	if _, err := svc.Update(t.Context(), "cont", assets.Input{Config: doc(map[string]any{"mode": "continuous"})}); err != nil {
		t.Fatal(err)
	}
	r.sched.Wake()
	waitFor(t, "the continuous poll again", func() bool { return strings.HasSuffix(e.leaseHolder("cont"), "/continuous") }, nil)
	e.produce(all, 5, 5)
	waitFor(t, "the new messages", func() bool { return len(e.sdis("cont")) == 40 }, nil)
	if err := svc.Delete(t.Context(), "cont"); err != nil {
		t.Fatal(err)
	}
	r.sched.Wake()
	waitFor(t, "the deleted asset's lease given up", func() bool { return e.leaseHolder("cont") == "" && len(r.sched.Scheduled()) == 0 }, nil)
	if got := e.sdis("cont"); !equal(got, wantSDIs(all, 0, 10)) {
		t.Fatalf("stored %d, want each of the 40 once", len(got))
	}
}

// A continuous poll that loses its lease stores nothing more (the store's
// fence refuses its batch, or its heartbeat notices first) and ends with
// the loss.
func TestContinuousLosesItsLease(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		e := newEnv(t, url, poll.WithLease(900*time.Millisecond, 0))
		cfg := e.continuous(map[string]any{"ingest.max_batch_wait_ms": 10})
		done := make(chan error, 1)
		go func() { done <- e.poller.Continuous(t.Context(), poll.Request{Asset: "lost", Config: cfg}) }()
		waitFor(t, "the start positions", func() bool { return len(e.offsets("lost")) == 4 }, nil)
		// Another replica takes the lease over (as after a pause longer
		// than the lease's time), and messages come at once.
		if _, err := e.raw.ExecContext(t.Context(), e.sqlFor(`UPDATE ingest_leases SET holder = 'replica-x/1' WHERE asset = $1`), "lost"); err != nil {
			t.Fatal(err)
		}
		e.produce(all, 0, 3)
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "lease") {
				t.Fatalf("continuous poll after its lease was taken: %v, want it ended naming the lease", err)
			}
			t.Logf("ended with: %v", err)
		case <-time.After(20 * time.Second):
			t.Fatal("the continuous poll went on without its lease")
		}
		if n := len(e.sdis("lost")); n != 0 {
			t.Fatalf("%d stored by a poll that lost its lease", n)
		}
		if h := e.leaseHolder("lost"); h != "replica-x/1" {
			t.Fatalf("lease holder %q, want the new holder's untouched", h)
		}
	})
}

// A continuous poll killed with SIGKILL in a batch's transaction or right
// after its commit, then started again (once the crashed holder's lease
// expired, as another replica would): every message is stored once.
func TestContinuousSIGKILLLosesAndDuplicatesNothing(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, point := range []string{store.FaultMidTransaction, poll.FaultAfterCommit} {
		t.Run(point, func(t *testing.T) {
			e := newEnv(t, testenv.SQLiteURL(t))
			e.produce(all, 0, 25)
			doc := map[string]any{"hosts": strings.Join(e.kafka.ListenAddrs(), ","), "topic": topic, "read_from_beginning": true,
				"ingest": map[string]any{"mode": "continuous", "batch_size": 10, "max_batch_wait_ms": 50}}
			raw, _ := json.Marshal(doc)
			cmd := exec.CommandContext(t.Context(), exe, "-test.run=^$")
			cmd.Env = append(os.Environ(), faultEnv+"="+point+":3", faultStoreEnv+"="+e.url, faultConfigEnv+"="+string(raw))
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("child: %v (want killed)\n%s", err, out)
			}
			if ws, ok := exit.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("child ended with %v, want SIGKILL at %s\n%s", err, point, out)
			}
			before := len(e.sdis("prod"))

			p := poll.New(e.db, e.parsers, nil)
			cfg := e.continuous(map[string]any{"read_from_beginning": true, "ingest.batch_size": 10, "ingest.max_batch_wait_ms": 50})
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			go func() {
				defer close(done)
				for ctx.Err() == nil {
					if err := p.Continuous(ctx, poll.Request{Asset: "prod", Config: cfg}); err != nil {
						time.Sleep(100 * time.Millisecond) // the crashed holder's lease has not expired yet
					}
				}
			}()
			defer func() { cancel(); <-done }()
			waitFor(t, "every message after the restart", func() bool { return len(e.sdis("prod")) >= 100 }, nil)
			if got := e.sdis("prod"); !equal(got, wantSDIs(all, 0, 25)) {
				t.Fatalf("after the restart %d artifacts (%d before it), want each of the 100 messages once", len(got), before)
			}
			waitFor(t, "the positions at the end", func() bool {
				return equalOffsets(e.offsets("prod"), map[int32]int64{0: 25, 1: 25, 2: 25, 3: 25})
			}, nil)
			t.Logf("killed at %s with %d of 100 stored; the restart stored the rest once", point, before)
		})
	}
}
