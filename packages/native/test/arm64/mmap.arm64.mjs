// @bakery/mmap on arm64, the heavier half of `npm run test:arm64`: forked arm64 child processes
// (each a Node under qemu-aarch64 when the host is not arm64) contend for one lock in a sealed
// memfd through the built packages and @bakery/conformance's participants, with exact counts.
// Fewer participants and iterations than the vitest suite: qemu runs JavaScript 10–20× slower.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FAULT_STALE_MS, findOvertaking, processFixture, SCRATCH } from '@bakery/conformance';
import { createMutex, forkOptions, loadNative, MmapCells, openMutex } from '@bakery/mmap';

const packageRoot = fileURLToPath(new URL('../..', import.meta.url));
const arm64Prebuild = join(packageRoot, 'prebuilds', 'linux-arm64', '@bakery+native.node');
const execPath = process.env.BAKERY_ARM64_EXEC || process.execPath;
const N = Number(process.env.BAKERY_ARM64_PROCESSES || 4);
const M = Number(process.env.BAKERY_ARM64_ITERATIONS || 300);
const LONG = { timeout: 600_000 };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Which case started last, for when the runner's watchdog kills a run whose JS thread is stuck
// (node:test's own timeouts cannot fire then).
beforeEach((t) => process.stderr.write(`# started: ${t.name}\n`));

/** A fresh @bakery/mmap lock whose participants are forked arm64 processes. */
function mmapFixture(slots) {
  const creator = createMutex({ slots });
  const native = loadNative();
  // The fixture keeps a description of its own, so the creator can close and hold no slot.
  const fd = native.reopen(creator.fd);
  creator.close();
  return processFixture(
    {
      cells: new MmapCells(native, native.map(fd, native.size(fd))),
      open: (options) => openMutex({ ...options, fd }),
      participant: {
        module: import.meta.resolve('@bakery/mmap'),
        exportName: 'openMutex',
        args: [],
      },
      dispose: () => native.close(fd),
    },
    () => forkOptions(fd, { execPath, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
  );
}

const withFixture = (slots, body) => async () => {
  const f = mmapFixture(slots);
  try {
    await body(f);
  } finally {
    await f.dispose();
  }
};

function assertClean(reports) {
  for (const r of reports) {
    assert.deepEqual(r.errors, [], `participant ${r.id} reported errors`);
    assert.equal(r.violations, 0, `participant ${r.id} found the critical section occupied`);
  }
}

const exact = (mode, slots, iterations) =>
  withFixture(slots, async (f) => {
    const reports = await f.run(N, { kind: 'count', iterations, mode });
    assertClean(reports);
    assert.equal(
      reports.reduce((a, r) => a + r.acquired, 0),
      N * iterations,
    );
    assert.equal(f.scratchGet(SCRATCH.COUNTER), N * iterations, 'lost updates: the count is off');
    const snap = f.inspect();
    // A ticket above 1 was drawn while another participant held one: the processes overlapped
    // (they start seconds apart under qemu, so a run too short would prove nothing).
    console.log(`# ${mode}, ${slots} slots: largest ticket ${snap.maxTicket} of ${N}`);
    assert.ok(snap.maxTicket >= 2, 'the participants never contended for the lock');
    assert.ok(snap.maxTicket <= Math.min(N, slots), `largest ticket ${snap.maxTicket}`);
    for (const s of snap.slots) assert.equal(s.ticket, 0, `slot ${s.slot} still has a ticket`);
    assert.equal(snap.holder, null);
  });

describe(`@bakery/mmap with ${N} forked arm64 processes`, () => {
  test('a participant process is an arm64 Node that loads the arm64 prebuild', () => {
    const r = spawnSync(
      execPath,
      [
        '--input-type=module',
        '-e',
        `import { loadNative } from '@bakery/mmap'; import { createRequire } from 'node:module';
         loadNative();
         const loaded = Object.keys(createRequire(import.meta.url).cache).filter((k) => k.endsWith('.node'));
         console.log(JSON.stringify({ arch: process.arch, loaded }));`,
      ],
      { encoding: 'utf8', cwd: packageRoot },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { arch: 'arm64', loaded: [arm64Prebuild] });
  });

  test(
    `mutual exclusion: ${N} × ${M} sync read–yield–write increments give an exact count`,
    LONG,
    exact('sync', N + 2, M),
  );
  test(
    `mutual exclusion: ${N} × ${M} async read–yield–write increments give an exact count`,
    LONG,
    exact('async', N + 2, M),
  );
  test(
    `mutual exclusion: ${N} × ${M} mixed lockSync/lock/tryLock increments give an exact count`,
    LONG,
    exact('mixed', N + 2, M),
  );
  const few = Math.max(1, N / 2);
  test(
    `more participants than slots: ${N} on ${few} slots × ${M / 2} sync increments give an exact count`,
    LONG,
    exact('sync', few, Math.max(1, M / 2)),
  );

  test(
    'first-come-first-served: no participant overtakes one whose doorway finished before its own began',
    LONG,
    withFixture(N + 2, async (f) => {
      const iterations = Math.max(20, Math.round(M / 2));
      const reports = await f.run(N, { kind: 'fifo', iterations });
      assertClean(reports);
      assert.equal(f.scratchGet(SCRATCH.COUNTER), N * iterations);
      assert.equal(findOvertaking(reports), null);
      assert.ok(f.inspect().maxTicket >= 2, 'the participants never contended for the lock');
    }),
  );

  test(
    'a child SIGKILLed while holding: its OFD lease ends with it, and the parent, blocked in lockSync, gets ownerDied',
    LONG,
    withFixture(4, async (f) => {
      const a = f.open({ staleAfterMs: FAULT_STALE_MS });
      const crew = f.start(1, { kind: 'die-holding' });
      try {
        for (let i = 0; f.scratchGet(SCRATCH.HELD) !== 1; i++) {
          if (i > 120_000) throw new Error('the child never took the lock');
          if (!crew.running(0)) throw new Error('the child ended before it took the lock');
          await sleep(1);
        }
        f.scratchSet(SCRATCH.RELEASE, 1);
        const lease = a.lockSync({ timeout: 60_000 });
        assert.equal(lease.ownerDied, true);
        lease.markConsistent();
        lease.release();
        assert.equal((await crew.exit(0)).signal, 'SIGKILL');
      } finally {
        await crew.stop();
      }
      a.close();
      const snap = f.inspect();
      assert.equal(snap.holder, null);
      assert.ok(snap.slots.every((s) => s.owner === null && s.ticket === 0));
    }),
  );
});
