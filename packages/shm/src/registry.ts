import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BakeryError, type Identity, sleepSync as sleep } from '@bakery/core';
import { isAlive, processIdentity } from '@bakery/core/node';

/** How long a registry lock may stay held by a live owner before giving up (ms). */
const REGISTRY_PATIENCE_MS = 30_000;

/**
 * `o.<pid>.<tid>.<startTime>.<ns>.<nonce>`: the holder's core {@link Identity} is the entry's
 * name — its pid, OS thread id, that thread's start time and its pid namespace's inode number
 * (0 = unknown), then a random hex nonce. Older releases named entries
 * `o.<pid>.<start>.<tid>.<tidStart>.<ns>.<nonce>` (one field more), so neither format matches
 * the other's pattern.
 */
const OWNER_ENTRY = /^o\.(\d{1,16})\.(\d{1,16})\.(\d{1,16})\.(\d{1,16})\.[0-9a-f]{1,64}$/;

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** Path of the registry directory of lock `name` in `dir` (hidden: lock names never start with '.'). */
export function registryPath(dir: string, name: string): string {
  return path.join(dir, `.bakery.${name}.registry`);
}

/** A fresh temporary name in `dir` for lock `name`: `.bakery.<name>.<pid>.<hex>.<suffix>`. */
export function tempPath(dir: string, name: string, suffix: 'tmp' | 'lock'): string {
  return path.join(
    dir,
    `.bakery.${name}.${process.pid}.${randomBytes(6).toString('hex')}.${suffix}`,
  );
}

/** Parse a temp name of lock `name` back into its creator's pid (null when it is not one). */
export function tempOwnerPid(entry: string, name: string): number | null {
  const prefix = `.bakery.${name}.`;
  if (!entry.startsWith(prefix)) return null;
  const m = /^(\d+)\.[0-9a-f]+\.(?:tmp|lock)$/.exec(entry.slice(prefix.length));
  return m === null ? null : Number(m[1]);
}

/** The registry entry name for `owner`, made unique forever by a random nonce. */
export function ownerEntry(owner: Identity = processIdentity()): string {
  return `o.${owner.pid}.${owner.tid}.${owner.startTime}.${owner.ns ?? 0}.${randomBytes(6).toString('hex')}`;
}

/**
 * Parse a registry entry name back into its holder's identity; null when it is not an entry of
 * this format (an older release's, or anything else) or a field is out of range.
 */
export function entryOwner(entry: string): Identity | null {
  const m = OWNER_ENTRY.exec(entry);
  if (m === null) return null;
  const pid = Number(m[1]);
  const tid = Number(m[2]);
  const startTime = Number(m[3]);
  const ns = Number(m[4]);
  if (pid < 1 || pid >= 2 ** 31 || tid >= 2 ** 31 || ns >= 2 ** 32) return null;
  if (!Number.isSafeInteger(startTime)) return null;
  return { pid, tid, startTime, ns };
}

/**
 * Whether the holder named by registry entry `entry` certainly no longer runs, by core's rule
 * (`isAlive` of '@bakery/core/node', the same one that judges every backend's slot owners):
 * dead only when certain — its process or thread is gone or a zombie, or the thread id now
 * belongs to a task that started at another time (a reused id) — and never a holder in another
 * pid namespace. An entry in any other format (e.g. an older release's) is never judged dead:
 * we cannot read its identity, so it is not ours to break; the claim waits for it like for any
 * live holder, up to the registry's patience.
 */
export function holderIsDead(entry: string): boolean {
  const owner = entryOwner(entry);
  return owner !== null && !isAlive(owner);
}

/**
 * Who may legitimately hold a lock's registry lock: whoever can write the lock file — its
 * owner, root, and, when the file has group or other write bits (`shared`), anyone.
 */
export interface Writers {
  owner: number;
  shared: boolean;
}

function kindOf(st: fs.Stats): string {
  if (st.isSymbolicLink()) return 'symbolic link';
  if (st.isFile()) return 'regular file';
  if (st.isFIFO()) return 'FIFO';
  if (st.isSocket()) return 'socket';
  return 'device';
}

