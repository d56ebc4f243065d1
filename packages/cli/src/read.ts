import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import {
  BakeryError,
  type Cells,
  H,
  type Identity,
  type Snapshot,
  snapshot,
  validateLayout,
} from '@bakery/core';
import { type FileId, fileId, isAlive, isAliveInLock } from '@bakery/core/node';
import type * as NativeModule from '@bakery/native';
import { ShmCells } from '@bakery/shm';
import { CliError } from './errors.js';

/** One slot of a lock, with its owner's liveness. */
export interface SlotView {
  slot: number;
  /** Owner's pid; null when the slot is free. */
  pid: number | null;
  /** Owner's OS thread id (0 = unknown). */
  tid: number;
  /** Owner's start time in clock ticks since boot (0 = unknown). */
  startTime: number;
  /**
   * Whether the owner still runs; null for a free slot. In a mapped lock whose owner recorded a
   * per-slot lease, the lease decides where it can (see {@link readLock}); otherwise `isAlive`
   * of `@bakery/core/node` (pid, thread and start time; an owner in another pid namespace
   * counts as alive, since its pid cannot be judged here).
   */
  alive: boolean | null;
  /** In the doorway right now. */
  choosing: boolean;
  /** Ticket number; 0 = none. */
  ticket: number;
  /** The ticket is kept outside the critical section (a batched release); waiters revoke it. */
  retained: boolean;
  /** Colour of the ticket; null without one. */
  colour: 'white' | 'black' | null;
  /** Participants asleep on this slot's cells. */
  sleepers: number;
  /** This slot holds the lock. */
  holder: boolean;
}

/** A lock's state as the CLI shows it: the snapshot plus liveness and counts. */
export interface LockView {
  /** Where the lock was read: the lock file, or `/proc/<pid>/fd/<n>`. */
  path: string;
  layoutVersion: number;
  capacity: number;
  /**
   * How the lock's participants reach its cells (header cell `H.ACCESS`): `'mapped'` — the
   * memory is mapped shared and accessed with atomics, futex wake-ups and per-slot leases
   * (@bakery/mmap, @bakery/shm's mapped path); `'pure-js'` — one pread/pwrite per cell under
   * a registry lock (@bakery/shm without @bakery/native).
   */
  access: 'mapped' | 'pure-js';
  /**
   * The shared Black-White colour; null when the COLOUR cell holds neither 0 (white) nor 1
   * (black) — then `raw.colour` has the stored value and `outOfRange` lists `'colour'`.
   */
  colour: 'white' | 'black' | null;
  highWater: number;
  /**
   * The holder's slot, pid and liveness; null when the lock is free (HOLDER cell 0). When the
   * HOLDER cell names no slot below the high-water mark, `slot` is the stored value minus one,
   * `pid` and `alive` are null, and `outOfRange` is true (and listed in {@link LockView.outOfRange}).
   */
  holder: { slot: number; pid: number | null; alive: boolean | null; outOfRange?: true } | null;
  /**
   * The owner-died state: `'not-recoverable'` means the lock is poisoned (a holder died and its
   * successor released without marking the data consistent): every acquirer gets
   * `BAKERY_NOT_RECOVERABLE` until `bakery mark-consistent <name>`. A stored value other than
   * 0, 1, 2 reads as `'not-recoverable'`, as core reads it, and is listed in `outOfRange`.
   */
  ownerDied: Snapshot['ownerDied'];
  /** The HOLDER, COLOUR and OWNER_DIED header cells exactly as stored. */
  raw: { holder: number; colour: number; ownerDied: number };
  /**
   * Header cells whose stored value is out of range — HOLDER not 0 and not slot + 1 of a slot
   * below the high-water mark, COLOUR not 0/1, OWNER_DIED not 0/1/2. Empty for a sound lock;
   * anything here means the memory was written by something other than bakery (or is torn).
   */
  outOfRange: Array<'holder' | 'colour' | 'ownerDied'>;
  /** Core's list of impossible states in this lock (see `Snapshot.anomalies` of @bakery/core). */
  anomalies: string[];
  acquisitions: number;
  maxTicket: number;
  /** Claimed slots. */
  participants: number;
  /** Slots that hold a ticket (not a retained one) or are choosing, other than the holder. */
  waiters: number;
  /** Claimed slots whose owner is certainly dead (what `bakery reap` would free). */
  dead: number;
  slots: SlotView[];
}

