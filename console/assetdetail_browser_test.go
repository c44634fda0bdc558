package console_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestAssetDetailInBrowser opens an asset's detail page: test
// connectivity shows each step against the dev broker (and the fix for a
// broker that is down), poll now shows the containers it created and the
// page then shows the poll, disable and enable flip ingest.enabled, and
// the audit trail names the console session for both.
func TestAssetDetailInBrowser(t *testing.T) {
	ctx, events, srv := startConsole(t)
	produce(t, srv.Broker, "events", 4)
	api(t, srv, "POST", "/v1/assets", map[string]any{"name": "edge", "description": xss,
		"config": map[string]any{"hosts": srv.Broker, "topic": "events", "timeout": 3000}}, nil)
	api(t, srv, "POST", "/v1/assets", map[string]any{"name": "down",
		"config": map[string]any{"hosts": "127.0.0.1:1", "topic": "events", "timeout": 1000}}, nil)
	session := signInBrowser(t, ctx, srv)

	do(t, ctx, "open the detail", chromedp.Navigate(srv.URL+"/assets/edge"), chromedp.WaitVisible(chromedp.CSS("#last-poll")))
	if txt := run(t, ctx, "last poll", chromedp.Text(chromedp.CSS("#last-poll"))); txt != "never polled" {
		t.Errorf("before any poll: %q", txt)
	}
	if txt := run(t, ctx, "partitions", chromedp.Text(chromedp.CSS("#partitions tbody"))); !strings.Contains(txt, "4") {
		t.Errorf("partition table lacks the log-end offset 4:\n%s", txt)
	}

	if src := pageSource(t, srv, session, "/assets/edge"); strings.Contains(src, "<script>alert") || !strings.Contains(src, "&lt;script&gt;alert(1)") {
		t.Errorf("the description is not escaped in the detail page's source")
	}
	if srcs := run(t, ctx, "scripts and images", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('script, img')).map(e => new URL(e.src).pathname)`)); strings.Join(srcs, " ") !=
		"/static/vendor/htmx.org/htmx.min.js /static/vendor/uplot/uPlot.iife.min.js /static/assethistory.js" {
		t.Errorf("scripts and images on the detail page %v, want htmx's, uPlot's and the chart's scripts only", srcs)
	}

	// Test connectivity: each step with its duration.
	do(t, ctx, "test connectivity", chromedp.Click(chromedp.CSS("#test-connectivity")), chromedp.WaitVisible(chromedp.CSS("#connectivity-steps")))
	steps := run(t, ctx, "steps", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#connectivity-steps li')).map(e => e.dataset.step + '=' + e.dataset.status)`))
	for _, want := range []string{"tcp=ok", "metadata=ok", "topic=ok"} {
		if !strings.Contains(strings.Join(steps, " "), want) {
			t.Errorf("connectivity steps %v lack %s", steps, want)
		}
	}
	if txt := run(t, ctx, "steps text", chromedp.Text(chromedp.CSS("#connectivity-steps"))); !strings.Contains(txt, " ms") {
		t.Errorf("steps without durations: %s", txt)
	}
	screenshot(t, ctx, "asset-connectivity")

	// Poll now: its containers, then the page shows the poll.
	do(t, ctx, "poll now", chromedp.Click(chromedp.CSS("#poll-now")), chromedp.WaitVisible(chromedp.CSS("#poll-now-status")))
	created := run(t, ctx, "containers", chromedp.Text(chromedp.CSS("#poll-now-containers")))
	if n, err := strconv.Atoi(created); err != nil || n < 1 {
		t.Errorf("poll now created %q containers, want at least one; %s", created, run(t, ctx, "status", chromedp.Text(chromedp.CSS("#poll-now-status"))))
	}
	if read := run(t, ctx, "messages", chromedp.Text(chromedp.CSS("#poll-now-messages"))); read != "4" {
		t.Errorf("poll now read %q messages, want the topic's 4", read)
	}
	// The status part fetches itself again: the poll shows without a
	// reload.
	do(t, ctx, "the poll in the status", chromedp.WaitVisible(chromedp.CSS("#last-poll-containers")))
	if txt := run(t, ctx, "last poll", chromedp.Text(chromedp.CSS("#last-poll"))); !strings.Contains(txt, "containers "+created) {
		t.Errorf("after poll now, the last poll: %q, want containers %s", txt, created)
	}
	// TestAssetHistoryInBrowser takes the detail's screenshot, with the
	// poll in the last polls and the chart drawn.

	// Disable, then enable.
	for _, want := range []string{"disabled", "enabled"} {
		do(t, ctx, "toggle", chromedp.Click(chromedp.CSS("#toggle-enabled")), chromedp.WaitVisible(chromedp.CSS(`#ingest-state[data-state="`+want+`"]`)))
		if txt := run(t, ctx, "state", chromedp.Text(chromedp.CSS("#ingest-state"))); txt != want {
			t.Errorf("after the toggle ingest is %q, want %q", txt, want)
		}
		var got map[string]any
		api(t, srv, "GET", "/v1/assets/edge", nil, &got)
		if en := got["config"].(map[string]any)["ingest"].(map[string]any)["enabled"]; en != (want == "enabled") {
			t.Errorf("stored ingest.enabled %v, want %s", en, want)
		}
	}
	var trail struct {
		Data []map[string]any `json:"data"`
	}
	api(t, srv, "GET", "/v1/audit?object_kind=asset&object_name=edge", nil, &trail)
	var console []string
	for _, e := range trail.Data {
		if strings.HasPrefix(fmt.Sprint(e["actor"]), "console session ") {
			console = append(console, fmt.Sprint(e["action"]))
		}
	}
	if got := strings.Join(console, ","); got != "enable,disable" {
		t.Errorf("the console's events, newest first: %q, want enable,disable", got)
	}

	// A broker that is down: the failed step and the fix.
	do(t, ctx, "open the down asset", chromedp.Navigate(srv.URL+"/assets/down"), chromedp.WaitVisible(chromedp.CSS("#test-connectivity")),
		chromedp.Click(chromedp.CSS("#test-connectivity")), chromedp.WaitVisible(chromedp.CSS("#connectivity-status")))
	txt := run(t, ctx, "failed connectivity", chromedp.Text(chromedp.CSS("#connectivity")))
	if !strings.Contains(txt, "failed") || !strings.Contains(txt, "127.0.0.1:1") || !strings.Contains(txt, "Fix:") {
		t.Errorf("failed connectivity shows %q, want the failed step, its broker and the fix", txt)
	}
	screenshot(t, ctx, "asset-connectivity-failed")

	// Without a session every asset page and action is closed; with the
	// session but no CSRF token, every change is refused.
	client := noRedirect(t, "")
	for _, rt := range []struct{ method, path string }{
		{"GET", "/assets/new"}, {"GET", "/assets/edge"}, {"GET", "/assets/edge/edit"}, {"GET", "/assets/edge/status"},
		{"POST", "/assets/new"}, {"POST", "/assets/edge/edit"}, {"POST", "/assets/edge/delete"},
		{"POST", "/assets/edge/enabled"}, {"POST", "/assets/edge/poll-now"}, {"POST", "/assets/edge/test-connectivity"},
	} {
		req, _ := http.NewRequest(rt.method, srv.URL+rt.path, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/signin") {
			t.Errorf("%s %s signed out: %d to %q, want the sign-in page", rt.method, rt.path, resp.StatusCode, resp.Header.Get("Location"))
		}
		if rt.method != "POST" {
			continue
		}
		req, _ = http.NewRequest(rt.method, srv.URL+rt.path, strings.NewReader("enabled=false"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: session.Name, Value: session.Value})
		if resp, err = client.Do(req); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s %s without a CSRF token: %d, want 403", rt.method, rt.path, resp.StatusCode)
		}
	}
	var after map[string]any
	api(t, srv, "GET", "/v1/assets/edge", nil, &after)
	if after["config"].(map[string]any)["ingest"].(map[string]any)["enabled"] != true {
		t.Errorf("a refused POST changed the asset: %v", after["config"])
	}
	// The requests refused on purpose (bad forms, no CSRF token) are
	// logged by the browser with their 4xx statuses; nothing else may be.
	wantNoBrowserEvents(t, events, "the server responded with a status of 4")
}
