// The controls the keyboard must reach, in document order: each is
// numbered (data-a11y) for the Tab walk of a11y_browser_test.go, and
// those Tab cannot reach (a negative tabIndex, or a positive one that
// breaks document order) are named.
(() => {
  const problems = [];
  const list = [];
  for (const el of document.querySelectorAll('a[href], button, input, select, textarea')) {
    if (el.type === 'hidden' || el.disabled || el.getClientRects().length === 0) { continue; }
    // A radio group is one Tab stop: its checked button (its first when
    // none is).
    if (el.type === 'radio' && el.name) {
      const group = Array.from(document.querySelectorAll('input[type=radio]')).filter(r => r.name === el.name && r.form === el.form);
      const stop = group.find(r => r.checked) || group[0];
      if (stop !== el) { continue; }
    }
    const st = getComputedStyle(el);
    if (st.visibility !== 'visible') { continue; }
    const what = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.name ? '[name=' + el.name + ']' : '') +
      ' "' + (el.textContent || el.getAttribute('aria-label') || '').trim().replace(/\s+/g, ' ').slice(0, 30) + '"';
    if (el.tabIndex < 0) { problems.push('not reachable by Tab (tabIndex ' + el.tabIndex + '): ' + what); continue; }
    if (el.tabIndex > 0) { problems.push('positive tabIndex ' + el.tabIndex + ' breaks document order: ' + what); }
    el.dataset.a11y = String(list.length);
    list.push(what);
  }
  return {list, problems};
})()
