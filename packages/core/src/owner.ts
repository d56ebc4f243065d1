import type { Cells, Identity } from './backend.js';
import { S, slotBase } from './layout.js';

/**
 * The identity recorded in slot `s` (OWNER, OWNER_TID, OWNER_START_LO/HI, OWNER_NS), or null
 * when the slot is free. The one decoder of these cells: core's reaper, snapshots and the
 * backends' liveness rules all read an owner through it.
 */
export function readOwner(cells: Cells, s: number): Identity | null {
  const b = slotBase(s);
  const pid = cells.load(b + S.OWNER);
  if (pid === 0) return null;
  return {
    pid,
    tid: cells.load(b + S.OWNER_TID),
    startTime:
      (cells.load(b + S.OWNER_START_HI) >>> 0) * 2 ** 32 + (cells.load(b + S.OWNER_START_LO) >>> 0),
    ns: cells.load(b + S.OWNER_NS) >>> 0,
  };
}

/**
 * Free slot `s` (its protocol cells must be zero already): zero the owner cells — OWNER_TID,
 * OWNER_START_LO/HI, OWNER_NS, OWNER_LEASE — then run `beforeClaimWord` (a backend drops the
 * slot's lease there), then OWNER last: once it reads 0 another participant may claim the slot.
 * The one writer of this order: a close, an exit and a reap all free through it.
 */
export function freeOwner(cells: Cells, s: number, beforeClaimWord?: () => void): void {
  const b = slotBase(s);
  cells.store(b + S.OWNER_TID, 0);
  cells.store(b + S.OWNER_START_LO, 0);
  cells.store(b + S.OWNER_START_HI, 0);
  cells.store(b + S.OWNER_NS, 0);
  cells.store(b + S.OWNER_LEASE, 0);
  beforeClaimWord?.();
  cells.store(b + S.OWNER, 0);
}

/** Whether two identities name the same owner (an absent pid namespace counts as 0). */
export function sameOwner(a: Identity | null, b: Identity | null): boolean {
  return (
    a !== null &&
    b !== null &&
    a.pid === b.pid &&
    a.tid === b.tid &&
    a.startTime === b.startTime &&
    (a.ns ?? 0) === (b.ns ?? 0)
  );
}
