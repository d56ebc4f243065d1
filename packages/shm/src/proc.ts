import * as fs from 'node:fs';

/**
 * Start time (field 22 of `/proc/.../stat`, clock ticks since boot) of the process or thread
 * whose stat file is `path`. The second field (the command name) may contain spaces and ')',
 * so fields are counted after the LAST ')'. Returns `'gone'` when the file does not exist
 * (the process or thread has exited) and `'unknown'` when it cannot be read for another reason.
 */
export function procStartTime(path: string): number | 'gone' | 'unknown' {
  let text: string;
  try {
    text = fs.readFileSync(path, 'latin1');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ESRCH' ? 'gone' : 'unknown';
  }
  const close = text.lastIndexOf(')');
  if (close < 0) return 'unknown';
  // Text after ')' is " <field 3> <field 4> ...": field 22 is index 19 of that list.
  const v = Number(text.slice(close + 2).split(' ')[19]);
  return Number.isSafeInteger(v) && v >= 0 ? v : 'unknown';
}

function known(v: number | 'gone' | 'unknown'): number {
  return typeof v === 'number' ? v : 0;
}

let processStart: number | undefined;
let threadSelf: { tid: number; start: number } | undefined;
let pidNamespace: string | undefined;

/** This process's start time in clock ticks since boot, 0 where /proc is unavailable. */
export function selfStartTime(): number {
  processStart ??= known(procStartTime('/proc/self/stat'));
  return processStart;
}

/** The calling thread's OS thread id and start time (0, 0 where /proc is unavailable). */
export function selfThread(): { tid: number; start: number } {
  if (threadSelf === undefined) {
    let tid = 0;
    try {
      // "<pid>/task/<tid>"
      tid = Number(fs.readlinkSync('/proc/thread-self').split('/').pop()) || 0;
    } catch {
      tid = 0;
    }
    const start = tid > 0 ? known(procStartTime(`/proc/${process.pid}/task/${tid}/stat`)) : 0;
    threadSelf = { tid, start };
  }
  return threadSelf;
}

/**
 * A short token naming this process's pid namespace ("" where unknown). Two participants in
 * different pid namespaces (containers sharing a /dev/shm) cannot judge each other's pids.
 */
export function selfPidNamespace(): string {
  if (pidNamespace === undefined) {
    try {
      pidNamespace = /\[(\d+)\]/.exec(fs.readlinkSync('/proc/self/ns/pid'))?.[1] ?? '';
    } catch {
      pidNamespace = '';
    }
  }
  return pidNamespace;
}

/** What a registry lock entry records about the thread that holds it. */
export interface Owner {
  pid: number;
  /** Process start time, 0 = unknown. */
  start: number;
  /** OS thread id, 0 = unknown. */
  tid: number;
  /** Thread start time, 0 = unknown. */
  tidStart: number;
  /** Pid namespace token, '' = unknown. */
  ns: string;
}

/**
 * Whether `owner` certainly no longer runs. Never says "dead" for a live owner: a reused pid is
 * caught by the start time, a terminated worker thread by its task entry, and an owner in
 * another pid namespace is never judged.
 */
export function ownerIsDead(owner: Owner): boolean {
  const ns = selfPidNamespace();
  // Another pid namespace (containers sharing a /dev/shm): its pids mean nothing here.
  if (owner.ns !== ns) return false;
  // No /proc (not Linux): only the signal probe is left; a reused pid reads as alive.
  if (ns === '') return signalSaysDead(owner.pid);
  const start = procStartTime(`/proc/${owner.pid}/stat`);
  // Gone from /proc may also mean hidden (hidepid=2, another user): let the signal probe decide.
  if (start === 'gone' || start === 'unknown') return signalSaysDead(owner.pid);
  if (owner.start !== 0 && start !== owner.start) return true;
  if (owner.tid > 0) {
    const t = procStartTime(`/proc/${owner.pid}/task/${owner.tid}/stat`);
    if (t === 'gone') return true;
    if (typeof t === 'number' && owner.tidStart !== 0 && t !== owner.tidStart) return true;
  }
  return false;
}

function signalSaysDead(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
