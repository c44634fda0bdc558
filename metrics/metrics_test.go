package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/soarkafka/soarkafka/metrics"
)

// scrape GETs m's handler as Prometheus does and returns the whole text.
func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("scrape: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	return string(body)
}

// series returns the soarkafka sample lines of a scrape, sorted.
func series(t *testing.T, m *metrics.Metrics) []string {
	t.Helper()
	var out []string
	for line := range strings.Lines(scrape(t, m)) {
		if strings.HasPrefix(line, "soarkafka_") {
			out = append(out, strings.TrimSuffix(line, "\n"))
		}
	}
	slices.Sort(out)
	return out
}

func sorted(lines ...string) []string {
	slices.Sort(lines)
	return lines
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\ngot:\n  %s\nwant:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// Each method changes exactly the series it names, with the labels and the
// values it was given.
func TestMethodsExposeSeries(t *testing.T) {
	pollBuckets := func(asset, kind, status string, counts ...int) []string {
		les := []string{"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60", "120", "300", "600", "+Inf"}
		var out []string
		for i, le := range les {
			out = append(out, `soarkafka_ingest_poll_duration_seconds_bucket{asset="`+asset+`",kind="`+kind+`",status="`+status+`",le="`+le+`"} `+strconv.Itoa(counts[i]))
		}
		return out
	}
	tests := []struct {
		name   string
		record func(m *metrics.Metrics)
		want   []string
	}{
		{"nothing recorded", func(*metrics.Metrics) {}, nil},
		{"PollFinished", func(m *metrics.Metrics) {
			m.PollFinished("prod", "scheduled", "success", 1500*time.Millisecond)
			m.PollFinished("prod", "scheduled", "success", 3*time.Millisecond)
			m.PollFinished("prod", "poll_now", "failed", 20*time.Minute)
		}, append(append(
			pollBuckets("prod", "scheduled", "success", 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2),
			pollBuckets("prod", "poll_now", "failed", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)...),
			`soarkafka_ingest_poll_duration_seconds_sum{asset="prod",kind="scheduled",status="success"} 1.503`,
			`soarkafka_ingest_poll_duration_seconds_count{asset="prod",kind="scheduled",status="success"} 2`,
			`soarkafka_ingest_poll_duration_seconds_sum{asset="prod",kind="poll_now",status="failed"} 1200`,
			`soarkafka_ingest_poll_duration_seconds_count{asset="prod",kind="poll_now",status="failed"} 1`,
			`soarkafka_ingest_polls_total{asset="prod",kind="scheduled",status="success"} 2`,
			`soarkafka_ingest_polls_total{asset="prod",kind="poll_now",status="failed"} 1`,
		)},
		{"Ingested", func(m *metrics.Metrics) {
			m.Ingested("prod", 10, 2, 9, 1)
			m.Ingested("prod", 5, 1, 5, 0)
			m.Ingested("idle", 0, 0, 0, 0)
			m.Ingested("bad", -1, 1, -3, 2) // a caller's bug: negatives are dropped, not a panic
		}, []string{
			`soarkafka_ingest_messages_total{asset="prod"} 15`,
			`soarkafka_ingest_containers_created_total{asset="prod"} 3`,
			`soarkafka_ingest_artifacts_created_total{asset="prod"} 14`,
			`soarkafka_ingest_duplicates_skipped_total{asset="prod"} 1`,
			`soarkafka_ingest_messages_total{asset="idle"} 0`,
			`soarkafka_ingest_containers_created_total{asset="idle"} 0`,
			`soarkafka_ingest_artifacts_created_total{asset="idle"} 0`,
			`soarkafka_ingest_duplicates_skipped_total{asset="idle"} 0`,
			`soarkafka_ingest_messages_total{asset="bad"} 0`,
			`soarkafka_ingest_containers_created_total{asset="bad"} 1`,
			`soarkafka_ingest_artifacts_created_total{asset="bad"} 0`,
			`soarkafka_ingest_duplicates_skipped_total{asset="bad"} 2`,
		}},
		{"ParserError", func(m *metrics.Metrics) {
			m.ParserError("prod")
			m.ParserError("prod")
			m.ParserError("other")
		}, []string{
			`soarkafka_ingest_parser_errors_total{asset="prod"} 2`,
			`soarkafka_ingest_parser_errors_total{asset="other"} 1`,
		}},
		{"DeadLettered", func(m *metrics.Metrics) {
			m.DeadLettered("prod", 1)
			m.DeadLettered("prod", 3)
		}, []string{`soarkafka_ingest_dead_lettered_total{asset="prod"} 4`}},
		{"Gap", func(m *metrics.Metrics) {
			m.Gap("prod", 0, 100)
			m.Gap("prod", 0, 5)
			m.Gap("prod", 2, 1)
			m.Gap("prod", 3, 0) // no messages skipped: no gap
		}, []string{
			`soarkafka_ingest_gaps_total{asset="prod",partition="0"} 2`,
			`soarkafka_ingest_gap_messages_total{asset="prod",partition="0"} 105`,
			`soarkafka_ingest_gaps_total{asset="prod",partition="2"} 1`,
			`soarkafka_ingest_gap_messages_total{asset="prod",partition="2"} 1`,
		}},
		{"Lag", func(m *metrics.Metrics) {
			m.Lag("prod", 0, 1000)
			m.Lag("prod", 0, 42) // a gauge: the last value counts
			m.Lag("prod", 1, 0)
			m.Lag("prod", 2, -3)
		}, []string{
			`soarkafka_ingest_lag_messages{asset="prod",partition="0"} 42`,
			`soarkafka_ingest_lag_messages{asset="prod",partition="1"} 0`,
			`soarkafka_ingest_lag_messages{asset="prod",partition="2"} 0`,
		}},
		{"Produced", func(m *metrics.Metrics) {
			m.Produced("prod", 3, 0)
			m.Produced("prod", 1, 2)
			m.Produced("", 5, 1)
		}, []string{
			`soarkafka_produce_messages_total{asset="prod",result="ok"} 4`,
			`soarkafka_produce_messages_total{asset="prod",result="failed"} 2`,
			`soarkafka_produce_messages_total{asset="inline",result="ok"} 5`,
			`soarkafka_produce_messages_total{asset="inline",result="failed"} 1`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := metrics.New()
			tt.record(m)
			equal(t, tt.name, series(t, m), sorted(tt.want...))
		})
	}
}

// ForgetAsset removes every series of that asset, the lag gauge included,
// and leaves the other assets' alone.
func TestForgetAsset(t *testing.T) {
	m := metrics.New()
	for _, a := range []string{"gone", "kept"} {
		m.PollFinished(a, "scheduled", "success", time.Millisecond/2)
		m.Ingested(a, 1, 1, 1, 0)
		m.ParserError(a)
		m.DeadLettered(a, 1)
		m.Gap(a, 0, 1)
		m.Lag(a, 0, 7)
		m.Lag(a, 1, 8)
		m.Produced(a, 1, 1)
	}
	before := series(t, m)
	m.ForgetAsset("gone")
	after := series(t, m)
	var want []string
	for _, l := range before {
		if strings.Contains(l, `asset="gone"`) {
			continue
		}
		want = append(want, l)
	}
	if len(want) == len(before) || len(want) == 0 {
		t.Fatalf("before ForgetAsset: %d series, %d of asset kept", len(before), len(want))
	}
	equal(t, "after ForgetAsset(gone)", after, want)
	if !slices.Contains(after, `soarkafka_ingest_lag_messages{asset="kept",partition="1"} 8`) {
		t.Error("kept asset's lag gone")
	}

	// An inline configuration's series are forgotten by "".
	m.Produced("", 1, 0)
	m.ForgetAsset("")
	equal(t, "after ForgetAsset(\"\")", series(t, m), want)
	m.ForgetAsset("never-seen") // nothing to delete is fine
}

// A nil *Metrics does nothing and does not panic.
func TestNilMetrics(t *testing.T) {
	var m *metrics.Metrics
	m.PollFinished("a", "scheduled", "success", time.Second)
	m.Ingested("a", 1, 1, 1, 1)
	m.ParserError("a")
	m.DeadLettered("a", 1)
	m.Gap("a", 0, 1)
	m.Lag("a", 0, 1)
	m.Produced("a", 1, 1)
	m.ForgetAsset("a")
	if h := m.Handler(); h != nil {
		t.Fatalf("nil Metrics' Handler: %v, want nil", h)
	}
}

// Each Metrics has its own registry (two count apart), with the Go and
// process collectors. A series appears with its first value.
func TestOwnRegistryWithRuntimeCollectors(t *testing.T) {
	a, b := metrics.New(), metrics.New()
	a.Produced("x", 1, 0)
	if got := series(t, b); len(got) != 0 {
		t.Fatalf("a second Metrics sees the first's series: %v", got)
	}
	text := scrape(t, a)
	for _, want := range []string{
		"\ngo_goroutines ", "\nprocess_cpu_seconds_total ", "\nprocess_resident_memory_bytes ",
		"# TYPE soarkafka_produce_messages_total counter",
	} {
		if !strings.Contains("\n"+text, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	a.PollFinished("x", "scheduled", "success", time.Second)
	a.Lag("x", 0, 1)
	text = scrape(t, a)
	for _, want := range []string{
		"# TYPE soarkafka_ingest_poll_duration_seconds histogram",
		"# TYPE soarkafka_ingest_lag_messages gauge",
		"# HELP soarkafka_ingest_poll_duration_seconds Duration of a poll of an asset's topic, from start to the last batch stored, in seconds;",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

// Handler answers gzip when the scraper asks for it.
func TestHandlerCompresses(t *testing.T) {
	m := metrics.New()
	m.Produced("x", 1, 0)
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultTransport.RoundTrip(req) // no transparent decompression
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("gzip scrape: %d %q", resp.StatusCode, resp.Header.Get("Content-Encoding"))
	}
}
