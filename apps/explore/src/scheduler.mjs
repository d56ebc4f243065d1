// The controlled scheduler: runs one scenario's participants (worker threads running the real
// @bakery/core) one step at a time, in the order a strategy chooses, and checks the lock's
// properties at every step. A schedule is a pure function of the strategy's choices, so a
// seed (or a recorded choice list) replays it exactly.
import { Worker } from 'node:worker_threads';
import {
  A,
  B,
  base,
  C,
  CLOCK,
  DIE,
  GEN,
  GHOST_FIRST,
  OP,
  OP_NAMES,
  OPS,
  participantOf,
  pidFor,
  READY,
  RESULT,
  STATE,
  STEP,
  WAIT_NOT_EQUAL,
  WAIT_OK,
  WAIT_TIMED_OUT,
} from './protocol.mjs';

const ERR_BYTES = 4096;
/** See `afterOp`: a reaper notifies 9 steps after its first store; the exit 2. */
const LOST_WAKE_OPS = 16;

/** What a strategy sees at each step. */
export class Choice {
  constructor() {
    this.enabled = [];
    this.step = 0;
    /** The participant granted last (-1 at the start). */
    this.last = -1;
    /** Participants that may be crashed now (budget left, scenario allows). */
    this.crashable = false;
    /** The pending request of participant p: [op, cell] (cell -1 when it names none). */
    this.op = new Int32Array(64);
    this.cell = new Int32Array(64);
    /** The expected value of p's pending compareExchange (its B argument). */
    this.arg = new Int32Array(64);
    this.headerCells = 0;
    /** Whether a crash of p now is one recovery must repair (it holds the lock or REAPER). */
    this.sensitive = new Uint8Array(64);
  }
}

export class Explorer {
  /**
   * @param scenario  see scenarios.mjs
   * @param corePath  file URL of the @bakery/core build to load (a mutant's copy, or the real one)
   */
  constructor(scenario, corePath) {
    this.scenario = scenario;
    this.n = scenario.participants.length;
    this.core = corePath;
    this.ctrl = new Int32Array(new SharedArrayBuffer(4 * (8 + 16 * this.n)));
    this.layout = null;
    this.workers = [];
    this.errBufs = [];
  }

