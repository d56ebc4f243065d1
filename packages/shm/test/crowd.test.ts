import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, test } from 'vitest';
import { openMutex } from '../src/index.js';
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
