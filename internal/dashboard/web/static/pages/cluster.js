// Cluster: every node with its resources, memory and object store, from
// the head's latest sampling round.
import { h, fill, get, fmtBytes, fmtNum, fmtTime, badge, usageBar, unavailable } from '../lib.js';

export function cluster(main, page) {
  const sub = h('span', { class: 'sub' });
  const body = h('div', { class: 'card flush scroll-x' });
  main.append(h('div', { class: 'page-head' }, h('h1', null, 'Cluster'), sub), body);
  page.every(2000, async () => {
    let r;
    try {
      r = await get('/api/dashboard/nodes', page.signal);
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      fill(body, unavailable(e));
      return;
    }
    const nodes = r.nodes || [];
    const alive = nodes.filter((n) => n.state === 'ALIVE').length;
    sub.textContent = `${alive} alive, ${nodes.length - alive} dead${r.t ? ` · updated ${new Date(r.t).toLocaleTimeString()}` : ''}`;
    if (!nodes.length) {
      fill(body, h('div', { class: 'unavailable' }, 'No nodes yet.'));
      return;
    }
    fill(body, h('table', { class: 'data', id: 'nodes' },
      h('thead', null, h('tr', null, ['Node id', 'State', 'Address', 'Host', 'CPU', 'GPU', 'Memory', 'Object store', 'Workers', 'Started'].map((t) => h('th', null, t)))),
      h('tbody', null, nodes.map((n) => {
        const tot = n.resources_total || {}, av = n.resources_available || {};
        const cpuUsed = Math.max(0, (tot.CPU || 0) - (av.CPU || 0));
        const gpuUsed = Math.max(0, (tot.GPU || 0) - (av.GPU || 0));
        const dead = n.state !== 'ALIVE';
        return h('tr', { 'data-node': n.node_id },
          h('td', null, h('a', { class: 'mono', href: `/logs?node_id=${n.node_id}`, title: 'logs of this node' }, n.node_id), n.is_head_node ? h('span', { class: 'badge run', title: 'the head node' }, ' HEAD') : null),
          h('td', null, badge(n.state)),
          h('td', { class: 'mono' }, n.address),
          h('td', null, n.hostname || '–'),
          h('td', null, dead ? '–' : usageBar(cpuUsed, tot.CPU || 0)),
          h('td', null, dead ? '–' : tot.GPU ? usageBar(gpuUsed, tot.GPU) : h('span', { class: 'muted' }, 'none')),
          h('td', { title: n.stats_error || '' }, dead ? '–' : n.mem_total ? usageBar(n.mem_used, n.mem_total, fmtBytes) : h('span', { class: 'muted' }, n.stats_error ? 'no answer' : '–')),
          h('td', { title: n.stats_error || '' }, dead ? '–' : usageBar(n.store_used || 0, n.store_capacity || 0, fmtBytes)),
          h('td', { class: 'num' }, dead ? '–' : fmtNum(n.num_workers || 0)),
          h('td', null, fmtTime(n.start_time_ms)));
      }))));
  });
}
