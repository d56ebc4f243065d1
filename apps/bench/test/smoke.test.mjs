// A smoke check of the harness, never a benchmark: tiny windows, P = 1 and 2. It proves the
// table lists every subject (measured or skipped with a reason), that the chart and JSON are
// written, and that no lock claiming exclusion lost an update. It asserts nothing about speed.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, test } from 'vitest';
import { entriesBound, SUBJECTS } from '../src/subjects.mjs';

const out = mkdtempSync(join(tmpdir(), 'bakery-bench-smoke-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

test('a smoke run lists every subject, writes md/json/svg, and loses no update', async () => {
  const cli = new URL('../src/cli.mjs', import.meta.url).pathname;
  // A run that hangs is stopped (SIGTERM: the bench stops its pool and PostgreSQL) before the
  // test times out, rather than left behind.
  const { stdout } = await promisify(execFile)(process.execPath, [cli, '--smoke', '--out', out], {
    maxBuffer: 1 << 24,
    timeout: 55_000,
  });
  for (const s of SUBJECTS) expect(stdout).toContain(`| ${s.label} |`);

  const { meta, results } = JSON.parse(readFileSync(join(out, 'latest-smoke.json'), 'utf8'));
  expect(meta.machine.cpus).toBeGreaterThan(0);
  expect(meta.machine.node).toBe(process.version);
  for (const s of SUBJECTS) {
    const r = results[s.id];
    if (r.skipped) {
      expect(r.skipped, s.id).toMatch(/\S/);
      continue;
    }
    for (const p of meta.procs) {
      const x = r.byP[p];
      expect(x, `${s.id} P=${p}`).toBeDefined();
      if (s.exclusive !== false) expect(x.lost, `${s.id} P=${p} lost updates`).toBe(0);
    }
    expect(r.uncontendedNs, s.id).toBeGreaterThan(0);
  }
  // Our backends never skip on Linux: they are what the bench is for (shm on both paths, and
  // every batched subject).
  const batched = [
    'sab-sync-batched',
    'mmap-sync-batched',
    'mmap-async-batched',
    'shm-sync-batched',
  ];
  for (const id of ['sab-sync', 'mmap-sync', 'shm-sync', 'shm-js-sync', ...batched])
    expect(results[id].skipped).toBeUndefined();
  for (const id of batched)
    expect(SUBJECTS.find((s) => s.id === id).options).toEqual({ handoff: 'batched' });
  // The strict-FIFO limit is measured where a C compiler is, else skipped with the reason.
  const c = results['c-fifo'];
  expect(c, 'c-fifo listed').toBeDefined();
  if (c.skipped) expect(c.skipped).toMatch(/\S/);
  else for (const p of meta.procs) expect(c.byP[p].lost, `c-fifo P=${p} lost updates`).toBe(0);
  // Entries while waiting are counted for every subject of ours and for c-fifo, and none exceeds
  // its handoff's bound (an ordering property, not a speed). The PostgreSQL rows count from the
  // call, with no bound (their queue is in the server): test/pg.test.mjs checks them.
  const bounded = (x) =>
    x.entries !== 'call' && (x.ours || (x.strictFifo && !results[x.id].skipped));
  for (const s of SUBJECTS.filter(bounded)) {
    for (const p of meta.procs) {
      const e = results[s.id].byP[p].entriesWhileWaiting;
      expect(e, `${s.id} P=${p} entries while waiting`).toBeDefined();
      expect(e.bound).toBe(entriesBound(s, p));
      expect(e.max, `${s.id} P=${p} entries while waiting`).toBeLessThanOrEqual(e.bound);
      expect(e.over).toBe(false);
    }
  }

  const svg = readFileSync(join(out, 'latest-smoke.svg'), 'utf8');
  expect(svg).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  expect(svg).toContain('</svg>');
  const md = readFileSync(join(out, 'latest-smoke.md'), 'utf8');
  expect(md).toContain('| target (issue 7) |');
  expect(md).toContain('| target (issue 12) |');
  expect(md).toContain('| target (issue 15) |');
  expect(md).toContain('| × C FIFO |');
  // The smoke run has P = 1 and 2 only: targets at larger P are not measured, never met.
  const { targets } = JSON.parse(readFileSync(join(out, 'latest-smoke.json'), 'utf8'));
  const at64 = Object.values(targets)
    .flat()
    .filter((r) => r.what.startsWith('P=64 '));
  expect(at64.length).toBeGreaterThan(0);
  for (const r of at64) expect(r.ok, r.what).toBeNull();
  expect(md).toMatch(/\| P=64 shm-sync ≥ 0\.9 × mmap-sync \| – \| – \| not measured \|/);
  expect(md).toMatch(/\| P=64 mmap-sync ≥ 0\.3 × C FIFO \| – \| – \| not measured \|/);
});
