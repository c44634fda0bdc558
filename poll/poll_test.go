package poll_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/metrics"
	"github.com/soarkafka/soarkafka/parsers"
	"github.com/soarkafka/soarkafka/parsers/sandbox"
	"github.com/soarkafka/soarkafka/poll"
	"github.com/soarkafka/soarkafka/store"
)

// workerEnv makes the test binary a parser worker, for user parsers.
const workerEnv = "SOARKAFKA_POLL_TEST_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		os.Exit(sandbox.WorkerMain(os.Stdin, os.Stdout, os.Stderr))
	}
	if os.Getenv(faultEnv) != "" {
		os.Exit(faultMain())
	}
	os.Exit(m.Run())
}

const topic = "alerts"

type env struct {
	t       *testing.T
	url     string
	db      *store.DB
	raw     *sql.DB
	parsers *parsers.Service
	kafka   *kfake.Cluster
	poller  *poll.Poller
}

// newEnv builds a store at url, a kfake cluster with topic alerts of four
// partitions, and a poller over them.
func newEnv(t *testing.T, url string, opts ...poll.Option) *env {
	t.Helper()
	e := &env{t: t, url: url}
	e.kafka = testenv.NewKafka(t, kfake.SeedTopics(4, topic))
	e.db = openStore(t, url)
	e.raw = rawDB(t, url)
	e.parsers = newParsers(t, e.db)
	e.poller = poll.New(e.db, e.parsers, nil, opts...)
	return e
}

func openStore(t *testing.T, url string) *store.DB {
	t.Helper()
	db, err := store.Open(t.Context(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return db
}

func newParsers(t *testing.T, db *store.DB) *parsers.Service {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	engine := parsers.NewEngine(sandbox.PoolConfig{Worker: sandbox.Config{Exe: exe, Env: []string{workerEnv + "=1"}, Timeout: 10 * time.Second}})
	t.Cleanup(engine.Close)
	return parsers.NewService(db, engine)
}

// rawDB opens url beneath the store (testenv.RawDB).
func rawDB(t *testing.T, url string) *sql.DB { return testenv.RawDB(t, url) }

// config is the asset configuration for the env's cluster, with extra
// fields over the defaults (a dotted name sets a field of a block).
func (e *env) config(extra map[string]any) assets.Config {
	e.t.Helper()
	doc := map[string]any{"hosts": strings.Join(e.kafka.ListenAddrs(), ","), "topic": topic, "timeout": 5000}
	for k, v := range extra {
		if block, field, ok := strings.Cut(k, "."); ok {
			m, _ := doc[block].(map[string]any)
			if m == nil {
				m = map[string]any{}
				doc[block] = m
			}
			m[field] = v
			continue
		}
		doc[k] = v
	}
	cfg, err := assets.Decode(doc, assets.DecodeOptions{})
	if err != nil {
		e.t.Fatalf("assets.Decode: %v", err)
	}
	return cfg
}

// produce writes n JSON messages to each partition, numbered from first.
func (e *env) produce(partitions []int32, first, n int) {
	e.t.Helper()
	var recs []*kgo.Record
	for _, p := range partitions {
		for i := first; i < first+n; i++ {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Key: fmt.Appendf(nil, "k%d", i),
				Value: fmt.Appendf(nil, `{"partition":%d,"n":%d}`, p, i)})
		}
	}
	testenv.ProduceKafka(e.t, e.kafka, recs)
}

func (e *env) poll(asset string, cfg assets.Config, kind string) *poll.Result {
	e.t.Helper()
	res, err := e.poller.Poll(e.t.Context(), poll.Request{Asset: asset, Config: cfg, Kind: kind})
	if err != nil {
		e.t.Fatalf("poll %s: %v", kind, err)
	}
	return res
}

