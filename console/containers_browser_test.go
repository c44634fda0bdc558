package console_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// unlabelledControls lists the page's form controls no label names: every
// input must be reachable and announced by its label.
const unlabelledControls = `Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea'))
  .filter(e => !e.labels || e.labels.length === 0).map(e => e.id || e.name)`

// TestPostDataAndContainersInBrowser posts a message whose fields hold
// markup through the Post data page to the dev broker and reads back
// where it landed, with bad fields first shown all at once beside their
// inputs; then polls the asset from its detail page, filters the
// containers by the asset (a bad time and an unknown severity each shown
// beside their input), and opens the container: its artifacts, their CEF
// fields, the markup shown as text and never run.
func TestPostDataAndContainersInBrowser(t *testing.T) {
	ctx, events, srv := startConsole(t)
	// Two assets, each with its topic; "other" is polled now so that the
	// filter has containers to leave out.
	produce(t, srv.Broker, "events", 1)
	produce(t, srv.Broker, "other-events", 2)
	api(t, srv, "POST", "/v1/assets", map[string]any{"name": "edge",
		"config": map[string]any{"hosts": srv.Broker, "topic": "events", "read_from_beginning": true, "timeout": 3000}}, nil)
	api(t, srv, "POST", "/v1/assets", map[string]any{"name": "other",
		"config": map[string]any{"hosts": srv.Broker, "topic": "other-events", "read_from_beginning": true, "timeout": 3000}}, nil)
	var polled map[string]any
	api(t, srv, "POST", "/v1/actions/on_poll", map[string]any{"asset": "other"}, &polled)
	if polled["status"] != "success" {
		t.Fatalf("on poll of other: %v", polled)
	}
	session := signInBrowser(t, ctx, srv)

	// The page, from the navigation; every control labelled.
	do(t, ctx, "open post data", chromedp.Click(chromedp.CSS(`nav a[href="/post-data"]`)), chromedp.WaitVisible(chromedp.CSS("#post-data-form")))
	if bad := run(t, ctx, "labels", chromedp.Evaluate[[]string](unlabelledControls)); len(bad) > 0 {
		t.Errorf("post data: controls without a label: %v", bad)
	}

	// Four bad fields: each shown beside its input, all at once, and
	// nothing sent.
	do(t, ctx, "fill bad fields",
		// The browser would ask for the asset itself; the server must too.
		chromedp.RemoveAttribute(chromedp.CSS("#p-asset"), "required"),
		setValues(map[string]string{"p-asset": "", "p-headers": "x-ok: yes\nno colon here", "p-partition": "-1", "p-data": `{"a": `}),
		chromedp.Click(chromedp.CSS("#send")),
		chromedp.WaitVisible(chromedp.CSS("#form-errors")))
	for id, want := range map[string]string{
		"#e-asset":     "required: choose the asset",
		"#e-headers":   `line 2 "no colon here" is not a header: write one a line as name: value`,
		"#e-partition": "must be a partition number (0 or more)",
		"#e-data":      "data is not valid JSON: the JSON ends early at line 1, column 6",
	} {
		if got := run(t, ctx, "error "+id, chromedp.Text(chromedp.CSS(id))); !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q", id, got, want)
		}
	}
	if n := run(t, ctx, "errors", chromedp.Evaluate[int](`document.querySelectorAll('.field-error').length`)); n != 4 {
		t.Errorf("%d field errors shown, want the 4", n)
	}
	if v := run(t, ctx, "headers kept", chromedp.Value(chromedp.CSS("#p-headers"))); v != "x-ok: yes\nno colon here" {
		t.Errorf("the headers input after the errors: %q, want what was typed", v)
	}

	// A good send, markup in the key, a header and the data: the asset's
	// topic by default, and the partition and offset it landed at.
	const (
		key  = `<script>alert("key")</script>`
		data = `{"msg": "<script>alert(1)</script>", "img": "<img src=x onerror=alert(2)>"}`
	)
	do(t, ctx, "fill the form",
		setValues(map[string]string{"p-asset": "edge", "p-topic": "", "p-key": key,
			"p-headers": "source: console\nx-html: <img src=x onerror=alert(3)>", "p-partition": "", "p-data": data}),
		chromedp.Click(chromedp.CSS("#p-json")),
		chromedp.Click(chromedp.CSS("#send")),
		chromedp.WaitVisible(chromedp.CSS("#sent")))
	if st := run(t, ctx, "status", chromedp.Text(chromedp.CSS("#post-status"))); !strings.Contains(st, "success") || !strings.Contains(st, "1 message to topic events") {
		t.Errorf("post status %q", st)
	}
	partition, err := strconv.Atoi(run(t, ctx, "partition", chromedp.Text(chromedp.CSS(`#sent tr[data-index="0"] .partition`))))
	if err != nil {
		t.Fatalf("partition: %v", err)
	}
	offset, err := strconv.ParseInt(run(t, ctx, "offset", chromedp.Text(chromedp.CSS(`#sent tr[data-index="0"] .offset`))), 10, 64)
	if err != nil {
		t.Fatalf("offset: %v", err)
	}
	// The broker holds it there, as typed.
	rec, _ := findRecord(t, srv.Broker, "events", key)
	if rec.Partition != int32(partition) || rec.Offset != offset {
		t.Errorf("the page says partition %d offset %d; Kafka has it at %d/%d", partition, offset, rec.Partition, rec.Offset)
	}
	if !strings.Contains(string(rec.Value), `"msg": "<script>alert(1)</script>"`) || len(rec.Headers) != 2 ||
		rec.Headers[0].Key != "source" || string(rec.Headers[0].Value) != "console" ||
		rec.Headers[1].Key != "x-html" || string(rec.Headers[1].Value) != "<img src=x onerror=alert(3)>" {
		t.Errorf("the record in Kafka: value %s, headers %v", rec.Value, rec.Headers)
	}
	if v := run(t, ctx, "data kept", chromedp.Value(chromedp.CSS("#p-data"))); v != data {
		t.Errorf("the data input after sending: %q, want it as typed", v)
	}
	if n := run(t, ctx, "scripts and images", chromedp.Evaluate[int](`document.querySelectorAll('script, img').length`)); n != 1 {
		t.Errorf("%d scripts and images on the post data page, want htmx's script only", n)
	}
	screenshot(t, ctx, "post-data")

	// Poll now on the asset's page stores it.
	do(t, ctx, "poll now", chromedp.Navigate(srv.URL+"/assets/edge"), chromedp.WaitVisible(chromedp.CSS("#poll-now")),
		chromedp.Click(chromedp.CSS("#poll-now")), chromedp.WaitVisible(chromedp.CSS("#poll-now-containers")))
	if read := run(t, ctx, "messages", chromedp.Text(chromedp.CSS("#poll-now-messages"))); read != "2" {
		t.Fatalf("poll now read %q messages, want 2 (the one produced and the one posted)", read)
	}

	// Containers: every asset's, then the filter leaves edge's.
	do(t, ctx, "open containers", chromedp.Click(chromedp.CSS(`nav a[href="/containers"]`)), chromedp.WaitVisible(chromedp.CSS("#containers")))
	if bad := run(t, ctx, "labels", chromedp.Evaluate[[]string](unlabelledControls)); len(bad) > 0 {
		t.Errorf("containers: controls without a label: %v", bad)
	}
	assetsShown := `Array.from(document.querySelectorAll('#containers tbody tr')).map(e => e.dataset.asset)`
	if got := strings.Join(run(t, ctx, "rows", chromedp.Evaluate[[]string](assetsShown)), ","); got != "edge,other" {
		t.Errorf("unfiltered, newest first: %q, want edge,other", got)
	}
	do(t, ctx, "filter by edge", chromedp.SetValue(chromedp.CSS("#f-asset"), "edge"), chromedp.Click(chromedp.CSS("#apply-filter")),
		chromedp.WaitVisible(chromedp.CSS("#clear-filter")))
	if got := strings.Join(run(t, ctx, "rows", chromedp.Evaluate[[]string](assetsShown)), ","); got != "edge" {
		t.Errorf("filtered by edge: %q, want edge's container only", got)
	}
	if loc := run(t, ctx, "location", chromedp.Location()); !strings.Contains(loc, "/containers?") || !strings.Contains(loc, "asset=edge") {
		t.Errorf("after filtering the address is %s, want the filter in it", loc)
	}
	if txt := run(t, ctx, "count", chromedp.Text(chromedp.CSS("#container-count"))); txt != "1 container matches" {
		t.Errorf("count %q", txt)
	}
	screenshot(t, ctx, "containers")

	// Bad filter values: each shown beside its input with the fix.
	do(t, ctx, "bad from", chromedp.SetValue(chromedp.CSS("#f-from"), "yesterday"), chromedp.Click(chromedp.CSS("#apply-filter")),
		chromedp.WaitVisible(chromedp.CSS("#e-from")))
	if txt := run(t, ctx, "from error", chromedp.Text(chromedp.CSS("#e-from"))); !strings.Contains(txt, `"yesterday" is not a time: write it UTC, as 2026-12-05T14:30`) {
		t.Errorf("bad from: %q", txt)
	}
	do(t, ctx, "bad severity", chromedp.Navigate(srv.URL+"/containers?severity=critical&to=2026-13-01"), chromedp.WaitVisible(chromedp.CSS("#e-severity")))
	if txt := run(t, ctx, "severity error", chromedp.Text(chromedp.CSS("#e-severity"))); !strings.Contains(txt, `"critical" is not a severity: choose low, medium or high`) {
		t.Errorf("bad severity: %q", txt)
	}
	if txt := run(t, ctx, "to error", chromedp.Text(chromedp.CSS("#e-to"))); !strings.Contains(txt, `"2026-13-01" is not a time`) {
		t.Errorf("bad to: %q", txt)
	}
	// An asset that is no more (or mistyped): the select shows the
	// filter applied, and nothing matches.
	do(t, ctx, "gone asset", chromedp.Navigate(srv.URL+"/containers?asset=gone"), chromedp.WaitVisible(chromedp.CSS("#container-count")))
	if v := run(t, ctx, "asset select", chromedp.Value(chromedp.CSS("#f-asset"))); v != "gone" {
		t.Errorf("filtered by an unknown asset, the select shows %q", v)
	}
	if txt := run(t, ctx, "count", chromedp.Text(chromedp.CSS("#container-count"))); txt != "0 containers match" {
		t.Errorf("count for an unknown asset: %q", txt)
	}
	// A time window that holds the container, given as a bookmark.
	from := url.QueryEscape(time.Now().UTC().Add(-time.Hour).Format("2006-01-02T15:04"))
	do(t, ctx, "window", chromedp.Navigate(srv.URL+"/containers?asset=edge&severity=&from="+from), chromedp.WaitVisible(chromedp.CSS(`#containers tr[data-asset="edge"]`)))

	// The container: its fields, its artifacts and their CEF fields, the
	// markup as text.
	do(t, ctx, "open the container", chromedp.Click(chromedp.CSS(`#containers tr[data-asset="edge"] th a`)), chromedp.WaitVisible(chromedp.CSS("#container-fields")))
	if txt := run(t, ctx, "fields", chromedp.Text(chromedp.CSS("#container-fields"))); !strings.Contains(txt, "edge") || !strings.Contains(txt, "Artifacts") {
		t.Errorf("container fields: %q", txt)
	}
	messages := run(t, ctx, "cef", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('.artifact tr[data-cef="message"] td')).map(e => e.textContent)`))
	if len(messages) != 2 || messages[1] != string(rec.Value) || messages[0] != `{"n": 0}` {
		t.Errorf("the artifacts' cef.message: %q, want the produced message and the posted one, as text", messages)
	}
	if n := run(t, ctx, "raw json", chromedp.Evaluate[int](`document.querySelectorAll('details pre.json').length`)); n != 3 {
		t.Errorf("%d raw JSON blocks, want the container's and each artifact's", n)
	}
	if n := run(t, ctx, "scripts and images", chromedp.Evaluate[int](`document.querySelectorAll('script, img').length`)); n != 1 {
		t.Errorf("%d scripts and images on the container page, want htmx's script only", n)
	}
	loc := run(t, ctx, "location", chromedp.Location())
	path := strings.TrimPrefix(loc, srv.URL)
	if src := pageSource(t, srv, session, path); strings.Contains(src, "<script>alert") || strings.Contains(src, "<img src=x") ||
		!strings.Contains(src, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the container page's source does not escape the message")
	}
	// The artifacts in view: the posted message's CEF fields.
	run(t, ctx, "scroll to the artifacts", chromedp.Evaluate[bool](`window.scrollTo(0, document.getElementById('artifacts').offsetTop - 8); true`))
	screenshot(t, ctx, "container")

	// A narrow window: the list and the container fit, without scrolling
	// sideways.
	do(t, ctx, "narrow", chromedp.EmulateViewport(420, 800), chromedp.Navigate(srv.URL+"/containers?asset=edge"),
		chromedp.WaitVisible(chromedp.CSS(`#containers tr[data-asset="edge"]`)))
	for _, p := range []string{"/containers?asset=edge", path, "/post-data"} {
		do(t, ctx, "narrow "+p, chromedp.Navigate(srv.URL+p), chromedp.WaitVisible(chromedp.CSS("main")))
		if over := run(t, ctx, "overflow", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`)); over {
			t.Errorf("%s is wider than a 420px window", p)
		}
	}
	do(t, ctx, "wide again", chromedp.EmulateViewport(1280, 800))

	// A container that is not there, and one that cannot be.
	for _, p := range []string{"/containers/999999", "/containers/abc"} {
		req, _ := http.NewRequest("GET", srv.URL+p, nil)
		req.AddCookie(&http.Cookie{Name: session.Name, Value: session.Value})
		resp, err := noRedirect(t, "").Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}

	// Closed without a session; POST closed without the CSRF token.
	client := noRedirect(t, "")
	for _, rt := range []struct{ method, path string }{
		{"GET", "/containers"}, {"GET", "/containers/1"}, {"GET", "/post-data"}, {"POST", "/post-data"},
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
	}
	form := url.Values{"asset": {"edge"}, "data_type": {"string"}, "data": {"not without a token"}}
	wantCSRFRefused(t, client, srv.URL, session, "/post-data", form)
	if _, n := findRecord(t, srv.Broker, "events", ""); n != 2 {
		t.Errorf("events holds %d records after a POST refused for its CSRF token, want the 2 from before", n)
	}
	// The bad post data form answers 422, which the browser logs.
	wantNoBrowserEvents(t, events, "the server responded with a status of 422")
}

// setValues sets form controls' values by id, as typing would leave them.
func setValues(values map[string]string) chromedp.Action[chromedp.Void] {
	b, _ := json.Marshal(values)
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Evaluate[bool](`(function (v) {
  for (const id in v) { document.getElementById(id).value = v[id]; }
  return true;
})(`+string(b)+`)`)(ctx, tg)
		return chromedp.Void{}, err
	}
}

// findRecord reads topic to its end and returns the last record whose
// key is key ("" for any), and how many records the topic holds.
func findRecord(t *testing.T, broker, topic, key string) (*kgo.Record, int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil || ends.Error() != nil {
		t.Fatalf("end offsets of %s: %v %v", topic, err, ends.Error())
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	var found *kgo.Record
	for read := int64(0); read < total; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %s's %d records: %v", read, topic, total, ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			read++
			if key == "" || string(r.Key) == key {
				found = r
			}
		})
	}
	if found == nil {
		t.Fatalf("no record with key %q in %s", key, topic)
	}
	return found, total
}
