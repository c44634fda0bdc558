package deliver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/deliver"
	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/internal/testenv"
	"github.com/soarkafka/soarkafka/store"
)

var _ deliver.Store = (*store.DB)(nil)

const assetName = "alerts"

func openStore(t *testing.T, url string) *store.DB {
	t.Helper()
	db, err := store.Open(t.Context(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	dbURLs.Store(db, url)
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return db
}

// pushConfig is an asset pushing to soar, with its delivery settings
// changed by extra.
func pushConfig(t *testing.T, soar *testenv.SOAR, extra ...any) assets.Config {
	t.Helper()
	d := map[string]any{"mode": "push", "url": soar.URL, "token": soar.Token, "asset_id": 7}
	for i := 0; i < len(extra); i += 2 {
		d[extra[i].(string)] = extra[i+1]
	}
	cfg, err := assets.Decode(map[string]any{"hosts": "127.0.0.1:9092", "topic": "alerts", "delivery": d}, assets.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// fast are the options that keep the tests quick: short back-off, pause
// and lease.
func fast(extra ...deliver.Option) []deliver.Option {
	return append([]deliver.Option{deliver.WithBackoff(10*time.Millisecond, 50*time.Millisecond),
		deliver.WithPauseRetry(200 * time.Millisecond), deliver.WithIdlePoll(20 * time.Millisecond),
		deliver.WithLeaseTTL(time.Second)}, extra...)
}

// start runs a worker until the test ends, or until the returned stop.
func start(t *testing.T, db deliver.Store, cfg assets.Config, opts ...deliver.Option) (*deliver.Worker, func()) {
	t.Helper()
	w, err := deliver.New(assetName, cfg, db, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return w, stop
}

// batch stores containers for push: sdi, label and artifact ids of each.
type spec struct {
	sdi, label string
	artifacts  []string
}

func save(t *testing.T, db *store.DB, specs ...spec) {
	t.Helper()
	b := &ingest.Batch{Asset: assetName, Topic: "alerts", Outbox: true, ContainerLabel: "events", MessageTime: time.Now().Add(-time.Second)}
	for _, s := range specs {
		body := map[string]any{"name": "container " + s.sdi, "severity": "high", "kafka_asset": "not for SOAR"}
		if s.label != "" {
			body["label"] = s.label
		}
		cb, _ := json.Marshal(body)
		c := ingest.Container{SourceDataIdentifier: s.sdi, Body: cb}
		for _, a := range s.artifacts {
			c.Artifacts = append(c.Artifacts, ingest.Artifact{SourceDataIdentifier: a,
				Body: json.RawMessage(`{"name": "artifact ` + a + `", "label": "event", "cef": {"id": "` + a + `"}, "create_time": "not for SOAR"}`)})
		}
		b.Containers = append(b.Containers, c)
	}
	if _, err := db.SaveBatch(t.Context(), b); err != nil {
		t.Fatal(err)
	}
}

// waitStats waits until ok holds for the asset's delivery stats.
func waitStats(t *testing.T, db *store.DB, what string, ok func(ingest.DeliveryStats) bool) ingest.DeliveryStats {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := db.DeliveryStats(t.Context(), assetName)
		if err != nil {
			t.Fatal(err)
		}
		if ok(*st) {
			return *st
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: stats %+v", what, *st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func allDelivered(n int64) func(ingest.DeliveryStats) bool {
	return func(s ingest.DeliveryStats) bool { return s.Delivered == n && s.Pending == 0 && s.Sending == 0 }
}

// wantOnce checks the stand-in holds each stored container once, as
// soarkafka:container:<id>, with exactly the artifacts want lists
// (by container name), each once.
func wantOnce(t *testing.T, soar *testenv.SOAR, want map[string][]string) {
	t.Helper()
	seen := map[string]bool{}
	for _, c := range soar.Containers() {
		if seen[c.SourceDataIdentifier] {
			t.Errorf("container %s is in the SOAR twice", c.SourceDataIdentifier)
		}
		seen[c.SourceDataIdentifier] = true
		if !strings.HasPrefix(c.SourceDataIdentifier, "soarkafka:container:") || c.AssetID != 7 {
			t.Errorf("container %d: source_data_identifier %q, asset %d", c.ID, c.SourceDataIdentifier, c.AssetID)
		}
		if _, ok := c.Fields["kafka_asset"]; ok {
			t.Errorf("container %d carries a field SOAR does not take", c.ID)
		}
		arts, ok := want[c.Name]
		if !ok {
			t.Errorf("unexpected container %q", c.Name)
			continue
		}
		var got []string
		for _, a := range soar.Artifacts(c.ID) {
			got = append(got, strings.TrimPrefix(a.Name, "artifact "))
			if _, ok := a.Fields["create_time"]; ok && a.Fields["create_time"] == "not for SOAR" {
				t.Errorf("artifact %d carries soarkafka's create_time", a.ID)
			}
		}
		if strings.Join(got, ",") != strings.Join(arts, ",") {
			t.Errorf("container %q has artifacts %v, want %v", c.Name, got, arts)
		}
		delete(want, c.Name)
	}
	for name := range want {
		t.Errorf("container %q never reached the SOAR", name)
	}
}

// Every container and artifact reaches the SOAR once, with the SOAR's
// rules: label stamped where the parser gave none, the asset id, only
// the fields SOAR takes, artifacts in chunks, and artifacts stored later
// into a delivered container going to /rest/artifact with its SOAR id.
func TestDeliverOnce(t *testing.T) {
	db := openStore(t, testenv.SQLiteURL(t))
	soar := testenv.NewSOAR(t, testenv.SOARLabels("kafka_alerts", "custom"))
	save(t, db, spec{"c1", "", []string{"1", "2", "3", "4", "5"}}, spec{"c2", "custom", []string{"6"}}, spec{"c3", "", nil})
	start(t, db, pushConfig(t, soar, "artifacts_per_request", 2, "label", "kafka_alerts"), fast()...)
	waitStats(t, db, "the first batch", allDelivered(3))
	save(t, db, spec{"c1", "", []string{"7", "8", "9"}})
	waitStats(t, db, "the second batch", allDelivered(4))

	wantOnce(t, soar, map[string][]string{
		"container c1": {"1", "2", "3", "4", "5", "7", "8", "9"},
		"container c2": {"6"},
		"container c3": nil,
	})
	for _, c := range soar.Containers() {
		want := map[string]string{"container c1": "kafka_alerts", "container c2": "custom", "container c3": "kafka_alerts"}[c.Name]
		if c.Label != want {
			t.Errorf("container %q label %q, want %q", c.Name, c.Label, want)
		}
	}
	req := soar.Requests()
	// c1: the container with 2 inline, then 2 chunks; c2 and c3 one each;
	// the later batch 2 chunks into the known container. No lookups.
	if n := req[testenv.SOARRequestKey{Method: "POST", Path: "/rest/container", Status: 200}]; n != 3 {
		t.Errorf("%d container POSTs, want 3", n)
	}
	if n := req[testenv.SOARRequestKey{Method: "POST", Path: "/rest/artifact", Status: 200}]; n != 4 {
		t.Errorf("%d artifact POSTs, want 4 (chunks of 2)", n)
	}
	for k, n := range req {
		if k.Method == "GET" {
			t.Errorf("%d lookups (%v) with nothing failed", n, k)
		}
	}
}

// 5xx answers are retried with back-off until they pass; a Retry-After
// is honoured.
func TestDeliverRetriesServerErrors(t *testing.T) {
	for _, tc := range []struct {
		name       string
		retryAfter string
		atLeast    time.Duration
	}{
		{"without Retry-After", "", 0},
		{"with Retry-After", "1", time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openStore(t, testenv.SQLiteURL(t))
			soar := testenv.NewSOAR(t)
			soar.FailNext(2, http.StatusServiceUnavailable, tc.retryAfter)
			soar.FailNext(1, http.StatusBadGateway, "")
			save(t, db, spec{"c1", "", []string{"1", "2"}})
			began := time.Now()
			start(t, db, pushConfig(t, soar), fast()...)
			waitStats(t, db, "delivery", allDelivered(1))
			if took := time.Since(began); took < 2*tc.atLeast {
				t.Errorf("delivered after %s: two Retry-After %q not honoured", took, tc.retryAfter)
			}
			wantOnce(t, soar, map[string][]string{"container c1": {"1", "2"}})
			// A 5xx may come from a proxy after the SOAR applied the
			// request, so the retries look before they send: the
			// failures fall on lookups too.
			failed := 0
			for k, n := range soar.Requests() {
				if k.Status >= 500 {
					failed += n
				}
			}
			if req := soar.Requests(); failed != 3 || req[testenv.SOARRequestKey{Method: "POST", Path: "/rest/container", Status: 200}] != 1 {
				t.Errorf("requests %v, want the three failures seen and one container made", req)
			}
		})
	}
}

// A request that times out and one whose connection drops after the SOAR
// applied it have unknown outcomes: the worker looks before it sends
// again, and nothing is made twice, with the SOAR's artifact
// de-duplication off.
func TestDeliverUnknownOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name string
		knob func(*testenv.SOAR)
	}{
		{"timeout", func(s *testenv.SOAR) { s.TimeoutNext(1) }},
		{"drop after commit", func(s *testenv.SOAR) { s.DropAfterCommitNext(1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openStore(t, testenv.SQLiteURL(t))
			soar := testenv.NewSOAR(t)
			save(t, db, spec{"c1", "", []string{"1", "2", "3"}})
			cfg := pushConfig(t, soar, "timeout_ms", 300, "artifacts_per_request", 2)
			_, stop := start(t, db, cfg, fast()...)
			tc.knob(soar) // the container POST
			waitStats(t, db, "the container", allDelivered(1))
			// Artifacts added later: the artifact POST is the one lost.
			tc.knob(soar)
			save(t, db, spec{"c1", "", []string{"4", "5", "6"}})
			waitStats(t, db, "the artifacts", allDelivered(2))
			stop()
			wantOnce(t, soar, map[string][]string{"container c1": {"1", "2", "3", "4", "5", "6"}})
			req := soar.Requests()
			if req[testenv.SOARRequestKey{Method: "GET", Path: "/rest/artifact", Status: 200}] == 0 {
				t.Errorf("requests %v: the artifacts were not looked up before sending again", req)
			}
		})
	}
}

// A row found sending when a worker starts (the process died with its
// request in flight, which the SOAR applied) is checked: only what the
// SOAR lacks is sent.
func TestDeliverChecksARowFoundSending(t *testing.T) {
	db := openStore(t, testenv.SQLiteURL(t))
	soar := testenv.NewSOAR(t)
	save(t, db, spec{"c1", "", []string{"1", "2", "3"}})
	rows, err := db.NextDeliveries(t.Context(), assetName, 10)
	if err != nil || len(rows) != 1 {
		t.Fatalf("%+v, %v", rows, err)
	}
	if err := db.MarkSending(t.Context(), rows[0].ID); err != nil {
		t.Fatal(err)
	}
	// What the dead process's request did: the container and its first
	// artifact.
	arts, err := db.DeliveryArtifacts(t.Context(), rows[0])
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"name": "container c1", "label": "events", "asset_id": 7, "source_data_identifier": %q,
		"artifacts": [{"name": "artifact 1", "source_data_identifier": %q, "cef": {"id": "1"}}]}`,
		deliver.ContainerSDI(rows[0].ContainerID), arts[0].SourceDataIdentifier)
	req, _ := http.NewRequest("POST", soar.URL+"/rest/container", strings.NewReader(body))
	req.Header.Set("ph-auth-token", soar.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stand-in: %v %v", resp, err)
	}
	resp.Body.Close()

	start(t, db, pushConfig(t, soar), fast()...)
	waitStats(t, db, "delivery", allDelivered(1))
	wantOnce(t, soar, map[string][]string{"container c1": {"1", "2", "3"}})
}

// A 401 pauses the asset's delivery with a status saying what to fix;
// it resumes by itself once the SOAR takes the token again.
func TestDeliverPausesOnRefusedToken(t *testing.T) {
	db := openStore(t, testenv.SQLiteURL(t))
	soar := testenv.NewSOAR(t)
	soar.RefuseAuth(true)
	save(t, db, spec{"c1", "", []string{"1"}}, spec{"c2", "", []string{"2"}})
	w, _ := start(t, db, pushConfig(t, soar), fast()...)
	deadline := time.Now().Add(10 * time.Second)
	for !w.Status().Paused {
		if time.Now().After(deadline) {
			t.Fatalf("not paused: %+v", w.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	st := w.Status()
	if !strings.Contains(st.Message, "SOAR refused the token (HTTP 401): set delivery.token to a valid automation user's token") {
		t.Fatalf("status message %q", st.Message)
	}
	time.Sleep(300 * time.Millisecond) // past a pause
	// While paused, one request probes at a time: the two containers
	// were not both tried at every retry.
	if n := soar.Requests()[testenv.SOARRequestKey{Method: "POST", Path: "/rest/container", Status: 401}]; n > 4 {
		t.Errorf("%d refused requests in a 200 ms pause: it did not wait", n)
	}
	if s, _ := db.DeliveryStats(t.Context(), assetName); s.Delivered != 0 || !strings.Contains(s.LastError, "HTTP 401") {
		t.Fatalf("stats while paused: %+v", s)
	}
	soar.RefuseAuth(false)
	waitStats(t, db, "delivery after the token works", allDelivered(2))
	if st := w.Status(); st.Paused || st.Message != "" {
		t.Fatalf("still paused: %+v", st)
	}
	wantOnce(t, soar, map[string][]string{"container c1": {"1"}, "container c2": {"2"}})
}

// A container the SOAR refuses (a label it does not know) goes to the
// dead letters with SOAR's answer; the others go on. A retry sends it
// again.
func TestDeliverDeadLetter(t *testing.T) {
	db := openStore(t, testenv.SQLiteURL(t))
	soar := testenv.NewSOAR(t, testenv.SOARLabels("unknown_here"))
	soar.RejectLabel("unknown_here")
	save(t, db, spec{"c1", "", []string{"1"}}, spec{"c2", "unknown_here", []string{"2"}}, spec{"c3", "", []string{"3"}})
	start(t, db, pushConfig(t, soar), fast()...)
	st := waitStats(t, db, "two delivered, one dead", func(s ingest.DeliveryStats) bool { return s.Delivered == 2 && s.Dead == 1 })
	if !strings.Contains(st.LastError, "HTTP 400") || !strings.Contains(st.LastError, "Invalid label") {
		t.Fatalf("last error %q", st.LastError)
	}
	raw := testenv.RawDB(t, dbURL(t, db))
	var answer string
	if err := raw.QueryRow("SELECT soar_answer FROM delivery_outbox WHERE state = 'dead'").Scan(&answer); err != nil || !strings.Contains(answer, `"failed"`) {
		t.Fatalf("dead letter's answer %q, %v", answer, err)
	}
	// Later artifacts of the dead container wait behind it.
	save(t, db, spec{"c2", "unknown_here", []string{"4"}})
	time.Sleep(100 * time.Millisecond)
	wantOnce(t, soar, map[string][]string{"container c1": {"1"}, "container c3": {"3"}})
	if n, err := db.RetryDead(t.Context(), assetName); err != nil || n != 1 {
		t.Fatalf("retry: %d, %v", n, err)
	}
	waitStats(t, db, "dead again after the retry", func(s ingest.DeliveryStats) bool { return s.Dead == 1 && s.Pending == 1 })
}

// dbURLs remembers each test store's URL (openStore), for raw reads.
var dbURLs sync.Map

func dbURL(t *testing.T, db *store.DB) string {
	u, ok := dbURLs.Load(db)
	if !ok {
		t.Fatal("no URL for this store")
	}
	return u.(string)
}

// Two replicas on one PostgreSQL push the same asset: each container
// reaches the SOAR once, and the second takes over when the first stops.
func TestDeliverTwoReplicasPostgres(t *testing.T) {
	url := testenv.PostgresURL(t)
	a, b := openStore(t, url), openStore(t, url)
	soar := testenv.NewSOAR(t)
	soar.SetLatency(5 * time.Millisecond)
	want := map[string][]string{}
	for i := range 10 {
		sdi := fmt.Sprintf("c%d", i)
		save(t, a, spec{sdi, "", []string{sdi + ".1", sdi + ".2"}})
		want["container "+sdi] = []string{sdi + ".1", sdi + ".2"}
	}
	cfg := pushConfig(t, soar, "concurrency", 2)
	_, stopA := start(t, a, cfg, fast(deliver.WithHolder("replica-a"))...)
	start(t, b, cfg, fast(deliver.WithHolder("replica-b"))...)
	waitStats(t, a, "some delivered", func(s ingest.DeliveryStats) bool { return s.Delivered >= 3 })
	stopA()
	for i := 10; i < 15; i++ {
		sdi := fmt.Sprintf("c%d", i)
		save(t, b, spec{sdi, "", []string{sdi + ".1"}})
		want["container "+sdi] = []string{sdi + ".1"}
	}
	waitStats(t, b, "all delivered", allDelivered(15))
	wantOnce(t, soar, want)
}

// Over TLS the SOAR's certificate is verified against delivery.ca_pem;
// without it (and not in the system pool) nothing is sent, and the
// error says why.
func TestDeliverVerifiesTLS(t *testing.T) {
	certs := testenv.NewTLSCerts(t)
	caPEM, err := os.ReadFile(certs.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		extra   []any
		deliver bool
	}{
		{"trusted CA", []any{"ca_pem", string(caPEM)}, true},
		{"unknown CA", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openStore(t, testenv.SQLiteURL(t))
			soar := testenv.NewSOAR(t, testenv.SOARTLS(certs))
			save(t, db, spec{"c1", "", []string{"1"}})
			start(t, db, pushConfig(t, soar, tc.extra...), fast()...)
			if tc.deliver {
				waitStats(t, db, "delivery", allDelivered(1))
				wantOnce(t, soar, map[string][]string{"container c1": {"1"}})
				return
			}
			waitStats(t, db, "a refused certificate", func(s ingest.DeliveryStats) bool {
				return strings.Contains(s.LastError, "certificate") && s.Delivered == 0
			})
			if n := len(soar.Containers()); n != 0 {
				t.Fatalf("%d containers sent to an unverified SOAR", n)
			}
		})
	}
}

// Backpressure reads a push asset's waiting rows against
// delivery.max_pending; a pull asset has no limit.
func TestBackpressure(t *testing.T) {
	db := openStore(t, testenv.SQLiteURL(t))
	soar := testenv.NewSOAR(t)
	bp := deliver.Backpressure{Store: db}
	cfg := pushConfig(t, soar, "max_pending", 2)
	ctx := t.Context()
	if pending, limit, err := bp.Pending(ctx, assetName, cfg); err != nil || pending != 0 || limit != 2 {
		t.Fatalf("empty outbox: %d of %d, %v", pending, limit, err)
	}
	save(t, db, spec{sdi: "c1", artifacts: []string{"a1"}}, spec{sdi: "c2", artifacts: []string{"a2"}})
	save(t, db, spec{sdi: "c3", artifacts: []string{"a3"}})
	if pending, limit, err := bp.Pending(ctx, assetName, cfg); err != nil || pending != 3 || limit != 2 {
		t.Fatalf("three containers waiting: %d of %d, %v", pending, limit, err)
	}
	pull, err := assets.Decode(map[string]any{"hosts": "127.0.0.1:9092", "topic": "alerts"}, assets.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pending, limit, err := bp.Pending(ctx, assetName, pull); err != nil || limit > 0 {
		t.Fatalf("a pull asset: %d of %d, %v; want no limit", pending, limit, err)
	}
	// Delivered rows no longer count.
	start(t, db, cfg, fast()...)
	waitStats(t, db, "all delivered", allDelivered(3))
	if pending, _, err := bp.Pending(ctx, assetName, cfg); err != nil || pending != 0 {
		t.Fatalf("after delivery: %d waiting, %v", pending, err)
	}
}

// The worker prunes delivered rows past delivery's keep time, and only
// them: every artifact is in the SOAR once, and the status no longer
// counts them.
func TestDeliverPrunesDeliveredRows(t *testing.T) {
	db := openStore(t, testenv.SQLiteURL(t))
	soar := testenv.NewSOAR(t)
	save(t, db, spec{sdi: "c1", artifacts: []string{"a1", "a2"}}, spec{sdi: "c2", artifacts: []string{"a3"}})
	start(t, db, pushConfig(t, soar), fast(deliver.WithKeepDelivered(time.Nanosecond))...)
	waitStats(t, db, "delivered and pruned", func(st ingest.DeliveryStats) bool {
		return st.Pending == 0 && st.Sending == 0 && st.Delivered == 0 && st.Dead == 0
	})
	wantOnce(t, soar, map[string][]string{"container c1": {"a1", "a2"}, "container c2": {"a3"}})
}
