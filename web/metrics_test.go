package web_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/soarkafka/soarkafka/metrics"
	"github.com/soarkafka/soarkafka/web"
)

// metricsServer serves a handler with only what /metrics needs.
func metricsServer(t *testing.T, m http.Handler, public bool) string {
	t.Helper()
	h := web.NewHandler(web.Options{Logger: slog.New(slog.DiscardHandler), APIToken: token, MaxBodyBytes: 1 << 20,
		Version: "test", Metrics: m, MetricsPublic: public})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func getMetrics(t *testing.T, method, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url+"/metrics", nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

const producedLine = `soarkafka_produce_messages_total{asset="prod",result="ok"} 3`

// /metrics needs the API token, like /v1, unless metrics.public.
func TestMetricsNeedsTokenUnlessPublic(t *testing.T) {
	m := metrics.New()
	m.Produced("prod", 3, 0)

	private := metricsServer(t, m.Handler(), false)
	for _, hdr := range []map[string]string{{}, {"ph-auth-token": "wrong-token-0123456789"}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic " + token}} {
		resp, body := getMetrics(t, "GET", private, hdr)
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" || strings.Contains(body, "soarkafka_") {
			t.Errorf("private /metrics with %v: %d %s", hdr, resp.StatusCode, body)
		}
	}
	for _, hdr := range []map[string]string{{"ph-auth-token": token}, {"Authorization": "Bearer " + token}} {
		resp, body := getMetrics(t, "GET", private, hdr)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") || !strings.Contains(body, producedLine+"\n") {
			t.Errorf("private /metrics with %v: %d %q\n%s", hdr, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}

	public := metricsServer(t, m.Handler(), true)
	for _, hdr := range []map[string]string{{}, {"ph-auth-token": "wrong-token-0123456789"}} {
		resp, body := getMetrics(t, "GET", public, hdr)
		if resp.StatusCode != 200 || !strings.Contains(body, producedLine+"\n") || !strings.Contains(body, "\ngo_goroutines ") {
			t.Errorf("public /metrics with %v: %d\n%s", hdr, resp.StatusCode, body)
		}
	}
	// Public is /metrics only: /v1 still needs the token.
	resp, err := http.Get(public + "/v1/assets")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("/v1/assets on a server with public metrics, no token: %d, want 401", resp.StatusCode)
	}
	if resp, _ := getMetrics(t, "POST", public, nil); resp.StatusCode != 405 {
		t.Errorf("POST /metrics: %d, want 405", resp.StatusCode)
	}
}

// A server without metrics answers 404 with the usual error body, after
// the token check when /metrics is not public.
func TestMetricsAbsent(t *testing.T) {
	for _, public := range []bool{false, true} {
		url := metricsServer(t, nil, public)
		if !public {
			if resp, _ := getMetrics(t, "GET", url, nil); resp.StatusCode != 401 {
				t.Errorf("no metrics, private, no token: %d, want 401", resp.StatusCode)
			}
		}
		resp, body := getMetrics(t, "GET", url, map[string]string{"ph-auth-token": token})
		var out map[string]any
		_ = json.Unmarshal([]byte(body), &out)
		if resp.StatusCode != 404 || errField(out, "code") != "not_found" {
			t.Errorf("no metrics (public %v): %d %s", public, resp.StatusCode, body)
		}
	}
}
