import { type ChildProcess, execFile } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { cellsFor, snapshot } from '@bakery/core';
import { expect, test } from 'vitest';
import { openMutex, ShmCells } from '../src/index.js';
import { distEntry } from './helpers.js';

const run = promisify(execFile);
const script = fileURLToPath(new URL('../examples/crowd.mjs', import.meta.url));

/** Runs examples/crowd.mjs with `args` (processes, holdMs, seconds) on one access path. */
async function crowd(args: string[], access: 'mapped' | 'pure-js') {
  const { stdout } = await run(process.execPath, [script, ...args], {
    maxBuffer: 1 << 20,
    env: { ...process.env, BAKERY_SHM_ACCESS: access },
  });
  console.log(`examples/crowd.mjs ${args.join(' ')} (${access}):`, stdout.trim());
  const result = JSON.parse(stdout.trim().split('\n').pop()!);
  expect(result.access).toBe(access);
  return result;
}

for (const access of ['mapped', 'pure-js'] as const) {
  test(`24 unrelated processes each holding the lock 2 ms (${access}): the count is exact and waiting leaves most of the CPU idle`, async () => {
    const result = await crowd(['24', '2', '3'], access);
    expect(result.exact).toBe(true);
    expect(result.fewestPerProcess).toBeGreaterThan(0);
    // CPU seconds per wall second of all 24 processes while they take turns. Waiters that poll
    // every few ms (the pure-JS path before it paced them by their place in the queue) measured
    // 1.08 here and saturate 2 cores at 64 processes; paced waiters measure about 0.5, and
    // mapped waiters sleep in the futex until woken. Other load on the machine only lowers it.
    expect(result.cores).toBeLessThan(0.8);
  }, 120_000);
}

