// Overview: the cluster at a glance: totals, utilization over the last
// hour, tasks by state, recent jobs.
import { h, fill, fmtBytes, fmtNum, usageBar, unavailable, colorOf, byStateOrder } from '../lib.js';
import { Chart } from '../charts.js';
import { SeriesFeed, pct } from './feed.js';
import { taskBreakdown, jobList, jobsTable } from './common.js';

export function overview(main, page) {
  const feed = new SeriesFeed(page.signal);
  const stats = h('div', { class: 'grid stats' });
  const charts = h('div', { class: 'grid two' });
  const taskCard = h('div', { class: 'card' }, h('h2', null, 'Tasks by state now'));
  const taskBody = h('div');
  taskCard.append(taskBody);
  const jobsBody = h('div', { class: 'scroll-x' });
  const jobsCard = h('div', { class: 'card flush' }, h('h2', null, 'Recent jobs'), jobsBody);
  main.append(
    h('div', { class: 'page-head' }, h('h1', null, 'Overview'), h('span', { class: 'sub', id: 'ov-sub' })),
    stats, charts, h('div', { class: 'grid two' }, taskCard, jobsCard));

  const util = new Chart(charts, { title: 'Utilization', yMax: 100, yFmt: (v) => `${Math.round(v)}%` });
  const taskChart = new Chart(charts, { title: 'Tasks by state', kind: 'int', yFmt: (v) => fmtNum(Math.round(v)), empty: 'No task events on this head' });
  page.onStop(() => { util.destroy(); taskChart.destroy(); });

  page.every(2000, async () => {
    await feed.poll();
    const s = feed.last();
    const [t0, t1] = feed.range();
    const gap = feed.gap();
    util.opts.gap = taskChart.opts.gap = gap;
    util.update([
      { name: 'CPU', color: '#2f6fec', points: feed.points((x) => pct(x.cpu_used, x.cpu_total)) },
      { name: 'GPU', color: '#8b5cf6', points: feed.samples.some((x) => x.gpu_total > 0) ? feed.points((x) => pct(x.gpu_used, x.gpu_total)) : [] },
      { name: 'Memory', color: '#e3a008', points: feed.points((x) => pct(x.mem_used, x.mem_total)) },
      { name: 'Object store', color: '#14b8a6', points: feed.points((x) => pct(x.store_used, x.store_capacity)) },
    ], t0, t1);
    const states = feed.taskStates().sort(byStateOrder);
    taskChart.update(states.map((st, i) => ({ name: st, color: colorOf(st, i), points: feed.points((x) => (x.tasks && x.tasks[st]) || 0) })), t0, t1);
    if (!s) {
      fill(stats, h('div', { class: 'card muted' }, 'Waiting for the first sample…'));
      return;
    }
    fill(stats,
      statCard('Nodes', fmtNum(s.nodes), 'alive'),
      statCard('CPU', `${fmtNum(s.cpu_used)} / ${fmtNum(s.cpu_total)}`, 'logical CPUs in use', usageBar(s.cpu_used, s.cpu_total)),
      statCard('GPU', s.gpu_total > 0 ? `${fmtNum(s.gpu_used)} / ${fmtNum(s.gpu_total)}` : 'none', s.gpu_total > 0 ? 'GPUs in use' : 'no GPUs in the cluster', s.gpu_total > 0 ? usageBar(s.gpu_used, s.gpu_total) : null),
      statCard('Memory', fmtBytes(s.mem_used), `of ${fmtBytes(s.mem_total)} on the hosts`, usageBar(s.mem_used, s.mem_total, fmtBytes)),
      statCard('Object store', fmtBytes(s.store_used), `${fmtNum(s.store_objects)} objects, ${fmtBytes(s.store_capacity)} capacity`, usageBar(s.store_used, s.store_capacity, fmtBytes)),
      statCard('Tasks running', s.tasks ? fmtNum(s.tasks.RUNNING || 0) : '–', s.tasks ? `${fmtNum(Object.values(s.tasks).reduce((a, b) => a + b, 0))} tasks in all` : 'no task events'),
    );
    document.getElementById('ov-sub').textContent = `updated ${new Date(s.t).toLocaleTimeString()}${s.partial ? ' · some nodes did not report' : ''}`;
    fill(taskBody, taskBreakdown(s.tasks));
  });

  page.every(2000, async () => {
    try {
      const list = await jobList(page.signal);
      list.sort((a, b) => (b.start_time || 0) - (a.start_time || 0));
      fill(jobsBody, list.length ? jobsTable(list.slice(0, 8)) : h('div', { class: 'unavailable' }, 'No jobs yet.'));
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      fill(jobsBody, unavailable(e));
    }
  });
}

function statCard(label, value, detail, extra) {
  return h('div', { class: 'card stat' }, h('div', { class: 'label' }, label), h('div', { class: 'value' }, value), h('div', { class: 'detail' }, detail), extra);
}
