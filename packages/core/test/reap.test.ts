import { describe, expect, test } from 'vitest';
import { type Identity, openOn } from '../src/index.js';
import { createReferenceCells } from '../src/reference.js';

/** A backend over the reference memory whose participants die when the test says so. */
function world(slots: number) {
  const cells = createReferenceCells(slots);
  const dead = new Set<number>();
  let next = 1000;
  const open = () => {
    const id: Identity = { pid: next++, tid: 0, startTime: 0 };
    return {
      pid: id.pid,
      mutex: openOn({ cells, identity: () => id, isAlive: (o) => !dead.has(o.pid) }),
    };
  };
  return { cells, dead, open };
}

describe('reapDead()', () => {
  test('a holder that died is reaped at once: its slot is freed and the next acquirer sees ownerDied', () => {
    const { dead, open } = world(4);
    const a = open();
    const b = open();
    b.mutex.lockSync();
    dead.add(b.pid);
    expect(a.mutex.reapDead()).toBe(1);
    const snap = a.mutex.inspect();
    expect(snap.holder).toBeNull();
    expect(snap.ownerDied).toBe('owner-died');
    expect(snap.slots[b.mutex.slot].owner).toBeNull();
    const lease = a.mutex.tryLock();
    expect(lease?.ownerDied).toBe(true);
    lease!.markConsistent();
    lease!.release();
    expect(a.mutex.inspect().ownerDied).toBe('consistent');
    a.mutex.close();
  });

  test('a dead waiter is withdrawn without touching the holder or the colour', () => {
    const { dead, open } = world(4);
    const a = open();
    const b = open();
    const c = open();
    const lease = a.mutex.lockSync();
    const colour = a.mutex.inspect().colour;
    expect(() => b.mutex.lockSync({ timeout: 0 })).toThrow(); // leaves nothing behind
    dead.add(b.pid);
    expect(c.mutex.reapDead()).toBe(1);
    const snap = c.mutex.inspect();
    expect(snap.holder).toBe(a.mutex.slot);
    expect(snap.colour).toBe(colour);
    expect(snap.ownerDied).toBe('consistent');
    lease.release();
    a.mutex.close();
    c.mutex.close();
  });

  test('live participants are never reaped, and a backend that cannot tell liveness reaps nothing', () => {
    const { open } = world(4);
    const a = open();
    const b = open();
    const lease = b.mutex.lockSync();
    expect(a.mutex.reapDead()).toBe(0);
    expect(a.mutex.inspect().holder).toBe(b.mutex.slot);
    lease.release();

    const cells = createReferenceCells(2);
    const x = openOn({ cells, identity: () => ({ pid: 7, tid: 0, startTime: 0 }) });
    const y = openOn({ cells, identity: () => ({ pid: 8, tid: 0, startTime: 0 }) });
    y.lockSync();
    expect(x.reapDead()).toBe(0);
    for (const m of [a, b]) m.mutex.close();
  });

  test('reapDead() on a closed instance is BAKERY_CLOSED', () => {
    const { open } = world(2);
    const a = open();
    a.mutex.close();
    expect(() => a.mutex.reapDead()).toThrow(expect.objectContaining({ code: 'BAKERY_CLOSED' }));
  });
});