func (e *env) count(query string, args ...any) int {
	e.t.Helper()
	var n int
	q := query
	if strings.HasPrefix(e.url, "sqlite") {
		for i := len(args); i >= 1; i-- {
			q = strings.ReplaceAll(q, fmt.Sprintf("$%d", i), fmt.Sprintf("?%d", i))
		}
	}
	if err := e.raw.QueryRowContext(e.t.Context(), q, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// sdis returns the artifact identifiers stored for asset, sorted.
func (e *env) sdis(asset string) []string {
	e.t.Helper()
	return column[string](e, `SELECT source_data_identifier FROM artifacts WHERE asset = $1 ORDER BY source_data_identifier`, asset)
}

// sqlFor writes q's $n placeholders as the test database's dialect takes
// them.
func (e *env) sqlFor(q string) string {
	if strings.HasPrefix(e.url, "sqlite") {
		return regexp.MustCompile(`\$(\d+)`).ReplaceAllString(q, "?$1")
	}
	return q
}

// column reads the one column query selects, every row.
func column[T any](e *env, query string, args ...any) []T {
	e.t.Helper()
	rows, err := e.raw.QueryContext(e.t.Context(), e.sqlFor(query), args...)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

func wantSDIs(partitions []int32, from, to int) []string {
	var out []string
	for _, p := range partitions {
		for o := from; o < to; o++ {
			out = append(out, fmt.Sprintf("%d:%d", p, o))
		}
	}
	sort.Strings(out)
	return out
}

func (e *env) offsets(asset string) map[int32]int64 {
	e.t.Helper()
	offs, err := e.db.Offsets(e.t.Context(), asset, topic)
	if err != nil {
		e.t.Fatal(err)
	}
	return offs
}

var all = []int32{0, 1, 2, 3}

func TestPollFromBeginningContinuesAcrossPollsAndRestarts(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		e := newEnv(t, url)
		e.produce(all, 0, 30)
		cfg := e.config(map[string]any{"read_from_beginning": true, "ingest.batch_size": 16})

		res := e.poll("prod", cfg, ingest.PollScheduled)
		if res.MessagesRead != 120 || res.ArtifactsCreated != 120 || res.DuplicatesSkipped != 0 || res.Lag != 0 || res.Stopped != poll.StoppedCaughtUp {
			t.Fatalf("first poll = %+v, want 120 messages and artifacts, lag 0, caught up", res)
		}
		// The default parser makes one container per parser call.
		if res.ContainersCreated < 120/16 || res.ContainersCreated != len(res.Containers) {
			t.Errorf("containers created %d, listed %d; want at least %d (one per batch)", res.ContainersCreated, len(res.Containers), 120/16)
		}
		for _, p := range res.Partitions {
			if p.Start != 0 || p.End != 30 || p.LogEnd != 30 || p.Lag != 0 {
				t.Errorf("partition result %+v, want 0 to 30 of 30", p)
			}
		}
		if got := e.sdis("prod"); !equal(got, wantSDIs(all, 0, 30)) {
			t.Fatalf("stored %d artifacts, want every p:o once", len(got))
		}

		// Nothing new: nothing read.
		if res := e.poll("prod", cfg, ingest.PollScheduled); res.MessagesRead != 0 || res.ContainersCreated != 0 {
			t.Fatalf("second poll = %+v, want nothing", res)
		}

		// A restart: a new store handle and poller continue from the
		// stored position.
		e.produce([]int32{1, 3}, 30, 5)
		db2 := openStore(t, url)
		p2 := poll.New(db2, newParsers(t, db2), nil)
		res, err := p2.Poll(t.Context(), poll.Request{Asset: "prod", Config: cfg, Kind: ingest.PollAction})
		if err != nil {
			t.Fatal(err)
		}
		if res.MessagesRead != 10 || res.ArtifactsCreated != 10 {
			t.Fatalf("poll after restart = %+v, want the 10 new messages", res)
		}
		want := map[int32]int64{0: 30, 1: 35, 2: 30, 3: 35}
		if got := e.offsets("prod"); !equalOffsets(got, want) {
			t.Fatalf("offsets %v, want %v", got, want)
		}
		if got := e.sdis("prod"); len(got) != 130 {
			t.Fatalf("%d artifacts stored, want 130", len(got))
		}
	})
}

func TestFirstPollFromLatestStoresItsStart(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		e := newEnv(t, url)
		e.produce(all, 0, 10)
		cfg := e.config(nil) // read_from_beginning false

		res := e.poll("prod", cfg, ingest.PollScheduled)
		if res.MessagesRead != 0 || res.ContainersCreated != 0 {
			t.Fatalf("first poll from latest = %+v, want nothing read", res)
		}
		// The start is stored, so messages produced before the next poll
		// are not skipped by a later "latest".
		if got, want := e.offsets("prod"), map[int32]int64{0: 10, 1: 10, 2: 10, 3: 10}; !equalOffsets(got, want) {
			t.Fatalf("offsets %v, want %v", got, want)
		}
		e.produce([]int32{2}, 10, 3)
		res = e.poll("prod", cfg, ingest.PollScheduled)
		if res.MessagesRead != 3 {
			t.Fatalf("second poll read %d, want the 3 produced since", res.MessagesRead)
		}
		if got := e.sdis("prod"); !equal(got, []string{"2:10", "2:11", "2:12"}) {
			t.Fatalf("stored %v", got)
		}
	})
}

