import * as fs from 'node:fs';
import * as path from 'node:path';
import { BakeryError, isBakeryError } from '@bakery/core';
import type { Connection, PgSnapshot } from '@bakery/pg';
import { lockDir, lockPath, NAME_PATTERN, openMutex, removeMutex } from '@bakery/shm';
import { CliError } from './errors.js';
import { fileKind, findProcessLocks, type LockView, type ProcessLock, readLock } from './read.js';

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** Options shared by the commands on named locks. */
export interface DirOptions {
  /** Directory of the lock files (default: env `BAKERY_SHM_DIR`, else the per-user `/dev/shm/bakery-<uid>`). */
  dir?: string;
}

/** One entry of {@link listLocks}. */
export type ListEntry =
  | ({ name: string } & LockView)
  | { name: string; path: string; error: { code: string; message: string } };

/**
 * Every named lock in the shm directory (`bakery.<name>` files), each read once without taking
 * part. A file that cannot be read as a lock (not a lock, a FIFO, unreadable, …) is listed with
 * its error. A directory that does not exist or is not a directory is `BAKERY_NOT_FOUND` — except
 * the default one (neither `dir` nor `BAKERY_SHM_DIR` given), which is only made when a first
 * lock is created there: missing, it has no locks. One this user may not read is
 * `BAKERY_PERMISSION`.
 */
export function listLocks(options: DirOptions = {}): { dir: string; locks: ListEntry[] } {
  const dir = lockDir(options.dir);
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch (err) {
    const code = errno(err);
    const why = `cannot list ${dir}: ${(err as Error).message}`;
    const byDefault = options.dir === undefined && process.env.BAKERY_SHM_DIR === undefined;
    if (code === 'ENOENT' && byDefault) return { dir, locks: [] };
    if (code === 'ENOENT' || code === 'ENOTDIR')
      throw new CliError('BAKERY_NOT_FOUND', why, { cause: err });
    if (code === 'EACCES' || code === 'EPERM')
      throw new CliError('BAKERY_PERMISSION', why, { cause: err });
    throw new BakeryError('BAKERY_IO', why, { cause: err });
  }
  const locks: ListEntry[] = [];
  for (const e of entries.sort()) {
    if (!e.startsWith('bakery.')) continue;
    const name = e.slice('bakery.'.length);
    if (!NAME_PATTERN.test(name) || name.startsWith('.')) continue;
    const file = path.join(dir, e);
    try {
      locks.push({ name, ...readLock(file) });
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'BAKERY_INTERNAL';
      locks.push({ name, path: file, error: { code, message: (err as Error).message } });
    }
  }
  return { dir, locks };
}

/** The named lock's state, read without taking part (no slot is claimed, nothing is written). */
export function inspectLock(name: string, options: DirOptions = {}): { name: string } & LockView {
  const file = lockPath(name, options);
  try {
    return { name, ...readLock(file) };
  } catch (err) {
    if ((err as { code?: string }).code === 'BAKERY_NOT_FOUND') {
      throw new CliError('BAKERY_NOT_FOUND', `there is no lock named ${name} (${file})`, {
        cause: err,
      });
    }
    throw err;
  }
}

/** The bakery locks process `pid` has open (see {@link findProcessLocks}); none is `BAKERY_NOT_FOUND`. */
export function inspectProcess(pid: number): { pid: number; locks: ProcessLock[] } {
  const locks = findProcessLocks(pid);
  if (locks.length === 0) {
    throw new CliError('BAKERY_NOT_FOUND', `process ${pid} has no bakery lock open`);
  }
  return { pid, locks };
}

/**
 * How long {@link inspectPgLock} waits for the PostgreSQL server to accept a connection, in ms;
 * then `BAKERY_CONNECTION`. A connection refused fails at once.
 */
export const PG_CONNECT_TIMEOUT = 10_000;

/** Options of {@link inspectPgLock}. */
export interface PgInspectOptions {
  /**
   * Where the database is: a connection string (`postgresql://user@host:5432/db`; over a unix
   * socket `postgresql://user@/db?host=/run/postgresql`) or node-postgres client options.
   * Default: the PG* environment variables (PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD).
   */
  connection?: Connection;
  /** The state table the lock was opened with (default `bakery_locks`; may be `schema.table`). */
  table?: string;
}

