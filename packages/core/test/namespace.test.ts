import { describe, expect, test } from 'vitest';
import { H, type Identity, openOn, S, slotBase } from '../src/index.js';
import { isAlive, pidNamespace, processIdentity } from '../src/node.js';
import { createReferenceCells } from '../src/reference.js';

describe('pid namespaces', () => {
  test('our identity carries our pid namespace, and a claim records it in OWNER_NS', () => {
    const ns = pidNamespace();
    expect(ns).toBeGreaterThan(0);
    expect(processIdentity().ns).toBe(ns);
    const cells = createReferenceCells(2);
    const m = openOn({ cells, identity: processIdentity, isAlive });
    expect(cells.load(slotBase(m.slot) + S.OWNER_NS) >>> 0).toBe(ns);
    m.close();
    expect(cells.load(slotBase(m.slot) + S.OWNER_NS)).toBe(0);
    expect(cells.load(H.HIGH_WATER)).toBe(1);
  });

  test('an owner recorded in another pid namespace is never judged dead; in ours, or unknown, it is', () => {
    // A pid that does not exist here: in another namespace it may well be a live process.
    const gone: Identity = { pid: 2 ** 22 + 12345, tid: 2 ** 22 + 12345, startTime: 42 };
    expect(isAlive({ ...gone, ns: pidNamespace() })).toBe(false);
    expect(isAlive({ ...gone, ns: 0 })).toBe(false);
    expect(isAlive(gone)).toBe(false);
    expect(isAlive({ ...gone, ns: (pidNamespace() + 1) >>> 0 })).toBe(true);
  });

  test('a reaper never frees a slot whose owner is in another pid namespace', () => {
    const cells = createReferenceCells(2);
    const holder = openOn({ cells, identity: processIdentity, isAlive });
    const lease = holder.lockSync();
    const b = slotBase(holder.slot);
    cells.store(b + S.OWNER, 2 ** 22 + 12345);
    cells.store(b + S.OWNER_TID, 2 ** 22 + 12345);
    cells.store(b + S.OWNER_NS, (pidNamespace() + 1) | 0);
    const waiter = openOn({ cells, identity: processIdentity, isAlive }, { staleAfterMs: 20 });
    expect(waiter.reapDead()).toBe(0);
    expect(() => waiter.lockSync({ timeout: 100 })).toThrow(
      expect.objectContaining({ code: 'BAKERY_TIMEOUT' }),
    );
    cells.store(b + S.OWNER_NS, pidNamespace() | 0);
    expect(waiter.reapDead()).toBe(1);
    const l2 = waiter.lockSync({ timeout: 1000 });
    expect(l2.ownerDied).toBe(true);
    l2.markConsistent();
    l2.release();
    waiter.close();
    lease.release();
    holder.close();
  });
});
