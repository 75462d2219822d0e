// Actors: the state API's actors, live.
import { h, fill, get, listOf, badge, unavailable, mono, monoShort } from '../lib.js';
import { VTable } from '../vtable.js';

export function actors(main, page) {
  main.className = 'fill';
  const sub = h('span', { class: 'sub' });
  const search = h('input', { type: 'search', class: 'grow', placeholder: 'Filter by class, name, id, state, node, pid…', 'aria-label': 'filter actors', value: page.query.get('q') || '' });
  const note = h('div', { hidden: true });
  const wrap = h('div', { class: 'vt-wrap' });
  const err = h('div', { hidden: true });
  main.append(h('div', { class: 'page-head' }, h('h1', null, 'Actors'), sub), h('div', { class: 'toolbar' }, search), note, err, wrap);
  const table = new VTable(wrap, [
    { key: 'actor_id', title: 'Actor id', width: 'minmax(120px, 2.2fr)', render: (a) => mono(a.actor_id), cls: 'mono' },
    { key: 'class_name', title: 'Class', width: 'minmax(100px, 1.6fr)' },
    { key: 'name', title: 'Name', width: 'minmax(80px, 1.2fr)' },
    { key: 'state', title: 'State', width: '130px', render: (a) => badge(a.state) },
    { key: 'job_id', title: 'Job', width: 'minmax(80px, 1fr)', render: (a) => monoShort(a.job_id) },
    { key: 'node_id', title: 'Node', width: 'minmax(100px, 1.6fr)', render: (a) => monoShort(a.node_id) },
    { key: 'pid', title: 'PID', width: '80px', cls: 'num' },
    { key: 'ray_namespace', title: 'Namespace', width: 'minmax(80px, 1fr)' },
  ], { empty: 'No actors.', sortKey: 'state' });
  page.onStop(() => table.destroy());
  let all = [];
  const apply = () => {
    const q = search.value.trim().toLowerCase();
    const rows = q ? all.filter((a) => [a.actor_id, a.class_name, a.name, a.state, a.job_id, a.node_id, String(a.pid ?? ''), a.ray_namespace].some((v) => v && String(v).toLowerCase().includes(q))) : all;
    table.setRows(rows);
    sub.textContent = q ? `${rows.length} of ${all.length} actors` : `${all.length} actors`;
  };
  search.addEventListener('input', apply);
  page.every(2000, async () => {
    try {
      const { rows, matched: total, warning } = listOf(await get('/api/v0/actors?limit=10000&detail=true', page.signal));
      all = rows;
      err.hidden = true;
      wrap.hidden = false;
      note.hidden = !(warning || total > rows.length);
      fill(note, h('div', { class: 'notice' }, total > rows.length ? `Showing ${rows.length} of ${total} actors. ` : '', warning || ''));
      apply();
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      fill(err, h('div', { class: 'card' }, unavailable(e)));
      err.hidden = false;
      wrap.hidden = true;
    }
  });
}
