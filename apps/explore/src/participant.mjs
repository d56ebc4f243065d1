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
  READY,
  RESULT,
  STATE,
  WAIT_NOT_EQUAL,
  WAIT_OK,
} from './protocol.mjs';

const { ctrl: ctrlBuf, mem: memBuf, id, corePath, scenario, errors: errBuf } = workerData;
const ctrl = new Int32Array(ctrlBuf);
const errors = new Uint8Array(errBuf);
const blk = base(id);
const realWait = Atomics.wait.bind(Atomics);
const memLength = new Int32Array(memBuf).length - 1; // the last cell is the test's counter
const COUNTER = memLength;

const SPIN = 20000;

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

const waitResult = ['ok', 'not-equal', 'timed-out'];
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
}
if (WAIT_OK !== 0 || WAIT_NOT_EQUAL !== 1) throw new Error('wait results out of order');

const core = await import(corePath);
let incarnation = 0;

function backend() {
  const pid = 1000 + id * 100 + incarnation;
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

function gaveUp(m, err) {
  if (err instanceof Death) throw err;
  if (err?.code === 'BAKERY_TIMEOUT') request(OPS.GAVE_UP, 1, m.slot);
  else if (err?.code === 'BAKERY_NO_FREE_SLOT') request(OPS.GAVE_UP, 2, m.slot);
  else throw err;
}

function run(script) {
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
      else throw new Error(`unknown op ${op}`);
      request(OPS.SLOT, m.slot);
    }
  }
  m.close();
}

function reportError(err) {
  const text = new TextEncoder().encode(String(err?.stack ?? err).slice(0, 2000));
  errors.fill(0);
  errors.set(text.subarray(0, errors.length - 1));
  request(OPS.ERROR);
}

let gen = Atomics.load(ctrl, GEN);
Atomics.add(ctrl, READY, 1);
Atomics.notify(ctrl, READY);
for (;;) {
  while (Atomics.load(ctrl, GEN) === gen) realWait(ctrl, GEN, gen);
  gen = Atomics.load(ctrl, GEN);
  const script = scenario.participants[id];
  incarnation = 0;
  dead = false;
  if (script === undefined) continue;
  for (;;) {
    try {
      run(script);
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
