// stepwise view: the explorer's front-end. Routes by the URL fragment (every view is a
// permalink), reads the JSON routes of the server (crates/view/src/api.rs) and builds the
// page with DOM calls only: text goes in as text nodes, never as markup.
'use strict';

const app = document.getElementById('app');
const crumbs = document.getElementById('crumbs');

// An element with attributes and children; strings become text nodes.
function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return e;
}

// Replaces the page's content (arrays flattened, empty parts left out).
function show(...kids) {
  app.replaceChildren(...kids.flat(Infinity).filter((x) => x !== null && x !== undefined && x !== false));
}

const enc = encodeURIComponent;
const fmt = (x, d = 3) => (x === null || x === undefined ? '' : Number(x).toFixed(d));

function verdict(c) {
  if (c === true) return h('span', { class: 'ok', title: 'right' }, '✓');
  if (c === false) return h('span', { class: 'bad', title: 'wrong' }, '✗');
  return h('span', { class: 'muted', title: 'no verdict' }, '–');
}

// Step-score colour: red (0) to green (1).
function paint(el, score) {
  if (score === null || score === undefined) return;
  const s = Math.max(0, Math.min(1, Number(score)));
  el.style.background = `hsl(${Math.round(s * 120)}, 70%, 84%)`;
}

async function api(path) {
  const r = await fetch(path);
  const body = await r.json().catch(() => ({ error: `${r.status} ${r.statusText}` }));
  if (!r.ok) throw new Error(body.error || `${r.status}`);
  return body;
}

// The route: path segments and query of the fragment.
function route() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, query] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { parts, q: new URLSearchParams(query || '') };
}

// Rewrites the fragment's query (filters) without a new history entry or a re-render.
function setQuery(q) {
  const { parts } = route();
  const s = q.toString();
  history.replaceState(null, '', '#/' + parts.map(enc).join('/') + (s ? '?' + s : ''));
}

let keys = null; // the current view's key handler
let started = 0;

function done(view) {
  const ms = performance.now() - started;
  document.getElementById('render-ms').textContent = ms.toFixed(1);
  document.body.dataset.view = view;
  document.body.dataset.renderMs = ms.toFixed(1);
  document.body.dataset.sinceLoadMs = performance.now().toFixed(1);
  document.body.dataset.ready = '1';
}

async function render() {
  started = performance.now();
  delete document.body.dataset.ready;
  keys = null;
  const { parts, q } = route();
  try {
    if (parts.length === 0) await runsView();
    else if (parts[0] === 'run' && parts.length === 2) await runView(+parts[1], q);
    else if (parts[0] === 'run' && parts[2] === 'p' && parts.length === 4) await problemView(+parts[1], parts[3], q);
    else if (parts[0] === 'run' && parts[2] === 'p' && parts[4] === 'tree') await treeView(+parts[1], parts[3], +parts[5], q);
    else if (parts[0] === 'compare' && parts.length === 3) await compareView(+parts[1], +parts[2], q);
    else throw new Error('no such view: ' + location.hash);
  } catch (e) {
    app.replaceChildren(h('p', { class: 'error', id: 'error' }, String(e.message || e)));
    done('error');
  }
}

function setCrumbs(...items) {
  crumbs.replaceChildren(...items.flatMap((x, i) => (i ? [' › ', x] : [x])));
}

function configLine(r) {
  const c = r.config || {};
  const bits = [];
  if (c.dataset) bits.push(c.dataset);
  if (c.strategy) bits.push(`${c.strategy} n=${c.n}`);
  if (c.scale) bits.push(`${(c.scale.strategies || []).join(',')} n=${(c.scale.ns || []).join(',')}`);
  if (c.methods) bits.push(c.methods.join(','));
  const s = c.search && c.search.scorer;
  if (s) bits.push(`scorer ${s}`);
  if (c.policy || c.generator) bits.push(c.policy || c.generator);
  return bits.join(' · ');
}

