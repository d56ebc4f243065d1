import assert from 'node:assert/strict';
import { loadavg } from 'node:os';
import { H, packTicket, S, slotBase } from '@bakery/core';
import {
  type ConformanceFactory,
  type Crew,
  clockMs,
  type DescribeFn,
  type Fixture,
  PHASE,
  SCRATCH,
  type TestFn,
} from './types.js';
import { codeOf, codeOfAsync, fixtureRunner, scale, sleep, until } from './util.js';

/** What {@link faultSuite} needs: the same as the main suite. */
export interface FaultSuiteOptions {
  test: TestFn;
  describe: DescribeFn;
  factory: ConformanceFactory;
}

/** staleAfterMs every participant of these cases opens with (the library default, spelled out). */
export const FAULT_STALE_MS = 250;
/** The issue's bound on how long survivors may stall after a kill: staleAfterMs + 1 s. */
export const STALL_BOUND_MS = FAULT_STALE_MS + 1000;

/** Kills per fault-injection run: env BAKERY_FAULT_KILLS, else 50 × BAKERY_CONFORMANCE_SCALE. */
export function faultKills(): number {
  const k = Number(process.env.BAKERY_FAULT_KILLS);
  if (Number.isInteger(k) && k > 0) return k;
  return Math.max(50, Math.round(50 * scale()));
}

const PHASE_NAMES: Record<number, string> = {
  0: 'not started',
  [PHASE.STARTING]: 'starting (opening the lock)',
  [PHASE.DOORWAY]: 'in the doorway',
  [PHASE.WAITING]: 'waiting',
  [PHASE.HOLDING]: 'holding',
  [PHASE.OUTSIDE]: 'between turns',
};

function assertLockClean(f: Fixture, what: string): void {
  let snap = f.inspect();
  if (snap.slots.some((s) => s.retained)) {
    // A participant killed while it kept its ticket (handoff 'batched') leaves it, as a killed
    // idle participant leaves its slot claimed: nobody waits for it (any waiter revokes it), and
    // reaping the dead frees both. Only a dead owner's slot may still hold one.
    const m = f.open();
    const freed = m.reapDead();
    m.close();
    assert.ok(freed > 0, `${what}: a retained ticket of a live participant was left behind`);
    snap = f.inspect();
  }
  for (const s of snap.slots) {
    assert.equal(s.ticket, 0, `${what}: slot ${s.slot} left a ticket behind`);
    assert.equal(s.choosing, false, `${what}: slot ${s.slot} left choosing set`);
  }
  assert.equal(snap.holder, null, `${what}: the lock still names a holder`);
  assert.equal(snap.ownerDied, 'consistent', `${what}: the lock is not consistent`);
}

/** A live process that is not us: our parent (else pid 1). */
function livePid(): number {
  const p = Math.max(process.ppid, 1);
  process.kill(p, 0); // throws if it does not exist (then the test is meaningless)
  return p;
}

/**
 * Make slot `slot` look owned by a live process with the wrong start time — what a recorded
 * owner that died, and whose pid was reused, looks like. Keeps every other owner cell.
 */
function forgeReusedPid(f: Fixture, slot: number): number {
  const b = slotBase(slot);
  const pid = livePid();
  f.poke(b + S.OWNER, pid);
  f.poke(b + S.OWNER_TID, pid);
  // Clock tick 1 after boot: no process we can see besides init started then, and init is
  // not our parent under vitest (if it were, a start of 1 might be right: use 2^31).
  f.poke(b + S.OWNER_START_LO, pid === 1 ? 0x7fffffff : 1);
  f.poke(b + S.OWNER_START_HI, 0);
  return pid;
}

/**
 * Crash robustness, for every backend that can tell a dead participant from a live one:
 * fault injection (participants killed at random moments while the others keep going), pid
 * reuse, and exits without close(). Called by {@link suite}; exported for backends that want
 * to run it on its own.
 */
