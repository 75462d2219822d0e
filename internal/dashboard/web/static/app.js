// The dashboard's shell: a client-side router over the page modules, the
// signed-in user, sign-out, and each page's lifetime (its timers and
// requests end when the user leaves it).
import { csrf, send } from './lib.js';
import { overview } from './pages/overview.js';
import { jobs, job } from './pages/jobs.js';
import { cluster } from './pages/cluster.js';
import { actors } from './pages/actors.js';
import { tasks } from './pages/tasks.js';
import { logs } from './pages/logs.js';
import { metrics } from './pages/metrics.js';
import { serve } from './pages/serve.js';

const routes = [
  [/^\/$/, 'overview', overview],
  [/^\/jobs$/, 'jobs', jobs],
  [/^\/jobs\/([^/]+)$/, 'jobs', job],
  [/^\/cluster$/, 'cluster', cluster],
  [/^\/actors$/, 'actors', actors],
  [/^\/tasks$/, 'tasks', tasks],
  [/^\/serve$/, 'serve', serve],
  [/^\/logs$/, 'logs', logs],
  [/^\/charts$/, 'metrics', metrics],
];

const main = document.getElementById('main');
const live = document.getElementById('live');

// Page is what a page module gets: where to draw, its route's
// parameters and query, and timers and requests tied to its lifetime.
class Page {
  constructor(params, query) {
    this.params = params;
    this.query = query;
    this.ctl = new AbortController();
    this.signal = this.ctl.signal;
    this.timers = [];
    this.stops = [];
  }

  // every runs fn now and then every ms, never two at once; a failure
  // marks the live dot red until the next success.
  every(ms, fn) {
    let timer;
    const tick = async () => {
      if (this.signal.aborted) return;
      try {
        await fn();
        live.className = 'live on';
      } catch (e) {
        if (this.signal.aborted || e.name === 'AbortError') return;
        live.className = 'live err';
        live.title = e.message;
      }
      if (!this.signal.aborted) timer = setTimeout(tick, ms);
    };
    this.stops.push(() => clearTimeout(timer));
    tick();
  }

  onStop(fn) { this.stops.push(fn); }

  stop() {
    this.ctl.abort();
    for (const f of this.stops) { try { f(); } catch { /* leaving anyway */ } }
  }

  // setQuery replaces the URL's query without a new history entry.
  setQuery(q) {
    const s = new URLSearchParams(q).toString();
    history.replaceState(null, '', location.pathname + (s ? `?${s}` : ''));
  }
}

let current = null;

function render() {
  if (current) current.stop();
  const path = location.pathname.replace(/\/+$/, '') || '/';
  for (const [re, nav, page] of routes) {
    const m = path.match(re);
    if (!m) continue;
    for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.nav === nav);
    current = new Page(m.slice(1).map(decodeURIComponent), new URLSearchParams(location.search));
    main.replaceChildren();
    main.className = '';
    page(main, current);
    return;
  }
  main.replaceChildren(document.createTextNode('No such page.'));
}

// go shows path without reloading.
export function go(path) {
  history.pushState(null, '', path);
  render();
}

document.addEventListener('click', (e) => {
  const a = e.target.closest('a');
  if (!a || a.origin !== location.origin || a.target || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
  const path = a.pathname.replace(/\/+$/, '') || '/';
  if (!routes.some(([re]) => re.test(path))) return;
  e.preventDefault();
  go(a.pathname + a.search);
});
window.addEventListener('popstate', render);

document.getElementById('logout').addEventListener('click', async () => {
  try { await send('POST', '/api/logout'); } catch { /* signed out anyway */ }
  sessionStorage.removeItem('raygo.csrf');
  sessionStorage.removeItem('raygo.who');
  location.assign('/login');
});

render();
csrf().then(() => { document.getElementById('who').textContent = sessionStorage.getItem('raygo.who') || ''; }).catch(() => {});
