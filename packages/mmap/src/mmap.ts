import type { ForkOptions, SpawnOptions, StdioOptions } from 'node:child_process';
import {
  AtomicCells,
  BakeryError,
  bytesFor,
  checkSlots,
  HEADER_CELLS,
  type Identity,
  initLayout,
  type Mutex,
  type MutexOptions,
  openOn,
  S,
  slotBase,
  typeError,
} from '@bakery/core';
import { isAlive, processIdentity } from '@bakery/core/node';
import { loadNative, type Native, type WaitResult } from './native.js';

/** Environment variable that tells a child which of its fds carries the lock's memory. */
export const FD_ENV = 'BAKERY_MMAP_FD';

/** A Mutex over a memfd mapping, with the means to hand the lock to child processes. */
export interface MmapMutex extends Mutex {
  /** The fd of the shared memory in this process (close-on-exec; passed on explicitly). */
  readonly fd: number;
  /**
   * `child_process.fork` options that carry the lock to the child: the fd is appended to the
   * `stdio` array (with `'ipc'` present, as fork requires) and {@link FD_ENV} names its number
   * in the child. Everything else in `base` is kept.
   */
  forkOptions(base?: ForkOptions): ForkOptions;
  /** The same for `child_process.spawn` (any program; no IPC channel is added). */
  spawnOptions(base?: SpawnOptions): SpawnOptions;
}

/** Options of {@link createMutex}. */
export interface CreateOptions extends MutexOptions {
  /** Participants the lock can hold at once (each open instance takes one slot). */
  slots: number;
}

/** Options of {@link openMutex}. */
export interface OpenOptions extends MutexOptions {
  /** The fd of the lock's memory; default: the number in `process.env.BAKERY_MMAP_FD`. */
  fd?: number;
}

/**
 * The backend cells over a MAP_SHARED mapping: Atomics on an Int32Array (seq-cst, no native
 * call per access), and a non-private futex for blocking so that a releaser in one process
 * wakes a sleeper in another (V8's Atomics.notify never crosses a process).
 */
export class MmapCells extends AtomicCells {
  readonly #native: Native;

  constructor(native: Native, buffer: ArrayBuffer) {
    super(buffer);
    this.#native = native;
  }

  wait(i: number, expected: number, timeoutMs: number): WaitResult {
    return this.#native.wait(this.array, i, expected, timeoutMs);
  }

  notify(i: number, count: number): number {
    return this.#native.wake(this.array, i, count);
  }

  waitAsync(i: number, expected: number, timeoutMs: number): Promise<WaitResult> {
    return this.#native.waitAsync(this.array, i, expected, timeoutMs);
  }
}

function withFd(
  stdio: StdioOptions | undefined,
  fd: number,
  ipc: boolean,
): { stdio: (string | number | null | undefined | object)[]; index: number } {
  let arr: (string | number | null | undefined | object)[];
  if (stdio === undefined)
    arr = ipc ? ['inherit', 'inherit', 'inherit', 'ipc'] : ['pipe', 'pipe', 'pipe'];
  else if (typeof stdio === 'string') arr = [stdio, stdio, stdio];
  else arr = [...stdio];
  if (ipc && !arr.includes('ipc')) arr.push('ipc');
  arr.push(fd);
  return { stdio: arr, index: arr.length - 1 };
}

function carry<T extends ForkOptions | SpawnOptions>(
  fd: number,
  base: T | undefined,
  ipc: boolean,
): T {
  if (!Number.isInteger(fd) || fd < 0) throw typeError('fd must be a non-negative integer');
  const b = (base ?? {}) as T;
  const { stdio, index } = withFd(b.stdio, fd, ipc);
  return { ...b, stdio, env: { ...(b.env ?? process.env), [FD_ENV]: String(index) } } as T;
}

/**
 * `child_process.fork` options that hand the lock memory behind `fd` to the child (see
 * {@link MmapMutex.forkOptions}); for a process that keeps the fd without a Mutex of its own.
 */
export function forkOptions(fd: number, base?: ForkOptions): ForkOptions {
  return carry(fd, base, true);
}

/** `child_process.spawn` options that hand the lock memory behind `fd` to any program. */
export function spawnOptions(fd: number, base?: SpawnOptions): SpawnOptions {
  return carry(fd, base, false);
}

/**
 * Liveness of slot owners through per-slot leases: an OFD write lock on byte = slot of the lock's
 * file, taken through a description this participant opened itself (a forked child's inherited
 * fd shares its parent's description, so a lease through it would outlive the child). The
 * kernel drops the lock when the process dies, so "the owner recorded a lease and no lock is
 * held" proves it dead, whatever its pid now names.
 */
class Leases {
  readonly #native: Native;
  readonly #cells: MmapCells;
  /** Our own description of the lock's file; -1 when /proc could not reopen it (no leases). */
  readonly fd: number;

  constructor(native: Native, fd: number, cells: MmapCells) {
    this.#native = native;
    this.#cells = cells;
    let own = -1;
    try {
      own = native.reopen(fd);
    } catch {
      // No /proc: no lease and no probe; the pid-based check still applies.
    }
    this.fd = own;
  }

  /** Takes the lease of our freshly claimed `slot`, then records that its owner has one. */
  take(slot: number): void {
    if (this.fd < 0) return;
    try {
      this.#native.leaseTake(this.fd, slot);
    } catch {
      // Without a lease OWNER_LEASE stays 0 and others judge us by pid, as before leases.
      return;
    }
    this.#cells.store(slotBase(slot) + S.OWNER_LEASE, 1);
  }

