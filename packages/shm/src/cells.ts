import * as fs from 'node:fs';
import { BakeryError, type Cells, H, HEADER_CELLS, SLOT_CELLS } from '@bakery/core';
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
 * 0x1FF). A single byte cannot tear. The protocol stays safe:
 * - choosing, colour, the owner-died flag only ever hold 0, 1 or 2 — only byte 0 changes;
 * - a ticket goes 0 → t in the doorway (while choosing = 1) and t → 0 on exit/withdrawal, so a
 *   torn read returns a byte-mix of 0 and t only while its owner is in a doorway that began
 *   after the reader saw choosing = 0, or is leaving. Like Lamport's bakery with "safe"
 *   registers, any value read then is harmless: the owner of a later doorway defers to the
 *   reader, a leaver is no obstacle, and a wrong decision to wait is re-checked. With ≤ 127
 *   slots a packed ticket fits in byte 0 and cannot tear at all;
 * - the high-water mark is the one cell where a torn LOW value is fatal (a scan would skip
 *   claimed slots). It only grows, by one, under the registry lock. Above 255 slots it is
 *   written as two one-byte pwrites, high byte first, and read as two one-byte preads, low
 *   byte first: by Lamport's "concurrent reading and writing" argument the value read is then
 *   never below the value current when the read began (it may overshoot; clamped to capacity).
 *   Up to 255 slots it lives in byte 0 and a plain access cannot tear.
 * - owner words change only under the registry lock, and are read under it.
 */
export class ShmCells implements Cells {
  /** Number of cells (file size / 4 at open). */
  readonly length: number;
  readonly #fd: number;
  readonly #buf = Buffer.alloc(4);
  /** Capacity implied by the length, and whether the high-water mark needs byte-wise access. */
  readonly #capacity: number;
  readonly #wideHighWater: boolean;
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
    this.#capacity = Math.max(0, Math.floor((length - HEADER_CELLS) / SLOT_CELLS));
    this.#wideHighWater = this.#capacity > 255;
    this.#registry = registry;
    this.#where = where;
  }

  load(i: number): number {
    if (i === H.HIGH_WATER && this.#wideHighWater) return this.#loadHighWater();
    const n = fs.readSync(this.#fd, this.#buf, 0, 4, i * 4);
    if (n !== 4) throw this.#short(i);
    return this.#buf.readInt32LE(0);
  }

  store(i: number, value: number): void {
    if (i === H.HIGH_WATER && this.#wideHighWater && value >= 0 && value <= 0xffff) {
      this.#storeHighWater(value);
      return;
    }
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

  #loadHighWater(): number {
    // Low byte, then high byte (bytes 2–3 are always 0: the mark is ≤ MAX_SLOTS < 65536).
    const off = H.HIGH_WATER * 4;
    if (fs.readSync(this.#fd, this.#buf, 0, 1, off) !== 1) throw this.#short(H.HIGH_WATER);
    if (fs.readSync(this.#fd, this.#buf, 1, 1, off + 1) !== 1) throw this.#short(H.HIGH_WATER);
    const v = this.#buf[0]! | (this.#buf[1]! << 8);
    return Math.min(v, this.#capacity);
  }

  #storeHighWater(value: number): void {
    // High byte, then low byte: the reverse of the read order (see the class comment).
    const off = H.HIGH_WATER * 4;
    this.#buf[0] = (value >>> 8) & 0xff;
    if (fs.writeSync(this.#fd, this.#buf, 0, 1, off + 1) !== 1) throw this.#short(H.HIGH_WATER);
    this.#buf[0] = value & 0xff;
    if (fs.writeSync(this.#fd, this.#buf, 0, 1, off) !== 1) throw this.#short(H.HIGH_WATER);
  }

  #short(i: number): BakeryError {
    return new BakeryError(
      'BAKERY_BAD_LAYOUT',
      `${this.#where} is shorter than its layout (cell ${i} is past the end of the file)`,
    );
  }
}
