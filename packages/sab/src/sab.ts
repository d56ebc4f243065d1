import {
  AtomicCells,
  BakeryError,
  cellsFor,
  checkSlots,
  creatorOptions,
  initLayout,
  type Mutex,
  type MutexOptions,
  openOn,
  typeError,
} from '@bakery/core';
import { isAlive, processIdentity } from '@bakery/core/node';

/**
 * What a worker needs to join a lock: post it with `worker.postMessage(handle)` or pass it in
 * `workerData`. It is plain data (a SharedArrayBuffer and the slot count).
 */
export interface SabHandle {
  readonly buffer: SharedArrayBuffer;
  readonly slots: number;
}

/** A Mutex over a SharedArrayBuffer, with the handle that lets worker threads join it. */
export type SabMutex = Mutex & { readonly handle: SabHandle };

/** Options of {@link createMutex}. */
export interface CreateOptions extends MutexOptions {
  /**
   * How many instances can hold a slot of the lock at once — the capacity rule of @bakery/sab,
   * stated here once. Each `openMutex(handle)` instance claims a slot when it opens (a worker
   * is one instance per call). The creator's own instance, the one `createMutex` returns,
   * claims one only at its first `lock()`/`lockSync()`/`tryLock()` (`claim` defaults to
   * `'lock'` here), so a thread that only hands the lock out takes none: `slots: N` fits N
   * workers, and N + 1 if the creating thread locks too. Pass `claim: 'open'` to have the
   * creator claim at create. Instances beyond the capacity still open, without a slot, and take
   * turns: their `lock()`/`lockSync()` wait for a slot (within `timeout`; then
   * `BAKERY_NO_FREE_SLOT`), `tryLock()` throws `BAKERY_NO_FREE_SLOT` when the lock is free but
   * no slot is. An instance keeps its slot until it closes (or gives it up for a waiter at a
   * release).
   */
  slots: number;
}

const NEVER = 2 ** 31 - 1;

/**
 * The backend cells: an Int32Array over the SharedArrayBuffer, every access an `Atomics`
 * operation (sequentially consistent), with Atomics.wait/notify for blocking and
 * Atomics.waitAsync for the event-loop-friendly path.
 */
export class SabCells extends AtomicCells {
  constructor(buffer: SharedArrayBuffer) {
    super(buffer);
  }

  wait(i: number, expected: number, timeoutMs: number): 'ok' | 'not-equal' | 'timed-out' {
    return Atomics.wait(this.array, i, expected, timeoutMs);
  }

  notify(i: number, count: number): number {
    return Atomics.notify(this.array, i, count);
  }

  waitAsync(
    i: number,
    expected: number,
    timeoutMs: number,
  ): Promise<'ok' | 'not-equal' | 'timed-out'> {
    const r = Atomics.waitAsync(this.array, i, expected, timeoutMs);
    if (!r.async) return Promise.resolve(r.value);
    // A pending Atomics.waitAsync does not keep the event loop alive on its own: hold a timer
    // that outlasts the wait (V8's own timeout may fire a little after ours would), cleared
    // as soon as the wait settles.
    const keepAlive = setTimeout(() => {}, Math.min(timeoutMs + 1000, NEVER));
    return r.value.then((v) => {
      clearTimeout(keepAlive);
      return v;
    });
  }
}

/**
 * Create a lock in a fresh SharedArrayBuffer. The creating thread takes part through the
 * returned instance, which claims a slot at its first lock (see {@link CreateOptions.slots});
 * hand `mutex.handle` to workers, which join with {@link openMutex}.
 *
 * @example
 * ```ts
 * import { Worker } from 'node:worker_threads';
 * import { createMutex } from '@bakery/sab';
 *
 * const mutex = createMutex({ slots: 8 });
 * new Worker('./worker.js', { workerData: mutex.handle });
 * await mutex.withLock(() => { ... });
 * ```
 */
export function createMutex(options: CreateOptions): SabMutex {
  if (options === null || typeof options !== 'object')
    throw typeError('createMutex needs { slots }');
  const { slots, ...rest } = options;
  checkSlots(slots);
  const buffer = new SharedArrayBuffer(cellsFor(slots) * 4);
  initLayout(new SabCells(buffer), slots);
  return openMutex({ buffer, slots }, creatorOptions(rest));
}

/**
 * Join a lock created by {@link createMutex} (in a worker, or another participant in the same
 * thread). Validates the layout without writing to it: a buffer that is not a bakery lock of
 * `handle.slots` slots is `BAKERY_BAD_LAYOUT`. On a full lock the instance opens without a slot
 * and its first lock waits for one (a waiter without a slot does not reap on sab: terminated
 * workers' slots are reaped by participants that have one).
 *
 * @example
 * ```ts
 * // worker.js
 * import { workerData } from 'node:worker_threads';
 * import { openMutex } from '@bakery/sab';
 * const mutex = openMutex(workerData);
 * using lease = mutex.lockSync();
 * ```
 */
export function openMutex(handle: SabHandle, options?: MutexOptions): SabMutex {
  if (
    handle === null ||
    typeof handle !== 'object' ||
    !(handle.buffer instanceof SharedArrayBuffer)
  ) {
    throw new BakeryError(
      'BAKERY_BAD_HANDLE',
      'openMutex needs the handle of a @bakery/sab mutex ({ buffer, slots })',
    );
  }
  checkSlots(handle.slots);
  if (handle.buffer.byteLength !== cellsFor(handle.slots) * 4) {
    throw new BakeryError(
      'BAKERY_BAD_LAYOUT',
      `buffer of ${handle.buffer.byteLength} bytes is not a ${handle.slots}-slot bakery lock`,
    );
  }
  const cells = new SabCells(handle.buffer);
  const mutex = openOn({ cells, identity: processIdentity, isAlive, description: 'sab' }, options);
  const own: SabHandle = { buffer: handle.buffer, slots: handle.slots };
  return Object.defineProperty(mutex, 'handle', { value: own, enumerable: true }) as SabMutex;
}
