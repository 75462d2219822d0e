// Tasks: every task the head keeps (up to fetchLimit), fetched once,
// filtered in the page as the user types, shown in a virtual table so
// that 100,000 rows scroll smoothly.
import { h, fill, get, listOf, badge, unavailable, monoShort, fmtTime, span, debounce, byStateOrder } from '../lib.js';
import { VTable } from '../vtable.js';

// fetchLimit is how many tasks the page asks for.
export const fetchLimit = 100000;
// autoRefreshBelow: lists shorter than this refresh every 2 s on their
// own; longer ones when the user asks.
const autoRefreshBelow = 5000;

const fields = ['task_id', 'name', 'func_or_class_name', 'state', 'type', 'job_id', 'node_id', 'worker_id', 'actor_id', 'error_type'];

export function tasks(main, page) {
  main.className = 'fill';
  const sub = h('span', { class: 'sub' });
  const search = h('input', { type: 'search', class: 'grow', id: 'task-search', placeholder: 'Search name, function, id, job, node, worker, error…', 'aria-label': 'search tasks', value: page.query.get('q') || '' });
  const state = h('select', { id: 'task-state', 'aria-label': 'state' }, h('option', { value: '' }, 'All states'));
  const refresh = h('button', { class: 'secondary', type: 'button' }, 'Refresh');
  const count = h('span', { class: 'count', id: 'task-count' });
  const note = h('div', { hidden: true });
  const err = h('div', { hidden: true });
  const wrap = h('div', { class: 'vt-wrap' });
  main.append(h('div', { class: 'page-head' }, h('h1', null, 'Tasks'), sub), h('div', { class: 'toolbar' }, search, state, refresh, count), note, err, wrap);
  const table = new VTable(wrap, [
    { key: 'task_id', title: 'Task id', width: '120px', render: (t) => monoShort(t.task_id), cls: 'mono' },
    { key: 'name', title: 'Name', width: 'minmax(110px, 1.6fr)', cls: 'name' },
    { key: 'state', title: 'State', width: '170px', render: (t) => badge(t.state), sort: (t) => t.state },
    { key: 'func_or_class_name', title: 'Function', width: 'minmax(100px, 1.4fr)' },
    { key: 'type', title: 'Type', width: '160px' },
    { key: 'job_id', title: 'Job', width: '112px', render: (t) => monoShort(t.job_id) },
    { key: 'node_id', title: 'Node', width: '112px', render: (t) => monoShort(t.node_id) },
    { key: 'worker_id', title: 'Worker', width: '112px', render: (t) => monoShort(t.worker_id) },
    { key: 'start_time_ms', title: 'Started', width: '168px', render: (t) => fmtTime(t.start_time_ms) },
    { key: 'duration', title: 'Duration', width: '90px', render: (t) => (t.start_time_ms ? span(t.start_time_ms, t.end_time_ms) : '–'), sort: (t) => (t.start_time_ms ? (t.end_time_ms || Date.now()) - t.start_time_ms : undefined) },
    { key: 'error_type', title: 'Error', width: 'minmax(80px, 1fr)' },
  ], { empty: 'No tasks match.', rowHeight: 26 });
  page.onStop(() => table.destroy());

  let all = [];
  let total = 0;
  const apply = () => {
    const q = search.value.trim().toLowerCase();
    const st = state.value;
    let rows = all;
    if (st) rows = rows.filter((t) => t.state === st);
    if (q) rows = rows.filter((t) => t._s.includes(q));
    table.setRows(rows);
    count.textContent = rows.length === all.length ? `${all.length.toLocaleString('en-US')} tasks` : `${rows.length.toLocaleString('en-US')} of ${all.length.toLocaleString('en-US')} tasks`;
    const qs = {};
    if (q) qs.q = search.value.trim();
    if (st) qs.state = st;
    page.setQuery(qs);
  };
  search.addEventListener('input', debounce(apply, 200));
  state.addEventListener('change', apply);

  let loading = false;
  const load = async () => {
    if (loading) return;
    loading = true;
    refresh.disabled = true;
    const t0 = performance.now();
    try {
      const body = await get(`/api/v0/tasks?limit=${fetchLimit}&detail=true`, page.signal);
      const l = listOf(body);
      for (const t of l.rows) t._s = fields.map((f) => t[f] ?? '').join(' ').toLowerCase();
      all = l.rows;
      total = l.matched;
      const states = [...new Set(all.map((t) => t.state))].sort(byStateOrder);
      const want = state.value || page.query.get('state') || '';
      fill(state, h('option', { value: '' }, 'All states'), states.map((s) => h('option', { value: s }, s)));
      state.value = states.includes(want) ? want : '';
      const msgs = [];
      if (total > all.length) msgs.push(`Showing ${all.length.toLocaleString('en-US')} of ${total.toLocaleString('en-US')} tasks.`);
      if (l.warning) msgs.push(l.warning);
      note.hidden = !msgs.length;
      fill(note, h('div', { class: 'notice' }, msgs.join(' ')));
      err.hidden = true;
      wrap.hidden = false;
      apply();
      sub.textContent = `loaded in ${Math.round(performance.now() - t0)} ms · ${new Date().toLocaleTimeString()}`;
    } finally {
      loading = false;
      refresh.disabled = false;
    }
  };
  refresh.addEventListener('click', () => load().catch(showErr));
  const showErr = (e) => {
    if (e.name === 'AbortError') return;
    fill(err, h('div', { class: 'card' }, unavailable(e)));
    err.hidden = false;
    wrap.hidden = true;
  };
  let first = true;
  page.every(2000, async () => {
    if (!first && all.length >= autoRefreshBelow) return;
    first = false;
    try { await load(); } catch (e) { showErr(e); if (e.name === 'AbortError') throw e; }
  });
}
