// Node-specific helpers shared by the Node backends (sab, mmap, shm): who this thread is, and
// whether the owner of a slot is still alive. Kept out of core's main entry, which has no
// node: imports; backends import it from '@bakery/core/node'.
import { existsSync, fstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import type { Cells, Identity } from './backend.js';
import { HEADER_CELLS, SLOT_CELLS } from './layout.js';
import { readOwner } from './owner.js';

let cached: Identity | undefined;
let ownNs: number | undefined;

/**
 * This process's pid namespace: the inode number of /proc/self/ns/pid ("pid:[4026531836]"),
 * 0 where it cannot be read.
 */
export function pidNamespace(): number {
  if (ownNs === undefined) {
    try {
      const m = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'));
      const v = m === null ? 0 : Number(m[1]);
      ownNs = Number.isSafeInteger(v) && v > 0 && v < 2 ** 32 ? v : 0;
    } catch {
      ownNs = 0;
    }
  }
  return ownNs;
}

/**
 * Start time of a task in clock ticks since boot: field 22 of /proc/<pid>/task/<tid>/stat,
 * counted after the last ')' (the command name in field 2 may itself contain ') ').
 * Returns null when the task does not exist or has already exited — a zombie ('Z', e.g. a
 * killed child whose parent has not waited for it yet, perhaps because the parent is itself
 * blocked in lockSync behind that child) or dead ('X') — and undefined when it cannot be read.
 * (`tid` = `pid` reads the process's main thread, which also covers a single-threaded process.)
 */
export function taskStartTime(pid: number, tid: number): number | null | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ESRCH' ? null : undefined;
  }
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state), so field 22 is rest[19]. A zombie keeps its stat file (and its
  // pid: no reuse yet) but will never run again.
  if (rest[0] === 'Z' || rest[0] === 'X' || rest[0] === 'x') return null;
  const v = Number(rest[19]);
  return Number.isFinite(v) ? v : undefined;
}

/**
 * This thread's identity: pid, the OS thread id (from /proc/thread-self, so that a worker
 * thread that vanishes — e.g. worker.terminate(), which runs no exit handlers — can be told
 * dead), and that task's start time (guards against pid/tid reuse). Falls back to
 * `{ pid, tid: 0, startTime: 0 }` where /proc is missing.
 */
export function processIdentity(): Identity {
  if (cached !== undefined) return cached;
  const pid = process.pid;
  let tid = 0;
  let startTime = 0;
  try {
    const link = readlinkSync('/proc/thread-self'); // "<pid>/task/<tid>"
    const m = /^(\d+)\/task\/(\d+)$/.exec(link);
    if (m !== null && Number(m[1]) === pid) tid = Number(m[2]);
  } catch {
    // no /proc (not Linux): identity by pid alone
  }
  if (tid !== 0) startTime = taskStartTime(pid, tid) ?? 0;
  cached = { pid, tid, startTime, ns: pidNamespace() };
  return cached;
}

/**
 * Is the owner recorded in a slot still running? `false` only when that is certain: the pid
 * (or its thread) is gone, or a task with that id exists but started at another time (the id
 * was reused). Anything unreadable counts as alive, and so does an owner recorded in another
 * pid namespace (its pid means something else here, or nothing).
 */
export function isAlive(owner: Identity): boolean {
  if (owner.ns !== undefined && owner.ns !== 0 && owner.ns !== pidNamespace()) return true;
  if (owner.tid !== 0) {
    const start = taskStartTime(owner.pid, owner.tid);
    if (start === undefined) return true;
    if (start !== null) return owner.startTime === 0 || start === owner.startTime;
    // The task is not in /proc. If the process is visible the thread is gone (a terminated
    // worker); if the process is not visible it may be gone or only hidden (hidepid=2, another
    // user): let the signal probe decide.
    if (existsSync(`/proc/${owner.pid}`)) return false;
  } else if (taskStartTime(owner.pid, owner.pid) === null && zombieProcess(owner.pid)) {
    // Only a pid is known: a process that is visible but a zombie has exited.
    return false;
  }
  return signalProbe(owner.pid);
}

/**
 * A process that is still in /proc but has exited: its main thread reads as a zombie (or is
 * gone) and no other thread is left (a main thread may end before the others in non-Node
 * programs; the process then still runs).
 */
function zombieProcess(pid: number): boolean {
  try {
    return readdirSync(`/proc/${pid}/task`).every((t) => Number(t) === pid);
  } catch {
    return false;
  }
}

/** kill(pid, 0): ESRCH means no such process; EPERM means it exists under another user. */
function signalProbe(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** A file's identity: device and inode (as bigints: inode numbers may exceed 2^53). */
export interface FileId {
  dev: bigint;
  ino: bigint;
}

/** The {@link FileId} of the file open as `fd`. */
export function fileId(fd: number): FileId {
  const st = fstatSync(fd, { bigint: true });
  return { dev: st.dev, ino: st.ino };
}

/**
 * How many descriptors process `pid` has open on `file` (through `/proc/<pid>/fd`); undefined
 * when that cannot be read (no such process, or another user's).
 */
function fdsOn(pid: number, file: FileId): number | undefined {
  let names: string[];
  try {
    names = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return undefined;
  }
  let n = 0;
  for (const name of names) {
    const st = statSync(`/proc/${pid}/fd/${name}`, { bigint: true, throwIfNoEntry: false });
    if (st !== undefined && st.dev === file.dev && st.ino === file.ino) n++;
  }
  return n;
}

/**
 * {@link isAlive}, with a second opinion that corrupted owner cells cannot fake, for a backend
 * whose participants each keep the lock's file open (one descriptor per open Mutex): judging
 * the owner recorded in slot `slot` of `cells`, the lock in `file`. When the pid check says
 * dead but the owner was a process's main thread whose pid still runs in our namespace, count
 * that process's descriptors on the lock's file: if they are more than the other slots that
 * name that pid and are alive by the pid check, one of them is this slot's owner — alive, its
 * recorded start time or thread id rewritten (or torn) — and it is never reaped. A pid reused
 * by an unrelated process, or by another participant that has a slot of its own, is still
 * judged dead. What this cannot see: an owner whose pid itself was rewritten, and another
 * user's process (its descriptors are unreadable). The kernel lease of the mapped backends is
 * the proof for those.
 */
export function isAliveInLock(owner: Identity, cells: Cells, slot: number, file: FileId): boolean {
  if (isAlive(owner)) return true;
  if (owner.tid !== 0 && owner.tid !== owner.pid) return false;
  const held = fdsOn(owner.pid, file);
  if (held === undefined || held === 0) return false;
  const slots = Math.floor((cells.length - HEADER_CELLS) / SLOT_CELLS);
  let explained = 0;
  for (let s = 0; s < slots; s++) {
    if (s === slot) continue;
    const other = readOwner(cells, s);
    if (other !== null && other.pid === owner.pid && isAlive(other)) explained++;
  }
  return held > explained;
}