func TestPollNowTwiceNoDuplicatesNoPositionChange(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		e := newEnv(t, url)
		e.produce(all, 0, 20)
		cfg := e.config(map[string]any{"read_from_beginning": true})
		// A scheduled poll stores a position first.
		first := e.poll("prod", e.config(nil), ingest.PollScheduled)
		if first.MessagesRead != 0 {
			t.Fatalf("first poll from latest read %d", first.MessagesRead)
		}
		before := e.offsets("prod")

		req := poll.Request{Asset: "prod", Config: cfg, Kind: ingest.PollNow, Count: 25}
		res, err := e.poller.Poll(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		// From the beginning: partition 0's 20, then partition 1's first 5.
		want := append(wantSDIs([]int32{0}, 0, 20), wantSDIs([]int32{1}, 0, 5)...)
		sort.Strings(want)
		if res.MessagesRead != 25 || res.ArtifactsCreated != 25 || !equal(e.sdis("prod"), want) {
			t.Fatalf("poll now = %+v, stored %v; want %v", res, e.sdis("prod"), want)
		}
		containers := e.count(`SELECT count(*) FROM containers`)

		res, err = e.poller.Poll(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		if res.ArtifactsCreated != 0 || res.DuplicatesSkipped != 25 || res.ContainersCreated != 0 {
			t.Fatalf("second poll now = %+v, want 25 duplicates and nothing created", res)
		}
		if n := e.count(`SELECT count(*) FROM containers`); n != containers {
			t.Fatalf("containers %d after the second poll now, want %d", n, containers)
		}
		if got := e.offsets("prod"); !equalOffsets(got, before) {
			t.Fatalf("poll now moved the position: %v, was %v", got, before)
		}
		// The default count is 10.
		res, err = e.poller.Poll(t.Context(), poll.Request{Asset: "other", Config: cfg, Kind: ingest.PollNow})
		if err != nil || res.MessagesRead != poll.DefaultPollNowCount {
			t.Fatalf("poll now without count: %+v, %v; want %d messages", res, err, poll.DefaultPollNowCount)
		}
	})
}

func TestOffsetOutOfRange(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		e := newEnv(t, url)
		e.produce(all, 0, 10)
		cfg := e.config(map[string]any{"read_from_beginning": true})
		e.poll("prod", cfg, ingest.PollScheduled)
		e.poll("strict", e.config(map[string]any{"read_from_beginning": true, "ingest.on_offset_out_of_range": "fail"}), ingest.PollScheduled)

		// 20 more on partition 1, of which retention deletes the first 15
		// before the next poll.
		e.produce([]int32{1}, 10, 20)
		testenv.DeleteKafkaRecords(t, e.kafka, topic, 1, 25)

		strict := e.config(map[string]any{"read_from_beginning": true, "ingest.on_offset_out_of_range": "fail"})
		_, err := e.poller.Poll(t.Context(), poll.Request{Asset: "strict", Config: strict, Kind: ingest.PollScheduled})
		if err == nil || !strings.Contains(err.Error(), "stored position 10 is no longer on the broker") || !strings.Contains(err.Error(), "15 messages") {
			t.Fatalf("fail policy: %v, want the out-of-range error", err)
		}
		if got := e.offsets("strict")[1]; got != 10 {
			t.Fatalf("fail policy moved the position to %d", got)
		}

		res := e.poll("prod", cfg, ingest.PollScheduled)
		wantGap := ingest.Gap{Partition: 1, From: 10, To: 24, Count: 15}
		if len(res.Gaps) != 1 || res.Gaps[0] != wantGap {
			t.Fatalf("gaps %+v, want %+v", res.Gaps, wantGap)
		}
		if res.MessagesRead != 5 || e.offsets("prod")[1] != 30 {
			t.Fatalf("read %d, position %d; want the 5 left, position 30", res.MessagesRead, e.offsets("prod")[1])
		}
		st, err := e.db.Status(t.Context(), "prod", topic)
		if err != nil {
			t.Fatal(err)
		}
		if st.GapCount != 1 || st.GapMessages != 15 || len(st.Gaps) != 1 || st.Gaps[0].Gap != wantGap {
			t.Fatalf("status gaps = %+v", st)
		}
		// Recorded once: the next poll has no gap.
		if res := e.poll("prod", cfg, ingest.PollScheduled); len(res.Gaps) != 0 {
			t.Fatalf("gap recorded again: %+v", res.Gaps)
		}
	})
}