  async start() {
    this.layout = await import(this.core);
    const cellsFor = this.layout.cellsFor;
    this.memBuf = new SharedArrayBuffer(4 * (cellsFor(this.scenario.slots) + 1));
    this.mem = new Int32Array(this.memBuf);
    this.COUNTER = this.mem.length - 1;
    for (let p = 0; p < this.n; p++) {
      const errors = new SharedArrayBuffer(ERR_BYTES);
      this.errBufs.push(new Uint8Array(errors));
      const w = new Worker(new URL('./participant.mjs', import.meta.url), {
        workerData: {
          ctrl: this.ctrl.buffer,
          mem: this.memBuf,
          id: p,
          corePath: this.core,
          scenario: this.scenario,
          errors,
        },
      });
      w.on('error', (err) => {
        this.workerError = err;
      });
      this.workers.push(w);
    }
    // Let the workers load the build and park on GEN.
    const t0 = performance.now();
    while (Atomics.load(this.ctrl, READY) < this.n) {
      if (this.workerError) throw this.workerError;
      if (performance.now() - t0 > 30_000)
        throw new Error('participants did not start within 30 s');
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async stop() {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  /**
   * Run one schedule. `choose(choice)` returns the participant to grant, or `~p` (a negative
   * number) to crash participant p instead. Returns { violation, steps, trace, stats }.
   */
  run(choose) {
    const sc = this.scenario;
    const n = this.n;
    const ctrl = this.ctrl;
    const mem = this.mem;
    const L = this.layout;
    const { H, S, slotBase, SLOT_CELLS, HEADER_CELLS } = L;
    const slots = sc.slots;
    mem.fill(0);
    const view = {
      length: mem.length - 1,
      load: (i) => mem[i],
      store: (i, v) => {
        mem[i] = v;
      },
    };
    L.initLayout(view, slots, sc.cells === 'positional' ? L.ACCESS.POSITIONAL : L.ACCESS.ATOMIC);
    ctrl[CLOCK] = 0;
    ctrl[STEP] = 0;
    for (let p = 0; p < n; p++) {
      const b = base(p);
      for (let k = 0; k < 16; k++) ctrl[b + k] = 0;
    }

    // --- per-schedule state
    const status = new Array(n).fill('run'); // run | req | fin
    const dead = new Array(n).fill(false); // crashed, unwinding
    const incarnation = new Array(n).fill(0);
    const deadPids = new Set();
    const wakeAt = new Array(n).fill(0);
    const blocked = new Array(n).fill(false); // in a WAIT after its compare
    const notified = new Array(n).fill(false);
    const doorwayStart = new Array(n).fill(-1);
    const doorwayEnd = new Array(n).fill(-1); // step of this participant's open ticket; -1 none
    // The bypass bound: passed[q * n + p] = entries of p since q's doorway ended; p may enter
    // 1 + maxBatch times (handoff 'batched' with compareExchange), else once.
    const passed = new Array(n * n).fill(0);
    const opts = this.scenario.options ?? {};
    const batched = opts.handoff === 'batched' && this.scenario.cells !== 'positional';
    const bypassBound = batched ? 1 + (opts.maxBatch ?? 64) : 1;
    const holding = new Array(n).fill(false);
    let registry = -1;
    let reaperNow = -1; // the participant whose token REAPER holds
    let reaperPid = 0; // … and its incarnation's pid
    let outsider = -1;
    let inside = -1;
    let pendingOwnerDied = false;
    let crashes = 0;
    let counterStores = 0;
    let step = 0;
    let violation = null;
    const trace = [];
    const stats = { entries: 0, crashes: 0, gaveUp: 0, waits: 0, sleeps: 0 };
    const states = this.states;
    const choice = new Choice();
    choice.headerCells = HEADER_CELLS;
    choice.mem = mem;
    const pidOf = (p) => pidFor(p, incarnation[p]);
    const pidOwner = (pid) => {
      const p = participantOf(pid);
      return p >= 0 && p < n && pid === pidOf(p) ? p : -1;
    };
    const ownerOfSlot = (s) => pidOwner(mem[slotBase(s) + S.OWNER]);
    let draining = false;
    const fail = (what) => {
      if (violation === null) violation = `${what} (step ${step}, virtual time ${ctrl[CLOCK]} µs)`;
    };

    const grant = (p, result, die = false) => {
      const b = base(p);
      ctrl[b + RESULT] = result;
      ctrl[b + DIE] = die ? 1 : 0;
      status[p] = 'run';
      Atomics.store(ctrl, b + STATE, 2);
      Atomics.notify(ctrl, b + STATE);
    };

    /** Wait until p parks on a schedulable request (answering ghosts and a dead one's requests). */
    const settle = (p) => {
      const b = base(p);
      for (;;) {
        let s = Atomics.load(ctrl, b + STATE);
        for (let k = 0; k < 20_000 && s !== 1; k++) s = Atomics.load(ctrl, b + STATE);
        let waited = 0;
        while (s !== 1) {
          if (this.workerError) throw this.workerError;
          if (Atomics.wait(ctrl, b + STATE, s, 1000) === 'timed-out' && ++waited >= 20)
            throw new Error(
              `participant ${p} did not reach its next request within 20 s (last request ${OP_NAMES[ctrl[b + OP]]})`,
            );
          s = Atomics.load(ctrl, b + STATE);
        }
        const op = ctrl[b + OP];
        const a = ctrl[b + A];
        if (op < GHOST_FIRST) {
          if (dead[p]) {
            grant(p, 0, true);
            continue;
          }
          status[p] = 'req';
          if (op === OPS.SLEEP) wakeAt[p] = ctrl[CLOCK] + a;
          blocked[p] = false;
          notified[p] = false;
          return;
        }
        switch (op) {
          case OPS.DOORWAY_START:
            doorwayStart[p] = step;
            break;
          case OPS.DOORWAY_END:
            doorwayEnd[p] = step;
            for (let q = 0; q < n; q++) passed[p * n + q] = 0;
            if (a > slots) fail(`participant ${p} was issued ticket ${a} > ${slots} slots`);
            break;
          case OPS.SLOT:
            break;
          case OPS.GAVE_UP: {
            stats.gaveUp++;
            const s = ctrl[b + B];
            if (
              s >= 0 &&
              (mem[slotBase(s) + S.TICKET] !== 0 || mem[slotBase(s) + S.CHOOSING] !== 0)
            )
              fail(
                `participant ${p} gave up (${['', 'timeout', 'no free slot', 'tryLock null', 'aborted'][a]}) but left ${mem[slotBase(s) + S.TICKET] !== 0 ? 'a ticket' : 'CHOOSING'} on slot ${s}`,
              );
            break;
          }
          case OPS.ERROR: {
            const bytes = this.errBufs[p];
            const end = bytes.indexOf(0);
            fail(
              `participant ${p} threw: ${new TextDecoder().decode(bytes.subarray(0, end < 0 ? bytes.length : end))}`,
            );
            grant(p, 0);
            status[p] = 'fin';
            return;
          }
          case OPS.DIED: {
            dead[p] = false;
            const again = sc.respawn === true && violation === null && !draining;
            if (again) {
              incarnation[p]++;
              grant(p, 1);
              continue;
            }
            grant(p, 0);
            status[p] = 'fin';
            return;
          }
          case OPS.FINISHED:
            grant(p, 0);
            status[p] = 'fin';
            return;
        }
        grant(p, 0);
      }
    };

    const enabled = (p) => {
      if (status[p] !== 'req') return false;
      const op = ctrl[base(p) + OP];
      if (op === OPS.SLEEP) return ctrl[CLOCK] >= wakeAt[p];
      if (op === OPS.WAIT && blocked[p]) return notified[p] || ctrl[CLOCK] >= wakeAt[p];
      if (op === OPS.REG_ENTER) return registry < 0;
      return true;
    };

    const isSlotCell = (i) => i >= HEADER_CELLS && i < HEADER_CELLS + slots * SLOT_CELLS;
    /** Checks on a write of `v` to cell `i` by participant p (before it lands). */
    const onWrite = (p, i, v, cas = false) => {
      if (i === H.REAPER) {
        // Reapers exclude each other: REAPER is taken by compareExchange(0 → token), dropped by
        // its holder's store of 0, and cleared by another only once its holder is gone.
        const live = reaperNow >= 0 && !deadPids.has(reaperPid);
        if (v !== 0) {
          if (live && reaperNow !== p) fail(`participants ${reaperNow} and ${p} both hold REAPER`);
          reaperNow = p;
          reaperPid = pidOf(p);
        } else if (reaperNow >= 0 && reaperNow !== p) {
          if (cas && live && mem[i] !== 0)
            fail(
              `participant ${p} cleared the REAPER token of participant ${reaperNow}, which is alive and reaping`,
            );
          reaperNow = -1;
        } else if (reaperNow === p) reaperNow = -1;
      }
      if (i === this.COUNTER) {
        counterStores++;
        if (v !== mem[i] + 1) fail(`lost update: the counter went from ${mem[i]} to ${v}`);
        return;
      }
      if (i === H.HOLDER) {
        if (v !== 0) holding[p] = true;
        else if (mem[i] > 0 && mem[i] <= slots) {
          const q = ownerOfSlot(mem[i] - 1);
          if (q >= 0) holding[q] = false;
        }
      }
      if (!isSlotCell(i)) return;
      const s = Math.floor((i - HEADER_CELLS) / SLOT_CELLS);
      const k = (i - HEADER_CELLS) % SLOT_CELLS;
      if (k === S.TICKET && v !== 0) {
        const num = (v & 0x3fffffff) >>> 1;
        const hwm = mem[H.HIGH_WATER];
        if (num > hwm || num > slots)
          fail(`slot ${s} was given ticket ${num} above HIGH_WATER ${hwm} (${slots} slots)`);
      }
      if (k === S.TICKET && v === 0) {
        const q = ownerOfSlot(s);
        if (q >= 0) doorwayEnd[q] = -1;
      }
      if (k !== S.SLEEPERS && k !== S.OWNER) {
        const owner = pidOwner(mem[slotBase(s) + S.OWNER]);
        // The one write to a live participant's slot: a waiter revoking a retained ticket
        // (compareExchange from a value with the retained flag, bit 30, to 0).
        const revocation = k === S.TICKET && v === 0 && (mem[i] & 0x40000000) !== 0;
        if (owner >= 0 && owner !== p && !revocation && !deadPids.has(mem[slotBase(s) + S.OWNER]))
          fail(
            `participant ${p} wrote cell ${k} of slot ${s}, which live participant ${owner} owns`,
          );
      }
    };

    /**
     * Lost wake-ups. A participant that changes a cell somebody sleeps on must wake it: it
     * stores, reads the slot's sleeper count (which the sleeper raised before its last check)
     * and notifies. So once it has done LOST_WAKE_OPS more steps without notifying that cell
     * while the sleeper still sleeps, the wake-up is lost (it would sleep to its timeout).
     */
    const changedBy = new Array(n).fill(-1);
    const opsSince = new Array(n).fill(0);
    const onChange = (p, i, old, v) => {
      for (let q = 0; q < n; q++) {
        if (q === p || !blocked[q] || notified[q] || changedBy[q] >= 0) continue;
        const qb = base(q);
        if (
          status[q] === 'req' &&
          ctrl[qb + OP] === OPS.WAIT &&
          ctrl[qb + A] === i &&
          old === ctrl[qb + B] &&
          v !== old
        ) {
          changedBy[q] = p;
          opsSince[q] = 0;
        }
      }
    };
    const afterOp = (p) => {
      for (let q = 0; q < n; q++) {
        if (changedBy[q] !== p) continue;
        if (!blocked[q] || notified[q] || status[q] !== 'req') {
          changedBy[q] = -1;
          continue;
        }
        if (++opsSince[q] > LOST_WAKE_OPS)
          fail(
            `lost wake-up: participant ${p} changed cell ${this.cellName(ctrl[base(q) + A])}, on which participant ${q} sleeps, and went on for ${LOST_WAKE_OPS} steps without waking it`,
          );
      }
    };

    const perform = (p) => {
      const b = base(p);
      const op = ctrl[b + OP];
      const a = ctrl[b + A];
      const bb = ctrl[b + B];
      const cc = ctrl[b + C];
      switch (op) {
        case OPS.LOAD:
          return mem[a];
        case OPS.STORE:
          onWrite(p, a, bb);
          onChange(p, a, mem[a], bb);
          mem[a] = bb;
          return 0;
        case OPS.CAS: {
          const cur = mem[a];
          if (cur === bb) {
            onWrite(p, a, cc, true);
            onChange(p, a, cur, cc);
            mem[a] = cc;
          }
          return cur;
        }
        case OPS.WAIT:
          if (!blocked[p]) {
            if (mem[a] !== bb) return WAIT_NOT_EQUAL;
            blocked[p] = true;
            changedBy[p] = -1;
            wakeAt[p] = ctrl[CLOCK] + cc;
            stats.waits++;
            return undefined; // stays parked
          }
          return notified[p] ? WAIT_OK : WAIT_TIMED_OUT;
        case OPS.NOTIFY:
          for (let q = 0; q < n; q++) {
            if (changedBy[q] === p && ctrl[base(q) + A] === a) changedBy[q] = -1;
            if (
              status[q] === 'req' &&
              blocked[q] &&
              ctrl[base(q) + OP] === OPS.WAIT &&
              ctrl[base(q) + A] === a
            )
              notified[q] = true;
          }
          return 0;
        case OPS.SLEEP:
          stats.sleeps++;
          return 0;
        case OPS.START:
          return 0;
        case OPS.ALIVE:
          return deadPids.has(a) ? 0 : 1;
        case OPS.REG_ENTER:
          registry = p;
          return 0;
        case OPS.REG_LEAVE:
          if (registry === p) registry = -1;
          return 0;
        case OPS.OUT_ENTER:
          if (outsider >= 0) return 0;
          outsider = p;
          return 1;
        case OPS.OUT_LEAVE:
          if (outsider === p) outsider = -1;
          return 0;
        case OPS.OUT_HELD:
          return outsider >= 0 && outsider !== p ? 1 : 0;
        case OPS.ENTER: {
          if (inside >= 0)
            fail(`mutual exclusion: participants ${inside} and ${p} both hold the lock`);
          inside = p;
          stats.entries++;
          const od = a === 1;
          if (od !== pendingOwnerDied)
            fail(
              `participant ${p} entered with ownerDied=${od}, but ${pendingOwnerDied ? 'a holder had died inside' : 'no holder died inside'}`,
            );
          pendingOwnerDied = false;
          for (let q = 0; q < n; q++) {
            if (q !== p && doorwayEnd[q] >= 0 && doorwayEnd[q] < doorwayStart[p])
              fail(
                `first-come-first-served: participant ${p} (doorway began at step ${doorwayStart[p]}) entered before ${q} (doorway ended at step ${doorwayEnd[q]})`,
              );
            if (q !== p && doorwayEnd[q] >= 0 && ++passed[q * n + p] > bypassBound)
              fail(
                `bypass bound: participant ${p} entered ${passed[q * n + p]} times while ${q} waited (its doorway ended at step ${doorwayEnd[q]}; bound ${bypassBound})`,
              );
          }
          doorwayEnd[p] = -1;
          return 0;
        }
        case OPS.EXIT:
          if (inside === p) inside = -1;
          return 0;
        default:
          throw new Error(`unknown request ${op} from participant ${p}`);
      }
    };

    const crash = (p) => {
      crashes++;
      stats.crashes++;
      deadPids.add(pidOf(p));
      if (holding[p]) pendingOwnerDied = true;
      doorwayEnd[p] = -1; // first-come-first-served is owed to the living
      for (let q = 0; q < n; q++) if (changedBy[q] === p) changedBy[q] = -1; // died before its wake
      holding[p] = false;
      if (inside === p) inside = -1;
      if (registry === p) registry = -1;
      if (outsider === p) outsider = -1;
      dead[p] = true;
      grant(p, 0, true);
    };

    // Start the schedule: every participant runs to its first request.
    Atomics.add(ctrl, GEN, 1);
    Atomics.notify(ctrl, GEN);
    for (let p = 0; p < n; p++) settle(p);
    let last = -1;
    const maxSteps = sc.maxSteps ?? 100_000;
    const maxTime = (sc.maxTimeMs ?? 10_000) * 1000;
    for (;;) {
      if (violation !== null) break;
      choice.enabled.length = 0;
      for (let p = 0; p < n; p++) {
        if (!enabled(p)) continue;
        choice.enabled.push(p);
        const op = ctrl[base(p) + OP];
        choice.op[p] = op;
        choice.cell[p] = op <= OPS.NOTIFY ? ctrl[base(p) + A] : -op;
        choice.arg[p] = ctrl[base(p) + B];
        choice.sensitive[p] = holding[p] || (reaperNow === p && reaperPid === pidOf(p)) ? 1 : 0;
      }
      if (choice.enabled.length === 0) {
        // Everyone waits: let virtual time pass to the first deadline.
        let t = Number.POSITIVE_INFINITY;
        let live = false;
        for (let p = 0; p < n; p++) {
          if (status[p] !== 'req') continue;
          live = true;
          const op = ctrl[base(p) + OP];
          if (op === OPS.SLEEP || (op === OPS.WAIT && blocked[p])) t = Math.min(t, wakeAt[p]);
        }
        if (!live) break; // everyone is done
        if (!Number.isFinite(t)) {
          fail('deadlock: every participant waits and nothing can wake one');
          break;
        }
        ctrl[CLOCK] = t;
        continue;
      }
      if (step >= maxSteps || ctrl[CLOCK] >= maxTime) {
        fail(
          `no progress: the schedule did not end within ${maxSteps} steps / ${maxTime / 1000} ms of virtual time`,
        );
        break;
      }
      choice.step = step;
      choice.last = last;
      choice.crashable = sc.crashes !== undefined && crashes < sc.crashes;
      // A scripted death: a participant whose first incarnation is to die holding the lock
      // (`dies: 'holding'`) or REAPER (`dies: 'reaping'`) dies at its first step there.
      let c = -1;
      for (const q of choice.enabled) {
        const dies = sc.participants[q].dies;
        if (dies === undefined || incarnation[q] !== 0) continue;
        if (dies === 'holding' ? holding[q] : reaperNow === q && reaperPid === pidOf(q)) c = ~q;
      }
      if (c === -1) c = choose(choice);
      const p = c < 0 ? ~c : c;
      trace.push(c);
      if (this.record !== undefined) this.record.push(this.describe(step, p, c < 0));
      if (c < 0) {
        crash(p);
      } else {
        const r = perform(p);
        afterOp(p);
        if (r === undefined) {
          // a WAIT that blocked: no grant; the participant stays parked
          step++;
          ctrl[STEP] = step;
          ctrl[CLOCK]++;
          last = p;
          continue;
        }
        grant(p, r);
      }
      step++;
      ctrl[STEP] = step;
      ctrl[CLOCK]++;
      last = p;
      settle(p);
      if (states !== undefined) states.add(this.digest());
    }
    // Drain: a violation stops the schedule; crash everyone still parked so they return to GEN.
    draining = true;
    for (let p = 0; p < n; p++) {
      if (status[p] === 'req') {
        if (!dead[p]) {
          deadPids.add(pidOf(p));
          dead[p] = true;
        }
        grant(p, 0, true);
        settle(p);
      }
    }
    if (violation === null && crashes === 0) {
      // A schedule that ends without crashes leaves the lock as it found it.
      for (let s = 0; s < slots; s++) {
        const b = slotBase(s);
        for (const k of [S.CHOOSING, S.TICKET, S.SLEEPERS, S.OWNER])
          if (mem[b + k] !== 0) fail(`slot ${s} cell ${k} is ${mem[b + k]} after everyone closed`);
      }
      if (mem[H.HOLDER] !== 0) fail(`HOLDER is ${mem[H.HOLDER]} after everyone closed`);
      if (mem[H.REAPER] !== 0) fail(`REAPER is ${mem[H.REAPER]} after everyone closed`);
    }
    if (violation === null && mem[this.COUNTER] !== counterStores)
      fail(`the counter is ${mem[this.COUNTER]} after ${counterStores} increments`);
    stats.steps = step;
    return { violation, steps: step, trace, stats };
  }

  /** One step as a line of a replay's listing. */
  describe(step, p, crashed) {
    const b = base(p);
    const op = this.ctrl[b + OP];
    const name = OP_NAMES[op] ?? op;
    const a = this.ctrl[b + A];
    const args =
      op === OPS.LOAD || op === OPS.NOTIFY
        ? ` ${this.cellName(a)}`
        : op === OPS.STORE
          ? ` ${this.cellName(a)} = ${this.ctrl[b + B]}`
          : op === OPS.CAS
            ? ` ${this.cellName(a)} ${this.ctrl[b + B]} → ${this.ctrl[b + C]}`
            : op === OPS.WAIT
              ? ` ${this.cellName(a)} while ${this.ctrl[b + B]}`
              : op === OPS.SLEEP
                ? ` ${a} µs`
                : '';
    const cell = op <= OPS.CAS || op === OPS.WAIT ? ` (holds ${this.mem[a]})` : '';
    return `${String(step).padStart(6)} t=${this.ctrl[CLOCK]} p${p} ${crashed ? 'CRASH at ' : ''}${name}${args}${cell}`;
  }

  cellName(i) {
    const { H, S, HEADER_CELLS, SLOT_CELLS } = this.layout;
    if (i === this.COUNTER) return 'counter';
    if (i < HEADER_CELLS) return Object.keys(H).find((k) => H[k] === i) ?? `header${i}`;
    const s = Math.floor((i - HEADER_CELLS) / SLOT_CELLS);
    const k = (i - HEADER_CELLS) % SLOT_CELLS;
    return `${Object.keys(S).find((x) => S[x] === k) ?? k}[${s}]`;
  }

  /** A digest of the protocol state (for the count of distinct states covered). */
  digest() {
    const { H, S, slotBase } = this.layout;
    const m = this.mem;
    let h = (m[H.COLOUR] * 31 + m[H.HOLDER]) * 31 + m[H.HIGH_WATER];
    h = (h * 31 + m[H.OWNER_DIED]) * 31 + (m[H.REAPER] !== 0 ? 1 : 0);
    for (let s = 0; s < this.scenario.slots; s++) {
      const b = slotBase(s);
      h = (h * 31 + m[b + S.CHOOSING]) | 0;
      h = (h * 31 + m[b + S.TICKET]) | 0;
      h = (h * 31 + (m[b + S.OWNER] !== 0 ? 1 : 0)) | 0;
    }
    return h;
  }
}

export { OP_NAMES };
