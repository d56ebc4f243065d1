import { type Acquirer, BLOCKED, DONE, STEP_BACK } from './acquirer.js';
import type { Cells } from './backend.js';
import { BakeryError } from './errors.js';
import { H, S, slotBase } from './layout.js';
import { farSleepMs, MIN_SLEEP_MS, nextHandoffEstimate, nextPollCap } from './pacing.js';

/**
 * The waiting policy of one participant: how an acquisition waits between the protocol's steps
 * (spin, futex wait, sleep, poll), how far back in the queue a poller sleeps, and the two
 * drivers — blocking (`lockSync`) and asynchronous (`lock`) — that share it. The protocol
 * itself is {@link Acquirer}; recovery is behind {@link Stuck}.
 */

/** Longest blocking wait (ms): the backstop for a missed wake-up. */
const BACKSTOP_MS = 50;
/** Longest sleep of the next waiter in line while it polls (ms). */
export const MAX_SLEEP_MS = 2;
/** Node's timers fire at whole milliseconds: an async poll interval is never capped below this. */
const TIMER_MS = 1;

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
/** Block this thread for `ms` milliseconds (an `Atomics.wait` nobody wakes). */
export function sleepSync(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

/** Sleep without blocking the event loop (below half a millisecond: one turn of it). */
export function sleepAsync(ms: number): Promise<void> {
  return new Promise((resolve) => {
    if (ms < 0.5 && typeof setImmediate === 'function') setImmediate(resolve);
    else setTimeout(resolve, ms);
  });
}

/** Resolves when `p` settles or `signal` aborts, whichever is first (the wait is then re-checked). */
export function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

export function timeoutError(): BakeryError {
  return new BakeryError('BAKERY_TIMEOUT', 'timed out waiting for the lock');
}

export function abortError(signal: AbortSignal): BakeryError {
  return new BakeryError('BAKERY_ABORTED', 'lock() was aborted', { cause: signal.reason });
}

/** Add `delta` to cell `i` by compareExchange (sleeper counts). */
function addCell(cells: Cells, i: number, delta: number): void {
  const cas = cells.compareExchange!;
  let cur = cells.load(i);
  for (;;) {
    const seen = cas.call(cells, i, cur, (cur + delta) | 0);
    if (seen === cur) return;
    cur = seen;
  }
}

/** What a waiter that has been stuck asks recovery to do (see recovery.ts). */
export interface Stuck {
  /** A new acquisition begins: forget how long the last one stepped back. */
  beginAcquisition(): void;
  /** Stuck behind the same slot for staleAfterMs: reap or clear the slots it waits on. */
  checkStale(): void;
  /** The doorway stepped back (again) at `now`: after staleAfterMs of it, reap every dead slot. */
  stepBackStale(now: number): void;
}

/** {@link Waiting.plan}'s answers: the protocol is done; sleep `ms`; block on the watched cell. */
const ENTER = 0;
const SLEEP = 1;
const WAIT = 2;
/** What to do after a SLEEP: retry the doorway (after a step back), or poll the watched cell. */
const THEN_RETRY = 0;
const THEN_POLL = 1;

/** The waiting state of one acquisition (one per instance, reused: nothing is allocated). */
class Pacer {
  r = 0;
  deadline = 0;
  signal: AbortSignal | undefined = undefined;
  canWait = false;
  maxBackoff = MAX_SLEEP_MS;
  /** The shortest poll interval worth capping at (async: timers have 1 ms granularity). */
  minCap = MIN_SLEEP_MS;
  spins = 0;
  backoff = MIN_SLEEP_MS;
  lastCell = -1;
  stuckSince = -1;
  now = 0;
  ms = 0;
  counter = -1;
  after = THEN_RETRY;
  /** Polling far back in the queue while no time per acquisition is known: the backoff. */
  farBackoff = MIN_SLEEP_MS;

  reset(
    deadline: number,
    signal: AbortSignal | undefined,
    canWait: boolean,
    maxBackoff: number,
    minCap: number,
  ): this {
    this.deadline = deadline;
    this.minCap = minCap;
    this.signal = signal;
    this.canWait = canWait;
    this.maxBackoff = maxBackoff;
    this.spins = 0;
    this.backoff = MIN_SLEEP_MS;
    this.lastCell = -1;
    this.stuckSince = -1;
    this.farBackoff = MIN_SLEEP_MS;
    return this;
  }
}

/** One participant's waiting policy and drivers. */
export class Waiting {
  readonly #pacer = new Pacer();
  /** Measured time per acquisition while polling far back in the queue (0: not yet known). */
  #handoffMs = 0;
  /** The ACQUISITIONS count at this participant's last far-back poll, and its time (-1: none). */
  #polledCount = 0;
  #polledAt = -1;
  /** Longest blocking wait (Cells.wait): the backstop for a missed wake-up. */
  readonly #slice: number;
  readonly #blockingWait: boolean;

  constructor(
    private readonly cells: Cells,
    private readonly acq: Acquirer,
    private readonly stuck: Stuck,
    /** How many times the next waiter in line re-checks before sleeping. */
    private readonly spin: number,
    private readonly staleAfter: number,
    /** Whether the blocking driver may block this thread in Cells.wait. */
    canBlock: boolean,
  ) {
    this.#slice = Math.min(BACKSTOP_MS, staleAfter / 2);
    this.#blockingWait =
      cells.wait !== undefined &&
      cells.notify !== undefined &&
      cells.compareExchange !== undefined &&
      canBlock;
  }

  /** The blocking driver: returns once the protocol let us in; throws BAKERY_TIMEOUT. */
  acquireSync(deadline: number): void {
    const p = this.#pacer.reset(
      deadline,
      undefined,
      this.#blockingWait,
      MAX_SLEEP_MS,
      MIN_SLEEP_MS,
    );
    this.stuck.beginAcquisition();
    this.acq.begin();
    p.r = this.acq.advance();
    for (;;) {
      const action = this.#plan(p);
      if (action === ENTER) return;
      try {
        if (action === WAIT) this.cells.wait!(this.acq.blockCell, this.acq.blockValue, p.ms);
        else sleepSync(p.ms);
      } catch (err) {
        this.#abandonWait(p, action);
        throw err;
      }
      this.#resume(p, action);
    }
  }

  /** The asynchronous driver: never blocks the event loop; rejects BAKERY_TIMEOUT or BAKERY_ABORTED. */
  async acquireAsync(deadline: number, signal: AbortSignal | undefined): Promise<void> {
    const cells = this.cells;
    const canWait =
      cells.waitAsync !== undefined &&
      cells.notify !== undefined &&
      cells.compareExchange !== undefined;
    const p = this.#pacer.reset(deadline, signal, canWait, MAX_SLEEP_MS * 2, TIMER_MS);
    this.stuck.beginAcquisition();
    this.acq.begin();
    p.r = this.acq.advance();
    for (;;) {
      const action = this.#plan(p);
      if (action === ENTER) return;
      try {
        if (action === WAIT) {
          const w = cells.waitAsync!(this.acq.blockCell, this.acq.blockValue, p.ms);
          await (signal === undefined ? w : raceAbort(w, signal));
        } else {
          await sleepAbortable(p.ms, signal);
        }
      } catch (err) {
        this.#abandonWait(p, action);
        throw err;
      }
      this.#resume(p, action);
    }
  }

  /**
   * One acquisition's waiting policy, shared by both drivers: it runs the protocol until it
   * must wait and then says how — sleep `p.ms`, or block on the watched cell (after
   * announcing itself in the slot's SLEEPERS count) — and the driver does exactly that, the
   * blocking way or the asynchronous way, then calls {@link #resume}. Throws BAKERY_TIMEOUT or
   * BAKERY_ABORTED after withdrawing.
   */
  #plan(p: Pacer): number {
    const acq = this.acq;
    const cells = this.cells;
    for (;;) {
      const r = p.r;
      if (r === DONE) return ENTER;
      if (r === STEP_BACK) {
        if (p.signal?.aborted) throw abortError(p.signal);
        const now = performance.now();
        const left = p.deadline - now;
        if (left <= 0) throw timeoutError();
        this.stuck.stepBackStale(now);
        p.ms = Math.min(p.backoff, left);
        p.backoff = Math.min(p.backoff * 2, MAX_SLEEP_MS);
        p.after = THEN_RETRY;
        return SLEEP;
      }
      if (acq.blockCell !== p.lastCell) {
        p.lastCell = acq.blockCell;
        p.spins = 0;
        p.backoff = MIN_SLEEP_MS;
        p.stuckSince = -1;
        p.farBackoff = MIN_SLEEP_MS;
      }
      if (p.spins++ < this.spin && acq.ahead <= 1) {
        // Only the next in line (or one blocked on a doorway) spins: behind two or more
        // tickets nothing we wait for can happen within a spin. While spinning, re-read only
        // the cell we are blocked on; the scan resumes when it changes. (On shm every read is
        // a syscall: a full re-scan per spin costs O(slots).)
        if (cells.load(acq.blockCell) !== acq.blockValue) p.r = acq.advance();
        continue;
      }
      if (p.signal?.aborted) {
        acq.withdraw();
        throw abortError(p.signal);
      }
      const now = performance.now();
      const left = p.deadline - now;
      if (left <= 0) {
        acq.withdraw();
        throw timeoutError();
      }
      if (p.stuckSince < 0) p.stuckSince = now;
      else if (now - p.stuckSince >= this.staleAfter) {
        p.stuckSince = now;
        this.stuck.checkStale();
        p.r = acq.advance();
        continue;
      }
      if (p.canWait) {
        // Announce, re-check, then sleep only on the value just read: a releaser stores the
        // cell and then reads the sleeper count, so either it sees us or we see its store.
        const counter = slotBase(acq.blockSlot) + S.SLEEPERS;
        addCell(cells, counter, 1);
        p.r = acq.advance();
        if (p.r === BLOCKED && slotBase(acq.blockSlot) + S.SLEEPERS === counter) {
          p.counter = counter;
          p.ms = Math.min(left, this.#slice);
          return WAIT;
        }
        addCell(cells, counter, -1);
        if (p.r !== DONE) p.r = acq.advance();
        continue;
      }
      p.ms = Math.min(this.#pollDelay(p, now), left);
      p.now = now;
      p.after = THEN_POLL;
      return SLEEP;
    }
  }

  /**
   * How long a waiter that polls (a backend with no cross-process wake: shm) sleeps before it
   * looks again (the policy's arithmetic is in pacing.ts). Far back in the queue nothing can
   * happen for us until the acquisitions ahead have passed: sleep most of the time they should
   * take, measured from the lock's ACQUISITIONS count, up to staleAfterMs / 2. Next in line (or
   * blocked on a doorway): a doubling backoff from 20 µs, capped at half the time per
   * acquisition, so a handoff is noticed quickly. At 64 processes on shm every poll wakes a
   * cold Node process; this cut the polls from about 500 per waiter per second to about 6 per
   * acquisition.
   */
  #pollDelay(p: Pacer, now: number): number {
    const acq = this.acq;
    let h = this.#handoffMs;
    if (acq.ahead > 1) {
      const count = this.cells.load(H.ACQUISITIONS);
      if (
        this.#polledAt >= 0 &&
        count !== this.#polledCount &&
        now - this.#polledAt <= this.staleAfter
      ) {
        // A sample since this participant's last poll, maybe in an earlier acquisition: one
        // that polls once per acquisition must still learn. Not across a longer gap, when the
        // lock may have sat idle (far sleeps are at most staleAfterMs / 2).
        const sample = (now - this.#polledAt) / ((count - this.#polledCount) & 0x7fffffff);
        h = nextHandoffEstimate(h, sample);
        this.#handoffMs = h;
      }
      this.#polledCount = count;
      this.#polledAt = now;
      // Acquisitions until our predecessor has been and gone: the tickets ahead of ours less
      // the entries since the scan counted them (the holder's entry was already in the count
      // it read first). We are next at 1.
      const left = acq.ahead - ((count - acq.countAtBlock) & 0x7fffffff);
      if (left > 1) {
        p.backoff = h > 0 ? Math.max(MIN_SLEEP_MS, h / 8) : MIN_SLEEP_MS;
        if (h > 0) return farSleepMs(left, h, this.staleAfter / 2);
        // No time per acquisition yet: back off as the next waiter would.
        const ms = p.farBackoff;
        p.farBackoff = Math.min(ms * 2, p.maxBackoff);
        return ms;
      }
    }
    const cap = nextPollCap(h, p.minCap, p.maxBackoff);
    const ms = Math.min(p.backoff, cap);
    p.backoff = Math.min(ms * 2, cap);
    return ms;
  }

  /** A backend's wait failed (a native error): leave no sleeper count and no ticket behind. */
  #abandonWait(p: Pacer, action: number): void {
    if (action === WAIT) addCell(this.cells, p.counter, -1);
    this.acq.withdraw();
  }

  /** After the driver slept or waited as {@link #plan} said. */
  #resume(p: Pacer, action: number): void {
    const acq = this.acq;
    const cells = this.cells;
    if (action === WAIT) {
      addCell(cells, p.counter, -1);
      p.r = acq.advance();
    } else if (p.after === THEN_RETRY) {
      p.r = acq.advance();
    } else if (
      cells.load(acq.blockCell) !== acq.blockValue ||
      (acq.colourAtBlock >= 0 && cells.load(H.COLOUR) !== acq.colourAtBlock)
    ) {
      // Poll the watched cell, and the shared colour when the block depended on it (the one
      // condition that does not show in that cell); re-scan fully when either changed. The
      // staleAfterMs re-scan in #plan is the backstop. (Every waiter re-scanning every 50 ms was a
      // large CPU cost at 64 processes on shm: ~260 syscalls each.)
      p.r = acq.advance();
    }
  }
}

/** An async sleep that ends early (resolving) when `signal` aborts. */
export function sleepAbortable(ms: number, signal: AbortSignal | undefined): Promise<unknown> {
  const p = sleepAsync(ms);
  return signal === undefined ? p : raceAbort(p, signal);
}
