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
