import assert from 'node:assert/strict';
import { H, packTicket, S, slotBase } from '@bakery/core';
import type { ConformanceFactory, DescribeFn, TestFn } from './types.js';
import { codeOf, codeOfAsync, fixtureRunner } from './util.js';

/**
 * Damage that passes validation (a process of the same user wrote a cell) and the way out of a
 * poisoned lock, for every backend: the lock heals or refuses with a code; it never lets two in
 * for good and never wedges beyond what `reapDead()` / `markConsistent()` clear.
 */
export function damageSuite({
  test,
  describe,
  factory,
}: {
  test: TestFn;
  describe: DescribeFn;
  factory: ConformanceFactory;
}): void {
  const withFixture = fixtureRunner(factory);

  describe(`damage and poisoned locks: ${factory.name} (${factory.participants})`, () => {
    test(
      'a poisoned lock refuses every acquirer without counting it, and markConsistent() clears it for everyone',
      withFixture(3, async (f) => {
        const a = f.open();
        const b = f.open();
        f.poke(H.OWNER_DIED, 2); // what a successor that released without repairing leaves
        const before = f.inspect().acquisitions;
        assert.equal(
          codeOf(() => a.lockSync()),
          'BAKERY_NOT_RECOVERABLE',
        );
        assert.equal(await codeOfAsync(b.lock()), 'BAKERY_NOT_RECOVERABLE');
        assert.equal(f.inspect().acquisitions, before, 'a refusal was counted as an acquisition');
        assert.equal(f.inspect().holder, null);
        assert.equal(b.markConsistent({ timeout: 10_000 }), true);
        assert.equal(f.inspect().ownerDied, 'consistent');
        const lease = a.lockSync({ timeout: 10_000 });
        assert.equal(lease.ownerDied, false);
        lease.release();
        assert.equal(b.markConsistent(), false, 'nothing to clear');
        a.close();
        b.close();
      }),
    );

    test(
      "HIGH_WATER lowered below a live participant's slot is repaired by its next doorway, so the others see it again",
      withFixture(4, async (f) => {
        const a = f.open();
        const b = f.open();
        assert.ok(b.slot > a.slot);
        f.poke(H.HIGH_WATER, b.slot); // hides b from a's scans
        assert.ok(f.inspect().anomalies.length > 0, 'inspect() did not flag the damage');
        const lease = b.lockSync({ timeout: 10_000 });
        assert.equal(f.inspect().highWater, b.slot + 1);
        assert.equal(a.tryLock(), null, 'a took the lock while b held it');
        lease.release();
        a.lockSync({ timeout: 10_000 }).release();
        assert.deepEqual(f.inspect().anomalies, []);
        a.close();
        b.close();
      }),
    );

    test(
      'a ticket left on a free slot is flagged and cleared by reapDead(); the lock is then free',
      withFixture(4, async (f) => {
        const a = f.open();
        const gone = f.open();
        const slot = gone.slot;
        gone.close();
        const colour = f.inspect().colour === 'black' ? 1 : 0;
        f.poke(slotBase(slot) + S.TICKET, packTicket(1, colour)); // a phantom competitor
        assert.ok(f.inspect().anomalies.some((x) => x.includes(`slot ${slot} is free`)));
        assert.ok(a.reapDead() >= 1);
        assert.equal(f.inspect().slots[slot]!.ticket, 0);
        const lease = a.tryLock();
        assert.notEqual(lease, null);
        lease!.release();
        assert.deepEqual(f.inspect().anomalies, []);
        a.close();
      }),
    );
  });
}
