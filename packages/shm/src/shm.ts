import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  ACCESS,
  type AccessMode,
  BakeryError,
  bytesFor,
  cellsFor,
  checkSlots,
  HEADER_CELLS,
  initLayout,
  layoutAccess,
  type Mutex,
  type MutexOptions,
  openOn,
  rangeError,
  typeError,
  validateLayout,
} from '@bakery/core';
import { isAlive, processIdentity } from '@bakery/core/node';
import { SHM_MAX_SLOTS, ShmCells } from './cells.js';
import { ACCESS_ENV, type Binding, nativeBinding, type ShmAccess, wantedAccess } from './native.js';
import { ownerIsDead, selfPidNamespace } from './proc.js';
import { RegistryLock, registryPath, tempOwnerPid, tempPath } from './registry.js';

/** Lock names: letters, digits, '.', '_' and '-', 1 to 200 characters, not starting with '.'. */
export const NAME_PATTERN = /^[A-Za-z0-9._-]{1,200}$/;

/** Where lock files live when neither the `dir` option nor `BAKERY_SHM_DIR` says otherwise. */
export const DEFAULT_DIR = '/dev/shm';

/** Options of {@link openMutex}. */
export interface OpenOptions extends MutexOptions {
  /**
   * Participants the lock can hold at once (each open instance takes one slot). Required when
   * the call may create the lock; when attaching, if given, it must equal the file's capacity
   * (else `BAKERY_BAD_LAYOUT`).
   */
  slots?: number;
  /** Create the lock when it does not exist (default true). With false a missing lock is `BAKERY_IO` (cause ENOENT). */
  create?: boolean;
  /** Permission bits of a newly created lock file (default 0o600; applied exactly, not masked by the umask). */
  mode?: number;
  /**
   * Accept a lock file owned by another user (default false: `BAKERY_FOREIGN_OWNER`). Whoever
   * can write the file can break the lock for everyone; opt in only for a shared group file.
   */
  allowForeignOwner?: boolean;
  /** Directory of the lock files (default: env `BAKERY_SHM_DIR`, else /dev/shm). */
  dir?: string;
  /**
   * How this participant reaches the lock's cells (default: env `BAKERY_SHM_ACCESS`, else
   * `'auto'`):
   * - `'auto'` — a new lock is mapped when @bakery/native loads and pure JS otherwise; an
   *   existing lock is opened the way it was created.
   * - `'mapped'` — require the mapped path (`BAKERY_NATIVE_UNAVAILABLE` without the binding,
   *   `BAKERY_ACCESS_MISMATCH` on a lock created pure JS).
   * - `'pure-js'` — never load the binding (`BAKERY_ACCESS_MISMATCH` on a mapped lock).
   *
   * Every participant of one lock uses the lock's mode, recorded at creation: mapped and
   * pure-JS participants would claim slots by different means and could not wake each other.
   */
  access?: ShmAccess;
}

/** Options of {@link removeMutex}. */
export interface RemoveOptions {
  /** Directory of the lock files (default: env `BAKERY_SHM_DIR`, else /dev/shm). */
  dir?: string;
}

/** A Mutex over a named lock file. */
export type ShmMutex = Mutex & {
  /** The lock file's path. */
  readonly path: string;
  /** True when this call created (and initialised) the lock file; false when it attached. */
  readonly created: boolean;
  /**
   * The path this participant runs: `'mapped'` (the file mapped MAP_SHARED through
   * @bakery/native: Atomics, futex wake-ups, kernel leases, up to 4096 slots) or `'pure-js'`
   * (one pread/pwrite per cell, polling waiters, at most 127 slots).
   */
  readonly access: 'mapped' | 'pure-js';
};

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** Check a lock name; throws `BAKERY_BAD_NAME` (nothing is touched on disk). */
export function checkName(name: unknown): string {
  if (typeof name !== 'string' || !NAME_PATTERN.test(name) || name.startsWith('.')) {
    const shown = typeof name === 'string' ? JSON.stringify(name.slice(0, 40)) : typeof name;
    throw new BakeryError(
      'BAKERY_BAD_NAME',
      `lock names are 1–200 of [A-Za-z0-9._-] and do not start with '.'; got ${shown}`,
    );
  }
  return name;
}

