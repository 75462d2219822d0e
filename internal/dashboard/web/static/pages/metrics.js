// Metrics: the head's time series over the last hour: tasks by state,
// resources, memory, object store, nodes.
import { h, fmtBytes, fmtNum, colorOf, byStateOrder } from '../lib.js';
import { Chart } from '../charts.js';
import { SeriesFeed } from './feed.js';

export function metrics(main, page) {
  const feed = new SeriesFeed(page.signal);
  const sub = h('span', { class: 'sub' });
  const grid = h('div', { class: 'grid two' });
  main.append(h('div', { class: 'page-head' }, h('h1', null, 'Metrics'), sub), grid,
    h('p', { class: 'muted' }, 'Sampled by the head. Prometheus metrics for every node are at ', h('a', { href: '/metrics', target: '_blank' }, '/metrics'), '.'));
  const int = (v) => fmtNum(Math.round(v));
  const charts = {
    tasks: new Chart(grid, { title: 'Tasks by state', yFmt: int, kind: 'int', empty: 'No task events on this head' }),
    cpu: new Chart(grid, { title: 'CPUs', yFmt: (v) => fmtNum(v), area: true, kind: 'int' }),
    gpu: new Chart(grid, { title: 'GPUs', yFmt: (v) => fmtNum(v), area: true, kind: 'int', empty: 'No GPUs in the cluster' }),
    mem: new Chart(grid, { title: 'Host memory', yFmt: fmtBytes, area: true, kind: 'bytes' }),
    store: new Chart(grid, { title: 'Object store', yFmt: fmtBytes, area: true, kind: 'bytes' }),
    nodes: new Chart(grid, { title: 'Alive nodes', yFmt: int, kind: 'int' }),
  };
  page.onStop(() => Object.values(charts).forEach((c) => c.destroy()));
  page.every(2000, async () => {
    await feed.poll();
    const [t0, t1] = feed.range();
    for (const c of Object.values(charts)) c.opts.gap = feed.gap();
    const states = feed.taskStates().sort(byStateOrder);
    charts.tasks.update(states.map((st, i) => ({ name: st, color: colorOf(st, i), points: feed.points((x) => (x.tasks && x.tasks[st]) || 0) })), t0, t1);
    charts.cpu.update([
      { name: 'used', color: '#2f6fec', points: feed.points((x) => x.cpu_used) },
      { name: 'total', color: '#8a94a6', points: feed.points((x) => x.cpu_total) }], t0, t1);
    const gpus = feed.samples.some((x) => x.gpu_total > 0);
    charts.gpu.update(gpus ? [
      { name: 'used', color: '#8b5cf6', points: feed.points((x) => x.gpu_used) },
      { name: 'total', color: '#8a94a6', points: feed.points((x) => x.gpu_total) }] : [], t0, t1);
    charts.mem.update([
      { name: 'used', color: '#e3a008', points: feed.points((x) => x.mem_used) },
      { name: 'total', color: '#8a94a6', points: feed.points((x) => x.mem_total) }], t0, t1);
    charts.store.update([
      { name: 'used', color: '#14b8a6', points: feed.points((x) => x.store_used) },
      { name: 'capacity', color: '#8a94a6', points: feed.points((x) => x.store_capacity) }], t0, t1);
    charts.nodes.update([{ name: 'alive', color: '#1f9d55', points: feed.points((x) => x.nodes) }], t0, t1);
    sub.textContent = `${feed.samples.length} samples every ${feed.interval / 1000} s, kept ${Math.round(feed.retention / 60000)} min`;
  });
}