export function faultSuite({ test, describe, factory }: FaultSuiteOptions): void {
  const kills = faultKills();
  const n = Math.max(6, Math.min(8, factory.concurrency));
  const kind = factory.participants === 'threads' ? 'worker.terminate()' : 'SIGKILL';
  const LONG = 600_000;

  const withFixture = fixtureRunner(factory);

  describe(`crash robustness: ${factory.name} (${factory.participants})`, () => {
    test(
      `fault injection: ${n} ${factory.participants} run undo-logged transactions while ${kills} ${kind}s hit random participants (doorway, waiting, holding); the data stays exact and no stall exceeds staleAfterMs + 1 s`,
      // Two spare slots: a participant killed between turns holds no ticket and nobody waits
      // on it, so its slot is reaped only when the table runs full.
      withFixture(n + 2, async (f) => {
        const crew: Crew = f.start(
          n,
          { kind: 'fault', holdMs: 4 },
          { staleAfterMs: FAULT_STALE_MS },
        );
        const phaseOf = (id: number) => f.scratchGet(SCRATCH.PHASE_OF + id);
        const hist = new Map<string, number>();
        const gaps: { ms: number; after: string; detail: string }[] = [];
        const NO_KILL = 'no kill yet';
        let lastKill = NO_KILL;
        let monitoring = true;
        let worst = { ms: 0, after: '' };
        // The test process watches the commit counter; the longest time without a commit is
        // the worst stall anyone suffered (after a kill, everybody queues behind the dead).
        // Each long gap is split, with the participants' own stamps on the same clock, into
        // "nobody entered" (waiting for the reaper) and "the one who entered took this long".
        const monitor = (async () => {
          let last = f.scratchGet(SCRATCH.PROGRESS);
          let since = clockMs();
          while (monitoring) {
            await sleep(1);
            const p = f.scratchGet(SCRATCH.PROGRESS);
            if (p === last) continue;
            const now = clockMs();
            // From the first kill on: before it, a gap is only the participants starting up.
            const ms = lastKill === NO_KILL ? 0 : now - since;
            if (ms > 100) {
              const entered = f.scratchGet(SCRATCH.ENTERED_AT);
              const repaired = f.scratchGet(SCRATCH.REPAIRED_AT);
              const load = loadavg()[0]!.toFixed(1);
              gaps.push({
                ms,
                after: lastKill,
                detail: `${ms} ms after ${lastKill}: nobody entered for ${entered - since} ms, then the holder${repaired >= since ? ' (repairing)' : ''} took ${now - entered} ms; load ${load}`,
              });
            }
            if (ms > worst.ms) worst = { ms, after: lastKill };
            last = p;
            since = now;
          }
        })();
        try {
          await until(
            'every participant to start its loop',
            () =>
              Array.from({ length: n }, (_, id) => phaseOf(id)).every((p) => p >= PHASE.DOORWAY) &&
              f.scratchGet(SCRATCH.PROGRESS) > 0,
          );
          const unexpectedExit = async () => {
            for (let id = 0; id < n; id++) {
              if (!crew.running(id)) {
                const e = await crew.exit(id);
                if (!e.killed)
                  throw new Error(
                    `participant ${id} ended on its own (${e.signal ?? e.code}): ${e.report?.errors.join('; ') ?? e.error ?? 'no report'}`,
                  );
              }
            }
          };
          for (let k = 0; k < kills; k++) {
            await unexpectedExit();
            // Keep the lock populated: at most two participants down (killed and not yet back
            // in the protocol) at any time. Killing faster than a process boots would empty
            // the lock — no survivor left to stall, only CPU-hungry boots starving everyone.
            await until(
              'the respawned participants to rejoin',
              () =>
                Array.from({ length: n }, (_, id) => id).filter(
                  (id) => crew.running(id) && phaseOf(id) >= PHASE.DOORWAY,
                ).length >=
                n - 1,
            );
            await sleep(Math.random() * 30);
            let victim = -1;
            const aim = Math.random();
            if (aim < 0.25) {
              // Aim at a doorway: pick a participant in the protocol and spin (no sleeping: a
              // doorway lasts microseconds) until it reports one, for at most 50 ms.
              const inside = Array.from({ length: n }, (_, id) => id).filter(
                (id) => crew.running(id) && phaseOf(id) >= PHASE.DOORWAY,
              );
              const pick = inside[Math.floor(Math.random() * inside.length)];
              const end = performance.now() + 50;
              while (pick !== undefined && victim < 0 && performance.now() < end)
                if (phaseOf(pick) === PHASE.DOORWAY) victim = pick;
            } else if (aim < 0.6) {
              // Aim at the holder: wait (briefly) for someone to report HOLDING.
              const end = performance.now() + 200;
              while (victim < 0 && performance.now() < end) {
                for (let id = 0; id < n; id++)
                  if (crew.running(id) && phaseOf(id) === PHASE.HOLDING) victim = id;
                if (victim < 0) await sleep(0);
              }
            }
            if (victim < 0) {
              // Anyone: mostly participants that are in the protocol, sometimes one that is
              // still starting (killed while opening the lock or claiming its slot).
              const running = Array.from({ length: n }, (_, id) => id).filter((id) =>
                crew.running(id),
              );
              const started = running.filter((id) => phaseOf(id) >= PHASE.DOORWAY);
              const pool = started.length > 0 && Math.random() < 0.9 ? started : running;
              victim = pool[Math.floor(Math.random() * pool.length)]!;
            }
            const phase = PHASE_NAMES[phaseOf(victim)] ?? `phase ${phaseOf(victim)}`;
            const p0 = f.scratchGet(SCRATCH.PROGRESS);
            lastKill = `kill #${k + 1} (participant ${victim}, ${phase})`;
            const e = await crew.kill(victim);
            hist.set(phase, (hist.get(phase) ?? 0) + 1);
            assert.ok(e.killed, `participant ${victim} ended before the kill`);
            // The dead incarnation's last phase means nothing for the next one.
            f.scratchSet(SCRATCH.PHASE_OF + victim, 0);
            crew.respawn(victim);
            // Never kill faster than the lock recovers: wait for the next commit.
            await until(
              `a commit after ${lastKill}`,
              () => f.scratchGet(SCRATCH.PROGRESS) !== p0,
              30_000,
            );
          }
          f.scratchSet(SCRATCH.STOP, 1);
          const reports = await crew.reports();
          monitoring = false;
          await monitor;
          for (const r of reports) {
            assert.deepEqual(r.errors, [], `participant ${r.id} reported errors`);
            assert.equal(r.violations, 0, `participant ${r.id} found a live holder inside`);
          }
        } finally {
          monitoring = false;
          await crew.stop();
        }
        const commits = f.scratchGet(SCRATCH.COMMITS);
        let sum = 0;
        for (let id = 0; id < n; id++) sum += f.scratchGet(SCRATCH.CNT + id);
        const repairs = f.scratchGet(SCRATCH.REPAIRS);
        console.log(
          `[fault injection] ${factory.name}: ${kills} ${kind}s of ${n} ${factory.participants} — ` +
            `${[...hist].map(([p, c]) => `${c} ${p}`).join(', ')}; ${commits} commits, ` +
            `${repairs} repairs after ownerDied; worst stall ${worst.ms.toFixed(0)} ms ` +
            `(bound ${STALL_BOUND_MS} ms) after ${worst.after}; stalls > 100 ms: ` +
            `${gaps.map((g) => g.ms).join(', ') || 'none'}`,
        );
        for (const g of gaps.filter((g) => g.ms > FAULT_STALE_MS + 300))
          console.log(`[fault injection] ${factory.name}: long stall: ${g.detail}`);
        assert.equal(
          f.scratchGet(SCRATCH.FAULT_VIOLATIONS),
          0,
          'someone found a live holder inside',
        );
        assert.equal(f.scratchGet(SCRATCH.PENDING), 0, 'a transaction was left half done');
        assert.ok(commits > 0);
        assert.equal(f.scratchGet(SCRATCH.A), commits, 'A differs from the committed transactions');
        assert.equal(
          f.scratchGet(SCRATCH.B),
          -commits,
          'B differs from the committed transactions',
        );
        assert.equal(sum, commits, 'the per-participant counts differ from the commits');
        assert.ok(repairs > 0, 'no kill ever hit a holder: the ownerDied path was not exercised');
        assertLockClean(f, 'after the fault run');
        assert.ok(
          worst.ms <= STALL_BOUND_MS,
          `a stall of ${worst.ms.toFixed(0)} ms after ${worst.after} exceeds ${STALL_BOUND_MS} ms`,
        );
      }),
      LONG,
    );

    test(
      factory.capabilities?.leases === true
        ? 'pid reuse: a live holder whose slot records a live process with another start time is not reaped (its lease proves it alive)'
        : 'pid reuse: a holder recorded as a live process with another start time is dead — the waiter reaps it and gets ownerDied; a live holder is never reaped',
      withFixture(4, async (f) => {
        const opts = { staleAfterMs: FAULT_STALE_MS };
        const x = f.open(opts);
        const y = f.open(opts);
        const lease = x.lockSync();
        // Control: the real, live holder is waited for, well past staleAfterMs, not reaped.
        assert.equal(await codeOfAsync(y.lock({ timeout: 3 * FAULT_STALE_MS })), 'BAKERY_TIMEOUT');
        assert.equal(f.inspect().holder, x.slot);
        assert.equal(f.inspect().slots[x.slot]!.owner?.pid, process.pid);
        const pid = forgeReusedPid(f, x.slot);
        if (factory.capabilities?.leases === true) {
          // x's lease proves it alive whatever its slot now says: still not reaped.
          assert.equal(
            await codeOfAsync(y.lock({ timeout: 3 * FAULT_STALE_MS })),
            'BAKERY_TIMEOUT',
          );
          assert.equal(f.inspect().holder, x.slot);
          assert.equal(f.inspect().slots[x.slot]!.owner?.pid, pid);
          lease.release();
          y.lockSync({ timeout: 30_000 }).release();
          y.close();
          x.close();
          assertLockClean(f, 'after the forged holder released');
          return;
        }
        const l2 = await y.lock({ timeout: 30_000 });
        assert.equal(l2.ownerDied, true, 'the waiter was not told that the holder died');
        assert.equal(
          f.inspect().slots[x.slot]!.owner,
          null,
          `the slot of "pid ${pid}" was not freed`,
        );
        assert.equal(f.inspect().ownerDied, 'owner-died');
        l2.markConsistent();
        l2.release();
        y.close();
        // x's instance lost its slot to the reaper; retire it (nobody else is left).
        lease.release();
        x.close();
        assertLockClean(f, 'after the reap');
        assert.ok(f.inspect().slots.every((s) => s.owner === null));
      }),
      LONG,
    );

    test(
      factory.capabilities?.leases === true
        ? 'pid reuse: a live waiter whose slot records a live process with another start time is not reaped (its lease proves it alive)'
        : 'pid reuse: a waiter (ticket, not holder) recorded as a live process with another start time is reaped, the others proceed without ownerDied',
      withFixture(4, async (f) => {
        const opts = { staleAfterMs: FAULT_STALE_MS };
        const x = f.open(opts);
        const y = f.open(opts);
        // x "waits": ticket 1 of the current colour, as its doorway would have left it.
        const colour = f.inspect().colour === 'black' ? 1 : 0;
        f.poke(slotBase(x.slot) + S.TICKET, packTicket(1, colour));
        forgeReusedPid(f, x.slot);
        if (factory.capabilities?.leases === true) {
          // x's lease proves it alive: its ticket keeps y waiting until x withdraws.
          assert.equal(
            await codeOfAsync(y.lock({ timeout: 3 * FAULT_STALE_MS })),
            'BAKERY_TIMEOUT',
          );
          assert.notEqual(f.inspect().slots[x.slot]!.owner, null);
          f.poke(slotBase(x.slot) + S.TICKET, 0);
          y.lockSync({ timeout: 30_000 }).release();
          y.close();
          x.close();
          assertLockClean(f, 'after the forged waiter withdrew');
          return;
        }
        const l2 = await y.lock({ timeout: 30_000 });
        assert.equal(l2.ownerDied, false);
        assert.equal(f.inspect().slots[x.slot]!.owner, null, 'the forged waiter was not reaped');
        assert.equal(f.inspect().slots[x.slot]!.ticket, 0);
        l2.release();
        y.close();
        x.close();
        assertLockClean(f, 'after the reap');
      }),
      LONG,
    );

    for (const killed of [false, true]) {
      test(
        `a participant that released and went quiet${killed ? ` and was then killed (${kind})` : ''} delays no one: under handoff 'batched' its kept ticket is revoked by the next lock, with no reaping (staleAfterMs 60 s, timeout 30 s)`,
        withFixture(4, async (f) => {
          const crew = f.start(1, { kind: 'retain' });
          try {
            await until('the participant to release and go quiet', () => {
              return f.scratchGet(SCRATCH.HELD) === 1;
            });
            if (killed) await crew.kill(0);
            const b = f.open({ staleAfterMs: 60_000 });
            const quiet = f.inspect().slots.find((s) => s.owner !== null && s.slot !== b.slot)!;
            if (b.handoff === 'batched')
              assert.equal(quiet.retained, true, 'the quiet participant did not keep its ticket');
            else assert.equal(quiet.ticket, 0, 'a strict release left a ticket');
            const lease = b.lockSync({ timeout: 30_000 });
            assert.equal(lease.ownerDied, false, 'it released before it went quiet');
            lease.release();
            b.close();
            if (killed) {
              const r = f.open();
              assert.equal(r.reapDead(), 1, "the killed participant's slot was not reaped");
              r.close();
            } else {
              f.scratchSet(SCRATCH.RELEASE, 1);
              await crew.reports();
            }
          } finally {
            await crew.stop();
          }
          assertLockClean(f, 'after a quiet participant');
        }),
        LONG,
      );
    }

    const slotless = factory.capabilities?.reapsWithoutSlot === true;
    test(
      slotless
        ? 'a participant without a slot (the only one is a killed holder’s) reaps the dead holder, takes its slot and sees ownerDied'
        : 'a participant without a slot (the only one is a killed holder’s) does not reap on this backend: it waits for a slot, gives up with BAKERY_NO_FREE_SLOT, and writes nothing',
      withFixture(1, async (f) => {
        const crew = f.start(1, { kind: 'hold' });
        try {
          await until('the participant to hold the lock', () => f.scratchGet(SCRATCH.HELD) === 1);
          await crew.kill(0);
        } finally {
          await crew.stop();
        }
        const opts = { staleAfterMs: FAULT_STALE_MS };
        if (slotless) {
          const b = f.open(opts);
          // The open itself reaps a full table of the dead (the table is full: one slot).
          assert.notEqual(b.slot, -1, 'the dead holder was not reaped at open');
          const lease = b.lockSync({ timeout: 30_000 });
          assert.equal(lease.ownerDied, true, 'the next holder was not told the holder died');
          lease.markConsistent();
          lease.release();
          b.close();
          assertLockClean(f, 'after the slotless reap');
          assert.ok(f.inspect().slots.every((s) => s.owner === null));
          return;
        }
        const before = f.bytes();
        const b = f.open(opts);
        assert.equal(b.slot, -1);
        assert.equal(
          codeOf(() => b.lockSync({ timeout: 3 * FAULT_STALE_MS })),
          'BAKERY_NO_FREE_SLOT',
        );
        assert.equal(b.reapDead(), 0);
        b.close();
        // It asked for a slot (SLOT_WANTED); nothing else changed: the dead holder is still there.
        const after = f.bytes();
        const wanted = H.SLOT_WANTED * 4;
        after.fill(0, wanted, wanted + 4);
        before.fill(0, wanted, wanted + 4);
        assert.deepEqual(after, before);
        assert.notEqual(f.inspect().slots[0]!.owner, null);
      }),
      LONG,
    );

    if (factory.participants === 'processes')
      test(
        "a child killed while holding is dead even as a zombie: the parent, blocked in lockSync and so unable to reap it, reaps the child's slot and gets ownerDied",
        withFixture(4, async (f) => {
          const a = f.open({ staleAfterMs: FAULT_STALE_MS });
          const crew = f.start(1, { kind: 'die-holding' });
          try {
            await until('the child to hold the lock', () => f.scratchGet(SCRATCH.HELD) === 1);
            // From here this thread blocks in lockSync: the child's SIGCHLD is not handled, so
            // it stays a zombie (in /proc, with its start time) until lockSync returns.
            f.scratchSet(SCRATCH.RELEASE, 1);
            let lease: ReturnType<typeof a.lockSync> | undefined;
            let code: string | undefined;
            try {
              lease = a.lockSync({ timeout: 10 * FAULT_STALE_MS });
            } catch (err) {
              code = (err as { code?: string }).code;
            }
            assert.equal(
              code,
              undefined,
              'the dead child was never reaped (a zombie counted as alive)',
            );
            assert.equal(lease!.ownerDied, true);
            lease!.markConsistent();
            lease!.release();
            const e = await crew.exit(0);
            assert.equal(e.signal, 'SIGKILL');
          } finally {
            await crew.stop();
          }
          a.close();
          assertLockClean(f, 'after the zombie was reaped');
          assert.ok(f.inspect().slots.every((s) => s.owner === null));
        }),
        LONG,
      );

    for (const [how, holding] of [
      ['natural', false],
      ['natural', true],
      ['process.exit', false],
      ['process.exit', true],
    ] as const) {
      const end = how === 'natural' ? 'ends normally' : 'calls process.exit()';
      test(
        holding
          ? `a participant that ${end} while holding, without close(), frees its slot and leaves ownerDied for the next acquirer`
          : `a participant that ${end} without close() frees its slot (exit hooks)`,
        withFixture(4, async (f) => {
          const crew = f.start(1, { kind: 'exit', holding, how });
          const e = await crew.exit(0);
          assert.equal(e.code, 0, `the participant failed: ${e.error ?? e.report?.errors}`);
          if (how === 'natural') assert.deepEqual(e.report?.errors, []);
          const snap = f.inspect();
          assert.ok(snap.highWater >= 1, 'the participant never claimed a slot');
          for (const s of snap.slots) {
            assert.equal(s.owner, null, `slot ${s.slot} is still claimed`);
            assert.equal(s.ticket, 0, `slot ${s.slot} left a ticket behind`);
          }
          assert.equal(snap.holder, null);
          assert.equal(snap.ownerDied, holding ? 'owner-died' : 'consistent');
          const a = f.open();
          const lease = a.tryLock();
          assert.ok(lease !== null, 'the lock is not free after the exit');
          assert.equal(lease.ownerDied, holding);
          lease.markConsistent();
          lease.release();
          a.close();
          assertLockClean(f, 'after the next acquirer');
        }),
        LONG,
      );
    }
  });
}