/** The header cells {@link viewOf} shows as stored (see {@link LockView.raw}). */
export interface RawHeader {
  /** HOLDER: slot + 1 of the holder, 0 when free. */
  holder: number;
  /** COLOUR: 0 white, 1 black. */
  colour: number;
  /** OWNER_DIED: 0 consistent, 1 owner died, 2 not recoverable. */
  ownerDied: number;
}

/** Read the {@link RawHeader} cells of a lock. */
export function rawHeader(cells: Cells): RawHeader {
  return {
    holder: cells.load(H.HOLDER),
    colour: cells.load(H.COLOUR),
    ownerDied: cells.load(H.OWNER_DIED),
  };
}

/**
 * Turn a snapshot into a {@link LockView}, asking `alive` about every owner (with the slot it
 * was read from). The default is the pid-based `isAlive` of `@bakery/core/node`; {@link
 * readLock} passes one that also asks a mapped lock's leases. `raw` are the header cells as
 * stored, read just before the snapshot (see {@link rawHeader}); holder, colour and owner-died
 * state are shown from them. Without it they are derived from the snapshot, which has already
 * mapped them, so nothing can show as out of range.
 */
export function viewOf(
  snap: Snapshot,
  where: string,
  alive: (owner: Identity, slot: number) => boolean = isAlive,
  raw?: RawHeader,
): LockView {
  const stored: RawHeader = raw ?? {
    holder: snap.holder === null ? 0 : snap.holder + 1,
    colour: snap.colour === 'black' ? 1 : 0,
    ownerDied: snap.ownerDied === 'consistent' ? 0 : snap.ownerDied === 'owner-died' ? 1 : 2,
  };
  const outOfRange: LockView['outOfRange'] = [];
  // Core maps HOLDER to HOLDER - 1 whatever it is; only a slot it scanned can be the holder.
  const holderSlot = stored.holder === 0 ? null : stored.holder - 1;
  const holderOk = holderSlot === null || snap.slots.some((x) => x.slot === holderSlot);
  if (!holderOk) outOfRange.push('holder');
  if (stored.colour !== 0 && stored.colour !== 1) outOfRange.push('colour');
  if (stored.ownerDied < 0 || stored.ownerDied > 2) outOfRange.push('ownerDied');
  const slots: SlotView[] = snap.slots.map((s) => ({
    slot: s.slot,
    pid: s.owner?.pid ?? null,
    tid: s.owner?.tid ?? 0,
    startTime: s.owner?.startTime ?? 0,
    alive: s.owner === null ? null : alive(s.owner, s.slot),
    choosing: s.choosing,
    ticket: s.ticket,
    retained: s.retained,
    colour: s.colour,
    sleepers: s.sleepers,
    holder: holderOk && s.slot === holderSlot,
  }));
  const h = holderSlot === null || !holderOk ? undefined : slots.find((x) => x.slot === holderSlot);
  return {
    path: where,
    layoutVersion: snap.layoutVersion,
    capacity: snap.capacity,
    access: snap.access === 'positional' ? 'pure-js' : 'mapped',
    colour: stored.colour === 0 ? 'white' : stored.colour === 1 ? 'black' : null,
    highWater: snap.highWater,
    holder:
      holderSlot === null
        ? null
        : holderOk
          ? { slot: holderSlot, pid: h?.pid ?? null, alive: h?.alive ?? null }
          : { slot: holderSlot, pid: null, alive: null, outOfRange: true },
    ownerDied:
      stored.ownerDied === 0
        ? 'consistent'
        : stored.ownerDied === 1
          ? 'owner-died'
          : 'not-recoverable',
    raw: stored,
    outOfRange,
    anomalies: snap.anomalies,
    acquisitions: snap.acquisitions,
    maxTicket: snap.maxTicket,
    participants: slots.filter((s) => s.pid !== null).length,
    waiters: slots.filter((s) => !s.holder && !s.retained && (s.ticket !== 0 || s.choosing)).length,
    dead: slots.filter((s) => s.alive === false).length,
    slots,
  };
}

let binding: { native: NativeModule.Native; lib: typeof NativeModule } | null | undefined;

