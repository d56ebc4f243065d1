import * as fs from 'node:fs';

/**
 * The data the lock protects. `read` and `write` are separate on purpose: the counter is
 * incremented by a read, a yield to the event loop, and a write, so only the lock keeps it exact.
 */
export interface Scratch {
  read(i: number): number;
  write(i: number, value: number): void;
  /** Add `delta`, returning the previous value; atomic only where the memory allows it. */
  add(i: number, delta: number): number;
  close(): void;
}

/** Scratch in shared memory (a SharedArrayBuffer or a memfd mapping): Atomics per access. */
export class MemoryScratch implements Scratch {
  readonly #a: Int32Array;
  readonly #onClose: (() => void) | undefined;
  constructor(buffer: ArrayBufferLike, onClose?: () => void) {
    this.#a = new Int32Array(buffer);
    this.#onClose = onClose;
  }
  read(i: number): number {
    return Atomics.load(this.#a, i);
  }
  write(i: number, value: number): void {
    Atomics.store(this.#a, i, value);
  }
  add(i: number, delta: number): number {
    return Atomics.add(this.#a, i, delta);
  }
  close(): void {
    this.#onClose?.();
  }
}

/**
 * Scratch in a file, one positional read or write per access (pread/pwrite see each other's
 * writes at once through the page cache). `add` is read-then-write here, so the occupancy probe
 * can miss an overlap; the parent's interval check does not depend on it.
 */
export class FileScratch implements Scratch {
  readonly #fd: number;
  readonly #buf = Buffer.alloc(4);
  constructor(path: string) {
    this.#fd = fs.openSync(path, 'r+');
  }
  static create(path: string, bytes: number): void {
    fs.writeFileSync(path, Buffer.alloc(bytes), { mode: 0o600, flag: 'wx' });
  }
  read(i: number): number {
    if (fs.readSync(this.#fd, this.#buf, 0, 4, i * 4) !== 4) throw new Error('short scratch read');
    return this.#buf.readInt32LE(0);
  }
  write(i: number, value: number): void {
    this.#buf.writeInt32LE(value | 0, 0);
    if (fs.writeSync(this.#fd, this.#buf, 0, 4, i * 4) !== 4)
      throw new Error('short scratch write');
  }
  add(i: number, delta: number): number {
    const v = this.read(i);
    this.write(i, v + delta);
    return v;
  }
  close(): void {
    fs.closeSync(this.#fd);
  }
}