// ---- runs list ----
async function runsView() {
  const page = await api('/api/runs');
  setCrumbs(h('span', {}, page.store));
  const rows = page.runs.map((r) => {
    const exp = r.expected_units;
    const progress = exp ? h('span', {}, h('progress', { max: exp, value: r.units }), ` ${r.units}/${exp}`) : `${r.units} units`;
    const s = r.spent;
    return h('tr', { class: 'run', 'data-id': r.id },
      h('td', { class: 'nw' }, r.browsable ? h('a', { href: `#/run/${r.id}` }, `run ${r.id}`) : `run ${r.id}`),
      h('td', { class: 'nw' }, r.kind, h('span', { class: 'muted' }, ` v${r.version}`)),
      h('td', { class: 'status-' + r.status }, r.status, r.error ? h('div', { class: 'bad text' }, r.error) : null,
        r.read_error ? h('div', { class: 'bad text' }, r.read_error) : null),
      h('td', { class: 'nw' }, progress),
      h('td', {}, configLine(r), h('details', {}, h('summary', {}, 'config'), h('pre', { class: 'config' }, JSON.stringify(r.config, null, 2)))),
      h('td', { class: 'nw' }, `${s.policy_tokens + s.judge_tokens}`, h('div', { class: 'muted' }, `policy ${s.policy_tokens} · judge ${s.judge_tokens}`)),
      h('td', { class: 'nw' }, r.judged ? `${r.correct}/${r.judged} (${(100 * r.correct / r.judged).toFixed(1)}%)` : '–'),
      h('td', {}, r.report ? h('a', { href: r.report, class: 'report' }, 'report') : '–'),
      h('td', { class: 'nw' }, String(r.created).replace('T', ' ').replace(/(:\d\d)(\.\d+)?Z$/, '$1')));
  });
  const pick = (id) => h('select', { id }, page.runs.filter((r) => r.browsable).map((r) => h('option', { value: r.id }, `run ${r.id} · ${r.kind} · ${configLine(r)}`)));
  const a = pick('cmp-a');
  const b = pick('cmp-b');
  if (b.options.length > 1) b.selectedIndex = 1;
  show(
    h('h1', {}, `Runs (${page.runs.length})`),
    h('table', { id: 'runs' },
      h('thead', {}, h('tr', {}, ['run', 'kind', 'status', 'progress', 'config', 'generated tokens', 'correct', 'report', 'created'].map((x) => h('th', {}, x)))),
      h('tbody', {}, rows)),
    h('div', { class: 'toolbar' }, 'Compare ', a, ' with ', b,
      h('button', { id: 'cmp-go', onclick: () => { location.hash = `#/compare/${a.value}/${b.value}`; } }, 'compare')));
  listKeys(rows, (tr) => tr.querySelector('a'));
  done('runs');
}

// j/k over rows, Enter opens the row's link.
function listKeys(rows, link) {
  let i = -1;
  const sel = (j) => {
    if (!rows.length) return;
    if (i >= 0 && rows[i]) rows[i].classList.remove('sel');
    i = Math.max(0, Math.min(rows.length - 1, j));
    rows[i].classList.add('sel');
    rows[i].scrollIntoView({ block: 'nearest' });
  };
  keys = (e) => {
    if (e.key === 'j' || e.key === 'ArrowDown') { sel(i + 1); return true; }
    if (e.key === 'k' || e.key === 'ArrowUp') { sel(i - 1); return true; }
    if (e.key === 'Enter' && i >= 0) { const a = link(rows[i]); if (a) a.click(); return true; }
    return false;
  };
  return (newRows) => { rows = newRows; i = -1; };
}

function toolbar(q, filters, onChange) {
  const search = h('input', { type: 'search', id: 'search', placeholder: 'search id or text', value: q.get('q') || '' });
  const boxes = filters.map(([key, label]) => {
    const box = h('input', { type: 'checkbox', id: 'f-' + key });
    box.checked = q.get(key) === '1';
    return [box, h('label', { for: 'f-' + key }, label)];
  });
  const update = () => {
    const nq = new URLSearchParams();
    if (search.value) nq.set('q', search.value);
    filters.forEach(([key], i) => { if (boxes[i][0].checked) nq.set(key, '1'); });
    setQuery(nq);
    onChange(nq);
  };
  search.addEventListener('input', update);
  boxes.forEach(([b]) => b.addEventListener('change', update));
  return h('div', { class: 'toolbar' }, search, boxes, h('span', { id: 'count', class: 'muted' }));
}

const matches = (text, needle) => !needle || text.toLowerCase().includes(needle.toLowerCase());

