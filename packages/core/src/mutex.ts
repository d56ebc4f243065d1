import { Acquirer, BLOCKED, DONE } from './acquirer.js';
import {
  checkMutexOptions,
  type Lease,
  type LockOptions,
  type LockSyncOptions,
  type Mutex,
  type MutexOptions,
  type Snapshot,
} from './api.js';
import type { Backend, Cells, Identity } from './backend.js';
import { BakeryError } from './errors.js';
import { type Abandonable, trackOpen, untrackOpen } from './exit-hooks.js';
import { ACCESS, H, S, slotBase } from './layout.js';
import { type LeaseHost, LeaseImpl } from './lease.js';
import { serialised, validateLayout } from './memory.js';
import { Recovery, repairDeadHolder } from './recovery.js';
import { noSlotError, Slots } from './slots.js';
import { snapshot } from './snapshot.js';
import { checkTimeout, typeError } from './validate.js';
import { abortError, timeoutError, Waiting } from './waiting.js';

/*
 * The Mutex: the public API (api.ts) over the parts — the protocol (acquirer.ts), the waiting
 * policy and its two drivers (waiting.ts), the slot (slots.ts), recovery (recovery.ts), the
 * exit hooks (exit-hooks.ts), the snapshot (snapshot.ts). What is left here: argument checks,
 * the local FIFO of lock() calls on one instance, entering and leaving the critical section.
 */

function defaultIdentity(): Identity {
  const pid = (globalThis as { process?: { pid?: number } }).process?.pid;
  return { pid: typeof pid === 'number' && pid > 0 ? pid : 1, tid: 0, startTime: 0 };
}

/** A lock() call queued behind this instance's current holder or acquirer. */
interface Waiter {
  resolve(lease: Lease): void;
  reject(err: unknown): void;
  deadline: number;
  /** The timeout asked for (ms; Infinity without one), for the message. */
  timeout: number;
  signal: AbortSignal | undefined;
  cleanup: (() => void) | undefined;
}

/**
 * Core's Mutex over any backend. Backends call {@link openOn}; users never construct this
 * directly.
 */
