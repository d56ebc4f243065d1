import { Acquirer, BLOCKED, DONE, STEP_BACK, type TraceHooks } from './acquirer.js';
import type { Backend, Cells, Identity } from './backend.js';
import { BakeryError } from './errors.js';
import {
  ACCESS,
  BLACK,
  CLAIM_GEN_MASK,
  H,
  OUTSIDER_SLOT,
  reaperClaim,
  reaperToken,
  S,
  SLOT_WANTED_FRESH_MS,
  slotBase,
  WHITE,
} from './layout.js';
import { accessName, layoutAccess, raiseHighWater, scanLimit, validateLayout } from './memory.js';
import { freeOwner, readOwner, sameOwner } from './owner.js';
import { farSleepMs, MIN_SLEEP_MS, nextHandoffEstimate, nextPollCap } from './pacing.js';
import { checkTimeout, rangeError, typeError } from './validate.js';

/** Options accepted by every backend's `createMutex`/`openMutex`. */
export interface MutexOptions {
  /**
   * What releasing a lease with `ownerDied === true` without `markConsistent()` does:
   * `'manual'` (default, like pthread robust mutexes) makes the lock not recoverable for
   * everyone; `'auto'` treats the release as consistent.
   */
  robust?: 'manual' | 'auto';
  /** How many times the next waiter in line re-checks its condition before sleeping (default 16: on an oversubscribed machine the next holder is usually not running, and spinning only burns its CPU). Waiters further back do not spin. */
  spin?: number;
  /** Diagnostics hooks at doorway boundaries (the conformance suite uses them to check FIFO). */
  trace?: TraceHooks;
  /**
   * A waiter stuck behind the same participant for this long (ms) checks whether that
   * participant is still alive, and reaps it if it is certainly dead (default 250). Only
   * backends that can tell liveness reap.
   */
  staleAfterMs?: number;
  /**
   * When the instance claims its slot: `'open'` (default) — at open, when one is free; `'lock'`
   * — not before its first `lock()`/`lockSync()`/`tryLock()`/`markConsistent()`, so that an
   * instance opened early and used rarely holds no slot until then (and a tool that only
   * reaps, like `bakery reap`, never takes one).
   */
  claim?: 'open' | 'lock';
}

/**
 * Check {@link MutexOptions} and fill in the defaults — exactly what opening a Mutex checks, for
 * a backend that must refuse bad options before it creates anything (@bakery/shm). Throws
 * `BAKERY_INVALID_ARGUMENT` (a RangeError).
 */
export function checkMutexOptions(options: MutexOptions): {
  robust: 'manual' | 'auto';
  spin: number;
  staleAfterMs: number;
  claim: 'open' | 'lock';
} {
  // (`??`: null means the default too.)
  const robust = options.robust ?? 'manual';
  if (robust !== 'manual' && robust !== 'auto')
    throw rangeError(`robust must be 'manual' or 'auto'`);
  const spin = options.spin ?? DEFAULT_SPIN;
  if (!Number.isInteger(spin) || spin < 0) throw rangeError('spin must be a non-negative integer');
  const staleAfterMs = options.staleAfterMs ?? DEFAULT_STALE_MS;
  if (typeof staleAfterMs !== 'number' || !(staleAfterMs > 0)) {
    throw rangeError('staleAfterMs must be a positive number');
  }
  const claim = options.claim ?? 'open';
  if (claim !== 'open' && claim !== 'lock') throw rangeError(`claim must be 'open' or 'lock'`);
  return { robust, spin, staleAfterMs, claim };
}

/** Options of {@link Mutex.lock}. */
export interface LockOptions {
  /** Abort the wait; the promise rejects with `BAKERY_ABORTED` and the ticket is withdrawn. */
  signal?: AbortSignal;
  /** Give up after this many milliseconds with `BAKERY_TIMEOUT` (default: wait forever). */
  timeout?: number;
}

/** Options of {@link Mutex.lockSync}. */
export interface LockSyncOptions {
  /** Give up after this many milliseconds with `BAKERY_TIMEOUT` (default: wait forever). */
  timeout?: number;
}

/**
 * Proof of holding the lock, returned by `lock`, `lockSync` and `tryLock`. Release it exactly
 * once, or let `using` do it.
 *
 * @example
 * ```ts
 * {
 *   using lease = mutex.lockSync();
 *   // critical section
 * } // released here
 * ```
 */
export interface Lease {
  /**
   * True when the previous holder died inside the critical section (like pthread's
   * EOWNERDEAD): repair the protected data, then call {@link Lease.markConsistent}.
   */
  readonly ownerDied: boolean;
  /** Declare the protected data repaired after `ownerDied`. */
  markConsistent(): void;
  /** Leave the critical section. A second call throws `BAKERY_NOT_HELD` and changes nothing. */
  release(): void;
  /** Releases the lease if it is still held (for `using`). */
  [Symbol.dispose](): void;
}

/** One slot as seen by {@link Mutex.inspect}. */
export interface SlotSnapshot {
  slot: number;
  /** Who claimed the slot; null when free. */
  owner: Identity | null;
  choosing: boolean;
  /** Ticket number, 0 when none. */
  ticket: number;
  colour: 'white' | 'black' | null;
  /** Participants blocked in a backend wait on this slot's cells. */
  sleepers: number;
}

/** A point-in-time view of a lock's shared state (racy by nature: for diagnostics). */
export interface Snapshot {
  layoutVersion: number;
  capacity: number;
  /**
   * How the lock's participants access its cells (the ACCESS header cell): `'atomic'` — shared
   * memory with atomic instructions and futex wake-ups (sab, mmap, @bakery/shm's mapped path);
   * `'positional'` — one pread/pwrite per cell (@bakery/shm's pure-JS path).
   */
  access: 'atomic' | 'positional';
  /**
   * The backend of the instance that took the snapshot, e.g. `"shm /dev/shm/bakery.x (mapped)"`;
   * absent for a snapshot read without a Mutex.
   */
  backend?: string;
  /** The shared Black-White colour. */
  colour: 'white' | 'black';
  /** Slot of the current holder, or null. */
  holder: number | null;
  /** Slots ever claimed (scans cover slots below this). */
  highWater: number;
  ownerDied: 'consistent' | 'owner-died' | 'not-recoverable';
  /** Acquisitions so far (wraps at 2^31). */
  acquisitions: number;
  /** Largest ticket number ever issued; stays ≤ the number of participants. */
  maxTicket: number;
  /** This instance's own slot; -1 when it has none (or for a snapshot read without a Mutex). */
  self: number;
  /**
   * A participant without a slot looked for one within the last {@link SLOT_WANTED_FRESH_MS} ms
   * (the SLOT_WANTED hint): every release then frees the releaser's slot.
   */
  slotWanted: boolean;
  /**
   * Every slot below the high-water mark, and any slot above it that is claimed or holds
   * protocol state (an owner that died between its claim and raising the mark leaves a claimed
   * one, which `reapDead()` frees; anything else there is damage, and
   * {@link Snapshot.anomalies} says so).
   */
  slots: SlotSnapshot[];
  /**
   * Values no correct participant writes, each described in a sentence (empty when the state
   * is plausible): a HIGH_WATER outside 0..capacity or below a claimed slot, a free slot with a
   * CHOOSING or TICKET left on it, a ticket above the high-water mark, a HOLDER that names no
   * claimed slot, a COLOUR or OWNER_DIED out of range. A snapshot is racy by nature: a value
   * caught mid-update can look odd once; one that stays is damage (`bakery reap` clears stray
   * state on free slots).
   */
  anomalies: string[];
}

