package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/soarkafka/soarkafka/internal/testenv"
)

// signInBrowser signs the browser in to srv's console and returns the
// session cookie, for reading page sources as the browser was sent them.
func signInBrowser(t *testing.T, ctx context.Context, srv *testenv.Soarkafka) *network.Cookie {
	t.Helper()
	do(t, ctx, "sign in", chromedp.Navigate(srv.URL+"/signin"), chromedp.WaitVisible(chromedp.CSS("#secret")),
		chromedp.SendKeys(chromedp.CSS("#secret"), srv.Token), chromedp.Submit(chromedp.CSS("#secret")),
		chromedp.WaitVisible(chromedp.CSS("#new-asset")))
	cookies := run(t, ctx, "cookies", func(ctx context.Context, tg *chromedp.Target) ([]*network.Cookie, error) {
		r, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{})
		if err != nil {
			return nil, err
		}
		return r.Cookies, nil
	})
	for _, ck := range cookies {
		if ck.Name == "soarkafka_session" {
			return ck
		}
	}
	t.Fatal("no session cookie after sign-in")
	return nil
}

// saveForm clicks the form's save button and waits for the next page's
// #saved or #form-errors: the page before is marked stale first, so that
// its own #saved does not end the wait.
func saveForm(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	run(t, ctx, what+": mark the page", chromedp.Evaluate[string](`document.body.dataset.stale = '1'`))
	do(t, ctx, what, chromedp.Click(chromedp.CSS("#save")),
		chromedp.WaitVisible(chromedp.CSS("body:not([data-stale]) #saved, body:not([data-stale]) #form-errors")))
}

// pageSource reads path with the browser's session, as sent.
func pageSource(t *testing.T, srv *testenv.Soarkafka, session *network.Cookie, path string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+path, nil)
	req.AddCookie(&http.Cookie{Name: session.Name, Value: session.Value})
	resp, err := noRedirect(t, "").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d\n%s", path, resp.StatusCode, b)
	}
	return string(b)
}

