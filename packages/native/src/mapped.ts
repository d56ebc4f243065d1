import {
  AtomicCells,
  type Backend,
  type Cells,
  type Identity,
  type Mutex,
  type MutexOptions,
  OUTSIDER_SLOT,
  type OutsiderLock,
  openOn,
  readOwner,
  S,
  sameOwner,
  slotBase,
} from '@bakery/core';
import { type FileId, fileId, isAlive, isAliveInLock, processIdentity } from '@bakery/core/node';
import type { Native, WaitResult } from './native.js';

/**
 * The backend cells over a MAP_SHARED mapping: Atomics on an Int32Array (seq-cst, no native
 * call per access), and a non-private futex for blocking so that a releaser in one process
 * wakes a sleeper in another (V8's Atomics.notify never crosses a process).
 */
export class MappedCells extends AtomicCells {
  readonly #native: Native;

  /** @param buffer A mapping from {@link Native.map}. */
  constructor(native: Native, buffer: ArrayBuffer) {
    super(buffer);
    this.#native = native;
  }

  wait(i: number, expected: number, timeoutMs: number): WaitResult {
    return this.#native.wait(this.array, i, expected, timeoutMs);
  }

  notify(i: number, count: number): number {
    return this.#native.wake(this.array, i, count);
  }

  waitAsync(i: number, expected: number, timeoutMs: number): Promise<WaitResult> {
    return this.#native.waitAsync(this.array, i, expected, timeoutMs);
  }
}

/**
 * Liveness of slot owners through per-slot leases: an OFD write lock on byte = slot of the lock's
 * file, taken through a description this participant opened itself (a forked child's inherited
 * fd shares its parent's description, so a lease through it would outlive the child). The
 * kernel drops the lock when the process dies — in whatever pid namespace it ran — so "the
 * owner recorded a lease and no lock is held" proves it dead, whatever its pid now names.
 */
export class Leases {
  readonly #native: Native;
  readonly #cells: MappedCells;
  /** Our own description of the lock's file; -1 when /proc could not reopen it (no leases). */
  readonly fd: number;
  /** The lock's file, for the pid check's second opinion (descriptors open on it). */
  readonly #file: FileId | undefined;

  /** @param fd Any fd of the lock's file; the leases go through a reopened description of it. */
  constructor(native: Native, fd: number, cells: MappedCells) {
    this.#native = native;
    this.#cells = cells;
    let own = -1;
    try {
      own = native.reopen(fd);
    } catch {
      // No /proc: no lease and no probe; the pid-based check still applies.
    }
    this.fd = own;
    let file: FileId | undefined;
    try {
      file = fileId(fd);
    } catch {
      // an fd that cannot be stat'ed: the pid check alone
    }
    this.#file = file;
  }

  /** Takes the lease of our freshly claimed `slot`, then records that its owner has one. */
  take(slot: number): void {
    if (this.fd < 0) return;
    try {
      this.#native.leaseTake(this.fd, slot);
    } catch {
      // Without a lease OWNER_LEASE stays 0 and others judge us by pid, as before leases.
      return;
    }
    this.#cells.store(slotBase(slot) + S.OWNER_LEASE, 1);
  }

  /**
   * Drops the lease of `slot`, which we are freeing (its OWNER_LEASE is already 0, so no prober
   * takes the unlocked byte for a death).
   */
  drop(slot: number): void {
    if (this.fd < 0) return;
    try {
      this.#native.leaseDrop(this.fd, slot);
    } catch {
      // Our description is ours alone: this cannot fail short of a closed fd, and the lease
      // goes with the description at close anyway.
    }
  }

  /**
   * The outsider lock (core's `OutsiderLock`): an OFD lock on byte {@link OUTSIDER_SLOT} of the
   * lock's file, a byte no slot's lease uses, through our own description — so the kernel
   * releases it when we die, in whatever pid namespace. `undefined` without a description.
   */
  outsider(): OutsiderLock | undefined {
    if (this.fd < 0) return undefined;
    const native = this.#native;
    const fd = this.fd;
    return {
      enter: () => {
        try {
          native.leaseTake(fd, OUTSIDER_SLOT);
          return true;
        } catch {
          return false;
        }
      },
      leave: () => {
        try {
          native.leaseDrop(fd, OUTSIDER_SLOT);
        } catch {
          // as in drop()
        }
      },
      held: () => {
        try {
          return native.leaseHeld(fd, OUTSIDER_SLOT);
        } catch {
          return undefined;
        }
      },
    };
  }

