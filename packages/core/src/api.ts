import type { TraceHooks } from './acquirer.js';
import type { Identity } from './backend.js';
import { rangeError } from './validate.js';

/** Defaults of {@link MutexOptions}. */
export const DEFAULT_SPIN = 16;
export const DEFAULT_STALE_MS = 250;
export const DEFAULT_MAX_BATCH = 64;
export const DEFAULT_MAX_BATCH_MS = 1;
/** Largest {@link MutexOptions.maxBatch}. */
export const MAX_BATCH_LIMIT = 1 << 20;

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
   * reaps, like `bakery reap`, never takes one). The instance a backend's `createMutex`
   * returns defaults to `'lock'` (see that backend's `slots` option, and `creatorOptions`).
   */
  claim?: 'open' | 'lock';
  /**
   * How the lock passes from this participant to the next:
   * - `'strict'` (default): first come, first served — every release hands the lock to the
   *   longest waiter.
   * - `'batched'`: a release keeps this participant's place (its ticket) while nobody has taken
   *   it, and its next `lock()`/`lockSync()`/`tryLock()` re-enters with one compareExchange,
   *   ahead of the waiters — at most {@link MutexOptions.maxBatch} times in a row, and once a
   *   waiter sleeps on it for at most about {@link MutexOptions.maxBatchMs}; then it leaves as in
   *   strict mode and queues behind everyone who was waiting. A waiter that gets to run while the
   *   place is kept takes it away (revokes it). The bound, a guarantee: once a waiter's place in
   *   the queue is fixed, every other participant enters at most `1 + maxBatch` times before it
   *   does (strict: once). Much faster when participants outnumber cores (a running process
   *   re-enters instead of waking a cold one), at the cost of that bounded unfairness.
   *
   * Each instance chooses for itself (participants of both modes share a lock). Backends without
   * compareExchange (@bakery/shm's pure-JS path) run `'batched'` as `'strict'`:
   * {@link Mutex.handoff} says which mode is in effect.
   */
  handoff?: 'strict' | 'batched';
  /** `handoff: 'batched'`: re-entries ahead of the waiters per place in the queue (default 64, 1 … 2^20). */
  maxBatch?: number;
  /**
   * `handoff: 'batched'`: how long (ms) a batch may go on once a waiter sleeps on this
   * participant (default 1); checked at each release, so a batch ends at the first release after
   * it.
   */
  maxBatchMs?: number;
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
  handoff: 'strict' | 'batched';
  maxBatch: number;
  maxBatchMs: number;
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
  const handoff = options.handoff ?? 'strict';
  if (handoff !== 'strict' && handoff !== 'batched')
    throw rangeError(`handoff must be 'strict' or 'batched'`);
  const maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH;
  if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > MAX_BATCH_LIMIT)
    throw rangeError(`maxBatch must be an integer from 1 to ${MAX_BATCH_LIMIT}`);
  const maxBatchMs = options.maxBatchMs ?? DEFAULT_MAX_BATCH_MS;
  if (
    typeof maxBatchMs !== 'number' ||
    !(maxBatchMs > 0) ||
    maxBatchMs === Number.POSITIVE_INFINITY
  )
    throw rangeError('maxBatchMs must be a positive finite number');
  return { robust, spin, staleAfterMs, claim, handoff, maxBatch, maxBatchMs };
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
 * The lease of the asynchronous subset ({@link AsyncMutex}): what every backend's lease
 * offers, the network ones included. Code that awaits `release()` (or uses `await using`) runs
 * unchanged on every backend: a local {@link Lease} releases at once, a @bakery/pg lease once
 * the server has recorded the release.
 */
