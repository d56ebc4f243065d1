import assert from 'node:assert/strict';
import type { Lease, Mutex } from '@bakery/core';
import { cellsFor, H } from '@bakery/core';
import { damageSuite } from './damage.js';
import { faultSuite } from './faults.js';
import { type ConformanceFactory, type Fixture, type Report, SCRATCH } from './types.js';
import {
  BAD_SLOT_COUNTS,
  codeOf,
  codeOfAsync,
  fixtureRunner,
  scale,
  sleep,
  until,
} from './util.js';

/** The slice of a test runner's API the suite needs (vitest's `test`/`describe` fit). */
export type TestFn = (name: string, fn: () => Promise<void> | void, timeout?: number) => void;
export type DescribeFn = (name: string, fn: () => void) => void;

export interface SuiteOptions {
  test: TestFn;
  describe: DescribeFn;
  factory: ConformanceFactory;
}

function assertClean(reports: Report[]): void {
  for (const r of reports) {
    assert.deepEqual(r.errors, [], `participant ${r.id} reported errors`);
    assert.equal(r.violations, 0, `participant ${r.id} found the critical section occupied`);
  }
}

function assertNoTicketOf(f: Fixture, slot: number): void {
  const s = f.inspect().slots[slot]!;
  assert.equal(s.ticket, 0, `slot ${slot} left a ticket behind`);
  assert.equal(s.choosing, false, `slot ${slot} left choosing set`);
}

/**
 * No overtaking: when A's doorway ended before B's doorway started, A entered first. Stamps are
 * taken outside the intervals they bound (start before choosing = 1, end after choosing = 0,
 * entry inside the critical section), so a late stamp can only hide a pair, never invent one.
 */
export function findOvertaking(reports: Report[]): string | null {
  const all: { who: string; start: bigint; end: bigint; enter: bigint }[] = [];
  for (const r of reports) {
    r.records?.forEach(([s, e, n], k) => {
      all.push({ who: `${r.id}#${k}`, start: BigInt(s), end: BigInt(e), enter: BigInt(n) });
    });
  }
  all.sort((a, b) => (a.enter < b.enter ? -1 : a.enter > b.enter ? 1 : 0));
  // Walk from the last entry backwards, tracking the earliest doorway end among later entries.
  let minEnd: (typeof all)[number] | null = null;
  for (let k = all.length - 1; k >= 0; k--) {
    const b = all[k]!;
    if (minEnd !== null && minEnd.end < b.start) {
      return `${minEnd.who} finished its doorway before ${b.who} started its own, yet entered after it`;
    }
    if (minEnd === null || b.end < minEnd.end) minEnd = b;
  }
  return null;
}

/**
 * The bakery conformance suite. Call it from a backend's test file with the runner's `test` and
 * `describe` and a factory that creates locks and starts participants.
 *
 * @example
 * ```ts
 * import { describe, test } from 'vitest';
 * import { suite } from '@bakery/conformance';
 * suite({ test, describe, factory: myBackendFactory });
 * ```
 */
export function suite({ test, describe, factory }: SuiteOptions): void {
  const n = factory.concurrency;
  const m = Math.max(1, Math.round(factory.iterations * scale()));
  const who = `${n} ${factory.participants}`;
  const LONG = 600_000;

  const withFixture = fixtureRunner(factory);

  const exclusion = (mode: 'sync' | 'async' | 'mixed', slots = n + 2, iterations = m) =>
    withFixture(slots, async (f) => {
      const reports = await f.run(n, { kind: 'count', iterations, mode });
      assertClean(reports);
      const total = reports.reduce((a, r) => a + r.acquired, 0);
      assert.equal(total, n * iterations);
      assert.equal(
        f.scratchGet(SCRATCH.COUNTER),
        n * iterations,
        'lost updates: the counter is not exact',
      );
      const snap = f.inspect();
      const bound = Math.min(n, slots);
      assert.ok(
        snap.maxTicket <= bound,
        `largest ticket ${snap.maxTicket} exceeds ${bound} (participants, slots)`,
      );
      for (const s of snap.slots) assert.equal(s.ticket, 0, `slot ${s.slot} still has a ticket`);
      assert.equal(snap.holder, null);
    });

  describe(`bakery conformance: ${factory.name} (${factory.participants})`, () => {
    test(
      `mutual exclusion: ${who} × ${m} sync read–yield–write increments give an exact count`,
      exclusion('sync'),
      LONG,
    );
    test(
      `mutual exclusion: ${who} × ${m} async read–yield–write increments give an exact count`,
      exclusion('async'),
      LONG,
    );
    test(
      `mutual exclusion: ${who} × ${m} mixed lockSync/lock/tryLock increments give an exact count`,
      exclusion('mixed'),
      LONG,
    );

    // More participants than slots: those without one wait for a slot, and every release while
    // someone waits frees the releaser's slot, so they all take turns.
    const few = Math.max(1, Math.floor(n / 2));
    const mFew = Math.max(1, Math.round(m / 4));
    test(
      `more participants than slots: ${who} on ${few} slot(s) × ${mFew} sync read–yield–write increments give an exact count, and every participant finishes`,
      exclusion('sync', few, mFew),
      LONG,
    );
    test(
      `more participants than slots: ${who} on ${few} slot(s) × ${mFew} async read–yield–write increments give an exact count, and every participant finishes`,
      exclusion('async', few, mFew),
      LONG,
    );

    const fifoName = `first-come-first-served: no participant overtakes one whose doorway finished before its own began (${who})`;
    test(
      fifoName,
      withFixture(n + 2, async (f) => {
        const iterations = Math.max(50, Math.round(m / 4));
        const reports = await f.run(n, { kind: 'fifo', iterations });
        assertClean(reports);
        assert.equal(f.scratchGet(SCRATCH.COUNTER), n * iterations);
        assert.equal(findOvertaking(reports), null);
        assert.ok(f.inspect().maxTicket <= n);
      }),
      LONG,
    );

    const stormName = `bounded tickets: tryLock and timed-out lock storms while the lock is held never push a ticket past the limit, and everyone proceeds after release (${who})`;
    test(
      stormName,
      withFixture(n + 2, async (f) => {
        const holder = f.open();
        const lease = holder.lockSync();
        const tries = Math.round(30_000 * scale());
        const timeouts = Math.round(3_000 * scale());
        const run = f.run(n, { kind: 'storm', tries, timeouts });
        let failed: unknown;
        run.catch((err) => {
          failed = err;
        });
        let worst = 0;
        try {
          await until(
            'every storm participant to finish its attempts',
            () => {
              if (failed !== undefined) throw failed;
              const snap = f.inspect();
              for (const s of snap.slots) worst = Math.max(worst, s.ticket);
              for (let id = 0; id < n; id++)
                if (f.scratchGet(SCRATCH.DONE + id) !== 1) return false;
              return true;
            },
            LONG,
          );
        } finally {
          lease.release();
        }
        const reports = await run;
        assertClean(reports);
        for (const r of reports)
          assert.equal(r.unexpected, 0, `participant ${r.id} got the lock while it was held`);
        assert.equal(
          f.scratchGet(SCRATCH.COUNTER),
          n,
          'not every participant proceeded after the release',
        );
        const snap = f.inspect();
        // Limit: the doorway never issues a ticket above the number of claimed slots.
        assert.ok(
          snap.maxTicket <= snap.highWater,
          `ticket ${snap.maxTicket} above the limit ${snap.highWater}`,
        );
        assert.ok(worst <= snap.highWater);
        holder.close();
      }),
      LONG,
    );

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
  });

  faultSuite({ test, describe, factory });
  damageSuite({ test, describe, factory });
}