  /** The backend's `isAlive`: the slot's lease decides where it can; the pid check otherwise. */
  isAlive(owner: Identity, slot?: number): boolean {
    if (slot !== undefined && this.fd >= 0) {
      const verdict = leaseVerdict(this.#native, this.fd, this.#cells, owner, slot);
      if (verdict !== undefined) return verdict === 'alive';
    }
    if (slot !== undefined && this.#file !== undefined)
      return isAliveInLock(owner, this.#cells, slot, this.#file);
    return isAlive(owner);
  }

  /** Closes our description: drops the lease (call after the slot is freed). */
  close(): void {
    if (this.fd >= 0) this.#native.close(this.fd);
  }
}

/**
 * What slot `slot`'s lease says about `owner` (as read from that slot), probed with
 * F_OFD_GETLK through `probeFd` — a description that holds no lease of `slot` itself (a
 * participant's own reopened description, or a tool's read-only fd: the query needs no write
 * access). `'dead'`: the owner recorded a lease (OWNER_LEASE = 1), no lock is held on byte =
 * slot, and the slot still names the same owner — a live owner clears its flag and owner cells
 * before its close drops the lease, so it died, in whatever pid namespace it ran and whatever
 * its pid now names. `'alive'`: a lock is held and the owner is a process's main thread (a
 * lease speaks for a process: a terminated worker's fds stay open in its process). `undefined`:
 * the lease cannot decide (no lease recorded, a worker-thread owner, the probe failed) — judge
 * by pid. The one home of this rule: the mapped backends and `bakery inspect` call it.
 */
export function leaseVerdict(
  native: Native,
  probeFd: number,
  cells: Cells,
  owner: Identity,
  slot: number,
): 'alive' | 'dead' | undefined {
  const flag = slotBase(slot) + S.OWNER_LEASE;
  if (cells.load(flag) !== 1) return undefined;
  let held: boolean;
  try {
    held = native.leaseHeld(probeFd, slot);
  } catch {
    return undefined;
  }
  // Re-read after the probe: the flag and the owner cells are cleared before a close drops the
  // lease, so both still there means the lease ended with the process.
  if (!held && cells.load(flag) === 1 && sameOwner(readOwner(cells, slot), owner)) return 'dead';
  if (held && (owner.tid === 0 || owner.tid === owner.pid)) return 'alive';
  return undefined;
}

/** What {@link openMapped} needs besides the cells. */
export interface MappedOpen {
  /** Any fd of the lock's file (the leases reopen it). */
  fd: number;
  /** For messages and `inspect()`. */
  description: string;
  /** Runs once when the Mutex closes, after its slot is freed and its lease dropped. */
  close?: () => void;
}

/**
 * One participant of a lock in mapped memory — the shared path of every backend that maps
 * (@bakery/mmap's memfd, @bakery/shm's named file): Atomics on the mapping, futex waits, the
 * per-slot lease taken right after each claim and before the first doorway (and dropped as the
 * slot is freed), and the outsider lock that lets a participant waiting for a slot reap. The cells must be
 * validated already (`validateLayout`); on a failure nothing is left open but the caller's fd.
 *
 * `open` is the `openOn` of the caller's copy of @bakery/core (default: this package's). A
 * backend that loads this package through `require` from an ES module passes its own, so that
 * the Mutex and every error it throws come from the same core as the caller's `BakeryError`
 * (`instanceof` holds).
 */
export function openMapped(
  native: Native,
  cells: MappedCells,
  how: MappedOpen,
  options: MutexOptions | undefined,
  open: (backend: Backend, options?: MutexOptions) => Mutex = openOn,
): Mutex {
  // Reopened before openOn: a full slot table makes openOn judge other slots already.
  const leases = new Leases(native, how.fd, cells);
  const outsider = leases.outsider();
  const backend: Backend = {
    cells,
    identity: processIdentity,
    isAlive: (owner: Identity, slot?: number) => leases.isAlive(owner, slot),
    // Right after each claim and before its first doorway; dropped as the slot is freed.
    claimed: (slot: number) => leases.take(slot),
    freeing: (slot: number) => leases.drop(slot),
    ...(outsider !== undefined ? { outsider } : {}),
    description: how.description,
    close: () => {
      // Closing our description drops the lease (after core has freed the slot).
      leases.close();
      how.close?.();
    },
  };
  try {
    return open(backend, options);
  } catch (err) {
    leases.close();
    throw err;
  }
}