export interface AsyncLease {
  /** True when the previous holder ended without releasing (see {@link Lease.ownerDied}). */
  readonly ownerDied: boolean;
  /** Declare the protected data repaired after `ownerDied`. */
  markConsistent(): void;
  /** Leave the critical section (await it: a network backend's release completes later). */
  release(): void | Promise<void>;
  /** Releases the lease if it is still held (for `await using`). */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * The asynchronous subset of the Mutex interface, which every backend satisfies — the local
 * ones ({@link Mutex}) and @bakery/pg, which offers no `lockSync` over a network. Write against
 * it with `await` on every call and the code runs on any backend.
 *
 * @example
 * ```ts
 * async function once(mutex: AsyncMutex, job: () => Promise<void>) {
 *   const lease = await mutex.tryLock();
 *   if (lease === null) return false;
 *   try {
 *     await job();
 *   } finally {
 *     await lease.release();
 *   }
 *   return true;
 * }
 * ```
 */
export interface AsyncMutex {
  /** Wait for the lock: `BAKERY_TIMEOUT` after `timeout` ms, `BAKERY_ABORTED` on `signal`. */
  lock(options?: LockOptions): Promise<AsyncLease>;
  /**
   * Take the lock only if it is free right now, else null (await it). Null too while this
   * instance itself holds it (its `lock()` calls queue in turn; see {@link Mutex.tryLock}).
   */
  tryLock(): AsyncLease | null | Promise<AsyncLease | null>;
  /** Run `fn` holding the lock; the lease is released when `fn` settles. */
  withLock<T>(fn: (lease: AsyncLease) => T | Promise<T>, options?: LockOptions): Promise<T>;
  /** True while this instance holds the lock. */
  readonly held: boolean;
  /** Let go of the instance's resources (await it); `BAKERY_ALREADY_HELD` while held. */
  close(): void | Promise<void>;
  /** `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
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
export interface Lease extends AsyncLease {
  /**
   * True when the previous holder died inside the critical section (like pthread's
   * EOWNERDEAD): repair the protected data, then call {@link Lease.markConsistent}.
   */
  readonly ownerDied: boolean;
  /** Declare the protected data repaired after `ownerDied`. */
  markConsistent(): void;
  /**
   * Leave the critical section. A second call throws `BAKERY_NOT_HELD` and changes nothing.
   * Bound to its lease (as is {@link Lease.markConsistent}): `const { release } = lease` works.
   */
  release(): void;
  /** Releases the lease if it is still held (for `using`). */
  [Symbol.dispose](): void;
  /** Releases the lease if it is still held (for `await using`, as on every backend). */
  [Symbol.asyncDispose](): Promise<void>;
}

/** One slot as seen by {@link Mutex.inspect}. */
export interface SlotSnapshot {
  slot: number;
  /** Who claimed the slot; null when free. */
  owner: Identity | null;
  choosing: boolean;
  /** Ticket number, 0 when none. */
  ticket: number;
  /** The ticket is kept outside the critical section (`handoff: 'batched'`); waiters revoke it. */
  retained: boolean;
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
 * table, claimed at open when one is free (at its first lock with {@link MutexOptions.claim}
 * `'lock'`, the default of a `createMutex` result). Several `lock()` calls on one instance
 * queue locally in FIFO order and share the slot.
 *
 * **Slots.** A lock of capacity N has N slots, and every open instance that has claimed one
 * counts (tools such as `bakery inspect` read without claiming; each backend's `slots` option
 * says when its instances claim). When
 * all are claimed, an open still succeeds, with no slot (`slot === -1`): `lock()`/`lockSync()`
 * then wait for a slot within their timeout as they wait for the lock (reaping owners that
 * died, where the backend can tell), and give up with `BAKERY_NO_FREE_SLOT`; `tryLock()`
 * throws `BAKERY_NO_FREE_SLOT` when the lock is free but no slot is. While someone waits for a
 * slot, every release frees the releaser's slot (it claims one again at its next lock), so more
 * participants than slots take turns; an instance that never locks keeps its slot until
 * `close()`.
 */
export interface Mutex extends AsyncMutex {
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
   *
   * On an instance that already holds (or is acquiring) the lock, tryLock() returns null, where
   * {@link Mutex.lockSync} throws `BAKERY_ALREADY_HELD`. That is deliberate: one instance may
   * serve several async tasks of a process (their `lock()` calls queue on it in turn), and to
   * a second task "this instance's other task has it" is simply "busy" — lockSync throws only
   * because waiting there would block the thread on itself forever. {@link Mutex.held} tells
   * the two cases apart.
   */
  tryLock(): Lease | null;
  /** Run `fn` holding the lock; the lease is released when `fn` settles. */
  withLock<T>(fn: (lease: Lease) => T | Promise<T>, options?: LockOptions): Promise<T>;
  /** True while this instance holds the lock. */
  readonly held: boolean;
  /** This instance's slot, or -1 while it has none (every slot was claimed: see above). */
  readonly slot: number;
  /**
   * The handoff in effect for this instance: {@link MutexOptions.handoff}, except `'strict'`
   * where the backend has no compareExchange (@bakery/shm's pure-JS path).
   */
  readonly handoff: 'strict' | 'batched';
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
  /** `close()`, for `using mutex = openMutex(…)`. */
  [Symbol.dispose](): void;
  /** `close()`, for `await using` (as on every backend). */
  [Symbol.asyncDispose](): Promise<void>;
}
