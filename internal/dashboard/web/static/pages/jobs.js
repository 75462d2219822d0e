// Jobs: the list, and one job's detail with its live log tail and its
// tasks by state.
import { h, fill, get, send, stream, fmtTime, span, badge, unavailable } from '../lib.js';
import { jobList, jobsTable, taskBreakdown } from './common.js';

export function jobs(main, page) {
  const sub = h('span', { class: 'sub' });
  const body = h('div', { class: 'card flush scroll-x' });
  main.append(h('div', { class: 'page-head' }, h('h1', null, 'Jobs'), sub), body);
  page.every(2000, async () => {
    try {
      const list = await jobList(page.signal);
      list.sort((a, b) => (b.start_time || 0) - (a.start_time || 0));
      sub.textContent = `${list.length} job${list.length === 1 ? '' : 's'}`;
      fill(body, list.length ? jobsTable(list) : h('div', { class: 'unavailable' }, 'No jobs yet. Submit one with raygo job submit.'));
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      fill(body, unavailable(e));
    }
  });
}

// logLimit bounds the log text a job page keeps (the newest part).
const logLimit = 1 << 20;

export function job(main, page) {
  const id = page.params[0];
  const q = encodeURIComponent(id);
  const status = h('span');
  const actions = h('span');
  const info = h('div', { class: 'card' }, h('h2', null, 'Job'), h('div', { class: 'muted' }, 'Loading…'));
  const meta = h('div', { class: 'card' }, h('h2', null, 'Metadata'));
  const taskBody = h('div', { class: 'muted' }, 'Loading…');
  const tasksCard = h('div', { class: 'card' }, h('h2', null, 'Tasks by state'), taskBody);
  const logState = h('span', { class: 'muted' });
  const log = h('pre', { class: 'log short', id: 'job-log' });
  main.append(
    h('div', { class: 'page-head' }, h('h1', null, h('a', { href: '/jobs' }, 'Jobs'), ' / ', h('span', { class: 'mono' }, id)), status, h('span', { class: 'spacer' }), actions),
    h('div', { class: 'grid two' }, info, h('div', null, tasksCard, h('div', { class: 'grid' }), meta)),
    h('div', { class: 'card flush' }, h('div', { class: 'chart-head' }, h('h2', { class: 'pad' }, 'Log'), logState), log));

  let jobID = '';
  let done = false;
  page.every(2000, async () => {
    if (done) return;
    let j;
    try {
      j = await get(`/api/jobs/${q}`, page.signal);
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      fill(info, h('h2', null, 'Job'), unavailable(e));
      return;
    }
    jobID = j.job_id || jobID;
    fill(status, badge(j.status));
    const active = j.status === 'PENDING' || j.status === 'RUNNING';
    fill(actions, active ? h('button', { class: 'danger', id: 'job-stop', onclick: (e) => stopJob(e.target, q) }, 'Stop job') : null);
    fill(info, h('h2', null, 'Job'), h('table', { class: 'kv' }, h('tbody', null,
      row('Submission id', h('span', { class: 'mono' }, j.submission_id || '–')),
      row('Job id', h('span', { class: 'mono' }, j.job_id || '–')),
      row('Status', badge(j.status)),
      row('Message', j.message || '–'),
      row('Entrypoint', h('code', null, j.entrypoint || '–')),
      row('Started', fmtTime(j.start_time)),
      row('Ended', fmtTime(j.end_time)),
      row('Duration', span(j.start_time, j.end_time)),
      j.submitted_by ? row('Submitted by', j.submitted_by) : null,
      j.driver_node_id ? row('Driver node', h('span', { class: 'mono' }, j.driver_node_id)) : null,
      j.driver_exit_code !== undefined && j.driver_exit_code !== null ? row('Exit code', String(j.driver_exit_code)) : null,
      j.runtime_env && Object.keys(j.runtime_env).length ? row('Runtime env', h('code', null, JSON.stringify(j.runtime_env))) : null)));
    const md = j.metadata || {};
    const keys = Object.keys(md).sort();
    fill(meta, h('h2', null, 'Metadata'), keys.length ? h('table', { class: 'kv' }, h('tbody', null, keys.map((k) => row(k, md[k])))) : h('div', { class: 'muted' }, 'None.'));
    if (!active && j.end_time) done = true; // a finished job no longer changes
  });

  page.every(5000, async () => {
    if (!jobID) {
      fill(taskBody, h('div', { class: 'muted' }, done ? 'No driver registered: the job ran no tasks.' : 'No driver has connected to this job (yet).'));
      return;
    }
    try {
      const f = encodeURIComponent(`job_id=${jobID}`);
      const body = await get(`/api/v0/tasks/summarize?filter=${f}`, page.signal);
      const r = (body.data && body.data.result) || body;
      const counts = {};
      for (const per of Object.values((r.result && r.result.node_id_to_summary) || r.node_id_to_summary || {})) {
        for (const fn of Object.values(per.summary || {})) {
          for (const [st, n] of Object.entries(fn.state_counts || {})) counts[st] = (counts[st] || 0) + n;
        }
      }
      fill(taskBody, taskBreakdown(counts));
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      fill(taskBody, unavailable(e));
    }
  });

  // The log: the jobs API's streaming tail, else its whole log polled.
  let text = '';
  const show = (more) => {
    const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
    text += more;
    if (text.length > logLimit) text = text.slice(text.length - logLimit);
    log.textContent = text;
    if (stick) log.scrollTop = log.scrollHeight;
  };
  (async () => {
    try {
      logState.textContent = 'following';
      await stream(`/api/jobs/${q}/logs/tail`, page.signal, show);
      logState.textContent = 'ended';
    } catch (e) {
      if (page.signal.aborted) return;
      logState.textContent = 'polling';
      page.every(2000, async () => {
        try {
          const r = await get(`/api/jobs/${q}/logs`, page.signal);
          text = '';
          log.textContent = '';
          show(r.logs || '');
        } catch (e2) {
          if (e2.name === 'AbortError') throw e2;
          logState.textContent = e2.unavailable ? 'not available' : e2.message;
        }
      });
    }
  })();
}

function row(k, v) { return h('tr', null, h('td', null, k), h('td', null, v)); }

async function stopJob(btn, q) {
  btn.disabled = true;
  try {
    await send('POST', `/api/jobs/${q}/stop`);
    btn.textContent = 'Stopping…';
  } catch (e) {
    btn.disabled = false;
    btn.textContent = `Stop failed: ${e.message}`;
  }
}