/**
 * Check what is at a registry path without opening it. Returns its lstat, or null when there
 * is nothing. Throws `BAKERY_BAD_LAYOUT` when it is not a directory (a planted symlink, FIFO,
 * file), and `BAKERY_FOREIGN_OWNER` when a user who cannot write the lock file owns it: such a
 * directory can only have been planted to deny the lock, and waiting for it would take 30 s.
 */
export function checkRegistry(registry: string, writers: Writers): fs.Stats | null {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(registry);
  } catch (err) {
    if (errno(err) === 'ENOENT') return null;
    throw ioError(`cannot stat ${registry}`, err);
  }
  const uid = process.getuid?.();
  const foreign = uid !== undefined && st.uid !== uid ? ` owned by uid ${st.uid}` : '';
  if (!st.isDirectory()) {
    throw new BakeryError(
      'BAKERY_BAD_LAYOUT',
      `${registry} is not a bakery registry directory (a ${kindOf(st)}${foreign} is in its place)`,
    );
  }
  if (
    uid !== undefined &&
    st.uid !== uid &&
    st.uid !== 0 &&
    st.uid !== writers.owner &&
    !writers.shared
  ) {
    throw new BakeryError(
      'BAKERY_FOREIGN_OWNER',
      `the registry ${registry} belongs to uid ${st.uid}, who cannot write the lock file (owner uid ${writers.owner}, not group/other-writable): it was planted there; have it removed`,
    );
  }
  return st;
}

/**
 * The short exclusive lock that serialises slot claims and frees of one shm lock, for a
 * backend without compare-and-swap.
 *
 * Why not the classic `open(lockfile, 'wx')` + "unlink it if its owner is dead": unlinking a
 * stale file is not conditional. Two waiters that both find the same dead owner both unlink —
 * the second one removes the file a third process created in between, and two hold the lock.
 *
 * Here the lock is a DIRECTORY at {@link registryPath}, held while it contains one entry whose
 * name is the holder's identity, `o.<pid>.<tid>.<startTime>.<ns>.<nonce>` (see
 * {@link ownerEntry}; judged by core's `isAlive`, see {@link holderIsDead}). Acquire: build a
 * private directory holding that entry, then `rename()` it onto the registry path; rename
 * replaces a missing or EMPTY directory atomically and fails with ENOTEMPTY/EEXIST on a
 * non-empty one, so it succeeds only when the lock is free.
 * Release: unlink our entry (the directory is empty = free), then rmdir it if still empty. A
 * dead holder is removed by unlinking ITS entry by name; entry names are unique forever (pid,
 * start times, random nonce), so a late or duplicate breaker gets ENOENT and can never remove a
 * live holder's entry. No step needs a conditional unlink.
 */
export class RegistryLock {
  readonly path: string;
  readonly #dir: string;
  readonly #name: string;
  readonly #writers: Writers;

  /**
   * @param writers Who can write the lock file (default: only our uid and root). A registry
   *   directory owned by anyone else is refused at once (`BAKERY_FOREIGN_OWNER`).
   */
  constructor(dir: string, name: string, writers?: Writers) {
    this.#dir = dir;
    this.#name = name;
    this.#writers = writers ?? { owner: process.getuid?.() ?? 0, shared: false };
    this.path = registryPath(dir, name);
  }

  /** Run `fn` holding the registry lock. */
  run<T>(fn: () => T): T {
    const entry = this.#acquire();
    try {
      return fn();
    } finally {
      this.#release(entry);
    }
  }

