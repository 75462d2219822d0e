// A virtual table: any number of rows, of which only those in view (and a
// few more) exist in the DOM, reused as the user scrolls. Columns are
// {key, title, width (CSS grid track), render(row) → Node|string,
// sort(row) → comparable, cls}. Clicking a header sorts by it.
import { h } from './lib.js';

const OVERSCAN = 8;

export class VTable {
  constructor(parent, columns, opts = {}) {
    this.cols = columns;
    this.rowH = opts.rowHeight || 28;
    this.empty = opts.empty || 'No rows';
    this.rows = [];
    this.view = [];
    this.sortKey = opts.sortKey || null;
    this.sortAsc = opts.sortAsc !== undefined ? opts.sortAsc : true;
    const tracks = columns.map((c) => c.width || '1fr').join(' ');
    this.head = h('div', { class: 'vt-head' }, columns.map((c) => h('div', { title: c.title, 'data-key': c.key, onclick: () => this.sortBy(c.key) }, c.title)));
    this.head.style.gridTemplateColumns = tracks;
    this.tracks = tracks;
    this.rowsEl = h('div', { class: 'vt-rows' });
    this.spacer = h('div', { class: 'vt-spacer' }, this.rowsEl);
    this.emptyEl = h('div', { class: 'vt-empty' }, this.empty);
    this.scroller = h('div', { class: 'vt-scroll' }, this.spacer, this.emptyEl);
    this.el = h('div', { class: 'vt' }, this.head, this.scroller);
    parent.append(this.el);
    this.pool = [];
    this.pending = false;
    this.scroller.addEventListener('scroll', () => this.schedule());
    this.ro = new ResizeObserver(() => this.schedule());
    this.ro.observe(this.scroller);
    this.markSort();
  }

  destroy() { this.ro.disconnect(); }

  // setRows replaces the rows (kept in their current sort).
  setRows(rows) {
    this.rows = rows;
    this.applySort();
  }

  sortBy(key) {
    if (this.sortKey === key) this.sortAsc = !this.sortAsc;
    else { this.sortKey = key; this.sortAsc = true; }
    this.markSort();
    this.applySort();
  }

  markSort() {
    for (const d of this.head.children) {
      d.classList.toggle('sorted', d.dataset.key === this.sortKey);
      d.classList.toggle('asc', d.dataset.key === this.sortKey && this.sortAsc);
    }
  }

  applySort() {
    const col = this.cols.find((c) => c.key === this.sortKey);
    let view = this.rows;
    if (col) {
      const f = col.sort || ((r) => r[col.key]);
      const dir = this.sortAsc ? 1 : -1;
      // Decorate once: a key function per comparison is slow at 100k rows.
      const dec = view.map((r, i) => [f(r), i, r]);
      dec.sort((a, b) => {
        const x = a[0], y = b[0];
        if (x === y) return a[1] - b[1];
        if (x === undefined || x === null || x === '') return 1;
        if (y === undefined || y === null || y === '') return -1;
        return (x < y ? -1 : 1) * dir;
      });
      view = dec.map((d) => d[2]);
    }
    this.view = view;
    this.spacer.style.height = `${view.length * this.rowH}px`;
    this.emptyEl.hidden = view.length > 0;
    for (const el of this.pool) el.rowRef = undefined;
    this.render();
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.render(); });
  }

  // render shows the rows in view, reusing row elements.
  render() {
    const sbw = this.scroller.offsetWidth - this.scroller.clientWidth;
    this.head.style.setProperty('--sbw', `${sbw}px`);
    const top = this.scroller.scrollTop;
    const height = this.scroller.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / this.rowH) - OVERSCAN);
    const last = Math.min(this.view.length, Math.ceil((top + height) / this.rowH) + OVERSCAN);
    const n = Math.max(0, last - first);
    while (this.pool.length < n) {
      const row = h('div', { class: 'vt-row' });
      row.style.gridTemplateColumns = this.tracks;
      row.style.height = `${this.rowH}px`;
      row.style.lineHeight = `${this.rowH}px`;
      for (const c of this.cols) row.append(h('div', { class: c.cls || '' }));
      this.pool.push(row);
      this.rowsEl.append(row);
    }
    this.rowsEl.style.transform = `translateY(${first * this.rowH}px)`;
    for (let i = 0; i < this.pool.length; i++) {
      const el = this.pool[i];
      if (i >= n) { el.hidden = true; continue; }
      el.hidden = false;
      const r = this.view[first + i];
      if (el.rowRef === r) continue;
      el.rowRef = r;
      this.cols.forEach((c, j) => {
        const cell = el.children[j];
        const v = c.render ? c.render(r) : r[c.key];
        if (v instanceof Node) cell.replaceChildren(v);
        else cell.textContent = v === undefined || v === null || v === '' ? '–' : String(v);
        cell.title = c.tip ? c.tip(r) || '' : (v instanceof Node ? v.textContent : String(v ?? ''));
      });
    }
  }

  // scrollToEnd shows the last row.
  scrollToEnd() { this.scroller.scrollTop = this.scroller.scrollHeight; this.render(); }
}