  isAlive(owner: Identity, slot?: number): boolean {
    if (slot !== undefined && this.fd >= 0) {
      const flagged = this.#cells.load(slotBase(slot) + S.OWNER_LEASE) === 1;
      let held: boolean | undefined;
      try {
        held = this.#native.leaseHeld(this.fd, slot);
      } catch {
        held = undefined;
      }
      // A live owner clears its flag and owner cells before its close drops the lease, so
      // after "no lock" the slot must still name this owner with the flag set: then it died.
      if (held === false && flagged && this.#stillOwns(owner, slot)) return false;
      // A lease speaks for a process, not for one of its threads: a terminated worker's fds stay
      // open in its process, so for a worker-thread owner the thread check decides.
      if (held === true && (owner.tid === 0 || owner.tid === owner.pid)) return true;
    }
    return isAlive(owner);
  }

  #stillOwns(owner: Identity, slot: number): boolean {
    const c = this.#cells;
    const b = slotBase(slot);
    return (
      c.load(b + S.OWNER_LEASE) === 1 &&
      c.load(b + S.OWNER) === owner.pid &&
      c.load(b + S.OWNER_TID) === owner.tid &&
      (c.load(b + S.OWNER_START_HI) >>> 0) * 2 ** 32 + (c.load(b + S.OWNER_START_LO) >>> 0) ===
        owner.startTime &&
      c.load(b + S.OWNER_NS) >>> 0 === (owner.ns ?? 0)
    );
  }

  close(): void {
    if (this.fd >= 0) this.#native.close(this.fd);
  }
}

function wrap(
  native: Native,
  fd: number,
  cells: MmapCells,
  options: MutexOptions | undefined,
  ownsFd: boolean,
): MmapMutex {
  // Reopened before openOn: a full slot table makes openOn judge other slots already.
  const leases = new Leases(native, fd, cells);
  const backend = {
    cells,
    identity: processIdentity,
    isAlive: (owner: Identity, slot?: number) => leases.isAlive(owner, slot),
    description: `mmap fd ${fd}`,
    close: () => {
      // Closing our description drops the lease (after core has freed the slot).
      leases.close();
      if (ownsFd) native.close(fd);
    },
  };
  let mutex: MmapMutex;
  try {
    mutex = openOn(backend, options) as MmapMutex;
  } catch (err) {
    leases.close();
    throw err;
  }
  // Right after the claim and before the first doorway (nothing has run on this Mutex yet).
  leases.take(mutex.slot);
  Object.defineProperties(mutex, {
    fd: { value: fd, enumerable: true },
    forkOptions: { value: (base?: ForkOptions) => carry(fd, base, true) },
    spawnOptions: { value: (base?: SpawnOptions) => carry(fd, base, false) },
  });
  return mutex;
}

/**
 * Create a lock in a fresh sealed memfd (anonymous shared memory that travels by fd). The
 * creating process is the first participant; fork children with `mutex.forkOptions()`.
 *
 * @example
 * ```ts
 * import { fork } from 'node:child_process';
 * import { createMutex } from '@bakery/mmap';
 *
 * const mutex = createMutex({ slots: 64 });
 * fork('./child.js', [], mutex.forkOptions());   // child.js: const m = openMutex();
 * ```
 */
export function createMutex(options: CreateOptions): MmapMutex {
  if (options === null || typeof options !== 'object')
    throw typeError('createMutex needs { slots }');
  const { slots, ...rest } = options;
  checkSlots(slots);
  const native = loadNative();
  const bytes = bytesFor(slots);
  const fd = native.create(bytes);
  try {
    const cells = new MmapCells(native, native.map(fd, bytes));
    initLayout(cells, slots);
    return wrap(native, fd, cells, rest, true);
  } catch (err) {
    native.close(fd);
    throw err;
  }
}

/**
 * Join a lock handed over by a parent's `forkOptions()`/`spawnOptions()` (the fd number comes
 * from `BAKERY_MMAP_FD`), or another participant in the same process with `{ fd: mutex.fd }`.
 * Validates the memory without writing to it: `BAKERY_BAD_HANDLE` when the fd is missing or not
 * shared memory, `BAKERY_BAD_LAYOUT` when it is not a bakery lock.
 *
 * @example
 * ```ts
 * // child.js, started with fork('./child.js', [], mutex.forkOptions())
 * import { openMutex } from '@bakery/mmap';
 * const mutex = openMutex();
 * await mutex.withLock(() => doWork());
 * ```
 */
export function openMutex(options: OpenOptions = {}): MmapMutex {
  if (options === null || typeof options !== 'object')
    throw typeError('openMutex options must be an object');
  const { fd: given, ...rest } = options;
  const native = loadNative();
  let fd = given;
  const inherited = fd === undefined;
  if (fd === undefined) {
    const env = process.env[FD_ENV];
    fd = env !== undefined && /^\d+$/.test(env) ? Number(env) : -1;
    if (fd < 0) {
      throw new BakeryError(
        'BAKERY_BAD_HANDLE',
        `no bakery lock was handed to this process (${FD_ENV} is ${env === undefined ? 'unset' : `"${env}"`}); start it with mutex.forkOptions() or pass { fd }`,
      );
    }
  } else if (!Number.isInteger(fd) || fd < 0) {
    throw typeError('fd must be a non-negative integer');
  }
  const bytes = native.size(fd);
  if (bytes < HEADER_CELLS * 4 || bytes % 4 !== 0) {
    throw new BakeryError('BAKERY_BAD_LAYOUT', `fd ${fd} holds ${bytes} bytes, not a bakery lock`);
  }
  const cells = new MmapCells(native, native.map(fd, bytes));
  // An inherited fd is ours to keep (and to pass on to grandchildren), but not to leak into
  // unrelated programs this process may exec.
  if (inherited) native.setCloexec(fd, true);
  return wrap(native, fd, cells, rest, false);
}
