import * as fs from 'node:fs';
import { BakeryError, type Cells } from '@bakery/core';

/**
 * Most slots an shm lock may have: with at most 127 every protocol cell read outside the
 * registry lock fits in one byte, which a positional read cannot tear (see {@link ShmCells}).
 */
export const SHM_MAX_SLOTS = 127;

import type { RegistryLock } from './registry.js';

/**
 * The lock's cells in a file, one positional syscall per access.
 *
 * **Ordering.** Every `load` is one `pread` and every `store` one `pwrite` of the same file, so
 * all participants read and write the same page-cache pages (tmpfs pages for /dev/shm). Each
 * of these syscalls performs fully ordered atomic operations on the kernel side (the inode lock
 * taken and released around the copy in write, the page reference taken in read), so a store
 * is globally visible before the syscall returns and no later load of the same thread is
 * performed before it: the store→load order the doorway needs holds, and the accesses of all
 * participants form one total order consistent with program order (sequential consistency).
 *
 * **Tearing.** The kernel copies a 4-byte pread/pwrite buffer byte by byte on x86-64 without
 * FSRM (measured: alternating 0x0FF/0x100 with pwrite, a concurrent pread sees 0x000 and
 * 0x1FF). A single byte cannot tear, so an shm lock has at most {@link SHM_MAX_SLOTS} = 127
 * slots: then every protocol cell read outside the registry lock fits in byte 0 — choosing,
 * colour, owner-died (0–2), the high-water mark and HOLDER (≤ 127), and a packed ticket
 * (number ≤ high-water mark ≤ 127, so `number << 1 | colour` ≤ 255). Tearing is impossible by
 * construction rather than argued harmless. The owner words (a pid) are wider, but they change
 * only under the registry lock and the reaper re-reads them under it.
 */
export class ShmCells implements Cells {
  /** Number of cells (file size / 4 at open). */
  readonly length: number;
  readonly #fd: number;
  readonly #buf = Buffer.alloc(4);
  readonly #registry: RegistryLock | undefined;
  readonly #where: string;

  /**
   * @param fd An fd of the lock file opened for reading and writing.
   * @param length Cells in the file (its size / 4).
   * @param registry The lock's registry lock; without it `withRegistryLock` throws (raw access
   *   for inspection or initialisation only).
   * @param where The file's path, for messages.
   */
  constructor(fd: number, length: number, registry?: RegistryLock, where = `fd ${fd}`) {
    this.#fd = fd;
    this.length = length;
    this.#registry = registry;
    this.#where = where;
  }

  load(i: number): number {
    const n = fs.readSync(this.#fd, this.#buf, 0, 4, i * 4);
    if (n !== 4) throw this.#short(i);
    return this.#buf.readInt32LE(0);
  }

  /**
   * One pread of `count` cells. The kernel copies them with no order among them, and each
   * protocol value read this way (a ticket) fits in its cell's byte 0, so none can tear.
   */
  loadMany(from: number, count: number, out: Int32Array): void {
    const bytes = new Uint8Array(out.buffer, out.byteOffset, count * 4);
    const n = fs.readSync(this.#fd, bytes, 0, count * 4, from * 4);
    if (n !== count * 4) throw this.#short(from + Math.floor(n / 4));
  }

  store(i: number, value: number): void {
    this.#buf.writeInt32LE(value | 0, 0);
    const n = fs.writeSync(this.#fd, this.#buf, 0, 4, i * 4);
    if (n !== 4) throw this.#short(i);
  }

  withRegistryLock<T>(fn: () => T): T {
    if (this.#registry === undefined) {
      throw new BakeryError('BAKERY_BAD_HANDLE', `cells of ${this.#where} have no registry lock`);
    }
    return this.#registry.run(fn);
  }

  #short(i: number): BakeryError {
    return new BakeryError(
      'BAKERY_BAD_LAYOUT',
      `${this.#where} is shorter than its layout (cell ${i} is past the end of the file)`,
    );
  }
}
