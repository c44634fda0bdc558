// The parser editor: CodeMirror 5 over the form's textarea (which stays
// the form field, so the page works without script), the check's problems
// marked at their lines, and a playground failure's line highlighted.
(function () {
  "use strict";
  // focusAfter focuses the control Tab would reach next after el: the
  // first one that follows it in document order, of a radio group the
  // checked button.
  function focusAfter(el) {
    var all = document.querySelectorAll("a[href], button, input, select, textarea");
    for (var i = 0; i < all.length; i++) {
      var c = all[i];
      if (el.contains(c) || c.disabled || c.tabIndex < 0 || c.type === "hidden" || !c.getClientRects().length) { continue; }
      if (c.type === "radio" && !c.checked && c.form && c.form.querySelector('input[type=radio][name="' + c.name + '"]:checked')) { continue; }
      if (el.compareDocumentPosition(c) & Node.DOCUMENT_POSITION_FOLLOWING) { c.focus(); return; }
    }
  }
  function start() {
    var ta = document.getElementById("source");
    if (!ta || typeof CodeMirror === "undefined") { return; }
    var cm = CodeMirror.fromTextArea(ta, {
      mode: "go", lineNumbers: true, indentUnit: 4, indentWithTabs: true,
      readOnly: ta.readOnly, gutters: ["cm-gutter-problems", "CodeMirror-linenumbers"],
      // Tab indents in the editor; Esc leaves it for the next control, so
      // the keyboard is never trapped.
      extraKeys: {
        "Esc": function (cm) { focusAfter(cm.getWrapperElement()); }
      }
    });
    // CodeMirror's own input is what a screen reader lands on: it gets
    // the name the textarea's label gives.
    var label = document.querySelector('label[for="source"]');
    cm.getInputField().setAttribute("aria-label", label ? label.textContent.trim() : "Parser source");
    // The textarea is what the form and the playground send.
    cm.on("change", function () { cm.save(); });
    var marked = [];
    function clear() {
      marked.forEach(function (l) {
        cm.removeLineClass(l, "background", "cm-problem-line");
      });
      marked = [];
      cm.clearGutter("cm-gutter-problems");
    }
    function mark(line, message) {
      var l = line - 1;
      if (l < 0 || l >= cm.lineCount()) { return; }
      cm.addLineClass(l, "background", "cm-problem-line");
      var m = document.createElement("span");
      m.className = "cm-problem-marker";
      m.textContent = "●";
      m.title = message || "";
      cm.setGutterMarker(l, "cm-gutter-problems", m);
      marked.push(l);
    }
    try {
      JSON.parse(ta.getAttribute("data-problems") || "null") && JSON.parse(ta.getAttribute("data-problems")).forEach(function (p) { mark(p.line, p.message); });
    } catch (e) { /* no problems to mark */ }
    if (marked.length) { cm.scrollIntoView({ line: marked[0], ch: 0 }, 80); }
    document.querySelectorAll("a[data-line]").forEach(function (a) {
      a.addEventListener("click", function (ev) {
        ev.preventDefault();
        var l = parseInt(a.getAttribute("data-line"), 10) - 1;
        cm.focus();
        cm.setCursor({ line: l, ch: 0 });
      });
    });
    document.body.addEventListener("htmx:afterSwap", function (ev) {
      if (!ev.target || ev.target.id !== "playground-result") { return; }
      clear();
      var out = ev.target.querySelector("[data-fail-line]");
      var line = out ? parseInt(out.getAttribute("data-fail-line"), 10) : 0;
      if (line > 0) {
        mark(line, "the playground's failure");
        cm.scrollIntoView({ line: line - 1, ch: 0 }, 80);
      }
    });
    document.body.addEventListener("htmx:configRequest", function () { cm.save(); });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else { start(); }
})();
