package metrics

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// failingCollector fails every collection, as a broken collector would.
type failingCollector struct{ desc *prometheus.Desc }

func (c failingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c failingCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.NewInvalidMetric(c.desc, errors.New("collector broke"))
}

// A failing collector is logged to the given logger, and the rest is still
// served: a scrape never panics nor loses every series for one bad one.
func TestHandlerLogsCollectorErrors(t *testing.T) {
	var logs bytes.Buffer
	m := New(WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	m.reg.MustRegister(failingCollector{prometheus.NewDesc("soarkafka_test_broken", "A collector that fails.", nil, nil)})
	m.Produced("x", 1, 0)
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `soarkafka_produce_messages_total{asset="x",result="ok"} 1`) {
		t.Fatalf("scrape with a failing collector: %d\n%s", resp.StatusCode, body)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "collector broke") || !strings.Contains(logs.String(), "component=metrics") {
		t.Fatalf("collector error not logged: %q", logs.String())
	}
}