  #acquire(): string {
    const entry = ownerEntry();
    let tmp: string;
    for (;;) {
      tmp = tempPath(this.#dir, this.#name, 'lock');
      try {
        fs.mkdirSync(tmp, { mode: 0o700 });
        break;
      } catch (err) {
        if (errno(err) !== 'EEXIST') throw ioError(`cannot create ${tmp}`, err);
      }
    }
    try {
      const flags =
        fs.constants.O_WRONLY |
        fs.constants.O_CREAT |
        fs.constants.O_EXCL |
        fs.constants.O_NOFOLLOW |
        fs.constants.O_NONBLOCK;
      fs.closeSync(fs.openSync(path.join(tmp, entry), flags, 0o600));
    } catch (err) {
      removeQuietly(tmp);
      throw ioError(`cannot create the registry entry in ${tmp}`, err);
    }
    let backoff = 0.05;
    let patienceEnd = performance.now() + REGISTRY_PATIENCE_MS;
    for (;;) {
      try {
        fs.renameSync(tmp, this.path);
        return entry;
      } catch (err) {
        const code = errno(err);
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') {
          removeQuietly(tmp, entry);
          throw this.#renameError(err);
        }
      }
      let broke: boolean;
      try {
        broke = this.#breakDeadHolders();
      } catch (err) {
        removeQuietly(tmp, entry);
        throw err;
      }
      if (broke) {
        patienceEnd = performance.now() + REGISTRY_PATIENCE_MS;
        continue;
      }
      if (performance.now() > patienceEnd) {
        removeQuietly(tmp, entry);
        throw new BakeryError(
          'BAKERY_TIMEOUT',
          `the registry lock ${this.path} stayed held for ${REGISTRY_PATIENCE_MS} ms by a live process`,
        );
      }
      sleep(backoff);
      backoff = Math.min(backoff * 2, 4);
    }
  }

  #release(entry: string): void {
    // Our entry first: from here the directory is empty, i.e. free; the rmdir is tidying only
    // and fails harmlessly (ENOTEMPTY) when the next holder's directory already replaced ours.
    try {
      fs.unlinkSync(path.join(this.path, entry));
    } catch {
      // nothing we can do; a breaker only removes entries of dead owners
    }
    try {
      fs.rmdirSync(this.path);
    } catch {
      // ENOTEMPTY: someone holds it now; ENOENT: already tidied
    }
  }

  /** Remove the entries of dead holders. True when something changed and a retry may succeed. */
  #breakDeadHolders(): boolean {
    if (checkRegistry(this.path, this.#writers) === null) return true;
    let entries: string[];
    try {
      entries = fs.readdirSync(this.path);
    } catch (err) {
      const code = errno(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return true;
      return false; // EACCES (another user's registry): wait for it like for any holder
    }
    if (entries.length === 0) return true;
    let broke = false;
    for (const e of entries) {
      if (!holderIsDead(e)) continue;
      try {
        fs.unlinkSync(path.join(this.path, e));
        broke = true;
      } catch (err) {
        if (errno(err) === 'ENOENT') broke = true;
      }
    }
    return broke;
  }

  #renameError(err: unknown): BakeryError {
    const code = errno(err);
    let owner = '';
    try {
      owner = ` (owned by uid ${fs.lstatSync(this.path).uid})`;
    } catch {
      // gone again
    }
    if (code === 'ENOTDIR' || code === 'EISDIR') {
      return new BakeryError(
        'BAKERY_BAD_LAYOUT',
        `${this.path} is not a bakery registry directory${owner}`,
        { cause: err },
      );
    }
    if (code === 'EPERM' || code === 'EACCES') {
      return new BakeryError(
        'BAKERY_FOREIGN_OWNER',
        `the registry ${this.path}${owner} belongs to another user and cannot be taken over`,
        { cause: err },
      );
    }
    return ioError(`cannot take the registry lock ${this.path}`, err);
  }
}

function ioError(message: string, cause: unknown): BakeryError {
  return new BakeryError('BAKERY_IO', `${message}: ${(cause as Error).message}`, { cause });
}

/** Remove our private temp directory (and its entry) after a failed acquisition. */
function removeQuietly(dir: string, entry?: string): void {
  try {
    if (entry !== undefined) fs.unlinkSync(path.join(dir, entry));
    else fs.rmSync(dir, { recursive: true, force: true });
  } catch {
    // best effort
  }
  try {
    fs.rmdirSync(dir);
  } catch {
    // best effort
  }
}
