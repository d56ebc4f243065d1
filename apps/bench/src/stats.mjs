// Numbers shared by the parent and the Node participants. The Python participants
// (participants.py) use the same histogram buckets, so their waits merge the same way.

/** Histogram buckets per power of two: bucket b holds waits in [2^(b/8), 2^((b+1)/8)) ns (~9 %). */
const PER_OCTAVE = 8;

/** A wait-time histogram with logarithmic buckets: constant memory at millions of samples. */
export class Hist {
  constructor() {
    /** @type {Map<number, number>} */
    this.buckets = new Map();
  }
  add(ns) {
    const b = ns < 1 ? 0 : Math.floor(Math.log2(ns) * PER_OCTAVE);
    this.buckets.set(b, (this.buckets.get(b) ?? 0) + 1);
  }
  /** Plain object for postMessage/IPC: { bucket: count }. */
  toJSON() {
    return Object.fromEntries(this.buckets);
  }
  merge(obj) {
    for (const [b, c] of Object.entries(obj ?? {})) {
      const k = Number(b);
      this.buckets.set(k, (this.buckets.get(k) ?? 0) + c);
    }
    return this;
  }
  /** The q-quantile in ns (the bucket's geometric middle), or NaN when empty. */
  quantile(q) {
    const keys = [...this.buckets.keys()].sort((a, b) => a - b);
    let total = 0;
    for (const k of keys) total += this.buckets.get(k);
    if (total === 0) return Number.NaN;
    let seen = 0;
    for (const k of keys) {
      seen += this.buckets.get(k);
      if (seen >= q * total) return 2 ** ((k + 0.5) / PER_OCTAVE);
    }
    return 2 ** ((keys.at(-1) + 0.5) / PER_OCTAVE);
  }
}

export const median = (xs) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};

/** Jain's fairness index: 1 when every participant got the same share, 1/n when one got all. */
export const jain = (xs) => {
  const s = xs.reduce((a, b) => a + b, 0);
  const q = xs.reduce((a, b) => a + b * b, 0);
  return q === 0 ? Number.NaN : (s * s) / (xs.length * q);
};

/** Busy work of about `us` microseconds (a clock-bounded spin, the same in every language here). */
export function work(us) {
  const until = performance.now() + us / 1000;
  while (performance.now() < until);
}

/**
 * Uncontended cost of one lock+unlock in ns: median of 5 timed batches within ~budgetMs.
 * Timed in CPU time (user + system of this process), not wall time: on a shared machine a
 * descheduled loop would otherwise charge other tenants' time to the lock. Nothing else runs
 * in this process meanwhile, so for an idle machine the two agree. `clock: 'wall'` for a lock
 * in a server (PostgreSQL): its cost is the round trips this process waits through, not its CPU.
 */
export async function timePairs(pair, isAsync, budgetMs, clock = 'cpu') {
  const now =
    clock === 'wall'
      ? () => performance.now()
      : () => {
          const u = process.cpuUsage();
          return (u.user + u.system) / 1000; // ms
        };
  // Warm up (JIT) and size the batch so slow subjects (file locks) stay within budget.
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < Math.max(5, budgetMs / 10)) {
    if (isAsync) await pair();
    else pair();
    n++;
  }
  const per = (performance.now() - t0) / n;
  const batch = Math.max(1, Math.floor(budgetMs / 5 / per));
  const samples = [];
  for (let r = 0; r < 5; r++) {
    const s = now();
    if (isAsync) for (let k = 0; k < batch; k++) await pair();
    else for (let k = 0; k < batch; k++) pair();
    samples.push(((now() - s) * 1e6) / batch);
  }
  return median(samples);
}