// ---- one run: its problems ----
async function runView(id, q) {
  const page = await api(`/api/run/${id}`);
  const r = page.run;
  setCrumbs(h('a', { href: `#/run/${id}` }, `run ${id} (${r.kind})`));
  const all = page.rows.map((p) => {
    const wrong = p.variants.some((v) => v.correct === false);
    const tr = h('tr', { class: 'problem', 'data-id': p.id },
      h('td', {}, h('a', { href: `#/run/${id}/p/${enc(p.id)}` }, p.id)),
      h('td', { class: 'text' }, p.question),
      h('td', {}, p.gold ?? ''),
      h('td', {}, p.variants.map((v) => h('span', { class: 'badge' + (v.correct === true ? ' ok' : v.correct === false ? ' bad' : '') },
        `${v.name}: `, v.answer ?? (r.kind === 'annotate' ? '' : '—'), ' ', verdict(v.correct)))),
      h('td', {}, `${p.variants.reduce((a, v) => a + v.tokens, 0)}`),
      h('td', {}, p.disagreements ? h('span', { class: 'bad' }, `${p.disagreements}`) : '0'));
    return { p, tr, wrong };
  });
  const tbody = h('tbody', {});
  let reset = null;
  const apply = (nq) => {
    const shown = all.filter(({ p, wrong }) =>
      (matches(p.id, nq.get('q')) || matches(p.question, nq.get('q'))) &&
      (nq.get('wrong') !== '1' || wrong) && (nq.get('dis') !== '1' || p.disagreements > 0));
    tbody.replaceChildren(...shown.map((x) => x.tr));
    document.getElementById('count').textContent = `${shown.length} of ${all.length} problems`;
    if (reset) reset(shown.map((x) => x.tr));
  };
  show(
    h('h1', {}, `Run ${id}: ${r.kind} · ${configLine(r)}`),
    h('p', { class: 'muted' }, `${r.status} · ${r.units} units · ${r.judged ? `${r.correct}/${r.judged} right` : 'no verdicts'} · `,
      r.report ? h('a', { href: r.report }, 'HTML report') : null),
    toolbar(q, [['wrong', 'wrong only'], ['dis', 'disagreements only']], apply),
    h('table', { id: 'problems' },
      h('thead', {}, h('tr', {}, ['problem', 'question', 'gold', 'results', 'tokens', 'disagreements'].map((x) => h('th', {}, x)))),
      tbody));
  reset = listKeys([], (tr) => tr.querySelector('a'));
  apply(q);
  done('run');
}

function sampleBox(s) {
  return h('div', { class: 'sample' + (s.chosen ? ' chosen' : ''), 'data-index': s.index },
    h('div', {}, h('b', {}, `sample ${s.index}`), s.chosen ? h('span', { class: 'badge' }, 'chosen') : null,
      ` answer: `, h('span', { class: 'answer' }, s.answer ?? '—'), ' ', verdict(s.correct),
      h('span', { class: 'muted' }, ` · ${s.tokens} tokens`, s.score !== undefined && s.score !== null ? ` · score ${fmt(s.score)}` : '')),
    h('ol', {}, s.steps.map((st) => {
      const li = h('li', { class: 'step', title: st.score === undefined || st.score === null ? 'not scored' : `score ${fmt(st.score)}` },
        st.score !== undefined && st.score !== null ? h('span', { class: 'sc' }, fmt(st.score, 2)) : null, st.text);
      paint(li, st.score);
      return li;
    })));
}

function labelsTable(l, k) {
  const truthName = l.truth_source === 'arith' ? 'exact truth' : l.truth_source === 'processbench' ? 'ProcessBench label' : 'no truth';
  return h('div', { class: 'result labelled', 'data-disagreements': l.disagreements },
    h('h2', {}, `Solution ${k + 1}`, h('span', { class: 'muted' }, ` · labelled by ${[...new Set(l.methods.map((m) => m.method))].join(', ')} · ${l.steps.length} step(s) · ${truthName}`,
      l.first_wrong !== undefined && l.first_wrong !== null ? ` · first wrong step ${l.first_wrong}` : '',
      ` · final answer `), verdict(l.answer_correct),
      l.disagreements ? h('span', { class: 'bad' }, ` · ${l.disagreements} disagreement(s)`) : ''),
    h('table', { class: 'labels' },
      h('thead', {}, h('tr', {}, h('th', {}, '#'), h('th', {}, 'step'), h('th', {}, truthName), l.methods.map((m) => h('th', {}, `${m.method} (sample ${m.sample})`)))),
      h('tbody', {}, l.steps.map((text, i) => h('tr', {},
        h('td', {}, `${i}`), h('td', { class: 'step-text' }, text),
        h('td', { class: l.truth[i] === true ? 'good' : l.truth[i] === false ? 'badl' : '' }, l.truth[i] === true ? 'good' : l.truth[i] === false ? 'bad' : '–'),
        l.methods.map((m) => {
          const c = m.labels[i];
          if (!c) return h('td', { class: 'muted' }, '–');
          return h('td', { class: (c.good ? 'good' : 'badl') + (c.disagrees ? ' disagree' : ''), title: c.reason || '' },
            `${c.good ? 'good' : 'bad'} ${fmt(c.value, 2)}`);
        }))))));
}

