// One participant of an exploration, on its own worker thread: the real @bakery/core (the built
// package, or a mutant's patched copy) over cells whose every access is a request to the
// scheduler. Clocks and sleeps are virtual: performance.now and Date.now read the scheduler's
// clock, and a blocking sleep (Atomics.wait on any other buffer) is a SLEEP request.
import { workerData } from 'node:worker_threads';
import {
  A,
  B,
  base,
  C,
  CLOCK,
  DIE,
  GEN,
  OP,
  OPS,
  pidFor,
  READY,
  RESULT,
  STATE,
  WAIT_NAMES,
  WAIT_TIMED_OUT,
} from './protocol.mjs';

const { ctrl: ctrlBuf, mem: memBuf, id, corePath, scenario, errors: errBuf } = workerData;
const ctrl = new Int32Array(ctrlBuf);
const errors = new Uint8Array(errBuf);
const blk = base(id);
const realWait = Atomics.wait.bind(Atomics);
const memLength = new Int32Array(memBuf).length - 1; // the last cell is the test's counter
const COUNTER = memLength;

const SPIN = 500;

/** A script that can never finish: reported by its message alone. */
class Stall extends Error {}

class Death extends Error {}
let dead = false;

function request(op, a = 0, b = 0, c = 0) {
  ctrl[blk + OP] = op;
  ctrl[blk + A] = a;
  ctrl[blk + B] = b;
  ctrl[blk + C] = c;
  Atomics.store(ctrl, blk + STATE, 1);
  Atomics.notify(ctrl, blk + STATE);
  // Spin a little first: the scheduler often grants the same participant again at once.
  for (let k = 0; k < SPIN && Atomics.load(ctrl, blk + STATE) === 1; k++);
  while (Atomics.load(ctrl, blk + STATE) === 1) realWait(ctrl, blk + STATE, 1);
  const r = ctrl[blk + RESULT];
  const die = ctrl[blk + DIE] === 1;
  Atomics.store(ctrl, blk + STATE, 0);
  if (die) {
    dead = true;
    throw new Death('crashed by the scheduler');
  }
  return r;
}

const clockMs = () => Atomics.load(ctrl, CLOCK) / 1000;
globalThis.performance.now = clockMs;
Date.now = () => 1_700_000_000_000 + Math.floor(clockMs());
Atomics.wait = (ta, i, v, ms) => {
  if (ta.buffer === ctrlBuf) return realWait(ta, i, v, ms);
  request(OPS.SLEEP, Math.max(1, Math.min(2 ** 30, Math.round((ms ?? 2 ** 30 / 1000) * 1000))));
  return 'timed-out';
};

// Virtual timers for the asynchronous driver: setTimeout/setImmediate register callbacks on
// the scheduler's clock. When nothing else is left to run (microtasks drained: the pump is a
// real setImmediate), the pump fires the earliest due timer, or asks to SLEEP until it is due.
const realSetImmediate = globalThis.setImmediate;
let timers = []; // { id, at (µs), fn, args }, in the order registered
/** Pending waitAsync calls, oldest first: { cell, expected, deadline (µs), resolve }. */
let asyncWaits = [];
let nextTimer = 1;
globalThis.setTimeout = (fn, ms = 0, ...args) => {
  const t = {
    id: nextTimer++,
    at: Atomics.load(ctrl, CLOCK) + Math.max(1, Math.round(ms * 1000)),
    fn,
    args,
  };
  timers.push(t);
  return { [Symbol.toPrimitive]: () => t.id, id: t.id, unref() {}, ref() {}, hasRef: () => true };
};
globalThis.clearTimeout = (h) => {
  const id = typeof h === 'object' && h !== null ? h.id : h;
  timers = timers.filter((t) => t.id !== id);
};
globalThis.setImmediate = (fn, ...args) => globalThis.setTimeout(fn, 0, ...args);
let pumping = false;
let onStall = null;
function pump() {
  if (!pumping) return;
  let first = null;
  for (const t of timers) if (first === null || t.at < first.at) first = t;
  const w = asyncWaits[0];
  if (first === null && w === undefined) {
    // Nothing will ever happen: a promise of the script can no longer settle.
    pumping = false;
    onStall?.();
    return;
  }
  try {
    if (w !== undefined) {
      // A pending waitAsync: the futex wait, cut short when a timer falls due first (then the
      // timer fires and the wait is taken up again, comparing anew — as a waiter woken early).
      const now = Atomics.load(ctrl, CLOCK);
      const until = first === null ? w.deadline : Math.min(w.deadline, first.at);
      const r = request(OPS.WAIT, w.cell, w.expected, Math.max(1, until - now));
      if (r !== WAIT_TIMED_OUT || Atomics.load(ctrl, CLOCK) >= w.deadline) {
        asyncWaits.shift();
        w.resolve(waitResult[r]);
        realSetImmediate(pump);
        return;
      }
    }
    const now = Atomics.load(ctrl, CLOCK);
    if (first.at > now) request(OPS.SLEEP, first.at - now);
  } catch (err) {
    pumping = false;
    onStall?.(err);
    return;
  }
  timers = timers.filter((t) => t !== first);
  try {
    first.fn(...first.args);
  } finally {
    realSetImmediate(pump);
  }
}