export class BakeryMutex implements Mutex, LeaseHost, Abandonable {
  readonly #backend: Backend;
  readonly #cells: Cells;
  readonly #acq: Acquirer;
  readonly #capacity: number;
  readonly #robust: 'manual' | 'auto';
  readonly #staleAfter: number;
  /** Our slot and how we get one (slots.ts). */
  readonly #slots: Slots;
  /** Reaping the dead (recovery.ts). */
  readonly #recovery: Recovery;
  /** How we wait, and the drivers (waiting.ts). */
  readonly #waiting: Waiting;
  /** When tryLock last checked for the dead (it does at most once per staleAfterMs). */
  #lastTryCheck = 0;
  #closed = false;
  #lease: LeaseImpl | null = null;
  #busy = false;
  readonly #queue: Waiter[] = [];
  /** handoff 'batched' in effect (asked for, and the cells have compareExchange). */
  readonly #batched: boolean;
  readonly #maxBatch: number;
  readonly #maxBatchMs: number;
  /** Re-entries on the current ticket (handoff 'batched'). */
  #retakes = 0;
  /** When a release of this batch first saw a sleeper on our slot (-1: none yet). */
  #batchSince = -1;
  /** The lock as messages name it: "the lock (shm /dev/shm/… (mapped))". */
  readonly #what: string;

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
    const {
      robust,
      spin,
      staleAfterMs: stale,
      claim,
      handoff,
      maxBatch,
      maxBatchMs,
    } = checkMutexOptions(options);
    this.#staleAfter = stale;
    this.#batched = handoff === 'batched' && cells.compareExchange !== undefined;
    this.#maxBatch = maxBatch;
    this.#maxBatchMs = maxBatchMs;
    // The lock's recorded access mode must be the one these cells claim slots with: CAS-claiming
    // and registry-claiming participants would not exclude each other's claims.
    this.#capacity = validateLayout(
      cells,
      undefined,
      cells.compareExchange !== undefined ? ACCESS.ATOMIC : ACCESS.POSITIONAL,
    );
    this.#backend = backend;
    this.#what =
      backend.description !== undefined ? `the lock (${backend.description})` : 'the lock';
    this.#cells = cells;
    this.#robust = robust;
    const id = (backend.identity ?? defaultIdentity)();
    if (!(Number.isInteger(id.pid) && id.pid > 0))
      throw typeError('identity pid must be a positive integer');
    const acq = new Acquirer(cells, -1, options.trace, this.#capacity, (fn) =>
      serialised(cells, fn),
    );
    this.#acq = acq;
    this.#slots = new Slots(cells, this.#capacity, id, backend, acq, stale);
    this.#recovery = new Recovery(cells, this.#capacity, backend, id, this.#slots, acq, stale);
    this.#slots.recovery = this.#recovery;
    this.#waiting = new Waiting(
      cells,
      acq,
      this.#recovery,
      spin,
      stale,
      backend.canBlock !== false,
    );
    // A full table is no error: lock() waits for a slot (reaping the dead first, if any).
    if (claim === 'open') this.#slots.take(true);
    trackOpen(this);
  }

  get held(): boolean {
    return this.#lease !== null;
  }

  get slot(): number {
    return this.#slots.slot;
  }

  get handoff(): 'strict' | 'batched' {
    return this.#batched ? 'batched' : 'strict';
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
        `${poisonedOk ? 'markConsistent()' : 'lockSync()'} on ${this.#what}: this Mutex instance already ${this.#lease !== null ? 'holds' : 'is acquiring'} it, and waiting for itself would deadlock; release that lease first, use lock() (several lock() calls on one instance queue in turn), or open another instance for another participant`,
      );
    }
    if (this.#acq.retained && this.#acq.retake()) return this.#enter(poisonedOk, true);
    // No clock read on the way in when there is no timeout: the uncontended path stays free of it.
    const deadline = timeout === Number.POSITIVE_INFINITY ? timeout : performance.now() + timeout;
    try {
      if (this.#slots.slot < 0) this.#slots.waitSync(deadline);
      this.#waiting.acquireSync(deadline);
    } catch (err) {
      throw this.#explain(err, poisonedOk ? 'markConsistent()' : 'lockSync()', timeout);
    }
    return this.#enter(poisonedOk);
  }

  /**
   * A wait's failure as the caller should read it: which call, on which lock, after how long,
   * and what to do. The code and the cause are kept; only the three waiting errors are
   * reworded (everything else already says what it is).
   */
  #explain(err: unknown, op: string, timeout: number): unknown {
    if (!(err instanceof BakeryError)) return err;
    const after = Number.isFinite(timeout) ? ` after ${timeout} ms` : '';
    const cause = err.cause === undefined ? undefined : { cause: err.cause };
    switch (err.code) {
      case 'BAKERY_TIMEOUT':
        return new BakeryError(
          'BAKERY_TIMEOUT',
          `${op} on ${this.#what} timed out${after} waiting for the lock: another participant held it or was ahead in the queue all that time (inspect() shows the holder and the waiters); pass a longer { timeout }, or treat BAKERY_TIMEOUT as "busy"`,
          cause,
        );
      case 'BAKERY_NO_FREE_SLOT':
        return new BakeryError(
          'BAKERY_NO_FREE_SLOT',
          `${op} on ${this.#what} timed out${after} waiting for a free slot: ${err.message}; close() instances that are done, create the lock with more slots, or open the idle ones with { claim: 'lock' }`,
          cause,
        );
      case 'BAKERY_ABORTED':
        return new BakeryError('BAKERY_ABORTED', `${op} on ${this.#what} was aborted`, cause);
      default:
        return err;
    }
  }

  tryLock(): Lease | null {
    this.#checkOpen();
    if (this.#lease !== null || this.#busy) return null;
    const acq = this.#acq;
    if (acq.retained && acq.retake()) return this.#enter(false, true);
    const slots = this.#slots;
    if (slots.slot < 0 && acq.idle()) {
      // Free right now, but we have no slot: claim one, or say that none is free.
      const now = performance.now();
      const reap = now - this.#lastTryCheck >= this.#staleAfter;
      if (reap) this.#lastTryCheck = now;
      if (!slots.take(reap))
        throw new BakeryError(
          'BAKERY_NO_FREE_SLOT',
          `tryLock() on ${this.#what}: the lock is free, but ${noSlotError(this.#capacity, false).message}; close() instances that are done, create the lock with more slots, or open the idle ones with { claim: 'lock' }`,
        );
    }
    if (slots.slot < 0 || !acq.idle()) {
      // Someone holds or waits. If it has looked that way for a while, make sure it is not a
      // dead participant (at most once per staleAfterMs: a liveness check reads /proc).
      const now = performance.now();
      if (this.#recovery.canJudge && now - this.#lastTryCheck >= this.#staleAfter) {
        this.#lastTryCheck = now;
        this.#recovery.reapDead();
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
    if (signal?.aborted)
      return Promise.reject(this.#explain(abortError(signal), 'lock()', timeout));
    const deadline = timeout === Number.POSITIVE_INFINITY ? timeout : performance.now() + timeout;
    return new Promise<Lease>((resolve, reject) => {
      const w: Waiter = { resolve, reject, deadline, timeout, signal, cleanup: undefined };
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
      if (Number.isFinite(timeout))
        timer = setTimeout(
          () => drop(this.#explain(timeoutError(), 'lock()', timeout) as BakeryError),
          timeout,
        );
      const onAbort = () =>
        drop(this.#explain(abortError(signal!), 'lock()', timeout) as BakeryError);
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
    const snap = snapshot(this.#cells, this.#slots.slot);
    if (this.#backend.description !== undefined) snap.backend = this.#backend.description;
    return snap;
  }

  reapDead(): number {
    this.#checkOpen();
    return this.#recovery.reapDead(true);
  }

  close(): void {
    if (this.#closed) return;
    if (this.#lease !== null || this.#busy || this.#queue.length > 0) {
      throw new BakeryError(
        'BAKERY_ALREADY_HELD',
        `close() on ${this.#what} while this instance ${this.#lease !== null ? 'holds it' : 'waits for it'}; release the lease (or let the pending lock() calls settle) first`,
      );
    }
    // Free the slot before marking the instance closed: if freeing fails (a registry timeout,
    // an I/O error) the instance stays open and close() can be retried; the backend's fds are
    // released only once the slot is free, or the slot would leak with no way to free it.
    if (this.#slots.slot >= 0) this.#slots.free();
    this.#closed = true;
    untrackOpen(this);
    this.#backend.close?.();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
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
    const slot = this.#slots.slot;
    if (this.#lease !== null) {
      // A reaper's repair done by ourselves (the same order, in case we are killed half-way
      // through our own exit handler), then our exit.
      repairDeadHolder(cells, cells.load(slotBase(slot) + S.TICKET));
      this.#acq.exit();
      this.#lease = null;
    } else if (this.#busy && slot >= 0) {
      this.#acq.withdraw();
    }
    if (slot >= 0) this.#slots.free();
    this.#backend.close?.();
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
    // Someone waits for a slot and nothing of ours is queued: give ours up (we claim one again
    // at our next lock), so that more participants than slots take turns.
    const yielding = this.#queue.length === 0 && this.#slots.wanted();
    if (this.#batched && !yielding && this.#mayRetain()) this.#acq.retain();
    else this.#acq.exit();
    this.#lease = null;
    if (yielding) this.#slots.yieldIfWanted();
    this.#pump();
  }

  /**
   * handoff 'batched': may this release keep our ticket? Not after maxBatch re-entries on it,
   * nor once maxBatchMs have passed since a release first saw a waiter asleep on our slot (a
   * waiter that is running revokes the ticket itself; one that sleeps is what the time bound is
   * for). The clock is read only then, so an uncontended re-entry costs no clock read.
   */
  #mayRetain(): boolean {
    if (this.#retakes >= this.#maxBatch) return false;
    if (this.#cells.load(slotBase(this.#slots.slot) + S.SLEEPERS) !== 0) {
      const now = performance.now();
      if (this.#batchSince < 0) this.#batchSince = now;
      else if (now - this.#batchSince >= this.#maxBatchMs) return false;
    }
    return true;
  }

  #checkOpen(): void {
    if (this.#closed)
      throw new BakeryError(
        'BAKERY_CLOSED',
        `this Mutex instance of ${this.#what} is closed; open a new one with openMutex()`,
      );
  }

  /** Into the critical section; `retaken`: on a retained ticket (a batched re-entry). */
  #enter(poisonedOk = false, retaken = false): LeaseImpl {
    const cells = this.#cells;
    if (retaken) this.#retakes++;
    else {
      this.#retakes = 0;
      this.#batchSince = -1;
    }
    cells.store(H.HOLDER, this.#slots.slot + 1);
    const od = cells.load(H.OWNER_DIED);
    if (od === 2 && !poisonedOk) {
      // Refused: this is not an acquisition (ACQUISITIONS is left alone).
      cells.store(H.HOLDER, 0);
      this.#acq.exit();
      this.#pump();
      throw new BakeryError(
        'BAKERY_NOT_RECOVERABLE',
        `${this.#what}: a previous holder died and the data it protected was never marked consistent; once the data is repaired, clear it with \`bakery mark-consistent <name>\` (or mutex.markConsistent())`,
      );
    }
    cells.store(H.ACQUISITIONS, (cells.load(H.ACQUISITIONS) + 1) & 0x7fffffff);
    const lease = new LeaseImpl(this, od !== 0);
    this.#lease = lease;
    return lease;
  }

  /** Enter for a lock() call and settle it (a refused entry rejects it). */
  #grant(w: Waiter, retaken: boolean): void {
    let lease: Lease;
    try {
      lease = this.#enter(false, retaken);
    } catch (err) {
      w.reject(err);
      return;
    }
    w.resolve(lease);
  }

  #start(w: Waiter): void {
    if (this.#acq.retained && this.#acq.retake()) {
      this.#grant(w, true);
      return;
    }
    this.#busy = true;
    const acquired =
      this.#slots.slot >= 0
        ? this.#waiting.acquireAsync(w.deadline, w.signal)
        : this.#slots
            .waitAsync(w.deadline, w.signal)
            .then(() => this.#waiting.acquireAsync(w.deadline, w.signal));
    acquired.then(
      () => {
        this.#busy = false;
        this.#grant(w, false);
      },
      (err) => {
        this.#busy = false;
        w.reject(this.#explain(err, 'lock()', w.timeout));
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
