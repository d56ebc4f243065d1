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
import { loadNative, MappedCells, type Native, openMapped } from '@bakery/native';

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
  const cells = new MappedCells(native, native.map(fd, bytes));
  // An inherited fd is ours to keep (and to pass on to grandchildren), but not to leak into
  // unrelated programs this process may exec.
  if (inherited) native.setCloexec(fd, true);
  return wrap(native, fd, cells, rest, false);
}
