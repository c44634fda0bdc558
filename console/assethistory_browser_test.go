package console_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestAssetHistoryInBrowser opens the detail of an asset never polled (no
// poll, the chart says so), polls it now, and then finds the poll in the
// last polls table and the chart drawn with its messages, the figures in
// the table beside it; the chart's JSON is closed without a session. The
// browser reports no CSP violation, exception or console error.
func TestAssetHistoryInBrowser(t *testing.T) {
	ctx, events, srv := startConsole(t)
	produce(t, srv.Broker, "history", 6)
	api(t, srv, "POST", "/v1/assets", map[string]any{"name": "hist", "description": "firewall alerts",
		"config": map[string]any{"hosts": srv.Broker, "topic": "history", "timeout": 3000}}, nil)
	session := signInBrowser(t, ctx, srv)

	do(t, ctx, "open the detail", chromedp.Navigate(srv.URL+"/assets/hist"), chromedp.WaitVisible(chromedp.CSS("#last-polls")),
		chromedp.WaitReady(chromedp.CSS(`#history-chart[data-drawn="empty"]`)))
	if txt := run(t, ctx, "last polls", chromedp.Text(chromedp.CSS("#last-polls tbody"))); txt != "No poll yet." {
		t.Errorf("last polls before any poll: %q", txt)
	}
	if txt := run(t, ctx, "chart", chromedp.Text(chromedp.CSS("#history-chart .chart"))); txt != "No poll in the last 24 hours." {
		t.Errorf("chart before any poll: %q", txt)
	}
	scripts := run(t, ctx, "scripts", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('script')).map(s => new URL(s.src).pathname)`))
	if got := strings.Join(scripts, " "); got != "/static/vendor/htmx.org/htmx.min.js /static/vendor/uplot/uPlot.iife.min.js /static/assethistory.js" {
		t.Errorf("scripts %s, want htmx, uPlot and the chart's own", got)
	}

	// Poll now: the status part fetches itself again, with the poll in
	// the table and the chart drawn from the history.
	do(t, ctx, "poll now", chromedp.Click(chromedp.CSS("#poll-now")), chromedp.WaitVisible(chromedp.CSS("#poll-now-status")),
		chromedp.WaitVisible(chromedp.CSS(`#last-polls tbody tr[data-kind="poll_now"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#history-chart[data-drawn="true"] canvas`)))
	created, err := strconv.Atoi(run(t, ctx, "created", chromedp.Text(chromedp.CSS("#poll-now-containers"))))
	if err != nil || created < 1 {
		t.Fatalf("poll now created %d containers (%v), want at least one", created, err)
	}
	cells := run(t, ctx, "poll row", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#last-polls tbody tr')).map(tr => Array.from(tr.cells).map(c => c.textContent.trim()).join('|'))`))
	if len(cells) != 1 {
		t.Fatalf("last polls rows %q, want the poll now", cells)
	}
	c := strings.Split(cells[0], "|")
	if len(c) != 7 || c[1] != "poll_now" || !strings.HasSuffix(c[2], " ms") || c[3] != "6" || c[4] != strconv.Itoa(created) || c[5] != "6" || c[6] != "ok" {
		t.Errorf("poll row %q, want poll_now, its duration, 6 messages, %d containers, 6 artifacts, ok", cells[0], created)
	}
	type drawn struct {
		Messages float64 `json:"messages"`
		Points   int     `json:"points"`
		Width    int     `json:"width"`
		Height   int     `json:"height"`
	}
	chart := run(t, ctx, "chart", chromedp.Evaluate[drawn](`(() => {
		const f = document.getElementById('history-chart'), cv = f.querySelector('canvas');
		return {messages: f.chart.data[1].reduce((a, b) => a + b, 0), points: f.chart.data[0].length, width: cv.width, height: cv.height};
	})()`))
	if chart.Messages != 6 || chart.Points < 1 || chart.Width < 200 || chart.Height < 100 {
		t.Errorf("chart %+v, want the 6 messages on a canvas", chart)
	}
	// The figures as a table, for keyboard and screen-reader users.
	do(t, ctx, "open the table", chromedp.Click(chromedp.CSS("#history-table summary")), chromedp.WaitVisible(chromedp.CSS("#minutes")))
	rows := run(t, ctx, "minutes", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#minutes tbody tr')).map(tr => Array.from(tr.cells).map(c => c.textContent.trim()).join('|'))`))
	var sum int
	for _, r := range rows {
		f := strings.Split(r, "|")
		if len(f) != 3 {
			t.Fatalf("minutes row %q", r)
		}
		n, _ := strconv.Atoi(f[1])
		sum += n
	}
	if sum != 6 {
		t.Errorf("minutes table %q adds up to %d messages, want 6", rows, sum)
	}
	do(t, ctx, "close the table", chromedp.Click(chromedp.CSS("#history-table summary")))

	// The chart's JSON is the history, for the session only.
	req, _ := http.NewRequest("GET", srv.URL+"/assets/hist/history.json", nil)
	req.AddCookie(&http.Cookie{Name: session.Name, Value: session.Value})
	resp, err := noRedirect(t, "").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Polls []struct {
			Kind string `json:"kind"`
		} `json:"polls"`
	}
	err = json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || len(h.Polls) != 1 || h.Polls[0].Kind != "poll_now" || resp.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("history.json: %d %+v %v", resp.StatusCode, h, err)
	}
	resp, err = noRedirect(t, "").Get(srv.URL + "/assets/hist/history.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/signin") {
		t.Errorf("history.json signed out: %d to %q, want the sign-in page", resp.StatusCode, resp.Header.Get("Location"))
	}

	// Poll now leaves the position, so it samples no lag; the on poll
	// action polls from the stored position (the topic's end, on a first
	// poll), and the chart draws its lag.
	var polled map[string]any
	api(t, srv, "POST", "/v1/actions/on_poll", map[string]any{"asset": "hist"}, &polled)
	if polled["status"] != "success" {
		t.Fatalf("on poll: %v", polled)
	}
	do(t, ctx, "open the detail again", chromedp.Navigate(srv.URL+"/assets/hist"),
		chromedp.WaitVisible(chromedp.CSS(`#history-chart[data-drawn="true"] canvas`)))
	kinds := run(t, ctx, "kinds", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#last-polls tbody tr')).map(tr => tr.dataset.kind)`))
	if strings.Join(kinds, " ") != "action poll_now" {
		t.Errorf("last polls %v, want the action, then poll now", kinds)
	}
	lags := run(t, ctx, "lag series", chromedp.Evaluate[[]*float64](`document.getElementById('history-chart').chart.data[2]`))
	if n := len(lags); n == 0 || lags[n-1] == nil || *lags[n-1] != 0 {
		t.Errorf("lag series %v, want the action's lag 0 last", lags)
	}
	run(t, ctx, "scroll to the last polls", chromedp.Evaluate[bool](`(document.getElementById('last-polls-heading').scrollIntoView(), true)`))
	screenshot(t, ctx, "asset-detail")
	wantNoBrowserEvents(t, events)
}
