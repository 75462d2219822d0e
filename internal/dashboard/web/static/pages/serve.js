// Serve: applications, their deployments and replicas, and the proxies,
// from the Serve controller's status (GET /api/serve/applications), live.
import { h, fill, get, badge, unavailable, mono, monoShort, short, fmtNum } from '../lib.js';

// proxyOf reads one entry of the status's proxies: a base URL, or an
// object with the node, the URL and the proxy's health.
function proxyOf(p) {
  return typeof p === 'string' ? { url: p } : (p || {});
}

// appURLs are an application's addresses: the status's own, else its
// route prefix on every proxy.
function appURLs(app, proxies) {
  if (Array.isArray(app.urls) && app.urls.length) return app.urls;
  const prefix = app.route_prefix === '/' ? '' : (app.route_prefix || '');
  return proxies.map((p) => p.url).filter(Boolean).map((u) => u + prefix);
}

function readyOf(d) {
  return (d.replicas || []).filter((r) => r.state === 'READY' && r.version === d.version).length;
}

function replicasTable(d) {
  const reps = d.replicas || [];
  if (!reps.length) return h('div', { class: 'muted serve-none' }, 'No replicas.');
  return h('table', { class: 'data serve-replicas' },
    h('thead', null, h('tr', null, ['Replica', 'State', 'Version', 'Node', 'Host:port', 'PID', 'Restarts', 'Message'].map((t) => h('th', { class: t === 'PID' || t === 'Restarts' ? 'num' : null }, t)))),
    h('tbody', null, reps.map((r) => h('tr', { 'data-replica': r.id },
      h('td', null, mono(r.id)),
      h('td', null, badge(r.state)),
      h('td', null, mono(r.version)),
      h('td', null, r.node ? h('a', { class: 'mono', href: `/logs?node_id=${encodeURIComponent(r.node)}`, title: r.node }, short(r.node)) : '–'),
      h('td', { class: 'mono' }, r.host_port || '–'),
      h('td', { class: 'num' }, r.pid ? String(r.pid) : '–'),
      h('td', { class: 'num' }, fmtNum(r.restarts || 0)),
      h('td', { title: r.message || '' }, r.message || '')))));
}

function appCard(app, proxies) {
  const urls = appURLs(app, proxies);
  const deps = app.deployments || [];
  return h('div', { class: 'card serve-app', 'data-app': app.name },
    h('div', { class: 'serve-app-head' }, h('h2', null, app.name), badge(app.status)),
    h('table', { class: 'kv' }, h('tbody', null,
      h('tr', null, h('td', null, 'Route prefix'), h('td', { class: 'mono serve-route' }, app.route_prefix || '–')),
      h('tr', null, h('td', null, 'URLs'), h('td', { class: 'serve-urls' }, urls.length ? urls.map((u) => h('div', null, h('a', { class: 'mono', href: u, target: '_blank', rel: 'noopener noreferrer' }, u))) : h('span', { class: 'muted' }, 'no proxy runs (start nodes with --serve-port)'))),
      app.message ? h('tr', null, h('td', null, 'Message'), h('td', { class: 'serve-msg' }, app.message)) : null)),
    deps.map((d) => h('div', { class: 'serve-dep', 'data-deployment': d.name },
      h('div', { class: 'serve-dep-head' },
        h('b', null, d.name), badge(d.status),
        h('span', { class: 'muted' }, `version ${d.version || '–'}`),
        h('span', { class: 'serve-count' }, `${readyOf(d)} / ${d.target_replicas ?? 0} replicas ready`)),
      d.message ? h('div', { class: 'serve-msg muted' }, d.message) : null,
      h('div', { class: 'scroll-x' }, replicasTable(d)))));
}

function proxiesCard(proxies) {
  return h('div', { class: 'card flush scroll-x' }, h('h2', null, 'Proxies'),
    proxies.length ? h('table', { class: 'data', id: 'serve-proxies' },
      h('thead', null, h('tr', null, ['Node', 'URL', 'Status', 'Message'].map((t) => h('th', null, t)))),
      h('tbody', null, proxies.map((p) => h('tr', null,
        h('td', null, p.node_id ? monoShort(p.node_id) : '–'),
        h('td', null, p.url ? h('a', { class: 'mono', href: p.url, target: '_blank', rel: 'noopener noreferrer' }, p.url) : '–'),
        h('td', null, p.status ? badge(p.status) : '–'),
        h('td', null, p.message || '')))))
      : h('div', { class: 'unavailable' }, 'No Serve proxy runs: start nodes with --serve-port.'));
}

export function serve(main, page) {
  const sub = h('span', { class: 'sub', id: 'serve-sub' });
  const body = h('div', { id: 'serve-body' }, h('div', { class: 'card muted' }, 'Loading…'));
  main.append(h('div', { class: 'page-head' }, h('h1', null, 'Serve'), sub), body);
  page.every(2000, async () => {
    let st;
    try {
      st = await get('/api/serve/applications', page.signal);
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      sub.textContent = '';
      fill(body, h('div', { class: 'card', id: 'serve-empty' }, e.unavailable
        ? h('div', { class: 'unavailable' }, 'Serve is not running on this cluster: this head serves no /api/serve/applications.')
        : unavailable(e)));
      return;
    }
    const apps = st.applications || [];
    const proxies = (st.proxies || []).map(proxyOf);
    sub.textContent = `${apps.length} application${apps.length === 1 ? '' : 's'} · ${proxies.length} prox${proxies.length === 1 ? 'y' : 'ies'} · updated ${new Date().toLocaleTimeString()}`;
    const list = apps.length ? apps.map((a) => appCard(a, proxies))
      : h('div', { class: 'card', id: 'serve-empty' }, h('div', { class: 'unavailable' }, 'No Serve applications. Deploy one with: raygo serve deploy app.yaml'));
    fill(body, h('div', { class: 'serve-apps' }, list), proxiesCard(proxies));
  });
}