/**
 * @bakery/native (an optional dependency), loaded on first use; null when it is not installed
 * or its binary does not load — then liveness falls back to the pid check.
 */
function leaseBinding(): { native: NativeModule.Native; lib: typeof NativeModule } | null {
  if (binding !== undefined) return binding;
  try {
    const lib = createRequire(import.meta.url)('@bakery/native') as typeof NativeModule;
    const r = lib.probeNative();
    binding = 'native' in r ? { native: r.native, lib } : null;
  } catch {
    binding = null;
  }
  return binding;
}

/**
 * The CLI's judge of slot owners in a lock read through `fd`: in a mapped lock, the slot's
 * lease decides where it can (@bakery/native's `leaseVerdict`, the rule the participants
 * themselves use), probing through the CLI's own read-only description — F_OFD_GETLK needs no
 * write access, and this description holds no lock, so any lock on the byte is someone
 * else's. Everything else — a pure-JS lock, no lease recorded, no binding, a worker-thread
 * owner — is the pid check, with the owner's recorded pid namespace (so a foreign pid is never
 * judged by what it means here), and the participants' own second opinion
 * (`isAliveInLock`: a main-thread owner whose pid runs with this lock's file open is alive).
 */
function ownerJudge(
  cells: Cells,
  fd: number,
  mapped: boolean,
): (owner: Identity, slot: number) => boolean {
  let file: FileId | undefined;
  try {
    file = fileId(fd);
  } catch {
    // the pid check alone
  }
  return (owner, slot) => {
    const b = mapped ? leaseBinding() : null;
    const verdict = b?.lib.leaseVerdict(b.native, fd, cells, owner, slot);
    if (verdict !== undefined) return verdict === 'alive';
    return file !== undefined ? isAliveInLock(owner, cells, slot, file) : isAlive(owner);
  };
}

/** What a non-regular file is, for messages: "a FIFO", "a directory", … */
export function fileKind(st: fs.Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isDirectory()) return 'a directory';
  if (st.isSocket()) return 'a socket';
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return st.isFile() ? 'a regular file' : 'not a regular file';
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * Read the lock in `file` without taking part: opened read-only, validated (reads only), one
 * snapshot. `follow` allows a symbolic link (the magic links of /proc/<pid>/fd); lock files in
 * the shm directory are opened with O_NOFOLLOW, like the library does. The open is always
 * O_NONBLOCK, so a FIFO (or anything else that is not a regular file) planted at the path
 * fails at once with `BAKERY_BAD_LAYOUT` instead of waiting for a writer.
 *
 * Owners are judged alive or dead with the per-slot leases of a mapped lock where @bakery/native
 * loads (an OFD lock query, F_OFD_GETLK, through the same read-only fd: nothing is locked or
 * written), so that an owner that died in another pid namespace reads as dead; else, and in a
 * pure-JS lock, with the pid check of `@bakery/core/node`.
 */
