import type { Cells } from './backend.js';

/**
 * Cells in an Int32Array where every access is an `Atomics` operation — sequentially
 * consistent, as the backend contract demands — with compareExchange. Backends over shared
 * memory (a SharedArrayBuffer, a MAP_SHARED mapping) extend it with their way of waiting.
 */
export class AtomicCells implements Cells {
  readonly array: Int32Array;

  constructor(buffer: SharedArrayBuffer | ArrayBuffer) {
    this.array = new Int32Array(buffer);
  }

  get length(): number {
    return this.array.length;
  }

  load(i: number): number {
    return Atomics.load(this.array, i);
  }

  store(i: number, value: number): void {
    Atomics.store(this.array, i, value);
  }

  compareExchange(i: number, expected: number, replacement: number): number {
    return Atomics.compareExchange(this.array, i, expected, replacement);
  }
}
