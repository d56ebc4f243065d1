import * as fs from 'node:fs';
import { SCRATCH } from './types.js';

/**
 * The protected data of the conformance workloads. `read`/`write` are deliberately separate
 * operations: the workload reads, yields, then writes, so only the lock keeps the count exact.
 */
export interface Scratch {
  read(i: number): number;
  write(i: number, value: number): void;
  close(): void;
}

/**
 * Scratch in a SharedArrayBuffer for thread participants. Plain (non-atomic) element access on
 * purpose: the only ordering between participants comes from the lock's own fences.
 */
export class SabScratch implements Scratch {
  private readonly a: Int32Array;
  constructor(buffer: SharedArrayBuffer) {
    this.a = new Int32Array(buffer);
  }
  static create(): SharedArrayBuffer {
    return new SharedArrayBuffer(SCRATCH.CELLS * 4);
  }
  read(i: number): number {
    return this.a[i]!;
  }
  write(i: number, value: number): void {
    this.a[i] = value;
  }
  close(): void {}
}

/** Scratch in a file for process participants: one positional 4-byte read or write per access. */
export class FileScratch implements Scratch {
  private readonly fd: number;
  private readonly buf = Buffer.alloc(4);
  constructor(path: string) {
    this.fd = fs.openSync(path, 'r+');
  }
  static create(path: string): void {
    fs.writeFileSync(path, Buffer.alloc(SCRATCH.CELLS * 4), { mode: 0o600 });
  }
  read(i: number): number {
    if (fs.readSync(this.fd, this.buf, 0, 4, i * 4) !== 4) throw new Error('short scratch read');
    return this.buf.readInt32LE(0);
  }
  write(i: number, value: number): void {
    this.buf.writeInt32LE(value | 0, 0);
    if (fs.writeSync(this.fd, this.buf, 0, 4, i * 4) !== 4) throw new Error('short scratch write');
  }
  close(): void {
    fs.closeSync(this.fd);
  }
}