// ---- one problem ----
async function problemView(id, pid, q) {
  const page = await api(`/api/run/${id}/problem/${enc(pid)}`);
  const base = `#/run/${id}/p/`;
  setCrumbs(h('a', { href: `#/run/${id}` }, `run ${id} (${page.run.kind})`), h('a', { href: base + enc(pid) }, pid));
  const nav = h('div', { class: 'toolbar' },
    page.prev ? h('a', { href: base + enc(page.prev), id: 'prev' }, '← previous') : null,
    page.next ? h('a', { href: base + enc(page.next), id: 'next' }, 'next →') : null);
  const results = page.results.filter((r) => r.samples.length || r.tree || r.searched).map((r, k) => h('section', { class: 'result', 'data-variant': r.variant.name },
    h('h2', {}, r.variant.name, ' · answer ', h('span', { class: 'answer' }, r.variant.answer ?? '—'), ' ', verdict(r.variant.correct),
      h('span', { class: 'muted' }, ` · ${r.spent.policy_tokens + r.spent.judge_tokens} tokens (policy ${r.spent.policy_tokens}, judge ${r.spent.judge_tokens})`)),
    r.tree ? h('p', {}, h('a', { href: `${base}${enc(pid)}/tree/${k}`, class: 'tree-link' }, `search tree (${r.tree.nodes.length} nodes)`))
      : r.searched ? h('p', { class: 'muted' }, 'no tree stored (run made before strategies stored their trees)') : null,
    h('div', { class: 'samples' }, r.samples.map(sampleBox))));
  const dis = q.get('dis') === '1';
  // solutions labelled by several methods first (stable: else in stored order)
  const order = page.labelled.map((l, i) => [l, i]).sort((x, y) => y[0].methods.length - x[0].methods.length || x[1] - y[1]).map((x) => x[0]);
  const labelled = order.map((l, k) => ({ l, el: labelsTable(l, k) }));
  const holder = h('div', { id: 'labelled' });
  const apply = (nq) => holder.replaceChildren(...labelled.filter((x) => nq.get('dis') !== '1' || x.l.disagreements > 0).map((x) => x.el));
  show(
    h('h1', {}, `Problem ${page.id}`),
    nav,
    h('div', { class: 'question' }, page.question),
    h('p', {}, 'gold: ', h('b', { id: 'gold' }, page.gold ?? '—'),
      results.length ? h('span', { class: 'legend' }, ' · step colour: stored score, red 0 → green 1; grey: not scored') : null,
      page.labelled.length ? h('span', { class: 'legend' }, ' · label cells: good (green) / bad (red) with the method\'s value; outlined: disagrees with the truth') : null),
    results,
    page.labelled.length ? [h('h2', {}, `Step labels (${page.labelled.length} solutions)`), toolbar(q, [['dis', 'disagreements only']], apply), holder] : null);
  if (page.labelled.length) { apply(q); document.getElementById('count').textContent = `${page.labelled.length} solutions`; }
  void dis;
  keys = (e) => {
    if ((e.key === 'ArrowRight' || e.key === 'n') && page.next) { location.hash = base + enc(page.next); return true; }
    if ((e.key === 'ArrowLeft' || e.key === 'p') && page.prev) { location.hash = base + enc(page.prev); return true; }
    return false;
  };
  done('problem');
}