/** A @bakery/pg lock as {@link inspectPgLock} reads it: its snapshot and the state table read. */
export type PgLockView = PgSnapshot & {
  /** The state table, as given (default `bakery_locks`). */
  table: string;
};

/**
 * A @bakery/pg lock's state, read without taking part: `inspectLock` of `@bakery/pg` (the state
 * row — fencing token, held, consistent or not recoverable, recorded holder — and, from the
 * server's `pg_locks`, the session holding the advisory lock and the waiting ones in grant
 * order). It opens one session of its own for the reads and creates nothing. `@bakery/pg` is
 * loaded only when this is called.
 *
 * Errors: `BAKERY_NOT_FOUND` (no state table, or no row for the name: never opened in this
 * database), `BAKERY_BAD_NAME`, `BAKERY_INVALID_ARGUMENT` (a bad table name),
 * `BAKERY_NAME_COLLISION` (the name's key belongs to another name), `BAKERY_CONNECTION` (the
 * server cannot be reached within {@link PG_CONNECT_TIMEOUT} ms, or the session ended),
 * `BAKERY_UNSUPPORTED` (a server older than 14, or a standby), `BAKERY_PERMISSION` (the role may
 * not read the state table), `BAKERY_IO` (any other server error).
 *
 * @example
 * ```ts
 * import { inspectPgLock } from '@bakery/cli';
 * const lock = await inspectPgLock('nightly-report', { connection: process.env.DATABASE_URL });
 * console.log(`token ${lock.fencingToken}, holder ${lock.holder?.pid ?? 'none'}, ${lock.waiters.length} waiting`);
 * ```
 */
export async function inspectPgLock(
  name: string,
  options: PgInspectOptions = {},
): Promise<PgLockView> {
  const pg = await import('@bakery/pg');
  const c = options.connection;
  // A server that never answers (a dropped SYN, a frozen host) must not hang the command.
  const connection: Connection =
    typeof c === 'string'
      ? { connectionString: c, connectionTimeoutMillis: PG_CONNECT_TIMEOUT }
      : { connectionTimeoutMillis: PG_CONNECT_TIMEOUT, ...c };
  try {
    const snapshot = await pg.inspectLock(name, { connection, table: options.table });
    return { ...snapshot, table: options.table ?? pg.DEFAULT_TABLE };
  } catch (err) {
    if (isBakeryError(err) || (err as { code?: unknown })?.code === 'BAKERY_INVALID_ARGUMENT')
      throw err;
    // A server error of a read (node-postgres's, with its SQLSTATE), or a socket error.
    const state = (err as { code?: unknown })?.code;
    const sqlState = typeof state === 'string' && /^[0-9A-Z]{5}$/.test(state) ? state : undefined;
    const why = `cannot read lock ${JSON.stringify(name)}${sqlState ? ` (SQLSTATE ${sqlState})` : ''}: ${(err as Error)?.message ?? String(err)}`;
    if (sqlState === '42501') throw new CliError('BAKERY_PERMISSION', why, { cause: err });
    const gone = sqlState === undefined || sqlState.startsWith('08') || sqlState.startsWith('57P');
    throw new BakeryError(gone ? 'BAKERY_CONNECTION' : 'BAKERY_IO', why, { cause: err });
  }
}

/**
 * Join the existing named lock as a participant. It is read first (a non-blocking, read-only
 * open), so that a missing lock is `BAKERY_NOT_FOUND` and a FIFO or other non-lock planted at
 * the path is `BAKERY_BAD_LAYOUT` before @bakery/shm opens it read-write.
 */
function join(name: string, options: DirOptions): ReturnType<typeof openMutex> {
  inspectLock(name, options);
  try {
    // No slot at open: `reap` then never takes one (it reaps as a participant without a slot,
    // so a table full of dead owners is reaped in full), `mark-consistent` takes one as it locks.
    return openMutex(name, { create: false, dir: options.dir, claim: 'lock' });
  } catch (err) {
    if ((err as { cause?: { code?: string } }).cause?.code === 'ENOENT') {
      throw new CliError('BAKERY_NOT_FOUND', `there is no lock named ${name}`, { cause: err });
    }
    throw err;
  }
}

/**
 * Reap the dead owners of a named lock now: joins it as a participant for a moment (that is
 * what serialises with other reapers and running participants), calls `reapDead()`, leaves, and
 * reads the result. It needs no slot: on a full table it reaps as a participant without one
 * (the outsider lock on a mapped lock, the registry lock on a pure-JS one).
 */
