package console_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestAuditPageInBrowser makes a change in the console (an asset with a
// secret, in its form) and many with the API, and reads them back on the
// audit page: newest first, filtered by object and time, paged; the
// secret shown as "changed", never its value, in the page or its source.
func TestAuditPageInBrowser(t *testing.T) {
	ctx, events, srv := startConsole(t)
	session := signInBrowser(t, ctx, srv)

	// A change through the console: an asset with a delivery token.
	const secret = "audit-s3cret-never-shown"
	do(t, ctx, "new asset form", chromedp.Click(chromedp.CSS("#new-asset")), chromedp.WaitVisible(chromedp.CSS("#f-hosts")),
		chromedp.SendKeys(chromedp.CSS("#f-name"), "vault"),
		chromedp.SendKeys(chromedp.CSS("#f-hosts"), srv.Broker),
		chromedp.SendKeys(chromedp.CSS("#f-topic"), "alerts"),
		chromedp.SendKeys(chromedp.CSS("#f-delivery-token"), secret))
	saveForm(t, ctx, "save the asset")
	if errs := run(t, ctx, "errors", chromedp.Evaluate[string](`Array.from(document.querySelectorAll('#form-errors, .field-error')).map(e => e.textContent).join('; ')`)); errs != "" {
		t.Fatalf("the asset form was refused: %s", errs)
	}

	// More changes than one page holds, through the API: a create and 51
	// updates of another asset.
	cfg := map[string]any{"hosts": srv.Broker, "topic": "other"}
	api(t, srv, "POST", "/v1/assets", map[string]any{"name": "other", "config": cfg}, nil)
	for i := 1; i <= 51; i++ {
		api(t, srv, "PUT", "/v1/assets/other", map[string]any{"description": fmt.Sprintf("edit %d", i), "config": cfg}, nil)
	}

	// The whole trail: newest first, a full page, a link to older events.
	do(t, ctx, "open audit", chromedp.Click(chromedp.CSS(`nav a[href="/audit"]`)), chromedp.WaitVisible(chromedp.CSS("table.audit")))
	if n := run(t, ctx, "rows", chromedp.Evaluate[int](`document.querySelectorAll('table.audit tbody tr').length`)); n != 50 {
		t.Errorf("first page: %d rows, want 50", n)
	}
	first := run(t, ctx, "newest row", chromedp.Text(chromedp.CSS(`table.audit tbody tr`)))
	for _, want := range []string{"api token", "PUT /v1/assets/{name}", "asset other", "update", "edit 51"} {
		if !strings.Contains(first, want) {
			t.Errorf("newest row lacks %q:\n%s", want, first)
		}
	}
	if cur := run(t, ctx, "nav", chromedp.Text(chromedp.CSS(`nav a[aria-current="page"]`))); cur != "Audit" {
		t.Errorf("current navigation entry %q, want Audit", cur)
	}
	if txt := run(t, ctx, "count", chromedp.Text(chromedp.CSS("#audit-count"))); !strings.Contains(txt, "of 53") {
		t.Errorf("count %q, want 53 events in all", txt)
	}

	// Filtered by type and name in the form: the console's change alone,
	// with its secret as "changed".
	do(t, ctx, "filter", chromedp.SetValue(chromedp.CSS("#audit-kind"), "asset"), chromedp.SendKeys(chromedp.CSS("#audit-name"), "vault"),
		chromedp.Click(chromedp.CSS("#audit-filter")))
	// The form is a GET: wait for the filtered page itself, since the
	// page it replaces has the same count element.
	waitPage(t, ctx, "filtered page", `location.search.includes('name=vault') && document.readyState === 'complete' && document.querySelector('#audit-count') !== null`)
	if loc := run(t, ctx, "location", chromedp.Location()); !strings.Contains(loc, "kind=asset") || !strings.Contains(loc, "name=vault") {
		t.Errorf("the filter is not in the address: %s", loc)
	}
	rows := run(t, ctx, "filtered rows", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('table.audit tbody tr')).map(r => r.textContent)`))
	if len(rows) != 1 {
		t.Fatalf("filtered by asset vault: %d rows, want the create only:\n%s", len(rows), strings.Join(rows, "\n"))
	}
	for _, want := range []string{"console session ", "127.0.0.1", "/assets/new", "asset vault", "create", "config.topic"} {
		if !strings.Contains(rows[0], want) {
			t.Errorf("the console's change lacks %q:\n%s", want, rows[0])
		}
	}
	if v := run(t, ctx, "version", chromedp.Text(chromedp.CSS(`table.audit tbody td.num`))); v != "1" {
		t.Errorf("version %q, want 1", v)
	}
	if v := run(t, ctx, "secret", chromedp.Text(chromedp.CSS(`li[data-change="config.delivery.token"] .value`))); v != "changed" {
		t.Errorf("the secret shows as %q, want changed", v)
	}
	screenshot(t, ctx, "audit")
	for _, path := range []string{"/audit", "/audit?kind=asset&name=vault"} {
		if src := pageSource(t, srv, session, path); strings.Contains(src, secret) {
			t.Errorf("%s shows the secret's value", path)
		}
	}

	// Time: nothing from the future on; a bad time is named.
	do(t, ctx, "since the future", chromedp.Navigate(srv.URL+"/audit?since=2999-01-01T00:00"), chromedp.WaitVisible(chromedp.CSS("#audit-empty")))
	do(t, ctx, "until the future", chromedp.Navigate(srv.URL+"/audit?name=vault&until=2999-01-01T00:00"), chromedp.WaitVisible(chromedp.CSS("#audit-count")))
	do(t, ctx, "bad since", chromedp.Navigate(srv.URL+"/audit?since=yesterday"), chromedp.WaitVisible(chromedp.CSS("#audit-error")))
	if msg := run(t, ctx, "error", chromedp.Text(chromedp.CSS("#audit-error"))); !strings.Contains(msg, `From "yesterday"`) {
		t.Errorf("bad since: %q", msg)
	}

	// Paged: the second page of asset other holds its two oldest events,
	// the create last.
	do(t, ctx, "other", chromedp.Navigate(srv.URL+"/audit?name=other"), chromedp.WaitVisible(chromedp.CSS("#audit-older")),
		chromedp.Click(chromedp.CSS("#audit-older")), chromedp.WaitVisible(chromedp.CSS("#audit-newer")))
	rows = run(t, ctx, "page 2", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('table.audit tbody tr')).map(r => r.textContent)`))
	if len(rows) != 2 || !strings.Contains(rows[0], "edit 1\"") || !strings.Contains(rows[1], "create") {
		t.Errorf("page 2 of asset other:\n%s", strings.Join(rows, "\n"))
	}
	if n := run(t, ctx, "older", chromedp.Evaluate[int](`document.querySelectorAll('#audit-older').length`)); n != 0 {
		t.Error("the last page links to an older one")
	}
	wantNoBrowserEvents(t, events)
}
