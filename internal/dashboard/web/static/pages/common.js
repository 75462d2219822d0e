// Pieces more than one page draws.
import { h, get, listOf, fmtNum, fmtTime, span, badge, colorOf, byStateOrder, monoShort } from '../lib.js';

// jobLink links a job to its page, by submission id (else job id).
export function jobLink(j) {
  const id = j.submission_id || j.job_id;
  if (!id) return '–';
  return h('a', { href: `/jobs/${encodeURIComponent(id)}`, class: 'mono' }, id);
}

// taskBreakdown is a stacked bar and legend of counts by state.
export function taskBreakdown(counts) {
  if (!counts) return h('div', { class: 'unavailable' }, 'Not available: this head keeps no task events.');
  const states = Object.keys(counts).filter((k) => counts[k] > 0).sort(byStateOrder);
  const total = states.reduce((a, k) => a + counts[k], 0);
  if (!total) return h('div', { class: 'muted' }, 'No tasks.');
  const bar = h('div', { class: 'stack' });
  const legend = h('div', { class: 'legend' });
  states.forEach((st, i) => {
    const seg = h('span', { title: `${st}: ${counts[st]}` });
    seg.style.width = `${(100 * counts[st]) / total}%`;
    seg.style.background = colorOf(st, i);
    bar.append(seg);
    const sw = h('span', { class: 'sw' });
    sw.style.background = colorOf(st, i);
    legend.append(h('span', { 'data-state': st }, sw, `${st} `, h('b', null, fmtNum(counts[st]))));
  });
  return h('div', null, bar, legend);
}

// jobList is the jobs API's list (GET /api/jobs/), else the state API's.
export async function jobList(signal) {
  try {
    const body = await get('/api/jobs/', signal);
    return Array.isArray(body) ? body : listOf(body).rows;
  } catch (e) {
    if (!e.unavailable) throw e;
    return listOf(await get('/api/v0/jobs?limit=1000&detail=true', signal)).rows;
  }
}

export function jobsTable(list) {
  return h('table', { class: 'data' },
    h('thead', null, h('tr', null, ['Submission', 'Job', 'Status', 'Entrypoint', 'Started', 'Duration'].map((t) => h('th', null, t)))),
    h('tbody', null, list.map((j) => h('tr', null,
      h('td', null, jobLink(j)),
      h('td', null, monoShort(j.job_id)),
      h('td', null, badge(j.status)),
      h('td', { class: 'mono', title: j.entrypoint || '' }, j.entrypoint || '–'),
      h('td', null, fmtTime(j.start_time)),
      h('td', null, span(j.start_time, j.end_time))))));
}
