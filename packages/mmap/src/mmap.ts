import type { ForkOptions, SpawnOptions, StdioOptions } from 'node:child_process';
import type { ClusterSettings } from 'node:cluster';
import {
  ACCESS,
  BakeryError,
  bytesFor,
  checkSlots,
  creatorOptions,
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
   * `stdio` array (with `'ipc'` present, as fork requires; without a `stdio`, the child
   * inherits stdin/stdout/stderr, or gets pipes with `silent`) and {@link FD_ENV} names its
   * number in the child. Everything else in `base` is kept. For `node:cluster` workers use
   * {@link MmapMutex.clusterOptions}: `cluster.fork()` takes no stdio.
   */
  forkOptions(base?: ForkOptions): ForkOptions;
  /** The same for `child_process.spawn` (any program; no IPC channel is added). */
  spawnOptions(base?: SpawnOptions): SpawnOptions;
  /**
   * What `node:cluster` needs to hand the lock to every worker: `settings` for
   * `cluster.setupPrimary()` — `base` with the fd appended to `stdio` (`'ipc'` kept or added,
   * as cluster requires) — and `env` for each `cluster.fork(env)`, naming the fd's index in
   * {@link FD_ENV}. Workers join with `openMutex()`. See {@link clusterOptions}.
   *
   * @example
   * ```ts
   * import cluster from 'node:cluster';
   * import { createMutex, openMutex } from '@bakery/mmap';
   *
   * if (cluster.isPrimary) {
   *   const mutex = createMutex({ slots: 4 }); // four workers; the primary takes no slot
   *   const { settings, env } = mutex.clusterOptions();
   *   cluster.setupPrimary(settings);
   *   for (let i = 0; i < 4; i++) cluster.fork(env);
   * } else {
   *   const mutex = openMutex();
   *   await mutex.withLock(() => doWork());
   *   mutex.close();
   *   process.disconnect();
   * }
   * ```
   */
  clusterOptions(base?: ClusterSettings): ClusterOptions;
}

/** What {@link clusterOptions} returns: one `cluster.setupPrimary()`, then any number of forks. */
export interface ClusterOptions {
  /**
   * For `cluster.setupPrimary(settings)`: the `base` settings, with `stdio` carrying the lock's
   * fd. cluster merges them over its current settings, so the fd stays at the same index for
   * every worker forked after (each `cluster.fork()` uses the settings of that moment).
   */
  settings: ClusterSettings;
  /**
   * For `cluster.fork(env)`: {@link FD_ENV} and nothing else (cluster.fork adds it to
   * `process.env`); spread it into your own: `cluster.fork({ ...env, ROLE: 'web' })`.
   */
  env: Record<typeof FD_ENV, string>;
}

/** Options of {@link createMutex}. */
export interface CreateOptions extends MutexOptions {
  /**
   * How many instances can hold a slot of the lock at once — the capacity rule of
   * @bakery/mmap, stated here once. Each `openMutex()` instance claims a slot when it opens (a
   * forked child or cluster worker is one instance each). The creator's own instance, the one
   * `createMutex` returns, claims one only at its first `lock()`/`lockSync()`/`tryLock()`
   * (`claim` defaults to `'lock'` here), so a parent that only hands the lock out takes none:
   * `slots: N` fits N children or workers, and N + 1 if the parent locks too. Pass
   * `claim: 'open'` to have the creator claim at create. Instances beyond the capacity still
   * open, without a slot, and take turns: their `lock()`/`lockSync()` wait for a slot (within
   * `timeout`; then `BAKERY_NO_FREE_SLOT`), `tryLock()` throws `BAKERY_NO_FREE_SLOT` when the
   * lock is free but no slot is. An instance keeps its slot until it closes (or gives it up
   * for a waiter at a release).
   */
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
  silent: unknown,
): { stdio: (string | number | null | undefined | object)[]; index: number } {
  let arr: (string | number | null | undefined | object)[];
  // Without stdio, fork (and cluster) pipe the child's stdio when `silent`, else inherit it.
  if (stdio === undefined || stdio === null) {
    const own = silent === true ? 'pipe' : 'inherit';
    arr = ipc ? [own, own, own, 'ipc'] : ['pipe', 'pipe', 'pipe'];
  } else if (typeof stdio === 'string') arr = [stdio, stdio, stdio];
  else arr = [...stdio];
  if (ipc && !arr.includes('ipc')) arr.push('ipc');
  arr.push(fd);
  return { stdio: arr, index: arr.length - 1 };
}

