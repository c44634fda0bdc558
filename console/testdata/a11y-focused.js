// Where the focus is after a Tab, and whether it shows.
(() => {
  const el = document.activeElement;
  if (!el || el === document.body) { return {index: -1, what: 'body', visible: false, editor: false}; }
  const editor = el.closest('.CodeMirror');
  const st = getComputedStyle(el);
  const outline = st.outlineStyle !== 'none' && parseFloat(st.outlineWidth) > 0;
  const shadow = st.boxShadow !== 'none' && st.boxShadow !== '';
  return {
    index: el.dataset.a11y === undefined ? -1 : Number(el.dataset.a11y),
    what: el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.name ? '[name=' + el.name + ']' : ''),
    // CodeMirror's input is a 1 px textarea: the editor shows its focus
    // with its cursor and its focused class.
    visible: editor ? editor.classList.contains('CodeMirror-focused') : (outline || shadow),
    editor: !!editor,
  };
})()