// poisonParser fails on any message whose value contains "poison".
const poisonParser = `package parser

import (
	"strings"

	"github.com/soarkafka/soarkafka/soar"
)

func ParseMessages(topic string, messages []soar.Message) ([]soar.Result, error) {
	c := soar.Container{Name: "batch from " + topic}
	var arts []soar.Artifact
	for _, m := range messages {
		if strings.Contains(m.Message, "poison") {
			panic("cannot parse " + m.Message)
		}
		arts = append(arts, soar.Artifact{Name: "msg", SourceDataIdentifier: m.SourceID(), CEF: map[string]any{"message": m.Message}})
	}
	return []soar.Result{{Container: c, Artifacts: arts}}, nil
}
`

func (e *env) savePoisonParser() {
	e.t.Helper()
	if _, err := e.parsers.Create(e.t.Context(), parsers.Input{Name: "picky", Source: poisonParser}); err != nil {
		e.t.Fatalf("save parser: %v", err)
	}
}

func TestPoisonMessageWithoutDeadLetterTopicStopsBeforeIt(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		e := newEnv(t, url)
		e.savePoisonParser()
		e.produce([]int32{0}, 0, 10)
		testenv.ProduceKafka(t, e.kafka, []*kgo.Record{{Topic: topic, Partition: 0, Value: []byte("poison pill")}})
		e.produce([]int32{0}, 11, 5)
		cfg := e.config(map[string]any{"read_from_beginning": true, "message_parser": "picky"})

		res, err := e.poller.Poll(t.Context(), poll.Request{Asset: "prod", Config: cfg, Kind: ingest.PollScheduled})
		var pe *poll.PoisonError
		if !errors.As(err, &pe) || pe.Partition != 0 || pe.Offset != 10 || pe.Parser != "picky" {
			t.Fatalf("err = %v, want a PoisonError at 0:10", err)
		}
		if !strings.Contains(err.Error(), "cannot parse poison pill") || !strings.Contains(err.Error(), "0:10") {
			t.Errorf("error %q does not name the parser's error and the message", err)
		}
		if got := e.sdis("prod"); !equal(got, wantSDIs([]int32{0}, 0, 10)) || res.ArtifactsCreated != 10 {
			t.Fatalf("stored %v, want the 10 before the poison message", got)
		}
		if got := e.offsets("prod")[0]; got != 10 {
			t.Fatalf("position %d, want 10 (at the poison message, never past it)", got)
		}
		// The next poll stops there again: never past a message neither
		// stored nor dead-lettered.
		if _, err := e.poller.Poll(t.Context(), poll.Request{Asset: "prod", Config: cfg, Kind: ingest.PollScheduled}); !errors.As(err, &pe) || pe.Offset != 10 {
			t.Fatalf("second poll: %v", err)
		}
		st, err := e.db.Status(t.Context(), "prod", topic)
		if err != nil {
			t.Fatal(err)
		}
		if st.LastPoll == nil || st.LastPoll.Status != ingest.PollFailed || !strings.Contains(st.LastPoll.Error, "0:10") {
			t.Fatalf("last poll = %+v, want the failure recorded", st.LastPoll)
		}
	})
}

