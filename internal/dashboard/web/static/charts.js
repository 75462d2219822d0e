// Line charts drawn by hand in SVG: a time axis, a value axis with nice
// ticks, one polyline per series (optionally filled), a legend and a
// hover cursor that reads every series at the pointer's time.
import { h, fmtClock } from './lib.js';

const NS = 'http://www.w3.org/2000/svg';
const H = 180;
const PAD = { l: 62, r: 12, t: 10, b: 22 };

function s(tag, attrs) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  return el;
}

// niceMax rounds v up to 1, 2, 4, 5 or 8 times a power of ten (of 1024
// for bytes), so that the quarter ticks read well; integer charts get at
// least 4 so that every tick is a whole number.
export function niceMax(v, kind) {
  if (!(v > 0)) return kind === 'int' ? 4 : 1;
  if (kind === 'int' && v <= 4) return 4;
  let unit = 1;
  if (kind === 'bytes') {
    while (unit * 1024 <= v) unit *= 1024;
    v /= unit;
  }
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 4, 5, 8, 10]) if (m * p >= v * (1 - 1e-9)) return m * p * unit;
  return 10 * p * unit;
}

// Chart is one chart in a card: new Chart(parent, {title, yFmt, yMax,
// area, kind: 'int' | 'bytes'}); update(series, t0, t1) redraws it. series: [{name, color,
// points: [[t, v], …]}]. gap: a pause in samples longer than this (ms)
// breaks the line.
export class Chart {
  constructor(parent, opts) {
    this.opts = Object.assign({ yFmt: (v) => String(v), area: false, gap: 10000 }, opts);
    this.now = h('span', { class: 'now' });
    this.box = h('div', { class: 'chart' });
    this.legend = h('div', { class: 'legend' });
    this.card = h('div', { class: 'card chart-card' },
      h('div', { class: 'chart-head' }, h('h2', null, this.opts.title), this.now), this.box, this.legend);
    parent.append(this.card);
    this.series = [];
    this.onResize = () => this.draw();
    window.addEventListener('resize', this.onResize);
  }

  destroy() { window.removeEventListener('resize', this.onResize); }

  update(series, t0, t1) {
    this.series = series;
    this.t0 = t0;
    this.t1 = t1;
    this.draw();
  }

  draw() {
    const { yFmt } = this.opts;
    const W = Math.max(240, this.box.clientWidth || 600);
    const x0 = PAD.l, x1 = W - PAD.r, y0 = H - PAD.b, y1 = PAD.t;
    const t0 = this.t0, t1 = Math.max(this.t1, this.t0 + 1);
    let vmax = this.opts.yMax || 0;
    for (const se of this.series) for (const p of se.points) if (p[1] > vmax) vmax = p[1];
    vmax = niceMax(vmax, this.opts.kind);
    const X = (t) => x0 + ((t - t0) / (t1 - t0)) * (x1 - x0);
    const Y = (v) => y0 - (v / vmax) * (y0 - y1);
    const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': this.opts.title });
    const grid = s('g', { class: 'grid' });
    const axis = s('g', { class: 'axis' });
    for (let i = 0; i <= 4; i++) {
      const v = (vmax * i) / 4, y = Y(v);
      grid.append(s('line', { x1: x0, x2: x1, y1: y, y2: y }));
      const t = s('text', { x: x0 - 6, y: y + 3, 'text-anchor': 'end' });
      t.textContent = yFmt(v);
      axis.append(t);
    }
    const span = t1 - t0;
    const step = [60e3, 120e3, 300e3, 600e3, 900e3, 1800e3, 3600e3].find((st) => span / st <= 7) || 3600e3;
    for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
      const x = X(t);
      grid.append(s('line', { x1: x, x2: x, y1: y1, y2: y0 }));
      const tx = s('text', { x, y: H - 6, 'text-anchor': 'middle' });
      tx.textContent = fmtClock(t);
      axis.append(tx);
    }
    svg.append(grid, axis);
    let any = false;
    for (const se of this.series) {
      const pts = se.points.filter((p) => p[0] >= t0);
      if (!pts.length) continue;
      any = true;
      // Split at gaps so that a pause in sampling is not drawn as a line.
      let seg = [];
      const flush = () => {
        if (!seg.length) return;
        const d = seg.map((p, i) => `${i ? 'L' : 'M'}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join('');
        if (this.opts.area) {
          svg.append(s('path', { d: `${d}L${X(seg[seg.length - 1][0]).toFixed(1)},${y0}L${X(seg[0][0]).toFixed(1)},${y0}Z`, fill: se.color, 'fill-opacity': 0.12, stroke: 'none' }));
        }
        svg.append(s('path', { d, fill: 'none', stroke: se.color, 'stroke-width': 1.6, 'stroke-linejoin': 'round' }));
        seg = [];
      };
      let prev = null;
      for (const p of pts) {
        if (prev && p[0] - prev[0] > this.opts.gap) flush();
        seg.push(p);
        prev = p;
      }
      flush();
    }
    if (!any) {
      const t = s('text', { class: 'empty', x: (x0 + x1) / 2, y: (y0 + y1) / 2, 'text-anchor': 'middle' });
      t.textContent = this.opts.empty || 'No data yet';
      svg.append(t);
    }
    const cursor = s('line', { class: 'cursor', y1: y1, y2: y0, x1: -10, x2: -10 });
    svg.append(cursor);
    svg.addEventListener('mousemove', (e) => {
      const r = svg.getBoundingClientRect();
      const x = ((e.clientX - r.left) / r.width) * W;
      if (x < x0 || x > x1) return this.showLegend();
      const t = t0 + ((x - x0) / (x1 - x0)) * (t1 - t0);
      cursor.setAttribute('x1', x);
      cursor.setAttribute('x2', x);
      this.showLegend(t);
    });
    svg.addEventListener('mouseleave', () => { cursor.setAttribute('x1', -10); cursor.setAttribute('x2', -10); this.showLegend(); });
    this.box.replaceChildren(svg);
    this.showLegend();
  }

  // showLegend lists each series with its value at t (default: the last).
  showLegend(t) {
    const { yFmt } = this.opts;
    const items = this.series.map((se) => {
      let p = se.points[se.points.length - 1];
      if (t !== undefined && se.points.length) {
        let lo = 0, hi = se.points.length - 1;
        while (lo < hi) { const m = (lo + hi) >> 1; if (se.points[m][0] < t) lo = m + 1; else hi = m; }
        p = se.points[lo];
      }
      const sw = h('span', { class: 'sw' });
      sw.style.background = se.color;
      return h('span', null, sw, `${se.name} `, h('b', null, p ? yFmt(p[1]) : '–'));
    });
    this.legend.replaceChildren(...items);
    this.now.textContent = t !== undefined ? new Date(t).toLocaleTimeString() : '';
  }
}
