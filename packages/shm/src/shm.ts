import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  ACCESS,
  type AccessMode,
  BakeryError,
  bytesFor,
  cellsFor,
  checkMutexOptions,
  checkSlots,
  HEADER_CELLS,
  initLayout,
  layoutAccess,
  MAX_SLOTS,
  type Mutex,
  type MutexOptions,
  openOn,
  rangeError,
  typeError,
  validateLayout,
} from '@bakery/core';
import { fileId, isAlive, isAliveInLock, pidNamespace, processIdentity } from '@bakery/core/node';
import { SHM_MAX_SLOTS, ShmCells } from './cells.js';

/** The capacity rule of a named lock, stated once for every message that needs it. */
export const SLOTS_RULE = `slots must be an integer from 1 to ${MAX_SLOTS} for a mapped shm lock (the default where @bakery/native loads), 1 to ${SHM_MAX_SLOTS} for a pure-JS one`;

import { ACCESS_ENV, type Binding, nativeBinding, type ShmAccess, wantedAccess } from './native.js';
import {
  checkRegistry,
  RegistryLock,
  registryPath,
  tempOwnerPid,
  tempPath,
  type Writers,
} from './registry.js';

/** Lock names: letters, digits, '.', '_' and '-', 1 to 200 characters, not starting with '.'. */
export const NAME_PATTERN = /^[A-Za-z0-9._-]{1,200}$/;

/**
 * The base under which each user's default lock directory is made: `/dev/shm` (RAM-backed
 * tmpfs). It is not itself where lock files live any more — it is world-writable, so another
 * local user could plant a file at any name in it; see {@link defaultLockDir}. Where there is no
 * `/dev/shm` (macOS, some containers) the base is `/tmp`.
 */
export const DEFAULT_DIR = '/dev/shm';

/** The base where {@link DEFAULT_DIR} does not exist. A fixed path, not `os.tmpdir()`: that reads `$TMPDIR`. */
const FALLBACK_BASE = '/tmp';