func TestPoisonMessagesGoToTheDeadLetterTopic(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		e := newEnv(t, url)
		testenv.CreateKafkaTopic(t, e.kafka, "alerts-dlq", 1)
		e.savePoisonParser()
		var recs []*kgo.Record
		for i := range 40 {
			v := fmt.Sprintf(`{"n":%d}`, i)
			if i == 7 || i == 31 {
				v = fmt.Sprintf("poison %d", i)
			}
			recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(i % 2), Key: fmt.Appendf(nil, "key-%d", i), Value: []byte(v),
				Headers: []kgo.RecordHeader{{Key: "origin", Value: []byte("sensor")}}})
		}
		testenv.ProduceKafka(t, e.kafka, recs)
		cfg := e.config(map[string]any{"read_from_beginning": true, "message_parser": "picky",
			"ingest.dead_letter_topic": "alerts-dlq", "ingest.batch_size": 8})

		res := e.poll("prod", cfg, ingest.PollScheduled)
		if res.DeadLettered != 2 || res.ArtifactsCreated != 38 || res.MessagesRead != 40 {
			t.Fatalf("poll = %+v, want 38 stored and 2 dead-lettered", res)
		}
		if got := e.offsets("prod"); !equalOffsets(got, map[int32]int64{0: 20, 1: 20, 2: 0, 3: 0}) {
			t.Fatalf("offsets %v", got)
		}

		// Consume the dead letters back and check their headers.
		cl := testenv.KafkaClient(t, e.kafka, kgo.ConsumeTopics("alerts-dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		var got []*kgo.Record
		for len(got) < 2 && ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, r) })
		}
		if len(got) != 2 {
			t.Fatalf("%d dead letters, want 2", len(got))
		}
		sort.Slice(got, func(i, j int) bool { return string(got[i].Key) < string(got[j].Key) })
		for i, want := range []struct {
			key, value, partition, offset string
		}{{"key-31", "poison 31", "1", "15"}, {"key-7", "poison 7", "1", "3"}} {
			r := got[i]
			h := map[string]string{}
			for _, x := range r.Headers {
				h[x.Key] = string(x.Value)
			}
			if string(r.Key) != want.key || string(r.Value) != want.value || h["origin"] != "sensor" ||
				h[poll.HeaderSourceTopic] != topic || h[poll.HeaderSourcePartition] != want.partition ||
				h[poll.HeaderSourceOffset] != want.offset || h[poll.HeaderParser] != "picky" || h[poll.HeaderAsset] != "prod" ||
				!strings.Contains(h[poll.HeaderError], "cannot parse "+want.value) {
				t.Errorf("dead letter %d: key %s value %s headers %v; want %+v", i, r.Key, r.Value, h, want)
			}
		}
		st, err := e.db.Status(t.Context(), "prod", topic)
		if err != nil || st.DeadLettered != 2 {
			t.Fatalf("status dead-lettered = %+v, %v; want 2", st, err)
		}
	})
}

func TestContainerCountCapsContainers(t *testing.T) {
	e := newEnv(t, testenv.SQLiteURL(t))
	e.produce([]int32{0}, 0, 50)
	cfg := e.config(map[string]any{"read_from_beginning": true, "ingest.batch_size": 5})
	res, err := e.poller.Poll(t.Context(), poll.Request{Asset: "prod", Config: cfg, Kind: ingest.PollAction, MaxContainers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if res.ContainersCreated != 3 || res.Stopped != poll.StoppedContainerCap || res.ArtifactsCreated != 15 {
		t.Fatalf("poll = %+v, want 3 containers of 5 artifacts, stopped at container_count", res)
	}
	// Nothing lost: the rest comes with the next poll.
	if got := e.offsets("prod")[0]; got != 15 {
		t.Fatalf("position %d, want 15", got)
	}
	res = e.poll("prod", cfg, ingest.PollAction)
	if res.ArtifactsCreated != 35 {
		t.Fatalf("next poll stored %d, want the 35 left", res.ArtifactsCreated)
	}
}

func TestOnePollPerAssetAtATime(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		e := newEnv(t, url, poll.WithLease(30*time.Second, 300*time.Millisecond))
		cfg := e.config(nil)
		// Another replica holds the lease.
		ok, _, err := e.db.AcquireLease(t.Context(), "prod", "replica-b/1", time.Minute)
		if err != nil || !ok {
			t.Fatalf("acquire: %v %v", ok, err)
		}
		_, err = e.poller.Poll(t.Context(), poll.Request{Asset: "prod", Config: cfg, Kind: ingest.PollAction})
		if soarkafka.ErrorCode(err) != soarkafka.ECONFLICT || !strings.Contains(err.Error(), "replica-b/1") {
			t.Fatalf("poll while another holds the lease: %v, want ECONFLICT naming the holder", err)
		}
		// Another asset is not held up.
		e.poll("other", cfg, ingest.PollAction)
		// Released: the poll runs.
		if err := e.db.ReleaseLease(t.Context(), "prod", "replica-b/1"); err != nil {
			t.Fatal(err)
		}
		e.poll("prod", cfg, ingest.PollAction)
	})
}

