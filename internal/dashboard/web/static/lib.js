// Shared helpers: building DOM without innerHTML, talking to the API,
// formatting.

// h builds an element: h('a', {href: '/x', class: 'y'}, 'text', child…).
// Attributes starting with "on" become listeners; text is always text.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// clear empties el and appends children.
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// HTTPError is a failed API call. unavailable: the endpoint is not served
// by this head (a feature that is not there).
export class HTTPError extends Error {
  constructor(status, message, unavailable) {
    super(message);
    this.status = status;
    this.unavailable = unavailable;
  }
}

function toLogin() {
  const next = location.pathname + location.search;
  location.assign('/login' + (next === '/' ? '' : '?next=' + encodeURIComponent(next)));
}

async function check(r, url) {
  if (r.ok) return r;
  if (r.status === 401) {
    toLogin();
    throw new HTTPError(401, 'signed out');
  }
  const text = await r.text().catch(() => '');
  let msg = '';
  try { msg = JSON.parse(text).error.message; } catch { /* not the API's JSON error */ }
  // A route nobody registered answers net/http's plain 404 (or 405):
  // the feature behind it is not on this head.
  const missing = !msg && (r.status === 404 || r.status === 405 || r.status === 501);
  throw new HTTPError(r.status, msg || (missing ? `${url.split('?')[0]} is not available on this cluster` : `HTTP ${r.status}`), missing);
}

// get fetches JSON.
export async function get(url, signal) {
  const r = await fetch(url, { signal, credentials: 'same-origin', headers: { Accept: 'application/json' } });
  await check(r, url);
  return r.json();
}

// stream fetches url and calls onText with each decoded chunk until the
// response ends or signal aborts.
export async function stream(url, signal, onText) {
  const r = await fetch(url, { signal, credentials: 'same-origin' });
  await check(r, url);
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    onText(dec.decode(value, { stream: true }));
  }
}

// csrf is the session's CSRF token: kept in sessionStorage at login,
// asked again of /api/whoami after a reload in a new tab.
export async function csrf() {
  let t = sessionStorage.getItem('raygo.csrf');
  if (!t) {
    const w = await get('/api/whoami');
    t = w.csrf || '';
    sessionStorage.setItem('raygo.csrf', t);
    sessionStorage.setItem('raygo.who', `${w.name} (${w.scope})`);
  }
  return t;
}

// send makes a mutation (POST, DELETE…) with the CSRF header.
export async function send(method, url, body) {
  const headers = { Accept: 'application/json', 'X-Raygo-CSRF': await csrf() };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(url, { method, credentials: 'same-origin', headers, body: body === undefined ? undefined : JSON.stringify(body) });
  await check(r, url);
  return r.json().catch(() => ({}));
}

// listOf reads a state API list in either of Ray's shapes:
// {"result": […], "total": N} or {"data": {"result": {"result": […], "total": N}}}.
export function listOf(body) {
  if (Array.isArray(body)) return { rows: body, total: body.length, matched: body.length };
  let b = body;
  if (b && b.data && b.data.result !== undefined) b = b.data.result;
  if (Array.isArray(b)) return { rows: b, total: b.length, matched: b.length };
  const rows = Array.isArray(b && b.result) ? b.result : [];
  const total = typeof b.total === 'number' ? b.total : rows.length;
  // matched: rows that passed the filters, of which rows is the first part.
  const matched = typeof b.num_filtered === 'number' ? b.num_filtered : total;
  const warning = [b.partial_failure_warning, ...(b.warnings || [])].filter(Boolean).join(' ');
  return { rows, total, matched, warning };
}

// ---------------------------------------------------------------- formatting

export function fmtBytes(n) {
  if (n === undefined || n === null || isNaN(n)) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  let v = Math.abs(n);
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return `${(n < 0 ? -v : v).toFixed(v >= 100 || i === 0 ? 0 : 1)} ${u[i]}`;
}

export function fmtNum(n, digits = 1) {
  if (n === undefined || n === null || isNaN(n)) return '–';
  if (Number.isInteger(n)) return n.toLocaleString('en-US');
  return n.toFixed(digits);
}

const pad = (n) => String(n).padStart(2, '0');