export function readLock(file: string, follow = false): LockView {
  let fd: number;
  try {
    fd = fs.openSync(
      file,
      fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | (follow ? 0 : fs.constants.O_NOFOLLOW),
    );
  } catch (err) {
    const code = errno(err);
    if (code === 'ENOENT' || code === 'ENOTDIR')
      throw new CliError('BAKERY_NOT_FOUND', `no lock at ${file}`, { cause: err });
    if (code === 'EACCES' || code === 'EPERM')
      throw new CliError('BAKERY_PERMISSION', `cannot read ${file}: permission denied`, {
        cause: err,
      });
    if (code === 'ELOOP')
      throw new BakeryError('BAKERY_BAD_LAYOUT', `${file} is a symbolic link, not a lock file`, {
        cause: err,
      });
    if (code === 'ENXIO')
      throw new BakeryError('BAKERY_BAD_LAYOUT', `${file} is a socket, not a lock file`, {
        cause: err,
      });
    throw new BakeryError('BAKERY_IO', `cannot open ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile())
      throw new BakeryError('BAKERY_BAD_LAYOUT', `${file} is ${fileKind(st)}, not a lock file`);
    if (st.size % 4 !== 0)
      throw new BakeryError('BAKERY_BAD_LAYOUT', `${file} is ${st.size} bytes: not a bakery lock`);
    const cells = new ShmCells(fd, st.size / 4, undefined, file);
    validateLayout(cells);
    // Before the snapshot: HIGH_WATER only grows, so a holder read now is below the high-water
    // mark the snapshot reads next — a live lock never shows a spurious out-of-range holder.
    const raw = rawHeader(cells);
    const snap = snapshot(cells);
    return viewOf(snap, file, ownerJudge(cells, fd, snap.access === 'atomic'), raw);
  } finally {
    fs.closeSync(fd);
  }
}

/** One lock a process has open, as found by {@link findProcessLocks}. */
export interface ProcessLock extends LockView {
  /** `'mmap'` for a memfd (or its /dev/shm fallback), `'shm'` for a named lock file. */
  kind: 'mmap' | 'shm';
  /** The fd number in that process (the lowest, when several fds share the memory). */
  fd: number;
  /**
   * What /proc/<pid>/fd/<fd> points to, e.g. `/memfd:bakery (deleted)`; for the fd its creator
   * opened a named lock with (under a temporary name), the `bakery.<name>` path it is linked as.
   */
  target: string;
}

const MEMFD = /^\/memfd:bakery( \(deleted\))?$/;
const ANON = /^\/dev\/shm\/bakery-anon-[^/]*( \(deleted\))?$/;
// A named lock file; "(deleted)" once `bakery rm` removed it while the process kept it open.
const NAMED = /\/bakery\.[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}( \(deleted\))?$/;
// The creator's fd of a named lock: @bakery/shm initialises the file under a temporary name,
// links it as bakery.<name> and removes the temporary name, so /proc shows that one, deleted.
const CREATED =
  /^(.*)\/\.bakery\.([A-Za-z0-9_-][A-Za-z0-9._-]{0,199})\.\d+\.[0-9a-f]+\.tmp \(deleted\)$/;

/**
 * The bakery locks process `pid` has open, found through /proc/<pid>/fd: a memfd named
 * `memfd:bakery` (an @bakery/mmap lock), and named lock files (@bakery/shm) — also the one
 * its creator opened under a temporary name (shown as its `bakery.<name>` path while that
 * still links to it) and one removed while open (`… (deleted)`). Each is opened
 * through /proc/<pid>/fd/<n> (a new read-only description of the same memory) and read once.
 * Several fds on the same memory count once.
 */
export function findProcessLocks(pid: number): ProcessLock[] {
  const dir = `/proc/${pid}/fd`;
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch (err) {
    const code = errno(err);
    if (code === 'ENOENT')
      throw new CliError('BAKERY_NOT_FOUND', `there is no process ${pid}`, { cause: err });
    if (code === 'EACCES' || code === 'EPERM')
      throw new CliError(
        'BAKERY_PERMISSION',
        `cannot list the fds of process ${pid} (another user?)`,
        {
          cause: err,
        },
      );
    throw new BakeryError('BAKERY_IO', `cannot read ${dir}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const seen = new Set<string>();
  const found: ProcessLock[] = [];
  for (const n of entries.map(Number).sort((a, b) => a - b)) {
    const fdPath = path.join(dir, String(n));
    let target: string;
    try {
      target = fs.readlinkSync(fdPath);
    } catch {
      continue; // closed in the meantime
    }
    const created = CREATED.exec(target);
    const kind =
      MEMFD.test(target) || ANON.test(target)
        ? 'mmap'
        : NAMED.test(target) || created !== null
          ? 'shm'
          : null;
    if (kind === null) continue;
    let key: string;
    try {
      const st = fs.statSync(fdPath);
      key = `${st.dev}:${st.ino}`;
      if (created !== null) {
        // Still linked under its name: show that (else it was removed since; keep the target).
        const linked = path.join(created[1]!, `bakery.${created[2]}`);
        const lst = fs.lstatSync(linked, { throwIfNoEntry: false });
        if (lst !== undefined && `${lst.dev}:${lst.ino}` === key) target = linked;
      }
    } catch {
      continue;
    }
    if (seen.has(key)) continue;
    seen.add(key);
    try {
      found.push({ kind, fd: n, target, ...readLock(fdPath, true) });
    } catch (err) {
      // A file named like ours that is not a lock (or was closed meanwhile) is not one of them.
      if ((err as { code?: string }).code === 'BAKERY_PERMISSION') throw err;
    }
  }
  return found;
}
