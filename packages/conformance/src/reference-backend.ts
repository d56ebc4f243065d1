import { type Mutex, type MutexOptions, openOn } from '@bakery/core';
import { isAlive, processIdentity } from '@bakery/core/node';
import { createReferenceCells, ReferenceCells } from '@bakery/core/reference';

/**
 * The reference backend for the conformance suite: core's {@link ReferenceCells} (Atomics
 * load/store/compareExchange, no blocking wait) over a SharedArrayBuffer that worker threads
 * share. It exercises core's sleep-with-backoff paths with real concurrency, crash recovery
 * included.
 */
export interface ReferenceHandle {
  buffer: SharedArrayBuffer;
}

/** Create a reference lock; the handle can be posted to worker threads. */
export function createReference(slots: number): ReferenceHandle {
  return { buffer: createReferenceCells(slots).array.buffer as SharedArrayBuffer };
}

/** Open a participant on a reference lock (in any thread). */
export function openReference(handle: ReferenceHandle, options?: MutexOptions): Mutex {
  // Node's liveness check (pid + OS thread id + start time), so that crash recovery runs here too.
  return openOn(
    {
      cells: new ReferenceCells(handle.buffer),
      identity: processIdentity,
      isAlive,
      description: 'reference',
    },
    options,
  );
}
