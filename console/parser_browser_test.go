package console_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// parserSource is a parser whose body is given: one container per
// message, named by the message, with one artifact carrying it as CEF.
func parserSource(label string) string {
	return `package greeter

import (
	"fmt"

	"github.com/soarkafka/soarkafka/soar"
)

func ParseMessages(topic string, messages []soar.Message) ([]soar.Result, error) {
	var out []soar.Result
	for _, m := range messages {
		fmt.Println("<img src=x onerror=alert(3)>parsed", m.Message)
		out = append(out, soar.Result{
			Container: soar.Container{Name: m.Message, Label: "` + label + `", Severity: "high", SourceDataIdentifier: fmt.Sprint(m.Offset)},
			Artifacts: []soar.Artifact{{Name: "msg", Label: "event", CEF: map[string]any{"message": m.Message}}},
		})
	}
	return out, nil
}
`
}

// setParserSource puts text in the editor as a person typing would leave it.
func setParserSource(t *testing.T, ctx context.Context, src string) {
	t.Helper()
	js := fmt.Sprintf(`document.querySelector('.CodeMirror').CodeMirror.setValue(%q); true`, src)
	run(t, ctx, "set the source", chromedp.Evaluate[bool](js))
}

// clearPlayground empties the playground's answer, so that waiting for the
// next one does not find the last.
func clearPlayground(t *testing.T, ctx context.Context) {
	t.Helper()
	run(t, ctx, "clear the playground", chromedp.Evaluate[bool](`document.getElementById('playground-result').innerHTML = ''; true`))
}

// parserLineMarked says whether the editor marks line (1-based) as a problem.
func parserLineMarked(t *testing.T, ctx context.Context, line int) bool {
	t.Helper()
	js := fmt.Sprintf(`(document.querySelector('.CodeMirror').CodeMirror.lineInfo(%d).bgClass || '').includes('cm-problem-line')`, line-1)
	return run(t, ctx, "line marked", chromedp.Evaluate[bool](js))
}

