import { AtomicCells } from './atomic-cells.js';
import { cellsFor } from './layout.js';
import { checkSlots, initLayout } from './memory.js';

/**
 * The reference memory: the smallest backend that satisfies the contract, kept for the
 * conformance suite and for reading. Cells live in an Int32Array and every access is an
 * `Atomics` operation (sequentially consistent). It offers compareExchange but no blocking
 * wait, so core's sleep-with-backoff paths run against it.
 *
 * The buffer is a SharedArrayBuffer, so the same memory can also be posted to worker threads.
 */
export class ReferenceCells extends AtomicCells {}

/** A fresh, initialised reference memory for a lock of `slots` slots. */
export function createReferenceCells(slots: number): ReferenceCells {
  // Before sizing the buffer: a negative or huge count must be a coded error, not the
  // SharedArrayBuffer constructor's RangeError.
  checkSlots(slots);
  const cells = new ReferenceCells(new SharedArrayBuffer(cellsFor(slots) * 4));
  initLayout(cells, slots);
  return cells;
}