func TestConcurrentPollersStoreEveryMessageOnce(t *testing.T) {
	testenv.ForEachDialect(t, func(t *testing.T, url string) {
		e := newEnv(t, url)
		e.produce(all, 0, 200)
		cfg := e.config(map[string]any{"read_from_beginning": true, "ingest.batch_size": 50, "ingest.max_messages": 150})
		// Two replicas (each its own store handle and poller) poll the
		// same asset over and over at once.
		var wg sync.WaitGroup
		for r := range 2 {
			db := openStore(t, url)
			p := poll.New(db, newParsers(t, db), nil, poll.WithReplica(fmt.Sprintf("replica-%d", r)), poll.WithLease(30*time.Second, 20*time.Second))
			wg.Go(func() {
				for range 4 {
					// PollAction waits for the lease the other replica
					// holds (a scheduled poll skips its turn instead).
					if _, err := p.Poll(t.Context(), poll.Request{Asset: "prod", Config: cfg, Kind: ingest.PollAction}); err != nil {
						t.Errorf("replica %d: %v", r, err)
					}
				}
			})
		}
		wg.Wait()
		e.poll("prod", cfg, ingest.PollScheduled) // whatever is left
		if got := e.sdis("prod"); !equal(got, wantSDIs(all, 0, 200)) {
			t.Fatalf("%d artifacts stored, want each of the 800 messages once", len(got))
		}
		if n := e.count(`SELECT count(*) FROM artifacts WHERE asset = 'prod'`); n != 800 {
			t.Fatalf("%d artifacts, want 800", n)
		}
	})
}

func TestConsumerGroupCommittedAfterStore(t *testing.T) {
	e := newEnv(t, testenv.SQLiteURL(t))
	e.produce(all, 0, 7)
	cfg := e.config(map[string]any{"read_from_beginning": true})
	res := e.poll("prod", cfg, ingest.PollScheduled)
	if len(res.Warnings) > 0 {
		t.Fatalf("warnings %v", res.Warnings)
	}
	adm := kadm.NewClient(testenv.KafkaClient(t, e.kafka))
	offs, err := adm.FetchOffsets(t.Context(), "soarkafka-prod")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range all {
		o, ok := offs.Lookup(topic, p)
		if !ok || o.At != 7 {
			t.Errorf("group offset of partition %d = %+v, want 7", p, o)
		}
	}
	// ingest.group_id names another group.
	cfg = e.config(map[string]any{"read_from_beginning": true, "ingest.group_id": "soc-kafka"})
	e.poll("second", cfg, ingest.PollScheduled)
	offs, err = adm.FetchOffsets(t.Context(), "soc-kafka")
	if o, ok := offs.Lookup(topic, 0); err != nil || !ok || o.At != 7 {
		t.Fatalf("soc-kafka offsets %+v, %v", offs, err)
	}
}

