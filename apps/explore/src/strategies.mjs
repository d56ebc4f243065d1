// How the next step is chosen. Every strategy is deterministic given its seed, so a seed names a
// schedule. A choice is a participant index, or ~p (negative) to crash participant p there.

/** How much likelier a crash is while the participant holds the lock or REAPER. */
const SENSITIVE = 20;

/** xorshift32: small, fast, and the same on every machine. */
export function rng(seed) {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/** Uniformly random among the enabled participants; a crash with probability `crashP`. */
export function randomWalk(seed, crashP = 0.002) {
  const rand = rng(seed);
  return (c) => {
    const p = c.enabled[Math.floor(rand() * c.enabled.length)];
    if (c.crashable && rand() < crashP * (c.sensitive[p] ? SENSITIVE : 1)) return ~p;
    return p;
  };
}

/**
 * Probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi, Nagarakatte, ASPLOS 2010):
 * random distinct priorities, the highest-priority enabled participant runs, and at d - 1
 * random steps (of an expected `k`) the running one drops below everyone. A bug of depth d is
 * found with probability at least 1 / (n · k^(d-1)) per schedule. Crashes happen at random steps.
 */
export function pct(seed, n, depth, k, crashP = 0.002) {
  const rand = rng(seed);
  const prio = [];
  for (let p = 0; p < n; p++) prio.push(depth + rand());
  const changes = new Map();
  for (let i = 1; i < depth; i++) changes.set(Math.floor(rand() * k), i - 1 + rand() * 0.5);
  return (c) => {
    let best = c.enabled[0];
    for (const p of c.enabled) if (prio[p] > prio[best]) best = p;
    const low = changes.get(c.step);
    if (low !== undefined) {
      prio[best] = low;
      best = c.enabled[0];
      for (const p of c.enabled) if (prio[p] > prio[best]) best = p;
    }
    if (c.crashable && rand() < crashP * (c.sensitive[best] ? SENSITIVE : 1)) return ~best;
    return best;
  };
}

const LOAD = 1;
const CAS = 3;
/**
 * Partial order sampling (Yuan, Yang, Gu, CAV 2018): every pending request has a random
 * priority and the highest runs; when one runs, every other pending request that races with it
 * (the same cell, not both loads; a notify and a wait on one cell) draws a new priority. Unlike
 * a random walk it does not favour reorderings of independent steps, so long bursts of one
 * participant against a few racing steps of another come up often.
 */
export function pos(seed, n, crashP = 0.002, stallP = 0) {
  const rand = rng(seed);
  const prio = new Float64Array(n).fill(-1);
  // A stalled participant waits at a compareExchange (see below): 1 = stalled, 2 = its cell
  // has changed since; it runs again, first, once the cell holds the expected value again.
  const stalled = new Uint8Array(n);
  const stalledUntil = new Float64Array(n);
  const pick = (c) => {
    let best = -1;
    for (const p of c.enabled) {
      if (prio[p] < 0) prio[p] = rand();
      if (stalled[p] !== 0) {
        const now = c.mem[c.cell[p]];
        if (now !== c.arg[p]) stalled[p] = 2;
        else if (stalled[p] === 2 || c.step >= stalledUntil[p]) {
          stalled[p] = 0;
          return p; // the word is back to what it read: the ABA moment
        }
        continue;
      }
      if (best < 0 || prio[p] > prio[best]) best = p;
    }
    if (best >= 0) return best;
    for (const p of c.enabled) stalled[p] = 0;
    return c.enabled[0];
  };
  return (c) => {
    let best = pick(c);
    if (stallP > 0 && c.op[best] === CAS && c.cell[best] < c.headerCells && c.arg[best] !== 0) {
      // About to replace a header word it read earlier (a token it judged gone, a mark it
      // raises): now and then stall it right there until others have changed the word and
      // changed it back — the ABA window of every read-judge-compareExchange.
      if (rand() < stallP) {
        stalled[best] = 1;
        stalledUntil[best] = c.step + 5000;
        best = pick(c);
      }
    }
    const cell = c.cell[best];
    const reads = c.op[best] === LOAD;
    for (const q of c.enabled) {
      if (q !== best && c.cell[q] === cell && !(reads && c.op[q] === LOAD)) prio[q] = rand();
    }
    prio[best] = -1; // its next request draws a new priority
    if (c.crashable && rand() < crashP * (c.sensitive[best] ? SENSITIVE : 1)) return ~best;
    return best;
  };
}

/**
 * Exhaustive enumeration with a preemption bound (CHESS's iterative context bounding):
 * every schedule in which a running participant is switched away from, while it could go on,
 * at most `bound` times. Between preemptions the running participant keeps running. Runs are
 * replayed from the start (threads cannot be forked), so this is a depth-first search over
 * choice lists. Crashes are not enumerated (the random strategies choose them).
 */
export class PreemptionBounded {
  constructor(bound) {
    this.bound = bound;
    this.fixed = 0; // steps replayed from the prefix in the next run
    this.en = []; // per step: enabled participants
    this.ch = []; // chosen
    this.tried = []; // Set of choices tried at this step
    this.pre = []; // preemptions before this step
    this.last = [];
    this.done = false;
    this.runs = 0;
  }

  /** The chooser for the next run. */
  chooser() {
    this.runs++;
    let preemptions = 0;
    return (c) => {
      const i = c.step;
      if (i < this.fixed) {
        const p = this.ch[i];
        if (!c.enabled.includes(p)) throw new Error(`replay diverged at step ${i}`);
        if (i > 0 && this.isPreemption(i)) preemptions = this.pre[i] + 1;
        else preemptions = this.pre[i];
        return p;
      }
      const p = c.enabled.includes(c.last) ? c.last : c.enabled[0];
      this.en[i] = c.enabled.slice();
      this.ch[i] = p;
      this.tried[i] = new Set([p]);
      this.pre[i] = preemptions;
      this.last[i] = c.last;
      return p;
    };
  }

  isPreemption(i) {
    const l = this.last[i];
    return l >= 0 && this.en[i].includes(l) && this.ch[i] !== l;
  }

  /** After a run of `steps` steps: set up the next one, or mark the search done. */
  advance(steps) {
    this.en.length = Math.min(this.en.length, steps);
    for (let i = steps - 1; i >= 0; i--) {
      const l = this.last[i];
      const canPreempt = l >= 0 && this.en[i].includes(l);
      for (const alt of this.en[i]) {
        if (this.tried[i].has(alt)) continue;
        const cost = this.pre[i] + (canPreempt && alt !== l ? 1 : 0);
        if (cost > this.bound) continue;
        this.tried[i].add(alt);
        this.ch[i] = alt;
        this.fixed = i + 1;
        this.en.length = this.ch.length = this.tried.length = i + 1;
        this.pre.length = this.last.length = i + 1;
        return true;
      }
    }
    this.done = true;
    return false;
  }
}

/** Replays a recorded choice list (a `trace:` seed). */
export function replayTrace(choices) {
  return (c) => {
    const p = choices[c.step];
    if (p === undefined) return c.enabled[0];
    const q = p < 0 ? ~p : p;
    if (!c.enabled.includes(q)) throw new Error(`replay diverged at step ${c.step}`);
    return p;
  };
}

/** A choice list as text: runs of one participant ("0*12"), a crash of p as "xp". */
export function encodeTrace(choices) {
  const out = [];
  for (let i = 0; i < choices.length; ) {
    let j = i;
    while (j < choices.length && choices[j] === choices[i]) j++;
    const c = choices[i];
    const s = c < 0 ? `x${~c}` : String(c);
    out.push(j - i > 1 ? `${s}*${j - i}` : s);
    i = j;
  }
  return out.join('.');
}

export function decodeTrace(text) {
  const out = [];
  for (const part of text.split('.')) {
    const [s, times] = part.split('*');
    const c = s.startsWith('x') ? ~Number(s.slice(1)) : Number(s);
    if (!Number.isInteger(c)) throw new Error(`bad trace element ${part}`);
    for (let k = 0; k < Number(times ?? 1); k++) out.push(c);
  }
  return out;
}