const waitResult = WAIT_NAMES;
const cells = {
  length: memLength,
  load: (i) => request(OPS.LOAD, i),
  store: (i, v) => {
    request(OPS.STORE, i, v);
  },
};
if (scenario.cells !== 'positional') {
  cells.compareExchange = (i, e, r) => request(OPS.CAS, i, e, r);
} else {
  cells.withRegistryLock = (fn) => {
    request(OPS.REG_ENTER);
    try {
      return fn();
    } finally {
      if (!dead) request(OPS.REG_LEAVE);
    }
  };
}
if (scenario.cells === 'atomic') {
  cells.wait = (i, e, ms) =>
    waitResult[request(OPS.WAIT, i, e, Math.max(1, Math.round(Math.min(ms, 2 ** 20) * 1000)))];
  cells.notify = (i) => {
    request(OPS.NOTIFY, i);
    return 0;
  };
  // The asynchronous wait is the same request: the thread parks, the promise is settled.
  cells.waitAsync = (i, e, ms) =>
    new Promise((resolve) => {
      const deadline =
        Atomics.load(ctrl, CLOCK) + Math.max(1, Math.round(Math.min(ms, 2 ** 20) * 1000));
      asyncWaits.push({ cell: i, expected: e, deadline, resolve });
    });
}

const core = await import(corePath);
let incarnation = 0;

function backend() {
  const pid = pidFor(id, incarnation);
  const b = {
    cells,
    identity: () => ({ pid, tid: 0, startTime: 0 }),
    isAlive: (owner) => request(OPS.ALIVE, owner.pid) === 1,
    description: 'explore',
  };
  if (scenario.cells !== 'positional') {
    b.outsider = {
      enter: () => request(OPS.OUT_ENTER) === 1,
      leave: () => {
        if (!dead) request(OPS.OUT_LEAVE);
      },
      held: () => request(OPS.OUT_HELD) === 1,
    };
  }
  return b;
}

const trace = {
  doorwayStart: () => request(OPS.DOORWAY_START),
  doorwayEnd: (n) => request(OPS.DOORWAY_END, n),
};

/** The critical section: a non-atomic read, a scheduling point, a write. */
function critical(lease) {
  request(OPS.ENTER, lease.ownerDied ? 1 : 0);
  if (lease.ownerDied) lease.markConsistent();
  const v = cells.load(COUNTER);
  cells.store(COUNTER, v + 1);
  request(OPS.EXIT);
  lease.release();
}

/**
 * An allowed failure. With `own`, the instance had nothing else in flight, so its slot must
 * hold no ticket or CHOOSING now (the scheduler checks; -1 skips it: another lock() call of the
 * same instance may be acquiring).
 */
function gaveUp(m, err, own = true) {
  if (err instanceof Death) throw err;
  const slot = own ? m.slot : -1;
  if (err?.code === 'BAKERY_TIMEOUT') request(OPS.GAVE_UP, 1, slot);
  else if (err?.code === 'BAKERY_NO_FREE_SLOT') request(OPS.GAVE_UP, 2, slot);
  else if (err?.code === 'BAKERY_ABORTED') request(OPS.GAVE_UP, 4, slot);
  else throw err;
}