// ---- one search tree ----
async function treeView(id, pid, k, q) {
  const page = await api(`/api/run/${id}/problem/${enc(pid)}`);
  const shown = page.results.filter((r) => r.samples.length || r.tree || r.searched);
  const r = shown[k];
  if (!r || !r.tree) throw new Error(`problem ${pid} of run ${id} has no tree ${k}`);
  setCrumbs(h('a', { href: `#/run/${id}` }, `run ${id}`), h('a', { href: `#/run/${id}/p/${enc(pid)}` }, pid), `tree: ${r.variant.name}`);
  const kids = new Map();
  for (const n of r.tree.nodes) {
    if (n.parent === undefined || n.parent === null) continue;
    if (!kids.has(n.parent)) kids.set(n.parent, []);
    kids.get(n.parent).push(n);
  }
  const node = (n) => {
    const meta = [];
    if (n.score !== undefined && n.score !== null) meta.push(`score ${fmt(n.score)}`);
    if (n.visits !== undefined && n.visits !== null) meta.push(`visits ${n.visits}`);
    if (n.value !== undefined && n.value !== null) meta.push(`value ${fmt(n.value)}`);
    if (n.pruned) meta.push(`pruned: ${n.pruned}`);
    if (n.id === r.tree.selected) meta.push('◀ chosen answer');
    const root = n.parent === undefined || n.parent === null;
    const card = h('span', { class: 'card', title: `node ${n.id}` },
      h('span', { class: 'txt' }, root ? h('i', {}, 'question: ', page.question) : (n.step || h('i', {}, '(empty step)'))),
      meta.length ? h('span', { class: 'meta' }, meta.join(' · ')) : null);
    paint(card, n.pruned ? null : n.score);
    const children = kids.get(n.id) || [];
    const det = h('details', { open: true }, h('summary', {}, card), children.length ? h('ul', {}, children.map(node)) : null);
    return h('li', { class: 'node' + (n.pruned ? ' pruned' : '') + (n.chosen ? ' chosen' : '') + (n.id === r.tree.selected ? ' selected' : ''), 'data-id': n.id }, det);
  };
  const roots = r.tree.nodes.filter((n) => n.parent === undefined || n.parent === null);
  const zoomed = h('div', { class: 'tree-zoom' }, h('ul', { class: 'tree', id: 'tree' }, roots.map(node)));
  // zoom in steps of a quarter (Ctrl+wheel: a tenth), between a quarter and three times
  // zoom and folding are part of the permalink (?zoom=0.75&fold=pruned|all)
  const remember = (key, value) => {
    const nq = new URLSearchParams(route().q);
    if (value === null) nq.delete(key); else nq.set(key, value);
    setQuery(nq);
  };
  let scale = 1;
  const zoom = (d) => {
    scale = d === 0 ? 1 : Math.max(0.25, Math.min(3, Math.round((scale + d) * 100) / 100));
    zoomed.style.transform = `scale(${scale})`;
    remember('zoom', scale === 1 ? null : String(scale));
  };
  const fold = (open) => { zoomed.querySelectorAll('details').forEach((d) => { d.open = open; }); remember('fold', open ? null : 'all'); };
  const foldPruned = () => { zoomed.querySelectorAll('li.pruned > details').forEach((d) => { d.open = false; }); remember('fold', 'pruned'); };
  const pruned = r.tree.nodes.filter((n) => n.pruned).length;
  const chosen = r.tree.nodes.filter((n) => n.chosen).length;
  show(
    h('h1', {}, `${r.variant.name} on ${pid}`),
    h('p', {}, `${r.tree.nodes.length} nodes · ${pruned} pruned (greyed) · chosen path of ${chosen} nodes (blue border) · answer `,
      h('span', { class: 'answer' }, r.variant.answer ?? '—'), ' ', verdict(r.variant.correct), ' · gold ', page.gold ?? '—'),
    h('div', { class: 'toolbar' },
      h('button', { onclick: () => zoom(0.25), id: 'zoom-in' }, 'zoom +'), h('button', { onclick: () => zoom(-0.25), id: 'zoom-out' }, 'zoom −'),
      h('button', { onclick: () => zoom(0), id: 'zoom-reset' }, 'reset'), h('button', { onclick: () => fold(false), id: 'fold-all' }, 'fold all'),
      h('button', { onclick: () => fold(true), id: 'unfold-all' }, 'unfold all'), h('button', { onclick: foldPruned, id: 'fold-pruned' }, 'fold pruned'),
      h('button', { onclick: () => zoomed.classList.toggle('full'), id: 'full-text' }, 'full text'),
      h('span', { class: 'legend' }, h('span', { class: 'chip chosen' }, 'chosen path'),
        h('span', { class: 'chip pruned' }, 'pruned'), ' fill: score, red 0 → green 1')),
    h('div', { class: 'tree-wrap' }, zoomed));
  const z = Number(q.get('zoom'));
  if (z > 0 && z !== 1) zoom(z - 1);
  if (q.get('fold') === 'pruned') foldPruned();
  else if (q.get('fold') === 'all') fold(false);
  zoomed.parentElement.addEventListener('wheel', (e) => { if (e.ctrlKey) { e.preventDefault(); zoom(e.deltaY < 0 ? 0.1 : -0.1); } }, { passive: false });
  keys = (e) => {
    if (e.key === '+' || e.key === '=') { zoom(0.25); return true; }
    if (e.key === '-') { zoom(-0.25); return true; }
    return false;
  };
  done('tree');
}