// fmtTime is a Unix time (ms; s when small) as local "YYYY-MM-DD HH:MM:SS".
export function fmtTime(ms) {
  if (!ms) return '–';
  if (ms < 1e11) ms *= 1000;
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtClock(ms) {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function fmtDuration(ms) {
  if (ms === undefined || ms === null || isNaN(ms) || ms < 0) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${Math.floor(s % 60)}s`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return `${hr}h ${m % 60}m`;
  return `${Math.floor(hr / 24)}d ${hr % 24}h`;
}

// span is a duration from two Unix times (ms), the second defaulting to now.
export function span(start, end) {
  if (!start) return '–';
  return fmtDuration((end || Date.now()) - start);
}

// ---------------------------------------------------------------- states

const stateClass = {
  ALIVE: 'ok', FINISHED: 'ok', SUCCEEDED: 'ok', CREATED: 'ok',
  RUNNING: 'run', SUBMITTED_TO_WORKER: 'run', RUNNING_IN_RAY_GET: 'run', RUNNING_IN_RAY_WAIT: 'run',
  PENDING: 'warn', PENDING_ARGS_AVAIL: 'warn', PENDING_NODE_ASSIGNMENT: 'warn', PENDING_CREATION: 'warn',
  DEPENDENCIES_UNREADY: 'warn', RESTARTING: 'warn', RESCHEDULING: 'warn', STARTING: 'warn',
  FAILED: 'bad', DEAD: 'bad', STOPPED: 'idle', REMOVED: 'idle', IDLE: 'idle',
  // Serve: applications, deployments, replicas and proxies.
  READY: 'ok', HEALTHY: 'ok', DEPLOYING: 'warn', UNHEALTHY: 'bad', BACKOFF: 'bad', DRAINING: 'idle', DELETING: 'idle',
};

export function badge(state) {
  const s = String(state || 'UNKNOWN');
  return h('span', { class: `badge ${stateClass[s] || ''}` }, s);
}

// stateColors are the charts' colours of task states.
export const stateColors = {
  PENDING_ARGS_AVAIL: '#e3a008', PENDING_NODE_ASSIGNMENT: '#f59e0b', SUBMITTED_TO_WORKER: '#7c9cf5',
  RUNNING: '#2f6fec', FINISHED: '#1f9d55', FAILED: '#d1383d', NIL: '#8a94a6',
};
const fallback = ['#8b5cf6', '#0ea5e9', '#14b8a6', '#a3a3a3', '#ec4899'];
export function colorOf(state, i) { return stateColors[state] || fallback[i % fallback.length]; }

// stateOrder sorts task states as they happen.
export const stateOrder = ['PENDING_ARGS_AVAIL', 'PENDING_NODE_ASSIGNMENT', 'SUBMITTED_TO_WORKER', 'RUNNING', 'FINISHED', 'FAILED'];
export function byStateOrder(a, b) {
  const ia = stateOrder.indexOf(a), ib = stateOrder.indexOf(b);
  return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || (a < b ? -1 : a > b ? 1 : 0);
}

// usageBar is a bar of used out of total with a text such as "3 / 8".
export function usageBar(used, total, fmt = fmtNum) {
  const frac = total > 0 ? Math.min(1, Math.max(0, used / total)) : 0;
  const f = h('div', { class: `fill${frac > 0.95 ? ' full' : frac > 0.8 ? ' hot' : ''}` });
  f.style.width = `${(frac * 100).toFixed(1)}%`;
  return h('div', { class: 'bar' }, h('div', { class: 'track' }, f), h('span', { class: 'txt' }, total > 0 ? `${fmt(used)} / ${fmt(total)}` : '–'));
}

// unavailable is the placeholder for data this cluster does not serve.
export function unavailable(err) {
  return h('div', { class: 'unavailable' }, err && err.unavailable ? `Not available: ${err.message}.` : `Could not load: ${err ? err.message : 'unknown error'}`);
}

// debounce calls fn once calls stop for ms.
export function debounce(fn, ms) {
  let t;
  return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
}

// mono is an id in monospace, whole in its tooltip.
export function mono(text, title) { return h('span', { class: 'mono', title: title || text }, text || '–'); }

// short is raygo's short form of a 32-digit id (its last 12 digits, as
// the CLI prints it); other strings pass as they are.
export function short(id) { return typeof id === 'string' && /^[0-9a-f]{32}$/.test(id) ? id.slice(-12) : id; }

// monoShort is an id in its short form, whole in its tooltip.
export function monoShort(id) { return mono(short(id), id); }