async function run(script) {
  request(OPS.START);
  const m = core.openOn(backend(), { ...scenario.options, trace, claim: script.claim ?? 'open' });
  request(OPS.SLOT, m.slot);
  for (let k = 0; k < (script.iters ?? 1); k++) {
    for (const op of script.ops) {
      if (op === 'lock') critical(m.lockSync());
      else if (op.startsWith('lock:')) {
        try {
          critical(m.lockSync({ timeout: Number(op.slice(5)) }));
        } catch (err) {
          gaveUp(m, err);
        }
      } else if (op === 'try') {
        let lease = null;
        try {
          lease = m.tryLock();
        } catch (err) {
          gaveUp(m, err);
          continue;
        }
        if (lease === null) request(OPS.GAVE_UP, 3, m.slot);
        else critical(lease);
      } else if (op === 'reap') m.reapDead();
      else if (op.startsWith('alock')) {
        // await lock() (alock), with a timeout (alock:<ms>), or aborted after <ms> (abort:<ms>)
        const [, ms] = op.split(':');
        try {
          critical(await m.lock(ms === undefined ? undefined : { timeout: Number(ms) }));
        } catch (err) {
          gaveUp(m, err);
        }
      } else if (op.startsWith('abort:')) {
        const ac = new AbortController();
        setTimeout(
          () => {
            ac.abort();
            // The abort won the race against the pending waitAsync: core moves on without it.
            // Settle it, as Node would at its timeout, rather than let it sleep on with no
            // sleeper count (a wake-up nobody owes it).
            for (const w of asyncWaits) w.resolve('timed-out');
            asyncWaits = [];
          },
          Number(op.slice(6)),
        );
        try {
          critical(await m.lock({ signal: ac.signal }));
        } catch (err) {
          gaveUp(m, err);
        }
      } else if (op.startsWith('queue:')) {
        // k lock() calls on this one instance at once (its local FIFO), the i-th with the
        // timeout given for it (queue:3:-:0.05:-): '-' waits forever.
        const [, k, ...t] = op.split(':');
        const calls = [];
        for (let i = 0; i < Number(k); i++) {
          const ms = t[i] === undefined || t[i] === '-' ? undefined : Number(t[i]);
          calls.push(
            m.lock(ms === undefined ? undefined : { timeout: ms }).then(
              (lease) => critical(lease),
              (err) => gaveUp(m, err, false),
            ),
          );
        }
        const results = await Promise.allSettled(calls);
        for (const r of results) if (r.status === 'rejected') throw r.reason;
      } else throw new Error(`unknown op ${op}`);
      request(OPS.SLOT, m.slot);
    }
  }
  m.close();
}

/** Run a script with the virtual timers pumped; rejects if it can never finish (a stall). */
function runPumped(script) {
  timers = [];
  asyncWaits = [];
  pumping = true;
  return new Promise((resolve, reject) => {
    onStall = (err) =>
      reject(
        err ??
          new Stall(
            'stalled: a lock() call can never settle (no timer is pending, nothing can wake it)',
          ),
      );
    realSetImmediate(pump);
    run(script).then(
      (v) => {
        pumping = false;
        resolve(v);
      },
      (err) => {
        pumping = false;
        reject(err);
      },
    );
  });
}

// Continuations of a crashed incarnation may still throw Death later: nobody awaits them.
process.on('unhandledRejection', (err) => {
  if (!(err instanceof Death)) throw err;
});

function reportError(err) {
  const text = new TextEncoder().encode(
    String(err instanceof Stall ? err.message : (err?.stack ?? err)).slice(0, 2000),
  );
  errors.fill(0);
  errors.set(text.subarray(0, errors.length - 1));
  request(OPS.ERROR);
}

let gen = Atomics.load(ctrl, GEN);
Atomics.add(ctrl, READY, 1);
Atomics.notify(ctrl, READY);
for (;;) {
  // Let whatever a crashed incarnation left in the microtask queue run (and die) now, never
  // inside the next schedule.
  timers = [];
  asyncWaits = [];
  await new Promise((r) => realSetImmediate(r));
  await new Promise((r) => realSetImmediate(r));
  while (Atomics.load(ctrl, GEN) === gen) realWait(ctrl, GEN, gen);
  gen = Atomics.load(ctrl, GEN);
  const script = scenario.participants[id];
  incarnation = 0;
  dead = false;
  if (script === undefined) continue;
  for (;;) {
    try {
      await runPumped(script);
      request(OPS.FINISHED);
      break;
    } catch (err) {
      if (!(err instanceof Death)) {
        try {
          reportError(err);
        } catch {}
        break;
      }
    }
    // Crashed: the scheduler answers 1 when this participant starts again as a new process.
    dead = false;
    const again = request(OPS.DIED);
    if (again !== 1) break;
    incarnation++;
  }
}