func TestBrokerDownMidPollResumesAtLastCommit(t *testing.T) {
	// A fetch returns one record batch at a time, and each produce call
	// is one batch of 10: the poll reads 10 messages per fetch.
	e := newEnv(t, testenv.SQLiteURL(t), poll.WithKafkaOptions(kgo.FetchMaxBytes(1), kgo.FetchMaxPartitionBytes(1)))
	for i := 0; i < 100; i += 10 {
		e.produce([]int32{0}, i, 10)
	}
	cfg := e.config(map[string]any{"read_from_beginning": true, "ingest.batch_size": 10, "timeout": 2000})
	// The broker answers the first fetches, then fails every fetch.
	fetches := 0
	e.kafka.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		e.kafka.KeepControl()
		fetches++
		if fetches <= 2 {
			return nil, nil, false
		}
		return nil, errors.New("broker down"), true
	})
	res, err := e.poller.Poll(t.Context(), poll.Request{Asset: "prod", Config: cfg, Kind: ingest.PollScheduled})
	stored := e.offsets("prod")[0]
	if res.MessagesRead >= 100 || stored >= 100 || soarkafka.ErrorCode(err) != soarkafka.EUNAVAILABLE ||
		!strings.Contains(err.Error(), "reading topic alerts failed within the asset's timeout") || res.Stopped != poll.StoppedFailed {
		t.Fatalf("poll through a failing broker: %+v, %v; want it failed, stopped before the end", res, err)
	}
	t.Logf("broker down after 2 fetches: %d read, %d stored, stopped %s, err %v", res.MessagesRead, stored, res.Stopped, err)
	if n := len(e.sdis("prod")); int64(n) != stored {
		t.Fatalf("%d artifacts stored but position %d: the two must agree", n, stored)
	}
	// The broker is back: the next poll resumes where the last commit left.
	e.kafka.DropControl()
	fetches = -1 << 30
	res = e.poll("prod", cfg, ingest.PollScheduled)
	if got := e.sdis("prod"); !equal(got, wantSDIs([]int32{0}, 0, 100)) {
		t.Fatalf("after recovery %d artifacts, want all 100 once (res %+v)", len(got), res)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func equalOffsets(a, b map[int32]int64) bool { return maps.Equal(a, b) }

func TestSchedulerPollsScheduledAssetsAndFollowsEdits(t *testing.T) {
	e := newEnv(t, testenv.SQLiteURL(t))
	key, _ := assets.NewKey()
	sealer, _ := assets.NewSealer(key)
	svc := assets.NewService(e.db, sealer)
	doc := func(extra map[string]any) map[string]any {
		d := map[string]any{"hosts": strings.Join(e.kafka.ListenAddrs(), ","), "topic": topic, "read_from_beginning": true, "timeout": 2000}
		ing := map[string]any{"interval": "1s"}
		for k, v := range extra {
			ing[k] = v
		}
		d["ingest"] = ing
		return d
	}
	if _, err := svc.Create(t.Context(), assets.Input{Name: "sched", Config: doc(nil)}); err != nil {
		t.Fatal(err)
	}
	// Not scheduled: no interval.
	if _, err := svc.Create(t.Context(), assets.Input{Name: "manual", Config: map[string]any{
		"hosts": strings.Join(e.kafka.ListenAddrs(), ","), "topic": topic, "read_from_beginning": true}}); err != nil {
		t.Fatal(err)
	}
	s := poll.NewScheduler(e.poller, svc, nil, 50*time.Millisecond)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	waitFor(t, "the scheduled asset to ingest 40 messages", func() bool { return len(e.sdis("sched")) == 40 }, func() {
		e.produce(all, 0, 10)
	})
	if got := s.Scheduled(); !equal(got, []string{"sched"}) {
		t.Fatalf("scheduled %v, want only sched", got)
	}
	if n := len(e.sdis("manual")); n != 0 {
		t.Fatalf("the asset without interval was polled: %d artifacts", n)
	}
	// New messages come with the next turn.
	e.produce([]int32{3}, 10, 5)
	waitFor(t, "the next scheduled poll", func() bool { return len(e.sdis("sched")) == 45 }, nil)

	// Disabled: the loop stops, without a restart.
	if _, err := svc.Update(t.Context(), "sched", assets.Input{Config: doc(map[string]any{"enabled": false})}); err != nil {
		t.Fatal(err)
	}
	s.Wake()
	waitFor(t, "the disabled asset to leave the schedule", func() bool { return len(s.Scheduled()) == 0 }, nil)
	e.produce([]int32{3}, 15, 5)
	time.Sleep(1500 * time.Millisecond)
	if n := len(e.sdis("sched")); n != 45 {
		t.Fatalf("a disabled asset was polled: %d artifacts", n)
	}
	// Enabled again: polled again.
	if _, err := svc.Update(t.Context(), "sched", assets.Input{Config: doc(nil)}); err != nil {
		t.Fatal(err)
	}
	s.Wake()
	waitFor(t, "the re-enabled asset to catch up", func() bool { return len(e.sdis("sched")) == 50 }, nil)

	st, err := e.db.Status(t.Context(), "sched", topic)
	if err != nil || st.LastPoll == nil || st.LastPoll.Kind != ingest.PollScheduled || st.LastPoll.Status != ingest.PollSucceeded {
		t.Fatalf("last poll %+v, %v", st, err)
	}
}

func TestSchedulerShutdownWaitsForTheRunningPoll(t *testing.T) {
	e := newEnv(t, testenv.SQLiteURL(t))
	key, _ := assets.NewKey()
	sealer, _ := assets.NewSealer(key)
	svc := assets.NewService(e.db, sealer)
	e.produce(all, 0, 500)
	if _, err := svc.Create(t.Context(), assets.Input{Name: "sched", Config: map[string]any{
		"hosts": strings.Join(e.kafka.ListenAddrs(), ","), "topic": topic, "read_from_beginning": true,
		"ingest": map[string]any{"interval": "1s", "batch_size": 7}}}); err != nil {
		t.Fatal(err)
	}
	s := poll.NewScheduler(e.poller, svc, nil, 50*time.Millisecond)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	waitFor(t, "the poll to start storing", func() bool { return len(e.sdis("sched")) > 0 }, nil)
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the scheduler did not stop within 30s")
	}
	// Stopped mid-poll: what is stored and the position agree (no half
	// batch), and the rest comes with the next poll.
	var stored int64
	for _, o := range e.offsets("sched") {
		stored += o
	}
	if n := len(e.sdis("sched")); int64(n) != stored {
		t.Fatalf("%d artifacts but positions sum to %d", n, stored)
	}
	e.poll("sched", e.config(map[string]any{"read_from_beginning": true}), ingest.PollAction)
	if got := e.sdis("sched"); !equal(got, wantSDIs(all, 0, 500)) {
		t.Fatalf("%d artifacts, want 2000 once each", len(got))
	}
}