// ---- two runs ----
async function compareView(a, b, q) {
  const page = await api(`/api/compare/${a}/${b}`);
  setCrumbs(h('a', { href: `#/run/${a}` }, `run ${a}`), ' vs ', h('a', { href: `#/run/${b}` }, `run ${b}`));
  // one result per problem (solve runs): its name once above the table, not per row
  const variants = new Set(page.rows.map((row) => row.variant));
  const oneVariant = variants.size === 1 ? [...variants][0] : null;
  const side = (s) => [h('td', { class: s.correct === true ? 'good' : s.correct === false ? 'badl' : '' }, s.answer ?? '—', ' ', verdict(s.correct)), h('td', {}, `${s.tokens}`)];
  const all = page.rows.map((row) => ({
    row,
    tr: h('tr', { class: 'cmp' + (row.differ ? ' differ' : ''), 'data-id': row.id },
      h('td', { class: 'nw' }, row.differ ? h('span', { class: 'bad' }, '≠ differ') : h('span', { class: 'muted' }, '= same')),
      h('td', { class: 'nw' }, h('a', { href: `#/run/${a}/p/${enc(row.id)}` }, row.id), ' ', h('a', { href: `#/run/${b}/p/${enc(row.id)}`, class: 'muted' }, '(b)')),
      h('td', { class: 'text' }, row.question), oneVariant === null ? h('td', {}, row.variant) : null, side(row.a), side(row.b)),
  }));
  const tbody = h('tbody', {});
  let reset = null;
  const apply = (nq) => {
    const shown = all.filter(({ row }) => (matches(row.id, nq.get('q')) || matches(row.question, nq.get('q'))) &&
      (nq.get('diff') !== '1' || row.differ) &&
      (nq.get('wrong') !== '1' || row.a.correct === false || row.b.correct === false));
    tbody.replaceChildren(...shown.map((x) => x.tr));
    document.getElementById('count').textContent = `${shown.length} of ${all.length} rows · ${all.filter((x) => x.row.differ).length} differ`;
    if (reset) reset(shown.map((x) => x.tr));
  };
  const acc = (r) => (r.judged ? `${r.correct}/${r.judged} right` : 'no verdicts');
  show(
    h('h1', {}, `Run ${a} vs run ${b}`),
    h('p', {}, h('b', {}, 'A: '), `run ${a} ${page.a.kind} · ${configLine(page.a)} · ${acc(page.a)}`, h('br', {}),
      h('b', {}, 'B: '), `run ${b} ${page.b.kind} · ${configLine(page.b)} · ${acc(page.b)}`, h('br', {}),
      h('span', { class: 'muted' }, oneVariant === null ? '' : `compared: ${oneVariant} · `, `problems only in A: ${page.only_a} · only in B: ${page.only_b}`)),
    toolbar(q, [['diff', 'differences only'], ['wrong', 'wrong in either']], apply),
    h('table', { id: 'compare' },
      h('thead', {}, h('tr', {}, ['', 'problem', 'question', oneVariant === null ? 'result' : null, 'A answer', 'A tokens', 'B answer', 'B tokens'].filter((x) => x !== null).map((x) => h('th', { class: 'nw' }, x)))),
      tbody));
  reset = listKeys([], (tr) => tr.querySelector('a'));
  apply(q);
  done('compare');
}

document.addEventListener('keydown', (e) => {
  const typing = e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement;
  if (e.key === 'Escape') { if (typing) e.target.blur(); else history.back(); return; }
  if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === '/') { const s = document.getElementById('search'); if (s) { e.preventDefault(); s.focus(); } return; }
  if (keys && keys(e)) e.preventDefault();
});
window.addEventListener('hashchange', render);
render();
