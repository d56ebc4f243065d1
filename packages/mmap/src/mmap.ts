import type { ForkOptions, SpawnOptions, StdioOptions } from 'node:child_process';
import {
  ACCESS,
  BakeryError,
  bytesFor,
  checkSlots,
  HEADER_CELLS,
  initLayout,
  type Mutex,
  type MutexOptions,
  typeError,
} from '@bakery/core';
import { loadNative, MappedCells, type Native, openMapped, SEAL } from '@bakery/native';

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

/** The cells of an mmap lock: {@link MappedCells} of @bakery/native (kept under its old name). */
export const MmapCells = MappedCells;
/** The cells of an mmap lock. */
export type MmapCells = MappedCells;

/**
 * The seals every lock's memfd carries (what {@link createMutex} sets): nobody can shrink it — a
 * truncation under the mapping would SIGBUS every participant — or grow it, and the set is frozen.
 */
const REQUIRED_SEALS = SEAL.SHRINK | SEAL.GROW | SEAL.SEAL;

/** Seals that would make the memory unwritable (a read/write mapping is refused or useless). */
const WRITE_SEALS = SEAL.WRITE | SEAL.FUTURE_WRITE;

const hex = (n: number) => `0x${n.toString(16)}`;

/**
 * Why `fd` may not be mapped as a lock, or undefined when it carries {@link REQUIRED_SEALS} and
 * no write seal. Reads the seals only (nothing is mapped or written).
 */
function unsealed(native: Native, fd: number): string | undefined {
  let seals: number;
  try {
    seals = native.seals(fd);
  } catch (err) {
    // F_GET_SEALS fails with EINVAL on a file that is not a memfd (a disk file, a pipe, ...).
    if ((err as { code?: unknown }).code === 'BAKERY_BAD_HANDLE') return 'it is not a memfd at all';
    throw err;
  }
  if ((seals & REQUIRED_SEALS) !== REQUIRED_SEALS) {
    return `it has seals ${hex(seals)}, a lock's memfd has at least F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL (${hex(REQUIRED_SEALS)})`;
  }
  if ((seals & WRITE_SEALS) !== 0) {
    return `it is sealed against writing (seals ${hex(seals)})`;
  }
  return undefined;
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

function wrap(
  native: Native,
  fd: number,
  cells: MappedCells,
  options: MutexOptions | undefined,
  ownsFd: boolean,
): MmapMutex {
  const mutex = openMapped(
    native,
    cells,
    { fd, description: `mmap fd ${fd}`, close: ownsFd ? () => native.close(fd) : undefined },
    options,
  ) as MmapMutex;
  Object.defineProperties(mutex, {
    fd: { value: fd, enumerable: true },
    forkOptions: { value: (base?: ForkOptions) => carry(fd, base, true) },
    spawnOptions: { value: (base?: SpawnOptions) => carry(fd, base, false) },
  });
  return mutex;
}

/**
 * Create a lock in a fresh sealed memfd (anonymous shared memory that travels by fd). The
 * creating process is the first participant; fork children with `mutex.forkOptions()`. Throws
 * `BAKERY_NATIVE_UNAVAILABLE` where the binding cannot load, or where the kernel cannot make a
 * sealed memfd (no memfd_create).
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
    // Where memfd_create is missing (ENOSYS: Linux < 3.17, or a seccomp filter that hides it),
    // create() falls back to an unsealed /dev/shm file: no participant could open that lock.
    const why = unsealed(native, fd);
    if (why !== undefined) {
      throw new BakeryError(
        'BAKERY_NATIVE_UNAVAILABLE',
        `@bakery/mmap needs a sealed memfd and this system cannot make one (memfd_create is missing or blocked; ${why}). Use @bakery/shm (a named lock file) or @bakery/sab instead`,
      );
    }
    const cells = new MappedCells(native, native.map(fd, bytes));
    initLayout(cells, slots, ACCESS.ATOMIC);
    return wrap(native, fd, cells, rest, true);
  } catch (err) {
    native.close(fd);
    throw err;
  }
}

/**
 * Join a lock handed over by a parent's `forkOptions()`/`spawnOptions()` (the fd number comes
 * from `BAKERY_MMAP_FD`), or another participant in the same process with `{ fd: mutex.fd }`.
 * Validates the memory without writing to it: `BAKERY_BAD_HANDLE` when the fd is missing, not
 * shared memory, or not a memfd sealed like {@link createMutex}'s (F_SEAL_SHRINK | F_SEAL_GROW |
 * F_SEAL_SEAL: an unsealed file, e.g. one in /dev/shm, could be truncated under the mapping and
 * kill every participant with SIGBUS), `BAKERY_BAD_LAYOUT` when it is not a bakery lock.
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
  // The handle first (BAKERY_BAD_HANDLE), then what it holds (BAKERY_BAD_LAYOUT).
  const bytes = native.size(fd);
  // Only a sealed memfd may be mapped: an unsealed tmpfs file could be truncated under the
  // mapping by anyone holding an fd of it, and every participant would die of SIGBUS.
  const why = unsealed(native, fd);
  if (why !== undefined) {
    throw new BakeryError(
      'BAKERY_BAD_HANDLE',
      `fd ${fd} is not a sealed memfd: an unsealed file could be truncated under the mapping (${why}); hand over the fd of a lock from createMutex()`,
    );
  }
  if (bytes < HEADER_CELLS * 4 || bytes % 4 !== 0) {
    throw new BakeryError('BAKERY_BAD_LAYOUT', `fd ${fd} holds ${bytes} bytes, not a bakery lock`);
  }
  const cells = new MappedCells(native, native.map(fd, bytes));
  // An inherited fd is ours to keep (and to pass on to grandchildren), but not to leak into
  // unrelated programs this process may exec.
  if (inherited) native.setCloexec(fd, true);
  return wrap(native, fd, cells, rest, false);
}
