package console_test

import (
	"context"
	_ "embed"
	"fmt"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

var (
	//go:embed testdata/a11y.js
	a11yChecks string
	//go:embed testdata/a11y-focus.js
	a11yFocusables string
	//go:embed testdata/a11y-focused.js
	a11yFocused string
)

// a11yPage is one console page the accessibility test visits: where it
// is and what shows it is loaded (its htmx fragments included).
type a11yPage struct {
	name, path, ready string
	// signedOut pages are visited before signing in.
	signedOut bool
}

// a11yPages are every page of the console. A new page gets a line here.
var a11yPages = []a11yPage{
	{name: "sign in", path: "/signin", ready: "#secret", signedOut: true},
	{name: "assets", path: "/assets", ready: `tr[data-asset="a11y"] .state`},
	{name: "asset form (new)", path: "/assets/new", ready: "#f-hosts"},
	{name: "asset form (edit)", path: "/assets/a11y/edit", ready: `[data-secret="delivery.token"]`},
	{name: "asset detail", path: "/assets/a11y", ready: `#history-chart[data-drawn="true"] canvas`},
	{name: "parsers", path: "/parsers", ready: ".parsers-list"},
	{name: "parser editor (new)", path: "/parsers/new", ready: ".CodeMirror"},
	{name: "parser editor", path: "/parsers/a11y", ready: ".CodeMirror"},
	{name: "parser editor (bundled)", path: "/parsers/default", ready: ".CodeMirror"},
	{name: "parser diff", path: "/parsers/a11y/diff?a=1&b=2", ready: "#diff"},
	{name: "integrations", path: "/integrations", ready: "#token"},
	{name: "containers", path: "/containers", ready: "#container-count"},
	{name: "containers (bad filter)", path: "/containers?from=soon", ready: "#e-from"},
	{name: "container", path: "/containers/1", ready: "#artifacts"},
	{name: "post data", path: "/post-data", ready: "#post-data-form"},
	{name: "audit", path: "/audit", ready: "table.audit"},
	{name: "audit (bad filter)", path: "/audit?since=soon", ready: "#audit-error"},
	{name: "not found", path: "/nowhere", ready: "main h1"},
}

// TestAccessibilityInBrowser checks every console page in the browser for
// WCAG AA contrast of all visible text, a label on every form control, and
// a keyboard that reaches every control by Tab in document order with the
// focus shown.
func TestAccessibilityInBrowser(t *testing.T) {
	ctx, events, srv := startConsole(t)
	// What the pages show: an asset with a secret, polled; a parser with
	// two versions; the trail of these changes.
	produce(t, srv.Broker, "a11y", 3)
	cfg := map[string]any{"hosts": srv.Broker, "topic": "a11y", "read_from_beginning": true, "timeout": 3000, "delivery.token": "tok"}
	api(t, srv, "POST", "/v1/assets", map[string]any{"name": "a11y", "description": "checked for accessibility", "config": cfg}, nil)
	api(t, srv, "POST", "/v1/actions/on_poll", map[string]any{"asset": "a11y"}, nil)
	api(t, srv, "POST", "/v1/parsers", map[string]any{"name": "a11y", "source": parserSource("first")}, nil)
	api(t, srv, "PUT", "/v1/parsers/a11y", map[string]any{"description": "second", "source": parserSource("second")}, nil)

	signedIn := false
	for _, p := range a11yPages {
		if !p.signedOut && !signedIn {
			signInBrowser(t, ctx, srv)
			signedIn = true
		}
		do(t, ctx, "open "+p.name, chromedp.Navigate(srv.URL+p.path), chromedp.WaitVisible(chromedp.CSS(p.ready)))
		for _, problem := range run(t, ctx, p.name+": contrast and labels", chromedp.Evaluate[[]string](a11yChecks)) {
			t.Errorf("%s (%s): %s", p.name, p.path, problem)
		}
		checkKeyboard(t, ctx, p)
	}
	// The not-found page answers 404 on purpose.
	wantNoBrowserEvents(t, events, "404 (Not Found) "+srv.URL+"/nowhere")
}

// focused is where the focus is after a Tab.
type focused struct {
	Index   int    `json:"index"`
	What    string `json:"what"`
	Visible bool   `json:"visible"`
	Editor  bool   `json:"editor"`
}

// checkKeyboard tabs through the page from its start: each control is
// reached in document order, none is skipped, and each shows its focus.
func checkKeyboard(t *testing.T, ctx context.Context, p a11yPage) {
	t.Helper()
	type focusables struct {
		List     []string `json:"list"`
		Problems []string `json:"problems"`
	}
	want := run(t, ctx, p.name+": focusables", chromedp.Evaluate[focusables](a11yFocusables))
	for _, problem := range want.Problems {
		t.Errorf("%s (%s): %s", p.name, p.path, problem)
	}
	if len(want.List) == 0 {
		t.Errorf("%s (%s): no control to reach", p.name, p.path)
		return
	}
	// Tab from the page's start, whatever the page focused itself (the
	// sign-in field does): from a focused, unreachable mark before all.
	run(t, ctx, p.name+": start", chromedp.Evaluate[bool](`(() => { const m = document.createElement('span');
  m.tabIndex = -1; document.body.prepend(m); m.focus(); return document.activeElement === m; })()`))
	next := 0 // the index the next Tab must reach
	// Composite controls (a date and time) take a Tab per part.
	for press := 0; press < 8*len(want.List)+20 && next < len(want.List); press++ {
		key := "Tab"
		f := run(t, ctx, p.name+": focus", chromedp.Evaluate[focused](a11yFocused))
		if f.Editor {
			// Tab indents in the editor; Esc is its documented way out.
			key = "Escape"
		}
		pressKey(t, ctx, key)
		f = run(t, ctx, p.name+": focus", chromedp.Evaluate[focused](a11yFocused))
		if f.Index < 0 && !f.Editor {
			continue // the browser's own stops (none inside the page)
		}
		if f.Editor {
			// CodeMirror's input stands for the editor's textarea.
			f.Index = next
		}
		if f.Index >= 0 && f.Index == next-1 {
			continue // a control with stops inside (a date's day, month, year)
		}
		if f.Index != next {
			if f.Index > next {
				t.Errorf("%s (%s): Tab went from %s to %s, skipping %s", p.name, p.path, prev(want.List, next), want.List[f.Index], want.List[next])
			} else {
				t.Errorf("%s (%s): Tab went back to %s, out of document order", p.name, p.path, want.List[f.Index])
			}
			return
		}
		if !f.Visible {
			t.Errorf("%s (%s): the focus on %s is not shown (no outline, no box shadow)", p.name, p.path, want.List[f.Index])
		}
		next++
	}
	if next < len(want.List) {
		t.Errorf("%s (%s): Tab never reached %s", p.name, p.path, want.List[next])
	}
}

func prev(list []string, i int) string {
	if i == 0 {
		return "the page's start"
	}
	return list[i-1]
}

// pressKey presses and releases key (Tab, Escape) as a keyboard does.
func pressKey(t *testing.T, ctx context.Context, key string) {
	t.Helper()
	codes := map[string]int64{"Tab": 9, "Escape": 27}
	do(t, ctx, "press "+key, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeKeyDown, input.DispatchKeyEventTypeKeyUp} {
			if _, err := cdp.Call(ctx, tg, input.DispatchKeyEvent, input.DispatchKeyEventParams{
				Type: typ, Key: key, Code: key, WindowsVirtualKeyCode: codes[key], NativeVirtualKeyCode: codes[key]}); err != nil {
				return chromedp.Void{}, fmt.Errorf("press %s: %w", key, err)
			}
		}
		return chromedp.Void{}, nil
	})
}
