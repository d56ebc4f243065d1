import { spawnSync } from 'node:child_process';
import { expect, test } from 'vitest';
import { H, openOn, packTicket, S, slotBase } from '../src/index.js';
import { isAlive, processIdentity } from '../src/node.js';
import { createReferenceCells } from '../src/reference.js';

/** A pid that certainly belonged to a process that has exited and been waited for. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

/** Record a certainly-dead owner with `ticket` in slot 1 (as if it died after its doorway). */
function deadOwnerInSlot1(
  cells: ReturnType<typeof createReferenceCells>,
  ticketNumber: number,
): void {
  const pid = deadPid();
  const b = slotBase(1);
  cells.store(b + S.OWNER, pid);
  cells.store(b + S.OWNER_TID, pid);
  cells.store(b + S.OWNER_START_LO, 12345);
  cells.store(H.HIGH_WATER, 2);
  cells.store(b + S.TICKET, packTicket(ticketNumber, cells.load(H.COLOUR)));
}

test('a dead participant whose ticket sits at the limit is reaped by a doorway that keeps stepping back', () => {
  const cells = createReferenceCells(2);
  const backend = { cells, identity: processIdentity, isAlive };
  const a = openOn(backend, { staleAfterMs: 50 });
  // Slot 1: a participant that took the highest possible ticket (= the high-water mark, 2) of
  // the current colour and then died before entering: every doorway computes 3 > 2 and steps
  // back, so nobody reaches the waiting scan where stale owners used to be checked.
  deadOwnerInSlot1(cells, 2);
  const lease = a.lockSync({ timeout: 10_000 });
  expect(lease.ownerDied).toBe(false); // it was waiting, not holding: a withdrawal, no repair
  expect(a.inspect().slots[1]!.owner).toBeNull();
  lease.release();
  a.close();
});

test('a dead holder whose reaper died before clearing HOLDER is repaired again: the next acquirer sees ownerDied', () => {
  const cells = createReferenceCells(3);
  const backend = { cells, identity: processIdentity, isAlive };
  const a = openOn(backend, { staleAfterMs: 50 });
  // Slot 1 died holding the lock; a first reaper already wrote the colour but died before
  // HOLDER = 0 (and before OWNER_DIED in the old order). HOLDER still names slot 1, so the
  // next reaper treats it as a dead holder again and the next acquirer sees ownerDied.
  deadOwnerInSlot1(cells, 1);
  cells.store(H.HOLDER, 2);
  const lease = a.lockSync({ timeout: 10_000 });
  expect(lease.ownerDied).toBe(true);
  lease.markConsistent();
  lease.release();
  expect(a.inspect().holder).toBeNull();
  a.close();
});
