import assert from 'node:assert/strict';
import type { Lease, Mutex } from '@bakery/core';
import { cellsFor, H } from '@bakery/core';
import type { FeatureOptions, Fixture } from './types.js';
import { BAD_SLOT_COUNTS, codeOf, codeOfAsync, fixtureRunner } from './util.js';

/**
 * Using it right and wrong: misuse gets coded errors, a full slot table, slot counts and
 * layouts that must be refused, and what inspect() reports.
 */
export function usageSuite({ test, factory }: FeatureOptions): void {
  const withFixture = fixtureRunner(factory);

  test(
    'misuse gets coded errors: release twice, re-entrant lockSync, close while held, use after close, bad arguments',
    withFixture(4, async (f) => {
      const a = f.open();
      const aSlot = a.slot;
      const lease: Lease = a.lockSync();
      assert.equal(
        codeOf(() => a.lockSync()),
        'BAKERY_ALREADY_HELD',
      );
      assert.equal(a.tryLock(), null);
      assert.equal(
        codeOf(() => a.close()),
        'BAKERY_ALREADY_HELD',
      );
      lease.release();
      const before = f.bytes();
      assert.equal(
        codeOf(() => lease.release()),
        'BAKERY_NOT_HELD',
      );
      assert.equal(
        codeOf(() => lease.markConsistent()),
        'BAKERY_NOT_HELD',
      );
      assert.deepEqual(f.bytes(), before, 'a second release changed shared memory');
      assert.equal(
        codeOf(() => a.lockSync({ timeout: -1 })),
        'BAKERY_INVALID_ARGUMENT',
      );
      assert.equal(
        codeOf(() => a.lockSync({ timeout: Number.NaN })),
        'BAKERY_INVALID_ARGUMENT',
      );
      assert.equal(await codeOfAsync(a.lock({ timeout: -5 })), 'BAKERY_INVALID_ARGUMENT');
      assert.deepEqual(f.bytes(), before, 'bad arguments changed shared memory');
      // A lease that is still held, released twice: the first release counts, the second
      // is refused and changes nothing.
      const again = a.lockSync();
      again.release();
      const released = f.bytes();
      assert.equal(
        codeOf(() => again.release()),
        'BAKERY_NOT_HELD',
      );
      assert.deepEqual(f.bytes(), released, 'a second release changed shared memory');
      a.close();
      a.close();
      const closed = f.bytes();
      assert.equal(
        codeOf(() => lease.release()),
        'BAKERY_NOT_HELD',
        'a lease used after close',
      );
      assert.equal(
        codeOf(() => lease.markConsistent()),
        'BAKERY_NOT_HELD',
      );
      assert.equal(
        codeOf(() => a.lockSync()),
        'BAKERY_CLOSED',
      );
      assert.equal(
        codeOf(() => a.tryLock()),
        'BAKERY_CLOSED',
      );
      assert.equal(await codeOfAsync(a.lock()), 'BAKERY_CLOSED');
      assert.equal(
        codeOf(() => a.inspect()),
        'BAKERY_CLOSED',
      );
      assert.deepEqual(f.bytes(), closed, 'using a closed instance changed shared memory');
      assert.equal(f.inspect().slots[aSlot]!.owner, null, 'close() did not free the slot');
      assert.equal(a.slot, -1, 'a closed instance still names a slot');
    }),
  );

  test(
    'an open on a full slot table has no slot and writes nothing; tryLock is BAKERY_NO_FREE_SLOT; lockSync waits its timeout for a slot, then BAKERY_NO_FREE_SLOT; a waiting lock() takes the slot close() frees',
    withFixture(2, async (f) => {
      const a = f.open();
      const b = f.open();
      const aSlot = a.slot;
      const before = f.bytes();
      const c = f.open();
      assert.equal(c.slot, -1);
      assert.deepEqual(f.bytes(), before, 'an open without a slot wrote to shared memory');
      assert.equal(
        codeOf(() => c.tryLock()),
        'BAKERY_NO_FREE_SLOT',
      );
      assert.deepEqual(f.bytes(), before, 'a tryLock without a slot wrote to shared memory');
      const t0 = performance.now();
      assert.equal(
        codeOf(() => c.lockSync({ timeout: 40 })),
        'BAKERY_NO_FREE_SLOT',
      );
      assert.ok(performance.now() - t0 >= 39, 'lockSync gave up before its timeout');
      assert.equal(f.inspect().slotWanted, true, 'a waiter did not ask for a slot');
      const waiting = c.lock({ timeout: 10_000 });
      setTimeout(() => a.close(), 20);
      const lease = await waiting;
      assert.equal(c.slot, aSlot);
      lease.release();
      b.close();
      c.close();
    }),
  );

  test('creating a lock with slots out of range (0, negative, non-integer, NaN, not a number, null, above 4096) is BAKERY_INVALID_ARGUMENT', async () => {
    for (const bad of BAD_SLOT_COUNTS) {
      let f: Fixture | undefined;
      const code = await codeOfAsync(
        factory.create(bad as number).then((made) => {
          f = made;
        }),
      );
      await f?.dispose();
      assert.equal(code, 'BAKERY_INVALID_ARGUMENT', `slots = ${String(bad)}`);
    }
  });

  for (const [what, cell, value] of [
    ['magic', H.MAGIC, 0x12345678],
    ['layout version', H.VERSION, 99],
    ['capacity', H.CAPACITY, 3],
    ['init state', H.INIT, 1],
  ] as const) {
    test(
      `attaching to memory with the wrong ${what} is BAKERY_BAD_LAYOUT and leaves the memory untouched`,
      withFixture(4, async (f) => {
        const original = f.bytes();
        const view = new DataView(original.buffer, original.byteOffset);
        const saved = view.getInt32(cell * 4, true);
        f.poke(cell, value);
        const before = f.bytes();
        assert.equal(
          codeOf(() => f.open()),
          'BAKERY_BAD_LAYOUT',
        );
        assert.deepEqual(f.bytes(), before);
        f.poke(cell, saved);
        f.open().close();
      }),
    );
  }

  test(
    'inspect() reports the holder, tickets and colours of every claimed slot',
    withFixture(4, async (f) => {
      const a: Mutex = f.open();
      const lease = a.lockSync();
      const snap = a.inspect();
      assert.equal(snap.holder, a.slot);
      assert.equal(snap.self, a.slot);
      assert.equal(snap.capacity, 4);
      const mine = snap.slots[a.slot]!;
      assert.ok(mine.ticket >= 1);
      assert.ok(mine.owner !== null && mine.owner.pid === process.pid);
      assert.equal(f.bytes().length, cellsFor(4) * 4);
      lease.release();
      assert.equal(a.inspect().holder, null);
      a.close();
    }),
  );
}
