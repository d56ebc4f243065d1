import assert from 'node:assert/strict';
import { assertClean, countBypass, findOvertaking } from './checks.js';
import { type FeatureOptions, SCRATCH } from './types.js';
import { fixtureRunner, scale, until } from './util.js';

/**
 * Exclusion and order: exact counts under a non-atomic read–yield–write with real threads or
 * processes (sync, async, mixed, and more participants than slots), first-come-first-served by
 * doorway order, and tickets bounded under tryLock and timeout storms.
 */
export function exclusionSuite({ test, factory, handoff = 'strict' }: FeatureOptions): void {
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

  // The bypass bound, counted. In batched mode a small maxBatch, so that the bound bites.
  const maxBatch = 3;
  const bypassName =
    handoff === 'batched'
      ? `bounded bypass: once a waiter's doorway has ended, no other participant enters more than 1 + maxBatch (${1 + maxBatch}) times before it, re-entries without a doorway happen, and the count is exact (${who}; a backend without compareExchange runs strict and must then show no re-entry and at most one entry)`
      : `bounded bypass: once a waiter's doorway has ended, no other participant enters more than once before it (${who})`;
  test(
    bypassName,
    withFixture(n + 2, async (f) => {
      const iterations = Math.max(50, Math.round(m / 4));
      const probe = f.open({ handoff, maxBatch });
      const effective = probe.handoff;
      probe.close();
      const reports = await f.run(n, { kind: 'fifo', iterations }, { maxBatch });
      assertClean(reports);
      assert.equal(f.scratchGet(SCRATCH.COUNTER), n * iterations, 'lost updates');
      const b = countBypass(reports);
      const bound = effective === 'batched' ? 1 + maxBatch : 1;
      assert.ok(b.max <= bound, `bypass bound ${bound} exceeded: ${b.where}`);
      if (effective === 'batched')
        assert.ok(b.reentries > 0, 'batched mode never re-entered on a retained ticket');
      else assert.equal(b.reentries, 0, 'a strict participant re-entered without a doorway');
      for (const s of f.inspect().slots) assert.equal(s.ticket, 0, `slot ${s.slot} kept a ticket`);
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
            for (let id = 0; id < n; id++) if (f.scratchGet(SCRATCH.DONE + id) !== 1) return false;
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
}
