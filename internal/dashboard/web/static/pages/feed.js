// SeriesFeed keeps the head's time series in the page: everything at
// first, then only the samples newer than the last one it has.
import { get } from '../lib.js';

// minWindow is the shortest time window the charts show.
const minWindow = 5 * 60e3;

export class SeriesFeed {
  constructor(signal) {
    this.signal = signal;
    this.samples = [];
    this.retention = 3600e3;
    this.interval = 2000;
    this.now = Date.now();
  }

  async poll() {
    const since = this.samples.length ? this.samples[this.samples.length - 1].t : 0;
    const r = await get(`/api/dashboard/series?since=${since}`, this.signal);
    this.retention = r.retention_ms || this.retention;
    this.interval = r.interval_ms || this.interval;
    this.now = r.now || Date.now();
    this.samples.push(...(r.samples || []));
    const cut = this.now - this.retention;
    let i = 0;
    while (i < this.samples.length && this.samples[i].t < cut) i++;
    if (i) this.samples.splice(0, i);
    return this;
  }

  last() { return this.samples[this.samples.length - 1]; }

  // range is the charts' time window up to now: as far back as the
  // samples go, at least minWindow and at most the retention.
  range() {
    const first = this.samples.length ? this.samples[0].t : this.now;
    return [Math.max(this.now - this.retention, Math.min(first, this.now - minWindow)), this.now];
  }

  // points maps each sample through f to [t, value].
  points(f) { return this.samples.map((s) => [s.t, f(s)]); }

  // gap is how long a pause in samples must be to break a line.
  gap() { return Math.max(3 * this.interval, 5000); }

  // taskStates are every task state seen in the window.
  taskStates() {
    const set = new Set();
    for (const s of this.samples) for (const k of Object.keys(s.tasks || {})) set.add(k);
    return [...set];
  }

  hasTasks() { return this.samples.some((s) => s.tasks); }
}

export const pct = (used, total) => (total > 0 ? (100 * used) / total : 0);
