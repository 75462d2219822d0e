// Logs: pick a node, then one of its log files, and read its tail;
// Follow keeps the file open and appends what is written.
import { h, fill, get, stream, fmtBytes, fmtTime, unavailable, badge } from '../lib.js';

// tailLines is how much of a file the viewer opens with; keepBytes bounds
// what it holds while following (the newest part).
const tailLines = 1000;
const keepBytes = 2 << 20;

// fileList reads the logs API's listing of one node: {"result": {node:
// {category: [names]}}, "files": {node: [{name, size, mod_time_ms}]}}
// (raygo's), Ray's {category: [names]} (possibly under data.result), or a
// plain list of names or files.
function fileList(body, nodeID) {
  const norm = (f) => (typeof f === 'string' ? { name: f } : { name: f.name || f.filename, size: f.size, mod: f.mod_time_ms || f.mod_unix_ms });
  let r = body;
  if (r && r.data && r.data.result !== undefined) r = r.data.result;
  if (r && r.result && typeof r.result === 'object' && !Array.isArray(r.result)) {
    const byNode = r.result[nodeID] || Object.values(r.result).find((v) => v && !Array.isArray(v) && typeof v === 'object');
    const files = (r.files && (r.files[nodeID] || Object.values(r.files)[0])) || [];
    if (byNode && Object.values(byNode).every(Array.isArray)) {
      const info = new Map(files.map((f) => [f.name, norm(f)]));
      const groups = {};
      for (const [cat, names] of Object.entries(byNode)) groups[cat] = names.map((n) => info.get(n) || { name: n });
      return groups;
    }
    r = r.result;
  } else if (r && Array.isArray(r.result)) r = r.result;
  if (Array.isArray(r)) {
    const groups = {};
    for (const f of r.map(norm)) {
      const cat = f.name.includes('/') ? f.name.split('/')[0] : 'files';
      (groups[cat] = groups[cat] || []).push(f);
    }
    return groups;
  }
  const groups = {};
  for (const [cat, list] of Object.entries(r || {})) if (Array.isArray(list)) groups[cat] = list.map(norm);
  return groups;
}

export function logs(main, page) {
  main.className = 'fill';
  let nodeID = page.query.get('node_id') || '';
  let file = page.query.get('file') || '';
  const nodesEl = h('div', { class: 'list', id: 'log-nodes' });
  const filter = h('input', { type: 'search', placeholder: 'Filter files', 'aria-label': 'filter files' });
  const filesEl = h('div', { class: 'list', id: 'log-files' });
  const title = h('span', { class: 'mono' }, 'No file selected');
  const follow = h('input', { type: 'checkbox', id: 'log-follow' });
  const followLabel = h('label', { for: 'log-follow' }, ' Follow');
  const reload = h('button', { class: 'secondary', type: 'button' }, 'Reload');
  const status = h('span', { class: 'muted' });
  const pre = h('pre', { class: 'log', id: 'log-text' });
  main.append(
    h('div', { class: 'page-head' }, h('h1', null, 'Logs')),
    h('div', { class: 'logs' },
      h('div', { class: 'pane' }, h('h2', null, 'Nodes'), nodesEl),
      h('div', { class: 'pane' }, h('h2', null, 'Files'), h('div', { class: 'toolbar' }, filter), filesEl),
      h('div', { class: 'pane' }, h('div', { class: 'toolbar', id: 'log-bar' }, title, h('span', { class: 'spacer' }), status, follow, followLabel, reload), pre)));

  let nodes = [];
  let groups = {};
  const drawNodes = () => {
    fill(nodesEl, nodes.map((n) => h('a', { href: `/logs?node_id=${n.node_id}`, class: n.node_id === nodeID ? 'sel' : '', 'data-node': n.node_id,
      onclick: (e) => { e.preventDefault(); e.stopPropagation(); pickNode(n.node_id); } },
    h('div', { class: 'mono' }, n.node_id.slice(0, 20) + (n.node_id.length > 20 ? '…' : '')),
    h('div', { class: 'meta' }, `${n.address || n.node_ip || ''} `, n.is_head_node ? 'head ' : '', badge(n.state)))));
  };
  const drawFiles = () => {
    const q = filter.value.trim().toLowerCase();
    const out = [];
    for (const cat of Object.keys(groups).sort()) {
      const fs = groups[cat].filter((f) => !q || f.name.toLowerCase().includes(q)).sort((a, b) => (a.name < b.name ? -1 : 1));
      if (!fs.length) continue;
      out.push(h('div', { class: 'cat' }, cat));
      for (const f of fs) {
        out.push(h('a', { href: '#', class: f.name === file ? 'sel' : '', title: f.name, 'data-file': f.name,
          onclick: (e) => { e.preventDefault(); e.stopPropagation(); pickFile(f.name); } },
        h('div', null, f.name), f.size !== undefined ? h('div', { class: 'meta' }, `${fmtBytes(f.size)}${f.mod ? ' · ' + fmtTime(f.mod) : ''}`) : null));
      }
    }
    fill(filesEl, out.length ? out : h('div', { class: 'unavailable' }, nodeID ? 'No files.' : 'Pick a node.'));
  };
  filter.addEventListener('input', drawFiles);

  const loadFiles = async () => {
    if (!nodeID) return drawFiles();
    try {
      groups = fileList(await get(`/api/v0/logs?node_id=${encodeURIComponent(nodeID)}`, page.signal), nodeID);
      drawFiles();
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      groups = {};
      fill(filesEl, unavailable(e));
    }
  };

  // The viewer: one request at a time, aborted when another starts.
  let view = null;
  let text = '';
  const show = (more) => {
    const stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
    text += more;
    if (text.length > keepBytes) text = text.slice(text.length - keepBytes);
    pre.textContent = text;
    if (stick) pre.scrollTop = pre.scrollHeight;
  };
  const open = async () => {
    if (view) view.abort();
    text = '';
    pre.textContent = '';
    if (!nodeID || !file) return;
    title.textContent = file;
    view = new AbortController();
    const signal = view.signal;
    const url = `/api/v0/logs/file?node_id=${encodeURIComponent(nodeID)}&filename=${encodeURIComponent(file)}&lines=${tailLines}${follow.checked ? '&follow=true' : ''}`;
    status.textContent = follow.checked ? 'following' : 'loading';
    try {
      await stream(url, signal, show);
      status.textContent = follow.checked ? 'ended' : `last ${tailLines} lines`;
    } catch (e) {
      if (e.name === 'AbortError') return;
      status.textContent = '';
      fill(pre, unavailable(e).textContent);
    }
  };
  follow.addEventListener('change', open);
  reload.addEventListener('click', open);

  const pickNode = (id) => {
    nodeID = id;
    file = '';
    page.setQuery({ node_id: id });
    drawNodes();
    loadFiles().catch(() => {});
    open();
  };
  const pickFile = (name) => {
    file = name;
    page.setQuery({ node_id: nodeID, file: name });
    drawFiles();
    open();
  };

  page.every(5000, async () => {
    try {
      const r = await get('/api/dashboard/nodes', page.signal);
      nodes = r.nodes || [];
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      fill(nodesEl, unavailable(e));
      return;
    }
    if (!nodeID && nodes.length) {
      nodeID = (nodes.find((n) => n.is_head_node) || nodes[0]).node_id;
    }
    drawNodes();
    await loadFiles();
  });
  open();
  page.onStop(() => view && view.abort());
}