/** Options of {@link openMutex}. */
export interface OpenOptions extends MutexOptions {
  /**
   * Participants the lock can hold at once (each open instance takes one slot; see
   * `claim: 'lock'` for instances that rarely lock). Required when the call may create the
   * lock; when attaching, if given, it must equal the file's capacity (else
   * `BAKERY_BAD_LAYOUT`). The limits ({@link SLOTS_RULE}): 1–4096 for a mapped lock, 1–127 for
   * a pure-JS one.
   */
  slots?: number;
  /** Create the lock when it does not exist (default true). With false a missing lock is `BAKERY_NOT_FOUND` (cause ENOENT). */
  create?: boolean;
  /** Permission bits of a newly created lock file (default 0o600; applied exactly, not masked by the umask). */
  mode?: number;
  /**
   * Accept a lock file owned by another user (default false: `BAKERY_FOREIGN_OWNER`). Whoever
   * can write the file can break the lock for everyone; opt in only for a shared group file.
   */
  allowForeignOwner?: boolean;
  /**
   * Directory of the lock files (default: env `BAKERY_SHM_DIR`, else this user's private
   * {@link defaultLockDir}, `/dev/shm/bakery-<uid>`). A directory you name is used as it is: to
   * share a lock between users, name a directory they can all write and give the creator `mode`
   * (e.g. `0o660`) and the others `allowForeignOwner: true`.
   */
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
  /** Directory of the lock files (default: env `BAKERY_SHM_DIR`, else {@link defaultLockDir}). */
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

/**
 * This user's private default lock directory: `/dev/shm/bakery-<uid>` (`/tmp/bakery-<uid>`
 * where there is no /dev/shm), `<uid>` being the real uid (`process.getuid()`). It depends on
 * nothing in the environment — not `$HOME`, `$USER`, `$XDG_RUNTIME_DIR` or `$TMPDIR` — so a
 * cron job, a systemd service and a login shell of one user all find the same locks. Only the
 * path is computed here; {@link openMutex} creates the directory (mode 0700) when it creates a
 * lock, and refuses it (`BAKERY_FOREIGN_OWNER`, `BAKERY_BAD_LAYOUT`) unless it is a real
 * directory owned by this uid that no group or other user can access. Without `getuid`
 * (Windows) it is `<os.tmpdir()>/bakery`, which is per-user there, without these checks.
 */
export function defaultLockDir(): string {
  const uid = process.getuid?.();
  if (uid === undefined) return path.join(tmpdir(), 'bakery');
  return path.join(isDirectory(DEFAULT_DIR) ? DEFAULT_DIR : FALLBACK_BASE, `bakery-${uid}`);
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** The lock directory a call uses, and whether it is the private per-user default. */
function resolveDir(dir: string | undefined): { dir: string; private: boolean } {
  const chosen = dir ?? process.env.BAKERY_SHM_DIR;
  if (chosen === undefined) return { dir: defaultLockDir(), private: true };
  if (typeof chosen !== 'string' || chosen === '') {
    throw typeError('dir must be a non-empty string');
  }
  return { dir: chosen, private: false };
}

/**
 * The directory lock files live in: `dir`, else env `BAKERY_SHM_DIR`, else this user's
 * {@link defaultLockDir} (`/dev/shm/bakery-<uid>`). Computes the path only: nothing is created
 * or checked.
 */
export function lockDir(dir?: string): string {
  return resolveDir(dir).dir;
}

/** The path of lock `name`'s file: `<dir>/bakery.<name>` (dir as in {@link lockDir}). */
export function lockPath(name: string, options?: RemoveOptions): string {
  return path.join(lockDir(options?.dir), `bakery.${checkName(name)}`);
}

function kindOf(st: fs.Stats): string {
  if (st.isSymbolicLink()) return 'symbolic link';
  if (st.isDirectory()) return 'directory';
  if (st.isFile()) return 'regular file';
  if (st.isFIFO()) return 'FIFO';
  if (st.isSocket()) return 'socket';
  return 'device';
}

/**
 * Make sure the private per-user directory `dir` is ours: create it (mode 0700) when `create`
 * is true and it is missing, then check with lstat that it is a directory — not a symlink —
 * owned by our uid, with no group or other access. Anything else at that path was put there by
 * someone else (or by hand) and is refused at once, before anything is created:
 * `BAKERY_FOREIGN_OWNER` naming its owner when it is not ours (whatever it is), else
 * `BAKERY_BAD_LAYOUT`. Only a directory this call has just made is ever chmod-ed. Returns false
 * when the directory does not exist (and `create` is false).
 */
function ensurePrivateDir(dir: string, create: boolean): boolean {
  const uid = process.getuid?.();
  let made = false;
  if (create) {
    try {
      fs.mkdirSync(dir, uid === undefined ? { recursive: true } : { mode: 0o700 });
      made = true;
    } catch (err) {
      if (errno(err) !== 'EEXIST') {
        throw new BakeryError(
          'BAKERY_IO',
          `cannot create the lock directory ${dir}: ${(err as Error).message}`,
          { cause: err },
        );
      }
    }
  }
  let st: fs.Stats;
  try {
    st = fs.lstatSync(dir);
  } catch (err) {
    if (errno(err) === 'ENOENT' && !create) return false;
    throw new BakeryError('BAKERY_IO', `cannot stat ${dir}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (uid === undefined) return true; // no uids to compare (Windows)
  if (st.uid !== uid) {
    throw new BakeryError(
      'BAKERY_FOREIGN_OWNER',
      `${dir} (a ${kindOf(st)}) belongs to uid ${st.uid}, not to us (uid ${uid}): another user has taken the path of our private lock directory. Nothing was created; have it removed, or pass { dir } / BAKERY_SHM_DIR to use another directory`,
    );
  }
  if (!st.isDirectory()) {
    throw new BakeryError(
      'BAKERY_BAD_LAYOUT',
      `${dir} is a ${kindOf(st)}, not our private lock directory; remove it, or pass { dir } / BAKERY_SHM_DIR to use another directory`,
    );
  }
  if ((st.mode & 0o777) === 0o700) return true;
  if (made && (st.mode & 0o077) === 0) {
    // The umask took some of our own bits away: restore 0700 on the directory we just made,
    // through an fd of it (O_NOFOLLOW), never through a path that could have been swapped.
    try {
      const fd = fs.openSync(
        dir,
        fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW,
      );
      try {
        if (fs.fstatSync(fd).ino === st.ino) fs.fchmodSync(fd, 0o700);
      } finally {
        fs.closeSync(fd);
      }
    } catch (err) {
      throw new BakeryError(
        'BAKERY_IO',
        `cannot set mode 0700 on the lock directory ${dir}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    return true;
  }
  if ((st.mode & 0o077) !== 0) {
    throw new BakeryError(
      'BAKERY_BAD_LAYOUT',
      `${dir} has mode 0${(st.mode & 0o777).toString(8)}: our private lock directory must not be open to group or other users (mode 0700). If you made it, chmod 700 it; or pass { dir } / BAKERY_SHM_DIR`,
    );
  }
  return true;
}

interface Opened {
  fd: number;
  size: number;
  created: boolean;
  /** Who besides root can write the file, i.e. may legitimately hold its registry lock. */
  writers: Writers;
}

function writersOf(st: fs.Stats): Writers {
  return { owner: st.uid, shared: (st.mode & 0o022) !== 0 };
}

/** ` (owned by uid N)` for a path another uid owns, else '' (for messages). */
function ownedBy(file: string): string {
  try {
    const owner = fs.lstatSync(file).uid;
    return owner === process.getuid?.() ? '' : ` (owned by uid ${owner})`;
  } catch {
    return '';
  }
}

/**
 * Attach to an existing lock file. Returns null when there is none. The file is opened with
 * O_NOFOLLOW (a planted symlink fails with ELOOP; its target is never opened) and O_NONBLOCK (a
 * planted FIFO or device cannot make the open wait), and checked with fstat on the fd we will
 * use, so nothing can be swapped in between.
 */
function attach(file: string, allowForeignOwner: boolean): Opened | null {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (err) {
    const code = errno(err);
    if (code === 'ENOENT') return null;
    if (code === 'ELOOP') {
      throw new BakeryError(
        'BAKERY_BAD_LAYOUT',
        `${file} is a symbolic link${ownedBy(file)}, not a bakery lock file; refusing to follow it`,
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
      throw new BakeryError(
        'BAKERY_BAD_LAYOUT',
        `${file} is not a regular file (a ${kindOf(st)}${st.uid === process.getuid?.() ? '' : ` owned by uid ${st.uid}`}), not a bakery lock file`,
      );
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
    return { fd, size: st.size, created: false, writers: writersOf(st) };
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
        fs.constants.O_RDWR |
          fs.constants.O_CREAT |
          fs.constants.O_EXCL |
          fs.constants.O_NOFOLLOW |
          fs.constants.O_NONBLOCK,
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
  return { fd, size: bytesFor(slots), created: true, writers: writersOf(fs.fstatSync(fd)) };
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
  if (o.slots !== undefined) {
    try {
      checkSlots(o.slots);
    } catch {
      throw rangeError(`${SLOTS_RULE}; got ${String(o.slots)}`);
    }
  }
  // Core's Mutex checks these too, but only once the lock file exists: check them with core's
  // own check before anything is created.
  checkMutexOptions(o);
  return o;
}

/**
 * Open the named lock `name`, creating it when it does not exist yet. Any process of the same
 * user that knows the name can open the same lock — no parent/child relation, no fd passing.
 * The lock is a file `<dir>/bakery.<name>` (dir: the `dir` option, else env `BAKERY_SHM_DIR`,
 * else this user's private {@link defaultLockDir}, `/dev/shm/bakery-<uid>`, made 0700 by the
 * first call that creates a lock in it and refused if another user has taken its path). The
 * returned instance is one participant; it holds a slot until `close()` (none while the table is
 * full: its first lock waits for one).
 *
 * Where @bakery/native loads, a new lock is mapped (Atomics on a MAP_SHARED mapping, futex
 * wake-ups, kernel leases, up to 4096 slots); elsewhere it is pure JS (pread/pwrite, polling,
 * at most 127 slots). An existing lock is always opened in the mode it was created with
 * (`mutex.access` says which; see {@link OpenOptions.access}).
 *
 * Every argument — name, `slots`, `mode`, `access`, `dir`, and core's `spin`, `staleAfterMs`,
 * `robust` — is checked before anything is created (`BAKERY_INVALID_ARGUMENT`).
 *
 * Errors: `BAKERY_BAD_NAME` (nothing is created), `BAKERY_FOREIGN_OWNER` (the file, its
 * registry, or the path of the default directory belongs to another user, whose uid the
 * message names — nothing is created), `BAKERY_BAD_LAYOUT` (not a bakery lock of this version
 * or of `slots` slots, a symlink, a FIFO or other non-regular file, truncated; or the default
 * directory's path is ours but not a 0700 directory — left untouched), `BAKERY_ACCESS_MISMATCH` (the lock's mode
 * is not one this process can or may use — untouched too), `BAKERY_NATIVE_UNAVAILABLE`
 * (`access: 'mapped'`, or more than 127 slots, without the binding), `BAKERY_NOT_FOUND`
 * (`create: false` and no such lock — nothing is created), `BAKERY_IO`. A full slot
 * table is no error: the Mutex opens without a slot (`slot === -1`) and its first lock waits
 * for one (see the Mutex interface).
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
  const where = resolveDir(dirOption);
  const { dir } = where;
  const file = path.join(dir, `bakery.${name}`);
  // Everything above only validated. The private default directory is made (0700) only by a
  // call that may create the lock; a squatted one is refused here, before anything is created.
  if (where.private) ensurePrivateDir(dir, mayCreate && slots !== undefined);
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
      throw new BakeryError(
        'BAKERY_NOT_FOUND',
        `openMutex(${JSON.stringify(name)}, { create: false }): there is no lock named ${name} in ${dir}; \`bakery ls\` lists the locks there, and without create: false (and with { slots }) the call creates it`,
        { cause },
      );
    }
    if (slots === undefined) {
      throw typeError(
        `lock ${name} does not exist in ${dir}; openMutex needs { slots } to create it`,
      );
    }
    if (where.private) refuseLegacyLock(name);
    const access = creationAccess(bind(), want, slots);
    if (access === ACCESS.POSITIONAL) {
      // A pure-JS lock claims slots under its registry directory: if something that can never
      // be that directory is in its place, fail now rather than after creating the lock file.
      const uid = process.getuid?.();
      checkRegistry(registryPath(dir, name), {
        owner: uid ?? 0,
        shared: (mode & 0o022) !== 0,
      });
    }
    opened = create(dir, name, file, slots, mode, access);
  }

  const { fd } = opened;
  try {
    const probe = new ShmCells(fd, opened.size / 4, undefined, file);
    // Reads only: on a mismatch the file is left exactly as it was.
    const capacity = validateLayout(probe);
    if (slots !== undefined && capacity !== slots) {
      throw new BakeryError(
        'BAKERY_BAD_LAYOUT',
        `openMutex(${JSON.stringify(name)}, { slots: ${slots} }): ${file} is a lock of ${capacity} slots, not ${slots}; a lock keeps the capacity it was created with — open it with { slots: ${capacity} } or without slots (attaching reads it from the file), or, once no process uses it, \`bakery rm ${name}\` and create it afresh with ${slots}`,
      );
    }
    const mutex =
      layoutAccess(probe) === ACCESS.ATOMIC
        ? openMappedFile(file, fd, opened.size, bind(), want, mutexOptions)
        : openPositional(dir, name, file, fd, opened, capacity, want, binding, mutexOptions);
    Object.defineProperty(mutex, 'path', { value: file, enumerable: true });
    Object.defineProperty(mutex, 'created', { value: opened.created, enumerable: true });
    return mutex;
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

/**
 * Earlier releases kept named locks directly in the shared directory (`/dev/shm/bakery.<name>`).
 * A process of such a release may still be using that file, and it would not exclude one that
 * creates the same name in the per-user directory: refuse to create it while a lock file of
 * ours is there, and say how to move on. (Someone else's file there is none of our business.)
 */
function refuseLegacyLock(name: string): void {
  const uid = process.getuid?.();
  if (uid === undefined) return;
  const legacy = path.join(DEFAULT_DIR, `bakery.${name}`);
  let st: fs.Stats;
  try {
    st = fs.lstatSync(legacy);
  } catch {
    return;
  }
  if (!st.isFile() || st.uid !== uid) return;
  throw new BakeryError(
    'BAKERY_BAD_LAYOUT',
    `${legacy} is a lock named ${name} made by an earlier bakery release, which kept named locks directly in ${DEFAULT_DIR}; a process of that release would not exclude this one. Old and new releases cannot share a lock: stop the old processes, then remove it (rm ${legacy}, or bakery rm --dir ${DEFAULT_DIR} ${name})`,
  );
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
    const limit = `${slots} slots is too many for a pure-JS shm lock (${SLOTS_RULE}: no protocol cell may tear in a positional read)`;
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
  opened: Opened,
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
      `${file} has ${capacity} slots, too many for a pure-JS lock (${SLOTS_RULE}); it was not made by bakery — remove it once nobody uses it`,
    );
  }
  const why =
    want === 'pure-js'
      ? `access 'pure-js'`
      : binding !== undefined && !('native' in binding)
        ? '@bakery/native is not loaded'
        : 'the lock was created pure JS';
  const registry = new RegistryLock(dir, name, opened.writers);
  const cells = new ShmCells(fd, cellsFor(capacity), registry, file);
  const lockFile = fileId(fd);
  const mutex = openOn(
    {
      cells,
      // pid + OS thread id + that thread's start time: survives pid reuse, and lets core's
      // reaper tell a crashed participant (or a terminated worker thread) from a live one.
      identity: processIdentity,
      // ... with the second opinion of the owner's descriptors on this file, so that a
      // rewritten start time or thread id cannot get a live owner reaped.
      isAlive: (owner, slot) =>
        slot === undefined ? isAlive(owner) : isAliveInLock(owner, cells, slot, lockFile),
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
  const where = resolveDir(options?.dir);
  const { dir } = where;
  // The private default directory is never created here; a squatted one is refused.
  if (where.private && !ensurePrivateDir(dir, false)) return false;
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
  // A temp name records only its creator's pid: judge that pid in our own pid namespace by
  // core's rule (tid 0: a zombie or a pid kill(pid, 0) cannot find is dead; else alive).
  const ns = pidNamespace();
  for (const e of entries) {
    const pid = tempOwnerPid(e, name);
    if (pid === null || pid === process.pid) continue;
    if (isAlive({ pid, tid: 0, startTime: 0, ns })) continue;
    fs.rmSync(path.join(dir, e), { recursive: true, force: true });
  }
  return removed;
}