/** The directory lock files live in: `dir`, else env `BAKERY_SHM_DIR`, else /dev/shm. */
export function lockDir(dir?: string): string {
  const d = dir ?? process.env.BAKERY_SHM_DIR ?? DEFAULT_DIR;
  if (typeof d !== 'string' || d === '') throw typeError('dir must be a non-empty string');
  return d;
}

/** The path of lock `name`'s file: `<dir>/bakery.<name>`. */
export function lockPath(name: string, options?: RemoveOptions): string {
  return path.join(lockDir(options?.dir), `bakery.${checkName(name)}`);
}

interface Opened {
  fd: number;
  size: number;
  created: boolean;
}

/**
 * Attach to an existing lock file. Returns null when there is none. The file is opened with
 * O_NOFOLLOW (a planted symlink fails with ELOOP; its target is never opened) and checked with
 * fstat on the fd we will use, so nothing can be swapped in between.
 */
function attach(file: string, allowForeignOwner: boolean): Opened | null {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_NOFOLLOW);
  } catch (err) {
    const code = errno(err);
    if (code === 'ENOENT') return null;
    if (code === 'ELOOP') {
      throw new BakeryError(
        'BAKERY_BAD_LAYOUT',
        `${file} is a symbolic link, not a bakery lock file; refusing to follow it`,
        { cause: err },
      );
    }
    if (code === 'EISDIR') {
      throw new BakeryError('BAKERY_BAD_LAYOUT', `${file} is a directory, not a bakery lock file`, {
        cause: err,
      });
    }
    if (code === 'EACCES' || code === 'EPERM') {
      const foreign = foreignOwner(file);
      throw new BakeryError(
        foreign ? 'BAKERY_FOREIGN_OWNER' : 'BAKERY_IO',
        `cannot open ${file}${foreign ? ': it belongs to another user' : ''}`,
        { cause: err },
      );
    }
    throw new BakeryError('BAKERY_IO', `cannot open ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) {
      throw new BakeryError('BAKERY_BAD_LAYOUT', `${file} is not a regular file`);
    }
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid && !allowForeignOwner) {
      throw new BakeryError(
        'BAKERY_FOREIGN_OWNER',
        `${file} belongs to uid ${st.uid}, not to us (uid ${uid}); pass allowForeignOwner: true to accept it`,
      );
    }
    if (st.size < HEADER_CELLS * 4 || st.size % 4 !== 0) {
      throw new BakeryError(
        'BAKERY_BAD_LAYOUT',
        `${file} is ${st.size} bytes: not a bakery lock file (truncated or foreign)`,
      );
    }
    return { fd, size: st.size, created: false };
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

function foreignOwner(file: string): boolean {
  try {
    const uid = process.getuid?.();
    return uid !== undefined && fs.lstatSync(file).uid !== uid;
  } catch {
    return false;
  }
}

/**
 * Create the lock file without ever exposing a half-initialised one: a private temp file
 * (O_EXCL, our mode) is sized and initialised, then hard-linked to the final name. link() fails
 * with EEXIST if anything — another creator's file, a planted symlink — is there already, so
 * an existing file is never truncated or re-initialised. Returns null when we lost that race.
 */
function create(
  dir: string,
  name: string,
  file: string,
  slots: number,
  mode: number,
  access: AccessMode,
): Opened | null {
  let tmp = '';
  let fd = -1;
  for (;;) {
    tmp = tempPath(dir, name, 'tmp');
    try {
      fd = fs.openSync(
        tmp,
        fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
        mode,
      );
      break;
    } catch (err) {
      if (errno(err) !== 'EEXIST') {
        throw new BakeryError('BAKERY_IO', `cannot create ${tmp}: ${(err as Error).message}`, {
          cause: err,
        });
      }
    }
  }
  let linked = false;
  try {
    // The umask must not weaken or narrow the mode the caller asked for.
    fs.fchmodSync(fd, mode);
    fs.ftruncateSync(fd, bytesFor(slots));
    initLayout(new ShmCells(fd, cellsFor(slots), undefined, tmp), slots, access);
    try {
      fs.linkSync(tmp, file);
      linked = true;
    } catch (err) {
      if (errno(err) !== 'EEXIST') {
        throw new BakeryError(
          'BAKERY_IO',
          `cannot link ${tmp} to ${file}: ${(err as Error).message}`,
          { cause: err },
        );
      }
    }
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fs.rmSync(tmp, { force: true });
  if (!linked) {
    fs.closeSync(fd);
    return null;
  }
  return { fd, size: bytesFor(slots), created: true };
}

function checkOptions(options: unknown): OpenOptions {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object') {
    throw typeError('openMutex options must be an object');
  }
  const o = options as OpenOptions;
  if (o.create !== undefined && typeof o.create !== 'boolean')
    throw typeError('create must be a boolean');
  if (o.allowForeignOwner !== undefined && typeof o.allowForeignOwner !== 'boolean')
    throw typeError('allowForeignOwner must be a boolean');
  if (
    o.mode !== undefined &&
    (typeof o.mode !== 'number' || !Number.isInteger(o.mode) || o.mode < 0 || o.mode > 0o777)
  ) {
    throw rangeError(`mode must be permission bits from 0 to 0o777, got ${String(o.mode)}`);
  }
  if (o.slots !== undefined) checkSlots(o.slots);
  return o;
}

/**
 * Open the named lock `name`, creating it when it does not exist yet. Any process of the same
 * user that knows the name can open the same lock — no parent/child relation, no fd passing.
 * The lock is a file `<dir>/bakery.<name>` (dir: the `dir` option, else env `BAKERY_SHM_DIR`,
 * else /dev/shm). The returned instance is one participant and holds one slot until `close()`.
 *
 * Where @bakery/native loads, a new lock is mapped (Atomics on a MAP_SHARED mapping, futex
 * wake-ups, kernel leases, up to 4096 slots); elsewhere it is pure JS (pread/pwrite, polling,
 * at most 127 slots). An existing lock is always opened in the mode it was created with
 * (`mutex.access` says which; see {@link OpenOptions.access}).
 *
 * Errors: `BAKERY_BAD_NAME` (nothing is created), `BAKERY_FOREIGN_OWNER` (the file belongs to
 * another user), `BAKERY_BAD_LAYOUT` (not a bakery lock of this version or of `slots` slots, a
 * symlink, truncated — the file is left untouched), `BAKERY_ACCESS_MISMATCH` (the lock's mode
 * is not one this process can or may use — untouched too), `BAKERY_NATIVE_UNAVAILABLE`
 * (`access: 'mapped'`, or more than 127 slots, without the binding), `BAKERY_NO_FREE_SLOT`,
 * `BAKERY_IO`.
 *
 * @example
 * ```ts
 * import { openMutex } from '@bakery/shm';
 *
 * const mutex = openMutex('nightly-report', { slots: 16 });
 * {
 *   using lease = mutex.lockSync();
 *   // only one process at a time runs this
 * }
 * await mutex.withLock(async () => { ... }); // or without blocking the event loop
 * mutex.close();
 * ```
 */
export function openMutex(name: string, options?: OpenOptions): ShmMutex {
  checkName(name);
  const {
    slots,
    create: mayCreate = true,
    mode = 0o600,
    allowForeignOwner = false,
    dir: dirOption,
    access: accessOption,
    ...mutexOptions
  } = checkOptions(options);
  const want = wantedAccess(accessOption);
  const dir = lockDir(dirOption);
  const file = path.join(dir, `bakery.${name}`);
  // Loaded only when this call may map; a failure is remembered, not thrown, under 'auto'.
  let binding: Binding | undefined;
  const bind = (): Binding => {
    binding ??= want === 'pure-js' ? { error: undefined } : nativeBinding();
    return binding;
  };

  let opened: Opened | null = null;
  // Each round either attaches, creates, or finds that someone else linked a file in between
  // (then attaches to theirs). A removeMutex racing with us can make a round come back empty.
  for (let round = 0; opened === null; round++) {
    if (round === 100) {
      throw new BakeryError('BAKERY_IO', `${file} keeps appearing and disappearing`);
    }
    opened = attach(file, allowForeignOwner);
    if (opened !== null) break;
    if (!mayCreate) {
      const cause = Object.assign(new Error(`ENOENT: no such file, open '${file}'`), {
        code: 'ENOENT',
      });
      throw new BakeryError('BAKERY_IO', `there is no lock named ${name} in ${dir}`, { cause });
    }
    if (slots === undefined) {
      throw typeError(
        `lock ${name} does not exist in ${dir}; openMutex needs { slots } to create it`,
      );
    }
    opened = create(dir, name, file, slots, mode, creationAccess(bind(), want, slots));
  }

  const { fd } = opened;
  try {
    const probe = new ShmCells(fd, opened.size / 4, undefined, file);
    // Reads only: on a mismatch the file is left exactly as it was.
    const capacity = validateLayout(probe, slots);
    const mutex =
      layoutAccess(probe) === ACCESS.ATOMIC
        ? openMappedFile(file, fd, opened.size, bind(), want, mutexOptions)
        : openPositional(dir, name, file, fd, capacity, want, binding, mutexOptions);
    Object.defineProperty(mutex, 'path', { value: file, enumerable: true });
    Object.defineProperty(mutex, 'created', { value: opened.created, enumerable: true });
    return mutex;
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

/** The access mode a lock created by this call gets. Throws before anything is created. */
function creationAccess(binding: Binding, want: ShmAccess, slots: number): AccessMode {
  if ('native' in binding) return ACCESS.ATOMIC;
  if (want === 'mapped') {
    throw new BakeryError(
      'BAKERY_NATIVE_UNAVAILABLE',
      `access 'mapped' needs @bakery/native: ${binding.error?.message}`,
      { cause: binding.error },
    );
  }
  if (slots > SHM_MAX_SLOTS) {
    const limit = `a pure-JS shm lock has at most ${SHM_MAX_SLOTS} slots (so that no protocol cell can tear in a positional read), got ${slots}; more need the mapped path`;
    if (want === 'pure-js') {
      throw rangeError(`${limit}, and access is 'pure-js' (${ACCESS_ENV} or the access option)`);
    }
    throw new BakeryError(
      'BAKERY_NATIVE_UNAVAILABLE',
      `${limit}, and @bakery/native is not loaded here: ${binding.error?.message}`,
      { cause: binding.error },
    );
  }
  return ACCESS.POSITIONAL;
}

const AGREE =
  'every participant of one lock must use the access mode it was created with. To switch, stop every process that uses it, remove it (`bakery rm <name>` or removeMutex), and open it again with the mode you want';

/** The mapped path: the lock file mapped MAP_SHARED, exactly like an mmap lock. */
function openMappedFile(
  file: string,
  fd: number,
  size: number,
  binding: Binding,
  want: ShmAccess,
  options: MutexOptions,
): ShmMutex {
  if (!('native' in binding)) {
    const why =
      want === 'pure-js'
        ? `this process asked for access 'pure-js' (${ACCESS_ENV} or the access option)`
        : `this process cannot load @bakery/native (${binding.error?.message})`;
    throw new BakeryError(
      'BAKERY_ACCESS_MISMATCH',
      `${file} is a mapped lock (its participants use atomics and futex wake-ups, which a pure-JS participant cannot take part in), but ${why}. Install @bakery/native or drop the 'pure-js' setting here; ${AGREE}`,
      { cause: binding.error },
    );
  }
  const { native, lib } = binding;
  const cells = new lib.MappedCells(native, native.map(fd, size, true));
  // Our own core's openOn: @bakery/native is loaded with require, and from an ES module that
  // is a second copy of core; the Mutex and its errors must be this one's (instanceof).
  const mutex = lib.openMapped(
    native,
    cells,
    { fd, description: `shm ${file} (mapped)`, close: () => fs.closeSync(fd) },
    options,
    openOn,
  );
  Object.defineProperty(mutex, 'access', { value: 'mapped', enumerable: true });
  return mutex as ShmMutex;
}

/** The pure-JS path: one pread/pwrite per cell, slot claims under the registry lock. */
function openPositional(
  dir: string,
  name: string,
  file: string,
  fd: number,
  capacity: number,
  want: ShmAccess,
  binding: Binding | undefined,
  options: MutexOptions,
): ShmMutex {
  if (want === 'mapped') {
    throw new BakeryError(
      'BAKERY_ACCESS_MISMATCH',
      `${file} is a pure-JS lock (positional reads and writes), but this process asked for access 'mapped'; ${AGREE}`,
    );
  }
  if (capacity > SHM_MAX_SLOTS) {
    throw new BakeryError(
      'BAKERY_BAD_LAYOUT',
      `${file} has ${capacity} slots; a pure-JS shm lock has at most ${SHM_MAX_SLOTS} (wider cells could tear in a positional read)`,
    );
  }
  const why =
    want === 'pure-js'
      ? `access 'pure-js'`
      : binding !== undefined && !('native' in binding)
        ? '@bakery/native is not loaded'
        : 'the lock was created pure JS';
  const cells = new ShmCells(fd, cellsFor(capacity), new RegistryLock(dir, name), file);
  const mutex = openOn(
    {
      cells,
      // pid + OS thread id + that thread's start time: survives pid reuse, and lets core's
      // reaper tell a crashed participant (or a terminated worker thread) from a live one.
      identity: processIdentity,
      isAlive,
      description: `shm ${file} (pure JS: ${why})`,
      close: () => fs.closeSync(fd),
    },
    options,
  );
  Object.defineProperty(mutex, 'access', { value: 'pure-js', enumerable: true });
  return mutex as ShmMutex;
}

/**
 * Remove the named lock's file (and its registry directory and the leftovers of creators that
 * died), like `shm_unlink`: processes that have it open keep using the old file until they
 * close; the next `openMutex(name)` creates a fresh lock. Returns false when there was no lock
 * file. Only the name is removed — a symlink planted there is unlinked, never followed.
 *
 * @example
 * ```ts
 * import { removeMutex } from '@bakery/shm';
 * removeMutex('nightly-report'); // e.g. in an uninstall or test teardown
 * ```
 */
export function removeMutex(name: string, options?: RemoveOptions): boolean {
  checkName(name);
  const dir = lockDir(options?.dir);
  const file = path.join(dir, `bakery.${name}`);
  let removed = true;
  try {
    fs.unlinkSync(file);
  } catch (err) {
    if (errno(err) !== 'ENOENT') {
      throw new BakeryError('BAKERY_IO', `cannot remove ${file}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    removed = false;
  }
  // The registry directory is empty whenever nobody is claiming or freeing a slot.
  try {
    fs.rmdirSync(registryPath(dir, name));
  } catch {
    // busy right now, or not there
  }
  // Temp files and directories of creators/claimers that died half-way.
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    // unreadable directory: nothing to tidy
  }
  const ns = selfPidNamespace();
  for (const e of entries) {
    const pid = tempOwnerPid(e, name);
    if (pid === null || pid === process.pid) continue;
    if (!ownerIsDead({ pid, start: 0, tid: 0, tidStart: 0, ns })) continue;
    fs.rmSync(path.join(dir, e), { recursive: true, force: true });
  }
  return removed;
}
