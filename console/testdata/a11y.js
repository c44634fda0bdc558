// The console's accessibility checks, run in the page by
// a11y_browser_test.go: contrast of every visible text against its
// effective background (WCAG AA), and the labels of form controls. It
// returns a list of problems, each naming the element.
(() => {
  const problems = [];
  const parse = (c) => {
    const m = c.match(/rgba?\(([^)]+)\)/);
    if (!m) { return null; }
    const p = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const over = (top, under) => ({
    r: top.r * top.a + under.r * (1 - top.a),
    g: top.g * top.a + under.g * (1 - top.a),
    b: top.b * top.a + under.b * (1 - top.a), a: 1});
  const lum = (c) => {
    const ch = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * ch(c.r) + 0.7152 * ch(c.g) + 0.0722 * ch(c.b);
  };
  const hex = (c) => '#' + [c.r, c.g, c.b].map(v => Math.round(v).toString(16).padStart(2, '0')).join('');
  // The effective background: the element's own and its ancestors'
  // colours, composed from the first opaque one up (the page is white
  // below everything).
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) {
        layers.push(c);
        if (c.a >= 1) { break; }
      }
    }
    let bg = {r: 255, g: 255, b: 255, a: 1};
    for (let i = layers.length - 1; i >= 0; i--) { bg = over(layers[i], bg); }
    return bg;
  };
  const describe = (el) => {
    let s = el.tagName.toLowerCase();
    if (el.id) { s += '#' + el.id; }
    if (el.classList.length) { s += '.' + Array.from(el.classList).join('.'); }
    const text = (el.textContent || el.value || '').trim().replace(/\s+/g, ' ');
    return s + ' "' + text.slice(0, 40) + '"';
  };
  const shown = (el) => {
    const st = getComputedStyle(el);
    if (st.visibility !== 'visible' || st.display === 'none' || parseFloat(st.opacity) === 0) { return false; }
    const r = el.getBoundingClientRect();
    // Visually hidden (1 px, clipped) or pushed off the page (the skip
    // link until focused): not seen, so not measured.
    return r.width > 1 && r.height > 1 && r.right > 0 && r.bottom > 0;
  };
  for (const el of document.body.querySelectorAll('*')) {
    if (['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE'].includes(el.tagName)) { continue; }
    const own = Array.from(el.childNodes).some(n => n.nodeType === Node.TEXT_NODE && n.textContent.trim() !== '');
    const field = ['INPUT', 'SELECT', 'TEXTAREA', 'BUTTON'].includes(el.tagName) && (el.value || el.textContent || '').trim() !== '' && el.type !== 'hidden';
    if (!(own || field) || !shown(el)) { continue; }
    const st = getComputedStyle(el);
    const fg = parse(st.color);
    if (!fg) { continue; }
    const bg = background(el);
    const c = over(fg, bg);
    const l1 = lum(c), l2 = lum(bg);
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(st.fontSize), bold = parseInt(st.fontWeight, 10) >= 700;
    const large = size >= 24 || (bold && size >= 18.66);
    const need = large ? 3 : 4.5;
    if (ratio < need) {
      problems.push(`contrast ${ratio.toFixed(2)}:1 < ${need}:1: ${describe(el)}: ${hex(c)} on ${hex(bg)} (${size}px${bold ? ' bold' : ''})`);
    }
  }
  // Every form control has a name a screen reader reads out.
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (el.type === 'hidden' || el.type === 'submit' || el.type === 'button' || el.getClientRects().length === 0) { continue; }
    const labelled = Array.from(el.labels || []).some(l => l.textContent.trim() !== '') ||
      (el.getAttribute('aria-label') || '').trim() !== '' ||
      (el.getAttribute('aria-labelledby') || '').split(/\s+/).some(id => id && document.getElementById(id) && document.getElementById(id).textContent.trim() !== '') ||
      (el.getAttribute('title') || '').trim() !== '';
    if (!labelled) { problems.push('no label: ' + describe(el)); }
  }
  return problems;
})()