export function reapLock(
  name: string,
  options: DirOptions = {},
): { name: string; reaped: number } & LockView {
  const mutex = join(name, options);
  let reaped: number;
  try {
    reaped = mutex.reapDead();
  } finally {
    mutex.close();
  }
  return { ...inspectLock(name, options), reaped };
}

/** The default of {@link MarkConsistentOptions.timeout}, in ms. */
export const MARK_CONSISTENT_TIMEOUT = 5000;

/** Options of {@link markConsistentLock}. */
export interface MarkConsistentOptions extends DirOptions {
  /**
   * How long to wait for the lock, in ms (default {@link MARK_CONSISTENT_TIMEOUT}); then
   * `BAKERY_TIMEOUT`. A live holder keeps it that long; a dead one is reaped after a moment.
   */
  timeout?: number;
}

/** What {@link markConsistentLock} did. */
export interface MarkConsistentResult {
  name: string;
  path: string;
  /** True when the lock was poisoned (or flagged owner-died) and is now consistent. */
  cleared: boolean;
  /** The owner-died state read just before (informational: it can change meanwhile). */
  was: LockView['ownerDied'];
  /** The owner-died state read just after. */
  ownerDied: LockView['ownerDied'];
}

/**
 * Clear a poisoned named lock, for an operator who has repaired the protected data: joins the
 * lock, calls `mutex.markConsistent({ timeout })` — which takes the lock even though it is
 * `BAKERY_NOT_RECOVERABLE`, marks it consistent and releases it — and leaves. A holder that
 * died is reaped first (after the participants' usual `staleAfterMs`) and its lock marked
 * consistent too. Errors: `BAKERY_NOT_FOUND`, `BAKERY_BAD_LAYOUT`, `BAKERY_FOREIGN_OWNER`,
 * `BAKERY_NO_FREE_SLOT` (no slot became free within the timeout), `BAKERY_TIMEOUT` (a live
 * holder kept it).
 *
 * @example
 * ```ts
 * import { markConsistentLock } from '@bakery/cli';
 * repairTheJobsTable();
 * if (markConsistentLock('jobs').cleared) console.log('jobs is usable again');
 * ```
 */
export function markConsistentLock(
  name: string,
  options: MarkConsistentOptions = {},
): MarkConsistentResult {
  const timeout = options.timeout ?? MARK_CONSISTENT_TIMEOUT;
  const before = inspectLock(name, options);
  const mutex = join(name, options);
  let cleared: boolean;
  try {
    cleared = mutex.markConsistent({ timeout });
  } catch (err) {
    if ((err as { code?: string }).code === 'BAKERY_TIMEOUT') {
      const h = readLock(before.path).holder;
      const who = h === null || h.pid === null ? '' : ` (held by pid ${h.pid})`;
      throw new BakeryError(
        'BAKERY_TIMEOUT',
        `did not get lock ${name} within ${timeout} ms${who}; nothing was changed — try again when it is free, or with a longer --timeout`,
        { cause: err },
      );
    }
    throw err;
  } finally {
    mutex.close();
  }
  return {
    name,
    path: before.path,
    cleared,
    was: before.ownerDied,
    ownerDied: inspectLock(name, options).ownerDied,
  };
}

/** A live participant of a lock, as {@link removeLock} reports it. */
export interface Participant {
  slot: number;
  pid: number;
  /** OS thread id (0 = unknown). */
  tid: number;
  /** This participant holds the lock. */
  holder: boolean;
}

/** Options of {@link removeLock}. */
export interface RemoveLockOptions extends DirOptions {
  /**
   * Remove it anyway: a lock with live participants, one owned by another user, something
   * that is not a regular file (a FIFO, a symlink, …); and no error when there is none.
   */
  force?: boolean;
}

/** What {@link removeLock} did. */
export interface RemoveResult {
  name: string;
  path: string;
  /** False only with `force`, when there was no lock. */
  removed: boolean;
  /** The live participants it had (non-empty only with `force`: they were split off). */
  participants: Participant[];
  /** What `force` overrode, or why the participants could not be checked. */
  warnings: string[];
}

function who(p: Participant): string {
  const thread = p.tid !== 0 && p.tid !== p.pid ? ` thread ${p.tid}` : '';
  return `pid ${p.pid}${thread} (${p.holder ? 'holder, ' : ''}slot ${p.slot})`;
}

