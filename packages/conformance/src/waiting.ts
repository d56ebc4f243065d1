import assert from 'node:assert/strict';
import { assertNoTicketOf } from './checks.js';
import type { FeatureOptions } from './types.js';
import { codeOf, codeOfAsync, fixtureRunner, sleep } from './util.js';

/**
 * Waiting and giving up: tryLock never waits and writes nothing when busy, timeouts and aborts
 * leave no ticket, an async wait keeps the event loop running, lock() calls on one instance
 * queue in FIFO order, withLock and `using` release.
 */
export function waitingSuite({ test, factory }: FeatureOptions): void {
  const withFixture = fixtureRunner(factory);

  test(
    'tryLock fails fast while the lock is held and writes nothing to shared memory',
    withFixture(4, async (f) => {
      const a = f.open();
      const b = f.open();
      const lease = a.lockSync();
      const before = f.bytes();
      for (let k = 0; k < 1000; k++) assert.equal(b.tryLock(), null);
      assert.deepEqual(f.bytes(), before);
      lease.release();
      const l2 = b.tryLock();
      assert.notEqual(l2, null);
      assert.equal(a.tryLock(), null);
      l2!.release();
      a.close();
      b.close();
    }),
  );

  test(
    'lockSync with a timeout throws BAKERY_TIMEOUT, leaves no ticket behind, and the waiter proceeds later',
    withFixture(4, async (f) => {
      const a = f.open();
      const b = f.open();
      const lease = a.lockSync();
      assert.equal(
        codeOf(() => b.lockSync({ timeout: 20 })),
        'BAKERY_TIMEOUT',
      );
      assert.equal(
        codeOf(() => b.lockSync({ timeout: 0 })),
        'BAKERY_TIMEOUT',
      );
      assertNoTicketOf(f, b.slot);
      assert.equal(b.held, false);
      lease.release();
      const l2 = b.lockSync({ timeout: 10_000 });
      assert.equal(b.held, true);
      l2.release();
      a.close();
      b.close();
    }),
  );

  test(
    'lock() rejects with BAKERY_TIMEOUT or BAKERY_ABORTED, leaves no ticket behind, and others proceed',
    withFixture(4, async (f) => {
      const a = f.open();
      const b = f.open();
      const c = f.open();
      const lease = a.lockSync();
      assert.equal(await codeOfAsync(b.lock({ timeout: 20 })), 'BAKERY_TIMEOUT');
      assertNoTicketOf(f, b.slot);
      const ac = new AbortController();
      const pending = b.lock({ signal: ac.signal });
      const third = c.lock();
      setTimeout(() => ac.abort(new Error('changed my mind')), 20);
      assert.equal(await codeOfAsync(pending), 'BAKERY_ABORTED');
      assertNoTicketOf(f, b.slot);
      const pre = new AbortController();
      pre.abort();
      assert.equal(await codeOfAsync(b.lock({ signal: pre.signal })), 'BAKERY_ABORTED');
      lease.release();
      const l3 = await third;
      l3.release();
      a.close();
      b.close();
      c.close();
    }),
  );

  test(
    'an async lock() wait keeps the event loop running (a timer keeps firing)',
    withFixture(4, async (f) => {
      const a = f.open();
      const b = f.open();
      const lease = a.lockSync();
      let ticks = 0;
      // The holder releases only after the timer fired 20 times while b.lock() is pending:
      // if lock() blocked the event loop this test could never finish.
      const timer = setInterval(() => {
        if (++ticks === 20) lease.release();
      }, 1);
      try {
        const l2 = await b.lock();
        assert.ok(ticks >= 20);
        l2.release();
      } finally {
        clearInterval(timer);
      }
      a.close();
      b.close();
    }),
  );

  test(
    'several lock() calls on one instance queue in FIFO order and share its slot',
    withFixture(4, async (f) => {
      const a = f.open();
      const order: number[] = [];
      const all = [0, 1, 2, 3, 4].map((k) =>
        a.lock().then(async (lease) => {
          order.push(k);
          await sleep(1);
          lease.release();
        }),
      );
      await Promise.all(all);
      assert.deepEqual(order, [0, 1, 2, 3, 4]);
      assert.equal(f.inspect().slots.filter((s) => s.owner !== null).length, 1);
      a.close();
    }),
  );

  test(
    'withLock releases when the callback throws, and `using` releases at scope end',
    withFixture(4, async (f) => {
      const a = f.open();
      const b = f.open();
      await assert.rejects(
        a.withLock(() => {
          assert.equal(a.held, true);
          throw new Error('boom');
        }),
        /boom/,
      );
      assert.equal(a.held, false);
      assert.equal(await a.withLock(async () => 42), 42);
      {
        using lease = b.lockSync();
        assert.equal(lease.ownerDied, false);
        assert.equal(b.held, true);
      }
      assert.equal(b.held, false);
      a.close();
      b.close();
    }),
  );
}