test('128 unrelated processes take turns on one named lock of 128 slots (mapped), 5 read–yield–write increments each: the count is exact', async () => {
  // Iteration-based, not a time window: 128 Node processes on a 2-core machine need ~25 s of
  // CPU just to start, so a window would mostly measure start-up. Each child opens the lock by
  // name (it shares nothing else), waits at a barrier until all 128 hold a slot, increments a
  // counter file 5 times under the lock, and exits 0.
  const dir = fs.mkdtempSync(
    path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'crowd-'),
  );
  try {
    const creator = openMutex('many', { slots: 128, dir });
    expect(creator.access).toBe('mapped');
    creator.close();
    const counter = path.join(dir, 'counter');
    fs.writeFileSync(counter, Buffer.alloc(4));
    const child = fileURLToPath(new URL('./fixtures/loop-child.mjs', import.meta.url));
    const barrier = fs.mkdtempSync(path.join(dir, 'barrier-'));
    const runs = Array.from(
      { length: 128 },
      () =>
        new Promise<string>((resolve, reject) =>
          execFile(
            process.execPath,
            [child, distEntry, dir, 'many', '5', counter, barrier],
            { env: { ...process.env, BAKERY_SHM_ACCESS: 'mapped' } },
            (err, stdout) => (err ? reject(err) : resolve(stdout)),
          ),
        ),
    );
    const ready = () => fs.readdirSync(barrier).filter((e) => e.startsWith('ready.')).length;
    while (ready() < 128) await new Promise((r) => setTimeout(r, 20));
    fs.writeFileSync(path.join(barrier, 'go'), '');
    const outs = await Promise.all(runs);
    for (const out of outs) expect(out).toBe('started mapped\ndone 5\n');
    expect(fs.readFileSync(counter).readInt32LE(0)).toBe(128 * 5);
    const m = openMutex('many', { dir });
    const snap = m.inspect();
    expect(snap.acquisitions).toBe(128 * 5);
    expect(snap.highWater).toBe(128);
    expect(snap.maxTicket).toBeLessThanOrEqual(128);
    m.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 300_000);

/** Children running fixtures/loop-child.mjs on lock `name` in `dir`, behind a barrier. */
function loopChildren(
  count: number,
  dir: string,
  name: string,
  iterations: number,
  counter: string,
  access: 'mapped' | 'pure-js',
  linger = false,
) {
  const child = fileURLToPath(new URL('./fixtures/loop-child.mjs', import.meta.url));
  const barrier = fs.mkdtempSync(path.join(dir, 'barrier-'));
  const procs: ChildProcess[] = [];
  const outs = Array.from(
    { length: count },
    () =>
      new Promise<string>((resolve, reject) => {
        procs.push(
          execFile(
            process.execPath,
            [
              child,
              distEntry,
              dir,
              name,
              String(iterations),
              counter,
              barrier,
              ...(linger ? ['linger'] : []),
            ],
            { env: { ...process.env, BAKERY_SHM_ACCESS: access } },
            (err, stdout) => (err ? reject(Object.assign(err, { stdout })) : resolve(stdout)),
          ),
        );
      }),
  );
  const ready = async () => {
    while (fs.readdirSync(barrier).filter((e) => e.startsWith('ready.')).length < count)
      await new Promise((r) => setTimeout(r, 20));
  };
  const go = () => fs.writeFileSync(path.join(barrier, 'go'), '');
  /** Lingering children: resolves once all are done (false after `ms`), then lets them close. */
  const finished = async (ms: number) => {
    const until = performance.now() + ms;
    const done = () => fs.readdirSync(barrier).filter((e) => e.startsWith('done.')).length;
    while (done() < count && performance.now() < until) await new Promise((r) => setTimeout(r, 20));
    const all = done() === count;
    fs.writeFileSync(path.join(barrier, 'end'), '');
    return all;
  };
  return { procs, outs, ready, go, finished };
}

for (const access of ['mapped', 'pure-js'] as const) {
  test(`a full slot table turns nobody away (${access}): 16 owners SIGKILLed fill a 16-slot lock, then 24 processes open it at once (8 without a slot), take it 20 times each while staying open, and all finish with an exact count`, async () => {
    const dir = fs.mkdtempSync(
      path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'slots-'),
    );
    try {
      const creator = openMutex('cron', { slots: 16, dir, access });
      creator.close();
      const counter = path.join(dir, 'counter');
      fs.writeFileSync(counter, Buffer.alloc(4));
      // 16 owners that die holding their slots (and never reach the lock).
      const doomed = loopChildren(16, dir, 'cron', 1, counter, access);
      await doomed.ready();
      for (const p of doomed.procs) p.kill('SIGKILL');
      for (const out of await Promise.allSettled(doomed.outs)) expect(out.status).toBe('rejected');
      // Read without taking part (an open would reap them): 16 claimed slots of dead owners.
      const fd = fs.openSync(path.join(dir, 'bakery.cron'), 'r');
      const snap = snapshot(new ShmCells(fd, cellsFor(16)));
      fs.closeSync(fd);
      expect(snap.slots.filter((s) => s.owner !== null).length).toBe(16);
      // They stay open (holding their slots) until all 24 are done: the 8 without a slot get
      // their turns only because every release frees the releaser's slot while they wait.
      const crowd = loopChildren(24, dir, 'cron', 20, counter, access, true);
      await crowd.ready();
      crowd.go();
      const all = await crowd.finished(120_000);
      const outs = await Promise.all(crowd.outs);
      expect(all, 'not every participant finished within 120 s').toBe(true);
      const without = outs.filter((o) => o === `started ${access} without a slot\ndone 20\n`);
      const withSlot = outs.filter((o) => o === `started ${access}\ndone 20\n`);
      expect(without.length + withSlot.length).toBe(24);
      expect(without.length).toBe(8);
      expect(fs.readFileSync(counter).readInt32LE(0)).toBe(24 * 20);
      const after = openMutex('cron', { dir, access });
      const end = after.inspect();
      expect(end.acquisitions).toBe(24 * 20);
      expect(end.slots.filter((s) => s.owner !== null).map((s) => s.slot)).toEqual([after.slot]);
      expect(end.maxTicket).toBeLessThanOrEqual(16);
      after.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
}
