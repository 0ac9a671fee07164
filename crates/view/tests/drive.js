// Test driver of the explorer (served by tests/browser.rs at /drive.js, never by the
// explorer itself): runs the actions of `?do=` one by one against the real page, each
// once the page has finished rendering, and writes what it saw after each into
// <pre id="drive-log"> as JSON, for the test to read from the dumped DOM.
//   key:K        a keydown of key K on the focused element (bubbles to the page's handler)
//   click:SEL    a click on the first element matching the CSS selector SEL
'use strict';
(async () => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  // a render starts on the next task after a hash change; wait for it to finish
  const settled = async () => {
    await sleep(50);
    for (let i = 0; i < 400 && document.body.dataset.ready !== '1'; i++) await sleep(25);
  };
  // rendered, as the browser decides (folded <details> content is not)
  const visible = (sel) => [...document.querySelectorAll(sel)].filter((e) => e.checkVisibility()).length;
  const snap = (action) => {
    const sel = document.querySelector('tr.sel');
    const zoom = document.querySelector('.tree-zoom');
    return {
      action,
      hash: decodeURIComponent(location.hash),
      view: document.body.dataset.view || '',
      ready: document.body.dataset.ready === '1',
      sel: sel ? sel.dataset.id : null,
      rows: document.querySelectorAll('tbody tr').length,
      focus: document.activeElement ? document.activeElement.id : '',
      zoom: zoom ? zoom.style.transform : null,
      open: document.querySelectorAll('#tree details[open]').length,
      cards: visible('#tree .card'),
    };
  };
  const actions = (new URLSearchParams(location.search).get('do') || '').split(',').filter(Boolean);
  const log = [];
  await settled();
  log.push(snap('load'));
  for (const a of actions) {
    const i = a.indexOf(':');
    const verb = a.slice(0, i);
    const arg = a.slice(i + 1);
    if (verb === 'key') {
      const target = document.activeElement || document.body;
      target.dispatchEvent(new KeyboardEvent('keydown', { key: arg, bubbles: true, cancelable: true }));
    } else if (verb === 'click') {
      const el = document.querySelector(arg);
      if (!el) { log.push({ action: a, error: 'no element ' + arg }); break; }
      el.click();
    } else {
      log.push({ action: a, error: 'unknown action' });
      break;
    }
    await settled();
    log.push(snap(a));
  }
  const pre = document.createElement('pre');
  pre.id = 'drive-log';
  pre.textContent = JSON.stringify(log);
  document.body.append(pre);
})();