const SPLIT =
  'they keep using the removed file while new openers get a fresh lock — two locks under one name, with no mutual exclusion between them';

/**
 * Remove a named lock (like `shm_unlink`), refusing what could do harm unless `force`:
 *
 * - a lock with live participants (their `alive` as `bakery inspect` judges it; dead ones do
 *   not count) is `BAKERY_IN_USE` — removing it would split the lock: they keep using the
 *   removed file while new openers get a fresh one, with no mutual exclusion between them;
 * - a file owned by another user is `BAKERY_FOREIGN_OWNER`; a directory entry that is not a
 *   regular file (a FIFO, a symlink, …) is `BAKERY_BAD_LAYOUT`;
 * - no lock is `BAKERY_NOT_FOUND`.
 *
 * A regular file that is not a lock of this layout (junk, an older layout version) is removed:
 * nothing of this version can be using it, and the warning says that its participants could
 * not be checked. The check and the removal are two steps: a participant that joins in
 * between is not seen.
 */
export function removeLock(name: string, options: RemoveLockOptions = {}): RemoveResult {
  const file = lockPath(name, options);
  const force = options.force === true;
  const warnings: string[] = [];
  const refuse = (err: Error, overridden: string) => {
    if (!force) throw err;
    warnings.push(overridden);
  };
  const missing = (): RemoveResult => {
    removeMutex(name, { dir: options.dir }); // tidies leftovers of dead creators
    if (!force) throw new CliError('BAKERY_NOT_FOUND', `there is no lock named ${name} (${file})`);
    return { name, path: file, removed: false, participants: [], warnings };
  };
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch (err) {
    const code = errno(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return missing();
    if (code === 'EACCES' || code === 'EPERM')
      throw new CliError('BAKERY_PERMISSION', `cannot look at ${file}: permission denied`, {
        cause: err,
      });
    throw new BakeryError('BAKERY_IO', `cannot look at ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  let participants: Participant[] = [];
  if (!st.isFile()) {
    const what = `${file} is ${fileKind(st)}, not a lock file`;
    refuse(
      new BakeryError('BAKERY_BAD_LAYOUT', `${what}; bakery rm --force ${name} removes it anyway`),
      `${what}; removed it anyway (--force)`,
    );
  } else {
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid) {
      const what = `${file} belongs to uid ${st.uid}, not to us (uid ${uid})`;
      refuse(
        new BakeryError(
          'BAKERY_FOREIGN_OWNER',
          `${what}; its user should remove it, or bakery rm --force ${name}`,
        ),
        `${what}; removed it anyway (--force)`,
      );
    }
    let view: LockView | undefined;
    try {
      view = readLock(file);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'BAKERY_NOT_FOUND') return missing(); // removed meanwhile
      const why = (err as Error).message;
      if (code === 'BAKERY_BAD_LAYOUT') {
        warnings.push(
          `${why}: not a lock this version can read, so its participants could not be checked`,
        );
      } else {
        refuse(
          Object.assign(err as Error, {
            message: `${why}; cannot check its participants, so not removing it (bakery rm --force ${name} does)`,
          }),
          `${why}: could not check its participants; removed it anyway (--force)`,
        );
      }
    }
    participants = (view?.slots ?? [])
      .filter((s) => s.alive === true && s.pid !== null)
      .map((s) => ({ slot: s.slot, pid: s.pid!, tid: s.tid, holder: s.holder }));
    if (participants.length > 0) {
      const list = participants.map(who).join(', ');
      const n = `${participants.length} live participant${participants.length === 1 ? '' : 's'}`;
      refuse(
        new CliError(
          'BAKERY_IN_USE',
          `lock ${name} has ${n}: ${list}. Stop them first, or bakery rm --force ${name}: ${SPLIT}`,
        ),
        `removed lock ${name} while it had ${n} (${list}): ${SPLIT}`,
      );
    }
  }
  let removed: boolean;
  try {
    removed = removeMutex(name, { dir: options.dir });
  } catch (err) {
    const code = (err as { cause?: { code?: string } }).cause?.code;
    if (code === 'EACCES' || code === 'EPERM') {
      throw new CliError(
        'BAKERY_PERMISSION',
        `cannot remove ${file}: permission denied (its directory does not let this user remove it)`,
        { cause: err },
      );
    }
    throw err;
  }
  if (!removed) return missing();
  return { name, path: file, removed, participants, warnings };
}
