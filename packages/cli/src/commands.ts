import * as fs from 'node:fs';
import * as path from 'node:path';
import { lockDir, lockPath, NAME_PATTERN, openMutex, removeMutex } from '@bakery/shm';
import { CliError } from './errors.js';
import { findProcessLocks, type LockView, type ProcessLock, readLock } from './read.js';

/** Options shared by the commands on named locks. */
export interface DirOptions {
  /** Directory of the lock files (default: env `BAKERY_SHM_DIR`, else /dev/shm). */
  dir?: string;
}

/** One entry of {@link listLocks}. */
export type ListEntry =
  | ({ name: string } & LockView)
  | { name: string; path: string; error: { code: string; message: string } };

/**
 * Every named lock in the shm directory (`bakery.<name>` files), each read once without taking
 * part. A file that cannot be read as a lock is listed with its error.
 */
export function listLocks(options: DirOptions = {}): { dir: string; locks: ListEntry[] } {
  const dir = lockDir(options.dir);
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch (err) {
    throw new CliError('BAKERY_NOT_FOUND', `cannot list ${dir}: ${(err as Error).message}`, {
      cause: err,
    });
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
 * Reap the dead owners of a named lock now: joins it as a participant for a moment (that is
 * what serialises with other reapers and running participants), calls `reapDead()`, leaves, and
 * reads the result. A lock whose slots are all held by live participants cannot be joined
 * (`BAKERY_NO_FREE_SLOT`) — and then there is nothing to reap.
 */
export function reapLock(
  name: string,
  options: DirOptions = {},
): { name: string; reaped: number } & LockView {
  let mutex: ReturnType<typeof openMutex>;
  try {
    mutex = openMutex(name, { create: false, dir: options.dir });
  } catch (err) {
    if ((err as { cause?: { code?: string } }).cause?.code === 'ENOENT') {
      throw new CliError('BAKERY_NOT_FOUND', `there is no lock named ${name}`, { cause: err });
    }
    throw err;
  }
  let reaped: number;
  try {
    reaped = mutex.reapDead();
  } finally {
    mutex.close();
  }
  return { ...inspectLock(name, options), reaped };
}

/**
 * Remove a named lock (like `shm_unlink`: processes that have it open keep the old file). A
 * missing lock is `BAKERY_NOT_FOUND` unless `force`.
 */
export function removeLock(
  name: string,
  options: DirOptions & { force?: boolean } = {},
): { name: string; path: string; removed: boolean } {
  const file = lockPath(name, options);
  const removed = removeMutex(name, { dir: options.dir });
  if (!removed && !options.force) {
    throw new CliError('BAKERY_NOT_FOUND', `there is no lock named ${name} (${file})`);
  }
  return { name, path: file, removed };
}