// waitFor polls cond for up to 20s, calling act (when not nil) once first.
func waitFor(t *testing.T, what string, cond func() bool, act func()) {
	t.Helper()
	if act != nil {
		act()
	}
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPollMetrics(t *testing.T) {
	m := metrics.New()
	e := newEnv(t, testenv.SQLiteURL(t), poll.WithRecorder(m))
	testenv.CreateKafkaTopic(t, e.kafka, "alerts-dlq", 1)
	e.savePoisonParser()
	e.produce([]int32{0}, 0, 6)
	testenv.ProduceKafka(t, e.kafka, []*kgo.Record{{Topic: topic, Partition: 0, Value: []byte("poison")}})
	cfg := e.config(map[string]any{"read_from_beginning": true, "message_parser": "picky", "ingest.dead_letter_topic": "alerts-dlq"})
	e.poll("prod", cfg, ingest.PollScheduled)
	e.produce([]int32{2}, 0, 10)
	testenv.DeleteKafkaRecords(t, e.kafka, topic, 2, 4) // a gap of 4 on partition 2 (stored at 0)
	e.produce([]int32{1}, 0, 3)
	e.poll("prod", cfg, ingest.PollScheduled)

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`soarkafka_ingest_messages_total{asset="prod"} 16`,
		`soarkafka_ingest_artifacts_created_total{asset="prod"} 15`,
		`soarkafka_ingest_dead_lettered_total{asset="prod"} 1`,
		`soarkafka_ingest_parser_errors_total{asset="prod"} 1`,
		`soarkafka_ingest_gaps_total{asset="prod",partition="2"} 1`,
		`soarkafka_ingest_gap_messages_total{asset="prod",partition="2"} 4`,
		`soarkafka_ingest_lag_messages{asset="prod",partition="1"} 0`,
		`soarkafka_ingest_polls_total{asset="prod",kind="scheduled",status="success"} 2`,
		`soarkafka_ingest_poll_duration_seconds_count{asset="prod",kind="scheduled",status="success"} 2`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", body)
	}
}