/**
 * A first-come-first-served lock shared by threads or processes. Every backend returns this
 * interface. One instance is one participant; it takes part through a slot of the lock's slot
 * table, claimed at open when one is free. Several `lock()` calls on one instance queue locally
 * in FIFO order and share the slot.
 *
 * **Slots.** A lock of capacity N has N slots, and every open instance that has claimed one
 * counts, the creator included (tools such as `bakery inspect` read without claiming). When
 * all are claimed, an open still succeeds, with no slot (`slot === -1`): `lock()`/`lockSync()`
 * then wait for a slot within their timeout as they wait for the lock (reaping owners that
 * died, where the backend can tell), and give up with `BAKERY_NO_FREE_SLOT`; `tryLock()`
 * throws `BAKERY_NO_FREE_SLOT` when the lock is free but no slot is. While someone waits for a
 * slot, every release frees the releaser's slot (it claims one again at its next lock), so more
 * participants than slots take turns; an instance that never locks keeps its slot until
 * `close()`.
 */
export interface Mutex {
  /**
   * Wait for the lock without blocking the event loop — first for a slot, if this instance has
   * none. `BAKERY_TIMEOUT` when the timeout passes waiting for the lock, `BAKERY_NO_FREE_SLOT`
   * when it passes waiting for a slot.
   */
  lock(options?: LockOptions): Promise<Lease>;
  /**
   * Wait for the lock, blocking this thread — first for a slot, if this instance has none.
   * Throws `BAKERY_ALREADY_HELD` if this instance holds or is acquiring it; `BAKERY_TIMEOUT`
   * or `BAKERY_NO_FREE_SLOT` as {@link Mutex.lock}.
   */
  lockSync(options?: LockSyncOptions): Lease;
  /**
   * Take the lock only if it is free right now; never waits and writes nothing when the lock is
   * busy (null). An instance without a slot claims one first, or throws `BAKERY_NO_FREE_SLOT`
   * when the lock is free but every slot is claimed.
   */
  tryLock(): Lease | null;
  /** Run `fn` holding the lock; the lease is released when `fn` settles. */
  withLock<T>(fn: (lease: Lease) => T | Promise<T>, options?: LockOptions): Promise<T>;
  /** True while this instance holds the lock. */
  readonly held: boolean;
  /** This instance's slot, or -1 while it has none (every slot was claimed: see above). */
  readonly slot: number;
  /** Read the shared state. */
  inspect(): Snapshot;
  /**
   * Reap now every slot whose owner is certainly dead, instead of waiting for a stuck waiter
   * to notice after `staleAfterMs`: its choosing flag and ticket are cleared and the slot is
   * freed; if it died holding the lock, the colour is handed on as its exit would and the next
   * acquirer gets `lease.ownerDied`. A free slot that still holds a CHOOSING flag or a ticket
   * (only damage leaves one) is cleared too. Returns how many slots were freed or cleared
   * (dead owners are found only on a backend that can tell liveness). Tools such as
   * `bakery reap` call this.
   *
   * @example
   * ```ts
   * const mutex = openMutex('jobs', { create: false });
   * console.log(`${mutex.reapDead()} dead participant(s) removed`);
   * mutex.close();
   * ```
   */
  reapDead(): number;
  /**
   * The way out of a poisoned lock, for an operator who has repaired the protected data: takes
   * the lock (waiting like `lockSync`, at most `timeout` ms) even though it is
   * `BAKERY_NOT_RECOVERABLE`, marks it consistent, and releases it. Returns true when the lock
   * was poisoned (or flagged owner-died) and is now consistent, false when there was nothing to
   * clear. `bakery mark-consistent <name>` calls this.
   *
   * @example
   * ```ts
   * repairTheData();
   * if (mutex.markConsistent({ timeout: 5_000 })) console.log('lock usable again');
   * ```
   */
  markConsistent(options?: LockSyncOptions): boolean;
  /** Free the slot (if any). Throws `BAKERY_ALREADY_HELD` while held or acquiring; a second close is a no-op. */
  close(): void;
}

/** A slot whose owner was found dead: who, and the generation of the claim that was judged. */
interface DeadClaim {
  owner: Identity;
  gen: number;
}

const BACKSTOP_MS = 50;
/** Waiting for a free slot: a doubling poll interval from 1 ms up to this. */
const SLOT_POLL_MAX_MS = 16;
/**
 * A participant that gave its slot up for a waiter claims again only once another participant
 * has claimed that slot, or after this long (ms).
 */