// TestAssetFormInBrowser creates an asset in the console's form: two bad
// fields are shown beside their inputs at once, fixed and saved; the
// secret then shows as set and never its value; the audit trail names the
// console session as the actor.
func TestAssetFormInBrowser(t *testing.T) {
	ctx, events, srv := startConsole(t)
	session := signInBrowser(t, ctx, srv)

	// The form, grouped as the registry groups its fields.
	do(t, ctx, "open the new asset form", chromedp.Click(chromedp.CSS("#new-asset")), chromedp.WaitVisible(chromedp.CSS("#f-hosts")))
	legends := run(t, ctx, "groups", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('form.assetform legend')).map(e => e.textContent)`))
	if got := strings.Join(legends, ","); got != "Asset,Connection,TLS,SASL,Kerberos,AWS IAM,Producer,Ingest,Delivery" {
		t.Errorf("form groups %q", got)
	}
	kinds := run(t, ctx, "input kinds", chromedp.Evaluate[[]string](`[
  document.querySelector('#f-security_protocol').tagName,
  document.querySelector('#f-read_from_beginning').type,
  document.querySelector('#f-password').type,
  document.querySelector('[data-field="timeout"] .hint').textContent]`))
	if kinds[0] != "SELECT" || kinds[1] != "checkbox" || kinds[2] != "password" || !strings.Contains(kinds[3], "Default: 10000") {
		t.Errorf("enum, boolean, secret inputs and default shown: %q", kinds)
	}

	// Two bad fields: no hosts, a word for a number. Both at once, each
	// beside its input.
	do(t, ctx, "fill in with two bad fields",
		chromedp.SendKeys(chromedp.CSS("#f-name"), "firewall"),
		chromedp.SendKeys(chromedp.CSS("#f-topic"), "alerts"),
		chromedp.SetValue(chromedp.CSS("#f-timeout"), "soon"),
		chromedp.SendKeys(chromedp.CSS("#f-delivery-token"), "first-try-secret"))
	saveForm(t, ctx, "save with two bad fields")
	// A refused form does not send a typed secret back to the page.
	if html := run(t, ctx, "page", chromedp.Evaluate[string](`document.documentElement.outerHTML`)); strings.Contains(html, "first-try-secret") {
		t.Errorf("the refused form's page holds the secret typed")
	}
	for _, f := range []string{"hosts", "timeout"} {
		msg := run(t, ctx, f+" error", chromedp.Text(chromedp.CSS(fmt.Sprintf(`[data-field=%q] .field-error`, f))))
		if msg == "" {
			t.Errorf("no error beside %s", f)
		}
	}
	if n := run(t, ctx, "errors", chromedp.Evaluate[int](`document.querySelectorAll('.field-error').length`)); n != 2 {
		t.Errorf("%d field errors shown, want 2", n)
	}
	if v := run(t, ctx, "topic kept", chromedp.Value(chromedp.CSS("#f-topic"))); v != "alerts" {
		t.Errorf("the topic typed was lost: %q", v)
	}
	screenshot(t, ctx, "asset-form-errors")

	// Fixed, with a SASL password: saved, and the password shows as set.
	const secret = "s3cret-never-shown"
	do(t, ctx, "fix and save",
		chromedp.SendKeys(chromedp.CSS("#f-hosts"), srv.Broker),
		chromedp.SetValue(chromedp.CSS("#f-timeout"), "3000"),
		chromedp.SendKeys(chromedp.CSS("#f-delivery-token"), secret))
	saveForm(t, ctx, "save fixed")
	if errs := run(t, ctx, "errors", chromedp.Evaluate[string](`Array.from(document.querySelectorAll('#form-errors, .field-error')).map(e => e.textContent).join('; ')`)); errs != "" {
		t.Fatalf("the fixed form was refused: %s", errs)
	}
	if badge := run(t, ctx, "badge", chromedp.Text(chromedp.CSS(`[data-secret="delivery.token"]`))); badge != "set" {
		t.Errorf("password badge %q, want set", badge)
	}
	screenshot(t, ctx, "asset-form")
	// The edit page tests the saved configuration too.
	do(t, ctx, "test connectivity from the edit page", chromedp.Click(chromedp.CSS("#test-connectivity")),
		chromedp.WaitVisible(chromedp.CSS(`#connectivity-steps li[data-step="metadata"]`)))
	src := pageSource(t, srv, session, "/assets/firewall/edit")
	if strings.Contains(src, secret) || !strings.Contains(src, `data-secret="delivery.token"`) {
		t.Errorf("the edit page's source shows the secret or no set badge")
	}
	var got map[string]any
	api(t, srv, "GET", "/v1/assets/firewall", nil, &got)
	if cfg := got["config"].(map[string]any); cfg["timeout"] != float64(3000) || cfg["hosts"] != srv.Broker || got["secrets"].(map[string]any)["delivery.token"] != true {
		t.Errorf("stored asset %v", got)
	}

	// An edit that keeps the secret (left empty) and changes the topic.
	do(t, ctx, "edit", chromedp.SetValue(chromedp.CSS("#f-topic"), "alerts2"))
	saveForm(t, ctx, "save the edit")
	if errs := run(t, ctx, "errors", chromedp.Evaluate[string](`Array.from(document.querySelectorAll('#form-errors, .field-error')).map(e => e.textContent).join('; ')`)); errs != "" {
		t.Fatalf("the edit was refused: %s", errs)
	}
	api(t, srv, "GET", "/v1/assets/firewall", nil, &got)
	if got["config"].(map[string]any)["topic"] != "alerts2" || got["secrets"].(map[string]any)["delivery.token"] != true {
		t.Errorf("after the edit: %v", got)
	}

	// Clear the secret: no badge, nothing stored.
	do(t, ctx, "clear the secret", chromedp.Click(chromedp.CSS(`input[name="clear.delivery.token"]`)))
	saveForm(t, ctx, "save the cleared secret")
	api(t, srv, "GET", "/v1/assets/firewall", nil, &got)
	if got["secrets"].(map[string]any)["delivery.token"] == true {
		t.Errorf("after clear, delivery.token is still set: %v", got["secrets"])
	}
	if n := run(t, ctx, "badges", chromedp.Evaluate[int](`document.querySelectorAll('[data-secret="delivery.token"]').length`)); n != 0 {
		t.Errorf("after clear, the set badge is still shown")
	}

	// Delete.
	do(t, ctx, "delete", chromedp.Click(chromedp.CSS("form.delete button")), chromedp.WaitVisible(chromedp.CSS("#new-asset")))
	var list struct {
		Count int `json:"count"`
	}
	api(t, srv, "GET", "/v1/assets", nil, &list)
	if list.Count != 0 {
		t.Errorf("after delete, %d assets", list.Count)
	}

	// The trail: the create, the updates and the delete by the console
	// session, the secret only as "changed".
	var trail struct {
		Data []map[string]any `json:"data"`
	}
	api(t, srv, "GET", "/v1/audit?object_kind=asset&object_name=firewall", nil, &trail)
	var actions []string
	for _, e := range trail.Data {
		if !strings.HasPrefix(fmt.Sprint(e["actor"]), "console session ") {
			t.Errorf("event by %v, want the console session", e["actor"])
		}
		actions = append(actions, fmt.Sprint(e["action"]))
		if strings.Contains(fmt.Sprint(e), secret) {
			t.Errorf("the trail shows the secret: %v", e)
		}
	}
	if got := strings.Join(actions, ","); got != "delete,update,update,create" {
		t.Errorf("trail actions, newest first: %q, want delete,update,update,create", got)
	}
	if c, _ := trail.Data[len(trail.Data)-1]["changes"].(map[string]any); c["config.delivery.token"] != "changed" {
		t.Errorf("the create's changes: %v, want the secret as changed", c)
	}
	// The requests refused on purpose (bad forms, no CSRF token) are
	// logged by the browser with their 4xx statuses; nothing else may be.
	wantNoBrowserEvents(t, events, "the server responded with a status of 4")
}