// TestParserPagesInBrowser writes a parser in the console's editor with a
// syntax error and sees it at its line, fixes and saves it, runs the
// playground on pasted messages and on a live sample of an asset's topic,
// sees a run's failure at its line, and the diff between two versions; no
// page breaks its Content-Security-Policy and the changes are in the
// audit trail with the console as actor.
func TestParserPagesInBrowser(t *testing.T) {
	ctx, events, srv := startConsole(t)
	produce(t, srv.Broker, "parser-live", 3)
	api(t, srv, "POST", "/v1/assets", map[string]any{"name": "live",
		"config": map[string]any{"hosts": srv.Broker, "topic": "parser-live", "timeout": 3000}}, nil)

	do(t, ctx, "sign in", chromedp.Navigate(srv.URL+"/parsers/new"), chromedp.WaitVisible(chromedp.CSS("#secret")),
		chromedp.SendKeys(chromedp.CSS("#secret"), srv.Token), chromedp.Submit(chromedp.CSS("#secret")),
		chromedp.WaitVisible(chromedp.CSS(".CodeMirror")))

	// A syntax error on line 12 (a call left open): the save is refused,
	// the error names the line and the editor marks it.
	broken := strings.Replace(parserSource("events"), `m.Message)
		out =`, `m.Message
		out =`, 1)
	setParserSource(t, ctx, broken)
	do(t, ctx, "save broken", chromedp.SendKeys(chromedp.CSS("#name"), "greeter"), chromedp.Click(chromedp.CSS("#save")),
		chromedp.WaitVisible(chromedp.CSS("#parser-error")), chromedp.WaitVisible(chromedp.CSS(".cm-problem-marker")))
	if msg := run(t, ctx, "error", chromedp.Text(chromedp.CSS("#parser-error"))); !strings.Contains(msg, "line 12") {
		t.Errorf("the save's error %q does not name line 12", msg)
	}
	if !parserLineMarked(t, ctx, 12) {
		t.Error("line 12 is not marked in the editor")
	}
	screenshot(t, ctx, "parser-check-error")

	// Esc leaves the editor for the Save button: no keyboard trap.
	run(t, ctx, "focus the editor", chromedp.Evaluate[bool](`document.querySelector('.CodeMirror').CodeMirror.focus(); true`))
	do(t, ctx, "escape", chromedp.KeyEvent("\u001b"))
	if id := run(t, ctx, "focused", chromedp.Evaluate[string](`document.activeElement.id`)); id != "save" {
		t.Errorf("after Esc in the editor the focus is on %q, want the Save button", id)
	}

	// Fixed: saved as version 1.
	setParserSource(t, ctx, parserSource("events"))
	do(t, ctx, "save fixed", chromedp.Click(chromedp.CSS("#save")), chromedp.WaitVisible(chromedp.CSS("#parser-notice")))
	if loc := run(t, ctx, "location", chromedp.Location()); !strings.HasPrefix(loc, srv.URL+"/parsers/greeter") {
		t.Fatalf("after the save at %s", loc)
	}
	if n := run(t, ctx, "notice", chromedp.Text(chromedp.CSS("#parser-notice"))); !strings.Contains(n, "version 1") {
		t.Errorf("notice %q", n)
	}

	// The playground on pasted messages: containers and artifacts as
	// tables, the log as text (its markup not run).
	do(t, ctx, "run pasted", chromedp.SendKeys(chromedp.CSS("#messages"), "first alert\nsecond alert"),
		chromedp.Click(chromedp.CSS("#run")), chromedp.WaitVisible(chromedp.CSS(".play-artifacts tbody tr")))
	containers := run(t, ctx, "containers", chromedp.Text(chromedp.CSS(".play-containers tbody")))
	artifacts := run(t, ctx, "artifacts", chromedp.Text(chromedp.CSS(".play-artifacts tbody")))
	for _, want := range []string{"first alert", "second alert", "events", "high"} {
		if !strings.Contains(containers, want) {
			t.Errorf("container table lacks %q:\n%s", want, containers)
		}
	}
	for _, want := range []string{"msg", "event", "message", "second alert"} {
		if !strings.Contains(artifacts, want) {
			t.Errorf("artifact table lacks %q:\n%s", want, artifacts)
		}
	}
	if log := run(t, ctx, "log", chromedp.Text(chromedp.CSS("#play-log"))); !strings.Contains(log, "<img src=x onerror=alert(3)>parsed first alert") {
		t.Errorf("log %q", log)
	}
	if n := run(t, ctx, "images", chromedp.Evaluate[int](`document.querySelectorAll('#playground-result img').length`)); n != 0 {
		t.Errorf("the script's log was put in the page as markup (%d <img>)", n)
	}
	if d := run(t, ctx, "duration", chromedp.Text(chromedp.CSS("#play-duration"))); !strings.HasSuffix(d, " ms") {
		t.Errorf("duration %q", d)
	}
	screenshot(t, ctx, "parser-playground")

	// A live sample of the asset's topic: the messages produced above.
	clearPlayground(t, ctx)
	do(t, ctx, "run live", chromedp.Click(chromedp.CSS(`input[name="input"][value="asset"]`)),
		chromedp.SetValue(chromedp.CSS("#asset"), "live"), chromedp.SetValue(chromedp.CSS("#from"), "earliest"),
		chromedp.Click(chromedp.CSS("#run")), chromedp.WaitVisible(chromedp.CSS("#play-summary")))
	live := run(t, ctx, "live", chromedp.Text(chromedp.CSS("#playground-result")))
	for i := range 3 {
		if want := fmt.Sprintf(`{"n": %d}`, i); !strings.Contains(live, want) {
			t.Errorf("the live sample lacks %s:\n%s", want, live)
		}
	}

	// A run that panics on line 10: the failure shows, the line is marked.
	panicking := strings.Replace(parserSource("events"), "\tvar out []soar.Result\n", "\tpanic(\"no good: \" + messages[0].Message)\n\tvar out []soar.Result\n", 1)
	setParserSource(t, ctx, panicking)
	clearPlayground(t, ctx)
	do(t, ctx, "run failing", chromedp.Click(chromedp.CSS(`input[name="input"][value="pasted"]`)),
		chromedp.Click(chromedp.CSS("#run")), chromedp.WaitVisible(chromedp.CSS("#play-failure")))
	if f := run(t, ctx, "failure", chromedp.Text(chromedp.CSS("#play-failure"))); !strings.Contains(f, "no good") || !strings.Contains(f, "line 10") {
		t.Errorf("failure %q: want the panic at line 10", f)
	}
	if !parserLineMarked(t, ctx, 10) {
		t.Error("the failing line 10 is not marked in the editor")
	}
	screenshot(t, ctx, "parser-failure")

	// Version 2 with another label; the diff shows the change.
	setParserSource(t, ctx, parserSource("alerts"))
	// The notice of version 1 goes first, so the wait is for the new page.
	run(t, ctx, "drop the notice", chromedp.Evaluate[bool](`document.getElementById('parser-notice').remove(); true`))
	do(t, ctx, "save v2", chromedp.Click(chromedp.CSS("#save")), chromedp.WaitVisible(chromedp.CSS("#parser-notice")))
	if n := run(t, ctx, "notice v2", chromedp.Text(chromedp.CSS("#parser-notice"))); !strings.Contains(n, "version 2") {
		t.Errorf("notice %q, want version 2", n)
	}
	do(t, ctx, "diff", chromedp.Navigate(srv.URL+"/parsers/greeter/diff?a=1&b=2"), chromedp.WaitVisible(chromedp.CSS("#diff")))
	added := run(t, ctx, "added", chromedp.Text(chromedp.CSS("#diff .diff-add")))
	removed := run(t, ctx, "removed", chromedp.Text(chromedp.CSS("#diff .diff-del")))
	if !strings.Contains(added, `Label: "alerts"`) || !strings.Contains(removed, `Label: "events"`) {
		t.Errorf("diff: added %q, removed %q", added, removed)
	}
	if n := run(t, ctx, "changed lines", chromedp.Evaluate[int](`document.querySelectorAll('#diff .diff-add, #diff .diff-del').length`)); n != 2 {
		t.Errorf("%d changed lines in the diff, want 2", n)
	}
	screenshot(t, ctx, "parser-diff")

	// Without script, the playground form answers a page of its own (the
	// editor's source is not sent: the stored parser runs).
	do(t, ctx, "editor", chromedp.Navigate(srv.URL+"/parsers/greeter"), chromedp.WaitVisible(chromedp.CSS("#run")))
	run(t, ctx, "drop htmx", chromedp.Evaluate[bool](`document.getElementById('playground-form').removeAttribute('hx-post'); htmx.process(document.body); true`))
	do(t, ctx, "run without htmx", chromedp.SendKeys(chromedp.CSS("#messages"), "plain"), chromedp.Submit(chromedp.CSS("#messages")),
		chromedp.WaitVisible(chromedp.CSS(".play-containers")))
	if txt := run(t, ctx, "page", chromedp.Text(chromedp.CSS("main"))); !strings.Contains(txt, "Playground: greeter") || !strings.Contains(txt, "alerts") {
		t.Errorf("playground page without htmx:\n%s", txt)
	}

	do(t, ctx, "list", chromedp.Navigate(srv.URL+"/parsers"), chromedp.WaitVisible(chromedp.CSS(".parsers-list")))
	list := run(t, ctx, "list", chromedp.Text(chromedp.CSS(".parsers-list")))
	if !strings.Contains(list, "greeter") || !strings.Contains(list, "bundled") {
		t.Errorf("parsers list:\n%s", list)
	}
	screenshot(t, ctx, "parsers")

	// On a narrow window the playground goes below the editor.
	do(t, ctx, "narrow", chromedp.EmulateViewport(420, 800), chromedp.Navigate(srv.URL+"/parsers/greeter"), chromedp.WaitVisible(chromedp.CSS(".CodeMirror")))
	const stacked = `(() => { const e = document.querySelector('.parser-editor').getBoundingClientRect(), p = document.querySelector('.parser-playground').getBoundingClientRect();
  return p.top >= e.bottom && p.right <= window.innerWidth + 1 && e.right <= window.innerWidth + 1; })()`
	if !run(t, ctx, "stacked", chromedp.Evaluate[bool](stacked)) {
		t.Error("on a 420 px window the playground is not below the editor, or either is wider than the window")
	}
	screenshot(t, ctx, "parser-narrow")
	do(t, ctx, "wide again", chromedp.EmulateViewport(1280, 800))

	// A bundled parser opens read-only, and its playground runs it by
	// name (natively).
	do(t, ctx, "bundled", chromedp.Navigate(srv.URL+"/parsers/default"), chromedp.WaitVisible(chromedp.CSS("#run")),
		chromedp.SendKeys(chromedp.CSS("#messages"), `{"name": "bundled alert"}`), chromedp.Click(chromedp.CSS("#run")),
		chromedp.WaitVisible(chromedp.CSS("#play-summary")))
	if n := run(t, ctx, "save button", chromedp.Evaluate[int](`document.querySelectorAll('#save').length`)); n != 0 {
		t.Error("a bundled parser's page offers Save")
	}
	if txt := run(t, ctx, "bundled run", chromedp.Text(chromedp.CSS("#playground-result"))); !strings.Contains(txt, "default on 1 message(s)") || strings.Contains(txt, "panic") {
		t.Errorf("the bundled parser's playground:\n%s", txt)
	}

	// A source past the console's form limit is refused saying so.
	const big = `new Promise(done => fetch('/parsers/greeter', {method: 'POST',
  headers: {'X-CSRF-Token': document.querySelector('input[name=csrf]').value},
  body: new URLSearchParams({source: 'x'.repeat(70000)})}).then(r => r.text().then(t => done(r.status + ' ' + t))))`
	if got := run(t, ctx, "big save", chromedp.Evaluate[string](big, chromedp.EvalAwaitPromise)); !strings.HasPrefix(got, "413 ") || !strings.Contains(got, "64 KiB") {
		t.Errorf("a 70 KB source: %q, want 413 naming the 64 KiB limit", got)
	}

	// Deleted from the editor's delete button.
	do(t, ctx, "delete", chromedp.Navigate(srv.URL+"/parsers/greeter"), chromedp.WaitVisible(chromedp.CSS(".delete-form button")),
		chromedp.Click(chromedp.CSS(".delete-form button")), chromedp.WaitVisible(chromedp.CSS(".notice")))
	if list := run(t, ctx, "list after delete", chromedp.Text(chromedp.CSS(".parsers-list"))); strings.Contains(list, "greeter") {
		t.Errorf("greeter still listed after its deletion:\n%s", list)
	}

	var trail struct {
		Data []struct {
			Actor, Action, Name, Kind string
			Version                   *int64
		} `json:"data"`
	}
	api(t, srv, "GET", "/v1/audit?object_kind=parser&object_name=greeter", nil, &trail)
	var got []string
	for _, e := range trail.Data {
		if !strings.HasPrefix(e.Actor, "console session ") {
			t.Errorf("audit event by %q, want the console session", e.Actor)
		}
		v := int64(0)
		if e.Version != nil {
			v = *e.Version
		}
		got = append(got, fmt.Sprintf("%s %d", e.Action, v))
	}
	if strings.Join(got, ",") != "delete 0,update 2,create 1" {
		t.Errorf("audit trail of greeter: %v, want delete, update 2, create 1 (newest first)", got)
	}

	// The refused saves answer 422 (with the form) and 413, which the
	// browser logs.
	wantNoBrowserEvents(t, events, "status of 422", "status of 413")
}