/** `base` as options to build on ({} when absent); a TypeError when it or its stdio is no such thing. */
function checkBase<T extends { stdio?: unknown }>(what: string, base: T | null | undefined): T {
  if (base === undefined || base === null) return {} as T;
  if (typeof base !== 'object' || Array.isArray(base))
    throw typeError(`${what} base must be an options object`);
  const { stdio } = base;
  if (stdio !== undefined && stdio !== null && typeof stdio !== 'string' && !Array.isArray(stdio)) {
    throw typeError(`${what} base.stdio must be an array or a string`);
  }
  return base;
}

function checkFd(fd: number): void {
  if (!Number.isInteger(fd) || fd < 0) throw typeError('fd must be a non-negative integer');
}

function carry<T extends ForkOptions | SpawnOptions>(
  fd: number,
  base: T | undefined,
  ipc: boolean,
): T {
  checkFd(fd);
  const b = checkBase(ipc ? 'forkOptions' : 'spawnOptions', base);
  const { stdio, index } = withFd(b.stdio, fd, ipc, (b as ForkOptions).silent);
  return { ...b, stdio, env: { ...(b.env ?? process.env), [FD_ENV]: String(index) } } as T;
}

function carryToCluster(fd: number, base: ClusterSettings | undefined): ClusterOptions {
  checkFd(fd);
  const b = checkBase('clusterOptions', base);
  // cluster forks with child_process.fork and these stdio settings: an 'ipc' entry is required.
  const { stdio, index } = withFd(b.stdio as StdioOptions | undefined, fd, true, b.silent);
  return { settings: { ...b, stdio }, env: { [FD_ENV]: String(index) } };
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
 * What `node:cluster` needs to hand the lock memory behind `fd` to every worker (see
 * {@link MmapMutex.clusterOptions}); for a primary that keeps the fd without a Mutex of its own.
 * `cluster.fork()` takes only an env — the workers' stdio comes from `cluster.setupPrimary()`
 * — so {@link forkOptions} cannot serve here: call `cluster.setupPrimary(settings)` once, then
 * `cluster.fork(env)` for each worker. `settings` is `base` with the fd appended to `stdio`
 * (`'ipc'` kept or added; without a `stdio`, stdin/stdout/stderr are inherited, or piped when
 * `base.silent`); everything else in `base` is kept. setupPrimary merges settings over earlier
 * ones, except this `stdio`, which replaces theirs: pass `cluster.settings` (or your own stdio)
 * as `base` to keep a stdio set before. Keep `fd` open while workers may still be forked
 * (a replacement for one that died gets it the same way).
 *
 * @example
 * ```ts
 * import cluster from 'node:cluster';
 * import { clusterOptions } from '@bakery/mmap';
 *
 * const { settings, env } = clusterOptions(fd, { exec: 'worker.js', silent: true });
 * cluster.setupPrimary(settings);
 * cluster.fork(env);                                        // worker.js: openMutex()
 * cluster.on('exit', () => cluster.fork(env));              // a replacement gets the lock too
 * ```
 */
export function clusterOptions(fd: number, base?: ClusterSettings): ClusterOptions {
  return carryToCluster(fd, base);
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
    clusterOptions: { value: (base?: ClusterSettings) => carryToCluster(fd, base) },
  });
  return mutex;
}

/**
 * Create a lock in a fresh sealed memfd (anonymous shared memory that travels by fd). The
 * creating process takes part through the returned instance, which claims a slot at its first
 * lock (see {@link CreateOptions.slots}); fork children with `mutex.forkOptions()`, cluster
 * workers with `mutex.clusterOptions()`. Throws `BAKERY_NATIVE_UNAVAILABLE` where the binding
 * cannot load, or where the kernel cannot make a sealed memfd (no memfd_create).
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
    return wrap(native, fd, cells, creatorOptions(rest), true);
  } catch (err) {
    native.close(fd);
    throw err;
  }
}

/**
 * Join a lock handed over by a parent's `forkOptions()`/`spawnOptions()` or a cluster
 * primary's `clusterOptions()` (the fd number comes from `BAKERY_MMAP_FD`), or another
 * participant in the same process with `{ fd: mutex.fd }`.
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
        `no bakery lock was handed to this process (${FD_ENV} is ${env === undefined ? 'unset' : `"${env}"`}); start it with mutex.forkOptions() (a cluster worker: cluster.setupPrimary and cluster.fork with mutex.clusterOptions()) or pass { fd }`,
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