const SLOT_GRACE_MS = 4 * SLOT_POLL_MAX_MS;
const DEFAULT_STALE_MS = 250;
const MAX_SLEEP_MS = 2;
/** Node's timers fire at whole milliseconds: an async poll interval is never capped below this. */
const TIMER_MS = 1;
const DEFAULT_SPIN = 16;

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
function sleepSync(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

function sleepAsync(ms: number): Promise<void> {
  return new Promise((resolve) => {
    if (ms < 0.5 && typeof setImmediate === 'function') setImmediate(resolve);
    else setTimeout(resolve, ms);
  });
}

function addCell(cells: Cells, i: number, delta: number): void {
  const cas = cells.compareExchange!;
  let cur = cells.load(i);
  for (;;) {
    const seen = cas.call(cells, i, cur, (cur + delta) | 0);
    if (seen === cur) return;
    cur = seen;
  }
}

function defaultIdentity(): Identity {
  const pid = (globalThis as { process?: { pid?: number } }).process?.pid;
  return { pid: typeof pid === 'number' && pid > 0 ? pid : 1, tid: 0, startTime: 0 };
}

function timeoutError(): BakeryError {
  return new BakeryError('BAKERY_TIMEOUT', 'timed out waiting for the lock');
}

function noSlotError(capacity: number, waited: boolean): BakeryError {
  return new BakeryError(
    'BAKERY_NO_FREE_SLOT',
    waited
      ? `timed out waiting for a free slot: all ${capacity} slots of this lock stayed claimed`
      : `all ${capacity} slots of this lock are claimed (lock() and lockSync() wait for one)`,
  );
}

/** The SLOT_WANTED value for now: ms since the epoch, low 31 bits, never 0. */
function wantedNow(): number {
  return Date.now() & 0x7fffffff || 1;
}

function abortError(signal: AbortSignal): BakeryError {
  return new BakeryError('BAKERY_ABORTED', 'lock() was aborted', { cause: signal.reason });
}

/** The state of one wait for a free slot. */
interface SlotWait {
  deadline: number;
  signal: AbortSignal | undefined;
  /** The next poll interval (ms), doubling up to SLOT_POLL_MAX_MS. */
  backoff: number;
  /** How long to sleep now. */
  ms: number;
}

interface Waiter {
  resolve(lease: Lease): void;
  reject(err: unknown): void;
  deadline: number;
  signal: AbortSignal | undefined;
  cleanup: (() => void) | undefined;
}

/** {@link BakeryMutex} plan results besides DONE: sleep `ms`, or block on the watched cell. */
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

class LeaseImpl implements Lease {
  #mutex: BakeryMutex | null;
  #consistent = false;
  readonly ownerDied: boolean;

  constructor(mutex: BakeryMutex, ownerDied: boolean) {
    this.#mutex = mutex;
    this.ownerDied = ownerDied;
  }

  get active(): boolean {
    return this.#mutex !== null;
  }

  get consistent(): boolean {
    return this.#consistent;
  }

  markConsistent(): void {
    if (this.#mutex === null)
      throw new BakeryError('BAKERY_NOT_HELD', 'markConsistent() on a released lease');
    if (!this.ownerDied) return;
    this.#consistent = true;
    this.#mutex.clearOwnerDied();
  }

  release(): void {
    const m = this.#mutex;
    if (m === null) throw new BakeryError('BAKERY_NOT_HELD', 'lease already released');
    this.#mutex = null;
    m.releaseLease(this);
  }

  [Symbol.dispose](): void {
    if (this.#mutex !== null) this.release();
  }
}

/**
 * Core's Mutex over any backend. Backends call {@link openOn}; users never construct this
 * directly.
 */
export class BakeryMutex implements Mutex {
  readonly #backend: Backend;
  readonly #cells: Cells;
  readonly #acq: Acquirer;
  readonly #capacity: number;
  readonly #robust: 'manual' | 'auto';
  readonly #spin: number;
  readonly #blockingWait: boolean;
  /** Our slot, -1 while we have none. */
  #slot = -1;
  /** While we reap without a slot: we hold the backend's outsider lock. */
  #outsider = false;
  /** Our REAPER token while we reap without a slot, under the outsider lock (0: none yet). */
  #outsiderToken = 0;
  /** When we last reaped while waiting for a slot. */
  #slotReapedAt = Number.NEGATIVE_INFINITY;
  /** The slot we last gave up for a waiter (-1: none pending), its claim generation, and when. */
  #yieldedSlot = -1;
  /** The SLOT_WANTED value we last wrote (0: none). */
  #wanted = 0;
  #yieldedGen = 0;
  #yieldedAt = 0;
  readonly #identity: Identity;
  readonly #staleAfter: number;
  /** Longest blocking wait (Cells.wait): the backstop for a missed wake-up. */
  readonly #slice: number;
  /** Measured time per acquisition while polling far back in the queue (0: not yet known). */
  #handoffMs = 0;
  /** The ACQUISITIONS count at this participant's last far-back poll, and its time (-1: none). */
  #polledCount = 0;
  #polledAt = -1;
  readonly #isAlive: ((owner: Identity, slot?: number) => boolean) | undefined;
  #lastTryCheck = 0;
  readonly #pacer = new Pacer();
  #stepBackSince = -1;
  #closed = false;
  #lease: LeaseImpl | null = null;
  #busy = false;
  readonly #queue: Waiter[] = [];

  constructor(backend: Backend, options: MutexOptions = {}) {
    const cells = backend.cells;
    if (
      cells === null ||
      typeof cells !== 'object' ||
      typeof cells.load !== 'function' ||
      typeof cells.store !== 'function' ||
      !(cells.length > 0)
    ) {
      throw typeError('backend.cells must provide length, load and store');
    }
    if (cells.compareExchange === undefined && cells.withRegistryLock === undefined) {
      throw typeError('backend.cells must provide compareExchange or withRegistryLock');
    }
    const { robust, spin, staleAfterMs: stale, claim } = checkMutexOptions(options);
    this.#staleAfter = stale;
    this.#slice = Math.min(BACKSTOP_MS, stale / 2);
    this.#isAlive = backend.isAlive?.bind(backend);
    // The lock's recorded access mode must be the one these cells claim slots with: CAS-claiming
    // and registry-claiming participants would not exclude each other's claims.
    this.#capacity = validateLayout(
      cells,
      undefined,
      cells.compareExchange !== undefined ? ACCESS.ATOMIC : ACCESS.POSITIONAL,
    );
    this.#backend = backend;
    this.#cells = cells;
    this.#robust = robust;
    this.#spin = spin;
    this.#blockingWait =
      cells.wait !== undefined &&
      cells.notify !== undefined &&
      cells.compareExchange !== undefined &&
      backend.canBlock !== false;
    this.#identity = (backend.identity ?? defaultIdentity)();
    const id = this.#identity;
    if (!(Number.isInteger(id.pid) && id.pid > 0))
      throw typeError('identity pid must be a positive integer');
    this.#acq = new Acquirer(
      cells,
      -1,
      options.trace,
      this.#capacity,
      cells.compareExchange !== undefined
        ? undefined
        : <T>(fn: () => T): T => cells.withRegistryLock!(fn),
    );
    // A full table is no error: lock() waits for a slot (reaping the dead first, if any).
    if (claim === 'open') this.#takeSlot(true);
    trackOpen(this);
  }

  get held(): boolean {
    return this.#lease !== null;
  }

  get slot(): number {
    return this.#slot;
  }

  lockSync(options?: LockSyncOptions): Lease {
    return this.#lockSync(options, false);
  }

  /** lockSync's body; `poisonedOk` lets markConsistent() in to a not-recoverable lock. */
  #lockSync(options: LockSyncOptions | undefined, poisonedOk: boolean): LeaseImpl {
    this.#checkOpen();
    const timeout = checkTimeout(options?.timeout);
    if (this.#lease !== null || this.#busy) {
      throw new BakeryError(
        'BAKERY_ALREADY_HELD',
        'this Mutex instance holds or is acquiring the lock; open another instance for another participant',
      );
    }
    // No clock read on the way in when there is no timeout: the uncontended path stays free of it.
    const deadline = timeout === Number.POSITIVE_INFINITY ? timeout : performance.now() + timeout;
    if (this.#slot < 0) this.#waitForSlotSync(deadline);
    this.#acquireSync(deadline);
    return this.#enter(poisonedOk);
  }

  tryLock(): Lease | null {
    this.#checkOpen();
    if (this.#lease !== null || this.#busy) return null;
    const acq = this.#acq;
    if (this.#slot < 0 && acq.idle()) {
      // Free right now, but we have no slot: claim one, or say that none is free.
      const now = performance.now();
      const reap = now - this.#lastTryCheck >= this.#staleAfter;
      if (reap) this.#lastTryCheck = now;
      if (!this.#takeSlot(reap)) throw noSlotError(this.#capacity, false);
    }
    if (this.#slot < 0 || !acq.idle()) {
      // Someone holds or waits. If it has looked that way for a while, make sure it is not a
      // dead participant (at most once per staleAfterMs: a liveness check reads /proc).
      const now = performance.now();
      if (this.#isAlive !== undefined && now - this.#lastTryCheck >= this.#staleAfter) {
        this.#lastTryCheck = now;
        this.#reapDead();
      }
      return null;
    }
    acq.begin();
    const r = acq.advance();
    if (r === DONE) return this.#enter();
    if (r === BLOCKED) acq.withdraw();
    return null;
  }

  lock(options?: LockOptions): Promise<Lease> {
    let timeout: number;
    const signal = options?.signal;
    try {
      this.#checkOpen();
      timeout = checkTimeout(options?.timeout);
      if (signal !== undefined && !(signal instanceof AbortSignal)) {
        throw typeError('signal must be an AbortSignal');
      }
    } catch (err) {
      return Promise.reject(err);
    }
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const deadline = timeout === Number.POSITIVE_INFINITY ? timeout : performance.now() + timeout;
    return new Promise<Lease>((resolve, reject) => {
      const w: Waiter = { resolve, reject, deadline, signal, cleanup: undefined };
      if (!this.#busy && this.#lease === null && this.#queue.length === 0) {
        this.#start(w);
        return;
      }
      // Queue locally behind this instance's current holder/acquirer.
      const drop = (err: BakeryError) => {
        const k = this.#queue.indexOf(w);
        if (k < 0) return;
        this.#queue.splice(k, 1);
        w.cleanup?.();
        reject(err);
      };
      let timer: ReturnType<typeof setTimeout> | undefined;
      if (Number.isFinite(timeout)) timer = setTimeout(() => drop(timeoutError()), timeout);
      const onAbort = () => drop(abortError(signal!));
      signal?.addEventListener('abort', onAbort, { once: true });
      w.cleanup = () => {
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      this.#queue.push(w);
    });
  }

  async withLock<T>(fn: (lease: Lease) => T | Promise<T>, options?: LockOptions): Promise<T> {
    if (typeof fn !== 'function') throw typeError('withLock needs a function');
    const lease = (await this.lock(options)) as LeaseImpl;
    try {
      return await fn(lease);
    } finally {
      if (lease.active) lease.release();
    }
  }

  inspect(): Snapshot {
    this.#checkOpen();
    const snap = snapshot(this.#cells, this.#slot);
    if (this.#backend.description !== undefined) snap.backend = this.#backend.description;
    return snap;
  }

  reapDead(): number {
    this.#checkOpen();
    return this.#reapDead(true);
  }

  close(): void {
    if (this.#closed) return;
    if (this.#lease !== null || this.#busy || this.#queue.length > 0) {
      throw new BakeryError(
        'BAKERY_ALREADY_HELD',
        'close() while this instance holds or waits for the lock',
      );
    }
    // Free the slot before marking the instance closed: if freeing fails (a registry timeout,
    // an I/O error) the instance stays open and close() can be retried; the backend's fds are
    // released only once the slot is free, or the slot would leak with no way to free it.
    if (this.#slot >= 0) this.#freeSlot();
    this.#closed = true;
    untrackOpen(this);
    this.#backend.close?.();
  }

  /**
   * @internal The process (or worker) is exiting without close(): leave the lock as a death
   * would, but at once — withdraw a pending acquisition; if held, mark the owner dead (the data
   * it protected may be half-updated), hand the colour on and drop the ticket; free the slot.
   */
  abandon(): void {
    if (this.#closed) return;
    this.#closed = true;
    untrackOpen(this);
    const cells = this.#cells;
    if (this.#lease !== null) {
      // Same order as a reaper's (OWNER_DIED, colour, HOLDER last), in case we are killed
      // half-way through our own exit handler.
      if (cells.load(H.OWNER_DIED) !== 2) cells.store(H.OWNER_DIED, 1);
      this.#acq.passColour();
      cells.store(H.HOLDER, 0);
      this.#acq.exit();
      this.#lease = null;
    } else if (this.#busy && this.#slot >= 0) {
      this.#acq.withdraw();
    }
    if (this.#slot >= 0) this.#freeSlot();
    this.#backend.close?.();
  }

  /** Free our slot (we then have none). */
  #freeSlot(): void {
    const cells = this.#cells;
    const slot = this.#slot;
    const b = slotBase(slot);
    const free = () => {
      // Already zero after a release or withdrawal; a free slot must hold no protocol state.
      if (cells.load(b + S.CHOOSING) !== 0) cells.store(b + S.CHOOSING, 0);
      if (cells.load(b + S.TICKET) !== 0) cells.store(b + S.TICKET, 0);
      // The lease goes with OWNER_LEASE = 0 already stored: no prober can take us for dead.
      freeOwner(cells, slot, () => this.#backend.freeing?.(slot));
    };
    if (cells.compareExchange !== undefined) free();
    else cells.withRegistryLock!(free);
    this.#slot = -1;
    this.#acq.rebind(-1);
  }

  #ownerOf(s: number): Identity | null {
    return readOwner(this.#cells, s);
  }

  /** Is slot `s` owned by a participant that is certainly dead? Returns its identity if so. */
  #deadOwner(s: number): DeadClaim | null {
    if (s < 0 || s === this.#slot || this.#isAlive === undefined) return null;
    if (s >= this.#capacity) return null;
    // The claim's generation before its owner: if the slot is freed and claimed again (even by
    // the same thread, with the same identity) after this, the reaper's re-check sees it.
    const gen = this.#cells.load(slotBase(s) + S.CLAIM_GEN);
    const owner = this.#ownerOf(s);
    if (owner === null || this.#isAlive(owner, s)) return null;
    return { owner, gen };
  }

  /**
   * Reap every slot below the high-water mark whose owner is certainly dead — with `all`, every
   * slot of the table: an owner can die between its claim and raising HIGH_WATER, and only a
   * scan of the whole table frees such a slot (else a table full of them turns every newcomer
   * away for good; found by the schedule explorer, apps/explore). Returns how many slots were
   * freed or cleared. Used by tryLock and a stepping-back doorway (rate-limited; their
   * trouble is a ticket, always below the mark), and with `all` by a participant that waits
   * for a slot and by `reapDead()` (tools).
   */
  #reapDead(all = false): number {
    const cells = this.#cells;
    const outsider = this.#slot < 0 && cells.compareExchange !== undefined;
    // Without a slot we have no claim to make a REAPER token of: we reap as the holder of the
    // backend's outsider lock, with a token of a new OUTSIDER_GEN — or, where there is none
    // (or another outsider holds it), only clear stray state (which needs no REAPER).
    // The generation is written only when there is a slot to reap (see #reap): judging writes
    // nothing.
    const out = outsider ? this.#backend.outsider : undefined;
    const entered = out?.enter() === true;
    this.#outsider = entered;
    try {
      const limit = all ? this.#capacity : scanLimit(cells, this.#capacity);
      let n = 0;
      for (let s = 0; s < limit; s++) {
        const dead = outsider && !entered ? null : this.#deadOwner(s);
        if (dead !== null ? this.#reap(s, dead) : this.#clearStray(s)) n++;
      }
      return n;
    } finally {
      if (entered) {
        this.#outsider = false;
        this.#outsiderToken = 0;
        out!.leave();
      }
    }
  }

  /**
   * Free slot `j` of a dead owner, serialised with other reapers (the REAPER word by
   * compareExchange, else the backend's registry lock). Under it: re-check that j still has
   * the same dead owner; if j died inside the critical section, hand the colour on exactly as
   * its exit would and flag ownerDied; then clear j's choosing and ticket (for a dead waiter
   * this is a withdrawal: no colour write) and free the slot; wake everyone sleeping on j.
   */
  /**
   * Whether the reaper whose token is in REAPER is certainly gone: its claim is over (the slot
   * is free, or claimed again: another generation), or the slot's owner is dead. A token that
   * names no slot is damage, and gone too. A live reaper's token is never judged gone.
   */
  #reaperGone(token: number): boolean {
    const { slot, gen } = reaperClaim(token);
    if (slot === OUTSIDER_SLOT) {
      // A reaper without a slot: gone once its generation is not the current one, or nobody
      // holds the outsider lock. A backend without one has no outsiders: such a token is damage.
      const out = this.#backend.outsider;
      if (out === undefined) return true;
      if ((this.#cells.load(H.OUTSIDER_GEN) & CLAIM_GEN_MASK) !== gen) return true;
      return out.held() === false;
    }
    if (slot < 0 || slot >= this.#capacity) return true;
    if ((this.#cells.load(slotBase(slot) + S.CLAIM_GEN) & CLAIM_GEN_MASK) !== gen) return true;
    const owner = this.#ownerOf(slot);
    return owner === null || !this.#isAlive!(owner, slot);
  }

  #reap(j: number, dead: DeadClaim): boolean {
    const cells = this.#cells;
    const body = (): boolean => {
      // The same claim (same generation), the same owner, and still dead.
      if (cells.load(slotBase(j) + S.CLAIM_GEN) !== dead.gen) return false;
      const now = this.#ownerOf(j);
      if (!sameOwner(now, dead.owner) || this.#isAlive!(now!, j)) return false;
      const b = slotBase(j);
      if (cells.load(H.HOLDER) === j + 1) {
        // OWNER_DIED, then the colour, then HOLDER = 0 LAST: all three are idempotent, so if
        // this reaper dies in between, the next one still sees HOLDER = j + 1 and redoes the
        // repair. (Clearing HOLDER first let a second reaper take j for a mere waiter and the
        // next holder miss ownerDied: found by the spin model, model/bakery.pml.)
        const t = cells.load(b + S.TICKET);
        if (cells.load(H.OWNER_DIED) !== 2) cells.store(H.OWNER_DIED, 1);
        if (t !== 0) cells.store(H.COLOUR, (t & 1) === BLACK ? WHITE : BLACK);
        cells.store(H.HOLDER, 0);
      }
      cells.store(b + S.CHOOSING, 0);
      cells.store(b + S.TICKET, 0);
      freeOwner(cells, j);
      if (cells.notify !== undefined) {
        cells.notify(b + S.TICKET, Number.POSITIVE_INFINITY);
        cells.notify(b + S.CHOOSING, Number.POSITIVE_INFINITY);
      }
      return true;
    };
    if (cells.compareExchange === undefined) return cells.withRegistryLock!(body);
    // The REAPER word holds the token of our claim of our slot (slot + its claim generation):
    // unique per claim, so a token whose claim is over — the slot freed, reclaimed (new
    // generation), or its owner dead — can be cleared, and the clearing CAS succeeds only if
    // the word still holds that very token. No reused pid or thread id can fake or block it.
    if (this.#slot < 0 && this.#outsider && this.#outsiderToken === 0) {
      // Our first reap under this hold of the outsider lock: a new outsider generation, so that
      // a token of an earlier holder (dead now) never matches ours.
      const gen = (cells.load(H.OUTSIDER_GEN) + 1) & CLAIM_GEN_MASK;
      cells.store(H.OUTSIDER_GEN, gen);
      this.#outsiderToken = reaperToken(OUTSIDER_SLOT, gen);
    }
    const me =
      this.#slot >= 0
        ? reaperToken(this.#slot, cells.load(slotBase(this.#slot) + S.CLAIM_GEN))
        : this.#outsiderToken;
    if (me === 0) return false;
    for (;;) {
      const r = cells.compareExchange(H.REAPER, 0, me);
      if (r === 0) break;
      if (r === me || !this.#reaperGone(r)) return false;
      cells.compareExchange(H.REAPER, r, 0);
    }
    try {
      return body();
    } finally {
      cells.store(H.REAPER, 0);
    }
  }

  /**
   * The doorway steps back while the highest ticket's owner has not entered or withdrawn. If
   * that owner is dead it never will, and nobody who steps back reaches the waiting scan where
   * stale owners are checked (found by the spin model): so stepping back for staleAfterMs
   * counts as being stuck, and then every slot is checked. Returns true when it checked.
   */
  #stepBackStale(now: number): boolean {
    if (this.#stepBackSince < 0) {
      this.#stepBackSince = now;
      return false;
    }
    if (now - this.#stepBackSince < this.#staleAfter) return false;
    this.#stepBackSince = now;
    this.#reapDead();
    return true;
  }

  /**
   * Called while stuck: reap the slot we sleep behind and the slot the scan is at, if its
   * owner is dead; clear them if they are free but hold protocol state.
   */
  #checkStale(): void {
    const acq = this.#acq;
    for (const s of [acq.blockSlot, acq.scanSlot]) {
      if (s < 0) continue;
      const dead = this.#deadOwner(s);
      if (dead !== null) this.#reap(s, dead);
      else this.#clearStray(s);
    }
  }

  /**
   * A free slot (OWNER = 0) holds no protocol state in any correct execution: claims find it
   * zeroed and every free (close, reap, exit) zeroes CHOOSING and TICKET before OWNER. So state
   * left on a free slot is damage, and a waiter would wait on it forever. Clear it under a
   * temporary claim of the slot (OWNER = our pid by compareExchange, or under the registry
   * lock), so that no participant can claim the slot and take a ticket there while we zero
   * it; a HOLDER naming the free slot is cleared by compareExchange only (HOLDER is written
   * outside the registry lock). Returns whether anything was cleared.
   */
  #clearStray(s: number): boolean {
    const cells = this.#cells;
    const b = slotBase(s);
    const cas = cells.compareExchange?.bind(cells);
    const body = (): boolean => {
      if (cells.load(b + S.OWNER) !== 0) return false;
      if (cells.load(b + S.CHOOSING) === 0 && cells.load(b + S.TICKET) === 0) return false;
      if (cas !== undefined) {
        if (cas(b + S.OWNER, 0, this.#identity.pid) !== 0) return false;
      } else {
        cells.store(b + S.OWNER, this.#identity.pid);
      }
      cells.store(b + S.CHOOSING, 0);
      cells.store(b + S.TICKET, 0);
      cas?.(H.HOLDER, s + 1, 0);
      cells.store(b + S.OWNER, 0);
      return true;
    };
    const cleared = cas !== undefined ? body() : cells.withRegistryLock!(body);
    if (cleared && cells.notify !== undefined) {
      cells.notify(b + S.TICKET, Number.POSITIVE_INFINITY);
      cells.notify(b + S.CHOOSING, Number.POSITIVE_INFINITY);
    }
    return cleared;
  }

  /** @internal Called by a lease that holds the lock. */
  clearOwnerDied(): void {
    this.#cells.store(H.OWNER_DIED, 0);
  }

  markConsistent(options?: LockSyncOptions): boolean {
    const lease = this.#lockSync(options, true);
    const was = lease.ownerDied;
    lease.markConsistent();
    lease.release();
    return was;
  }

  /** @internal Called by a lease exactly once. */
  releaseLease(lease: LeaseImpl): void {
    const cells = this.#cells;
    if (lease.ownerDied && !lease.consistent) {
      cells.store(H.OWNER_DIED, this.#robust === 'auto' ? 0 : 2);
    }
    cells.store(H.HOLDER, 0);
    this.#acq.exit();
    this.#lease = null;
    // Someone waits for a slot and nothing of ours is queued: give ours up (we claim one again
    // at our next lock), so that more participants than slots take turns.
    if (this.#queue.length === 0 && this.#slotWanted()) {
      try {
        const slot = this.#slot;
        const gen = cells.load(slotBase(slot) + S.CLAIM_GEN);
        this.#freeSlot();
        this.#yieldedSlot = slot;
        this.#yieldedGen = gen;
        this.#yieldedAt = performance.now();
      } catch {
        // Could not free it (a registry timeout): we keep it; the lease is released all the same.
      }
    }
    this.#pump();
  }

  #checkOpen(): void {
    if (this.#closed) throw new BakeryError('BAKERY_CLOSED', 'this Mutex instance is closed');
  }

  /**
   * Claim a free slot if there is one (after reaping dead owners, when `reap` and the table is
   * full), take it as ours and tell the backend. Returns whether we now have a slot.
   */
  #takeSlot(reap: boolean): boolean {
    let s = this.#claimFree();
    if (s < 0 && reap && this.#isAlive !== undefined && this.#reapDead(true) > 0)
      s = this.#claimFree();
    if (s < 0) return false;
    this.#slot = s;
    this.#acq.rebind(s);
    // Before our first doorway (a backend takes the slot's lease here).
    this.#backend.claimed?.(s);
    // SLOT_WANTED stays: others may still wait (it goes stale once nobody asks any more).
    return true;
  }

  /** Claim the first free slot (compareExchange, or under the registry lock); -1 if none. */
  #claimFree(): number {
    const cells = this.#cells;
    const capacity = this.#capacity;
    const id = this.#identity;
    const cas = cells.compareExchange?.bind(cells);
    const attempt = (): number => {
      for (let s = 0; s < capacity; s++) {
        const b = slotBase(s);
        if (cells.load(b + S.OWNER) !== 0) continue;
        if (cas !== undefined) {
          if (cas(b + S.OWNER, 0, id.pid) !== 0) continue;
        } else {
          cells.store(b + S.OWNER, id.pid);
        }
        cells.store(b + S.OWNER_TID, id.tid);
        cells.store(b + S.OWNER_START_LO, (id.startTime % 2 ** 32) | 0);
        cells.store(b + S.OWNER_START_HI, Math.floor(id.startTime / 2 ** 32) | 0);
        cells.store(b + S.OWNER_NS, (id.ns ?? 0) | 0);
        // No lease yet (the backend sets it once one is held); a reaper from an older version
        // may have left it set.
        cells.store(b + S.OWNER_LEASE, 0);
        // A new claim, a new generation: a REAPER token of an earlier claim of this slot no
        // longer matches, so it can be cleared without asking whether the old owner lives.
        cells.store(b + S.CLAIM_GEN, (cells.load(b + S.CLAIM_GEN) + 1) & CLAIM_GEN_MASK);
        // A free slot holds no protocol state unless something damaged it; whatever was left
        // here is ours now, and dropping it is a withdrawal (wake whoever waited on it).
        if (cells.load(b + S.CHOOSING) !== 0 || cells.load(b + S.TICKET) !== 0) {
          cells.store(b + S.CHOOSING, 0);
          cells.store(b + S.TICKET, 0);
          if (cells.notify !== undefined) {
            cells.notify(b + S.TICKET, Number.POSITIVE_INFINITY);
            cells.notify(b + S.CHOOSING, Number.POSITIVE_INFINITY);
          }
        }
        // Raise the high-water mark before our first doorway, so every later scan covers us.
        raiseHighWater(cells, s + 1);
        return s;
      }
      return -1;
    };
    return cas !== undefined ? attempt() : cells.withRegistryLock!(attempt);
  }

  /**
   * One look for a free slot while lock()/lockSync() waits for one: true once we have a slot;
   * else says (in `w.ms`) how long to sleep before the next look, after asking for a slot
   * (SLOT_WANTED: releasers then free theirs). Reaps dead owners at most once per
   * staleAfterMs. Throws BAKERY_NO_FREE_SLOT past the deadline, BAKERY_ABORTED on abort.
   */
  #lookForSlot(w: SlotWait): boolean {
    if (w.signal?.aborted) throw abortError(w.signal);
    const now = performance.now();
    if (this.#yieldedSlot >= 0) {
      // We gave our slot up for a waiter: let one take it before we claim again, or our next
      // lock would win it back at once, and the waiters would starve (SLOT_GRACE_MS bounds
      // this, should the waiter be gone).
      const taken =
        this.#cells.load(slotBase(this.#yieldedSlot) + S.CLAIM_GEN) !== this.#yieldedGen;
      if (taken || now - this.#yieldedAt >= SLOT_GRACE_MS) this.#yieldedSlot = -1;
    }
    const deferring = this.#yieldedSlot >= 0;
    if (!deferring) {
      const reap = now - this.#slotReapedAt >= this.#staleAfter;
      if (reap) this.#slotReapedAt = now;
      if (this.#takeSlot(reap)) return true;
    }
    const left = w.deadline - now;
    if (left <= 0) throw noSlotError(this.#capacity, true);
    // Ask for a slot — not while deferring: the slot we gave up is free, and asking would only
    // make others give theirs up too.
    if (!deferring) {
      this.#wanted = wantedNow();
      this.#cells.store(H.SLOT_WANTED, this.#wanted);
    }
    w.ms = Math.min(w.backoff, left);
    w.backoff = Math.min(w.backoff * 2, SLOT_POLL_MAX_MS);
    return false;
  }

  #waitForSlotSync(deadline: number): void {
    const w: SlotWait = { deadline, signal: undefined, backoff: 1, ms: 0 };
    while (!this.#lookForSlot(w)) sleepSync(w.ms);
  }

  async #waitForSlotAsync(deadline: number, signal: AbortSignal | undefined): Promise<void> {
    const w: SlotWait = { deadline, signal, backoff: 1, ms: 0 };
    while (!this.#lookForSlot(w)) await this.#sleepAbortable(w.ms, signal);
  }

  /**
   * Whether a participant without a slot asked for one lately (a fresh SLOT_WANTED): then we
   * free ours at release. A stale request is cleared, so that releases skip the clock again.
   */
  #slotWanted(): boolean {
    const cells = this.#cells;
    const w = cells.load(H.SLOT_WANTED);
    if (w === 0) return false;
    // Our own request, from before we found a slot: nobody else asked since (they would have
    // written their own time; one in the same millisecond is missed until its next look).
    if (w === this.#wanted) return false;
    if (((wantedNow() - w) & 0x7fffffff) < SLOT_WANTED_FRESH_MS) return true;
    if (cells.compareExchange !== undefined) cells.compareExchange(H.SLOT_WANTED, w, 0);
    else cells.store(H.SLOT_WANTED, 0);
    return false;
  }

  #enter(poisonedOk = false): LeaseImpl {
    const cells = this.#cells;
    cells.store(H.HOLDER, this.#slot + 1);
    const od = cells.load(H.OWNER_DIED);
    if (od === 2 && !poisonedOk) {
      // Refused: this is not an acquisition (ACQUISITIONS is left alone).
      cells.store(H.HOLDER, 0);
      this.#acq.exit();
      this.#pump();
      throw new BakeryError(
        'BAKERY_NOT_RECOVERABLE',
        'a previous holder died and the data it protected was never marked consistent; once the data is repaired, clear it with `bakery mark-consistent <name>` (or mutex.markConsistent())',
      );
    }
    cells.store(H.ACQUISITIONS, (cells.load(H.ACQUISITIONS) + 1) & 0x7fffffff);
    const lease = new LeaseImpl(this, od !== 0);
    this.#lease = lease;
    return lease;
  }

  /**
   * One acquisition's waiting policy, shared by both drivers: it runs the protocol until it
   * must wait and then says how — sleep `p.ms`, or block on `p.cell` holding `p.value` (after
   * announcing itself in the slot's SLEEPERS count) — and the driver does exactly that, the
   * blocking way or the asynchronous way, then calls {@link #resume}. Throws BAKERY_TIMEOUT or
   * BAKERY_ABORTED after withdrawing.
   */
  #plan(p: Pacer): number {
    const acq = this.#acq;
    const cells = this.#cells;
    for (;;) {
      const r = p.r;
      if (r === DONE) return DONE;
      if (r === STEP_BACK) {
        if (p.signal?.aborted) throw abortError(p.signal);
        const now = performance.now();
        const left = p.deadline - now;
        if (left <= 0) throw timeoutError();
        this.#stepBackStale(now);
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
      if (p.spins++ < this.#spin && acq.ahead <= 1) {
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
      else if (now - p.stuckSince >= this.#staleAfter) {
        p.stuckSince = now;
        this.#checkStale();
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
    const acq = this.#acq;
    let h = this.#handoffMs;
    if (acq.ahead > 1) {
      const count = this.#cells.load(H.ACQUISITIONS);
      if (
        this.#polledAt >= 0 &&
        count !== this.#polledCount &&
        now - this.#polledAt <= this.#staleAfter
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
        if (h > 0) return farSleepMs(left, h, this.#staleAfter / 2);
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
    if (action === WAIT) addCell(this.#cells, p.counter, -1);
    this.#acq.withdraw();
  }

  /** After the driver slept or waited as {@link #plan} said. */
  #resume(p: Pacer, action: number): void {
    const acq = this.#acq;
    const cells = this.#cells;
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

  #acquireSync(deadline: number): void {
    const p = this.#pacer.reset(
      deadline,
      undefined,
      this.#blockingWait,
      MAX_SLEEP_MS,
      MIN_SLEEP_MS,
    );
    this.#stepBackSince = -1;
    this.#acq.begin();
    p.r = this.#acq.advance();
    for (;;) {
      const action = this.#plan(p);
      if (action === DONE) return;
      try {
        if (action === WAIT) this.#cells.wait!(this.#acq.blockCell, this.#acq.blockValue, p.ms);
        else sleepSync(p.ms);
      } catch (err) {
        this.#abandonWait(p, action);
        throw err;
      }
      this.#resume(p, action);
    }
  }

  async #acquireAsync(deadline: number, signal: AbortSignal | undefined): Promise<void> {
    const cells = this.#cells;
    const canWait =
      cells.waitAsync !== undefined &&
      cells.notify !== undefined &&
      cells.compareExchange !== undefined;
    const p = this.#pacer.reset(deadline, signal, canWait, MAX_SLEEP_MS * 2, TIMER_MS);
    this.#stepBackSince = -1;
    this.#acq.begin();
    p.r = this.#acq.advance();
    for (;;) {
      const action = this.#plan(p);
      if (action === DONE) return;
      try {
        if (action === WAIT) {
          const w = cells.waitAsync!(this.#acq.blockCell, this.#acq.blockValue, p.ms);
          await (signal === undefined ? w : raceAbort(w, signal));
        } else {
          await this.#sleepAbortable(p.ms, signal);
        }
      } catch (err) {
        this.#abandonWait(p, action);
        throw err;
      }
      this.#resume(p, action);
    }
  }

  #sleepAbortable(ms: number, signal: AbortSignal | undefined): Promise<unknown> {
    const p = sleepAsync(ms);
    return signal === undefined ? p : raceAbort(p, signal);
  }

  #start(w: Waiter): void {
    this.#busy = true;
    const acquired =
      this.#slot >= 0
        ? this.#acquireAsync(w.deadline, w.signal)
        : this.#waitForSlotAsync(w.deadline, w.signal).then(() =>
            this.#acquireAsync(w.deadline, w.signal),
          );
    acquired.then(
      () => {
        this.#busy = false;
        let lease: Lease;
        try {
          lease = this.#enter();
        } catch (err) {
          w.reject(err);
          return;
        }
        w.resolve(lease);
      },
      (err) => {
        this.#busy = false;
        w.reject(err);
        this.#pump();
      },
    );
  }

  #pump(): void {
    if (this.#busy || this.#lease !== null) return;
    const w = this.#queue.shift();
    if (w === undefined) return;
    w.cleanup?.();
    this.#start(w);
  }
}

/**
 * Instances open in this thread, so that a process (or worker) exiting without close() frees
 * its slots — and, if it exits holding the lock, leaves it the way a death would (ownerDied).
 * `worker.terminate()` and SIGKILL run no exit handlers: those owners are reaped instead.
 */
const open = new Set<BakeryMutex>();
let hooked = false;

function trackOpen(m: BakeryMutex): void {
  open.add(m);
  if (hooked) return;
  const proc = (globalThis as { process?: { once?(event: string, fn: () => void): unknown } })
    .process;
  if (typeof proc?.once !== 'function') return;
  hooked = true;
  proc.once('exit', () => {
    for (const m of open) {
      try {
        m.abandon();
      } catch {
        // best effort at exit: the survivors' reapers handle whatever is left
      }
    }
  });
}

function untrackOpen(m: BakeryMutex): void {
  open.delete(m);
}

/** Resolves when `p` settles or `signal` aborts, whichever is first (the wait is then re-checked). */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
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

/**
 * Read a lock's shared state without being a participant (no slot is claimed). The memory must
 * have passed {@link validateLayout}. `self` is reported as -1.
 */
export function snapshot(cells: Cells, self = -1): Snapshot {
  const capacity = cells.load(H.CAPACITY);
  const raw = cells.load(H.HIGH_WATER);
  const hwm = scanLimit(cells, capacity);
  const anomalies: string[] = [];
  if (raw !== hwm) anomalies.push(`HIGH_WATER ${raw} is outside 0..${capacity}`);
  const slots: SlotSnapshot[] = [];
  for (let s = 0; s < capacity; s++) {
    const b = slotBase(s);
    const owner = readOwner(cells, s);
    const choosing = cells.load(b + S.CHOOSING);
    const t = cells.load(b + S.TICKET);
    if (s >= hwm && owner === null && choosing === 0 && t === 0) continue;
    if (s >= hwm) anomalies.push(`slot ${s} is in use above HIGH_WATER ${raw}`);
    if (owner === null && (choosing !== 0 || t !== 0))
      anomalies.push(
        `slot ${s} is free but has ${choosing !== 0 ? 'CHOOSING' : 'a ticket'} left on it`,
      );
    if (t >>> 1 > hwm) anomalies.push(`slot ${s} holds ticket ${t >>> 1}, above HIGH_WATER ${hwm}`);
    slots.push({
      slot: s,
      owner,
      choosing: choosing !== 0,
      ticket: t >>> 1,
      colour: t === 0 ? null : (t & 1) === BLACK ? 'black' : 'white',
      sleepers: cells.load(b + S.SLEEPERS),
    });
  }
  const holder = cells.load(H.HOLDER);
  if (holder !== 0 && !(holder >= 1 && holder <= capacity && readOwner(cells, holder - 1) !== null))
    anomalies.push(`HOLDER ${holder} names no claimed slot`);
  const colour = cells.load(H.COLOUR);
  if (colour !== WHITE && colour !== BLACK) anomalies.push(`COLOUR ${colour} is neither 0 nor 1`);
  const od = cells.load(H.OWNER_DIED);
  if (od < 0 || od > 2) anomalies.push(`OWNER_DIED ${od} is not 0, 1 or 2`);
  return {
    layoutVersion: cells.load(H.VERSION),
    capacity,
    access: accessName(layoutAccess(cells)),
    colour: colour === BLACK ? 'black' : 'white',
    holder: holder === 0 ? null : holder - 1,
    highWater: raw,
    ownerDied: od === 0 ? 'consistent' : od === 1 ? 'owner-died' : 'not-recoverable',
    acquisitions: cells.load(H.ACQUISITIONS),
    maxTicket: cells.load(H.MAX_TICKET),
    self,
    slotWanted: (() => {
      const w = cells.load(H.SLOT_WANTED);
      return w !== 0 && ((wantedNow() - w) & 0x7fffffff) < SLOT_WANTED_FRESH_MS;
    })(),
    slots,
    anomalies,
  };
}

/**
 * Build a Mutex over a backend's cells: validates the layout (never writes on mismatch), then
 * claims a free slot. Backends call this; it is exported for custom backends.
 *
 * @example
 * ```ts
 * import { initLayout, openOn, bytesFor } from '@bakery/core';
 * import { createReferenceCells } from '@bakery/core/reference';
 * const cells = createReferenceCells(4);
 * const a = openOn({ cells }), b = openOn({ cells });
 * const lease = a.tryLock();   // b.tryLock() is null until lease.release()
 * ```
 */
export function openOn(backend: Backend, options?: MutexOptions): Mutex {
  return new BakeryMutex(backend, options);
}
