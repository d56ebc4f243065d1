// The PostgreSQL rows at tiny size (P = 1 and 2, 100 ms windows) on the bench's own throwaway
// server: every row measured, every critical section counted (no lost update), the ratios
// against advisory-lock in the JSON, and the server gone afterwards. Where no PostgreSQL server
// binaries are installed the test is skipped with the reason printed, unless
// BAKERY_REQUIRE_PG=1 (CI), where that is a failure. It asserts nothing about speed.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findPgBin } from '@bakery/pg/throwaway-server';
import { afterAll, expect, test } from 'vitest';
import { SUBJECTS } from '../src/subjects.mjs';

const why =
  findPgBin() === null
    ? 'no PostgreSQL server binaries (initdb, pg_ctl) on this machine: install the Debian/Ubuntu package postgresql, or set PG_BIN'
    : '';
const required = process.env.BAKERY_REQUIRE_PG === '1';
if (why && !required) console.warn(`bakery-bench pg rows SKIPPED: ${why}`);
const pgTest = why && !required ? test.skip : test;

const out = mkdtempSync(join(tmpdir(), 'bakery-bench-pg-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

const PG = SUBJECTS.filter((s) => s.group === 'pg');

pgTest(
  `--only pg measures bakery pg and advisory-lock over both transports, losing no update${why ? ` — SKIPPED: ${why}` : ''}`,
  async () => {
    if (why) throw new Error(`${why} (BAKERY_REQUIRE_PG=1)`);
    const cli = new URL('../src/cli.mjs', import.meta.url).pathname;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [cli, '--smoke', '--only', 'pg', '--out', out],
      // A hung run is stopped (SIGTERM: the bench stops its server) before the test times out.
      { maxBuffer: 1 << 24, timeout: 55_000 },
    );
    expect(PG.map((s) => s.id).sort()).toEqual([
      'advisory-lock-socket',
      'advisory-lock-tcp',
      'pg-socket',
      'pg-tcp',
    ]);
    const { meta, results } = JSON.parse(readFileSync(join(out, 'latest-smoke.json'), 'utf8'));
    // --only pg selects the group and nothing else.
    expect(Object.keys(results).sort()).toEqual(PG.map((s) => s.id).sort());
    expect(meta.pg.transports).toEqual(['socket', 'tcp']);
    for (const s of PG) {
      const r = results[s.id];
      expect(r.skipped, s.id).toBeUndefined();
      expect(r.uncontendedNs, s.id).toBeGreaterThan(0);
      expect(r.uncontendedClock, s.id).toBe('wall');
      for (const p of meta.procs) {
        const x = r.byP[p];
        expect(x, `${s.id} P=${p}`).toBeDefined();
        // Exact count: every critical section's read–yield–write reached the shared counter.
        expect(x.criticalSections, `${s.id} P=${p}`).toBeGreaterThan(0);
        expect(x.counted, `${s.id} P=${p} counter`).toBe(x.criticalSections);
        expect(x.lost, `${s.id} P=${p} lost updates`).toBe(0);
        expect(x.entriesWhileWaiting.from, `${s.id} P=${p}`).toBe('call');
        // The server's CPU is in the row (the throwaway server is the bench's own).
        expect(Number.isFinite(x.serverCpuPer1k), `${s.id} P=${p} server CPU`).toBe(true);
        if (s.peer) {
          expect(x.vs[s.peer].rate, `${s.id} P=${p} × ${s.peer}`).toBeGreaterThan(0);
          expect(Number.isFinite(x.vs[s.peer].cpu), `${s.id} P=${p} CPU × ${s.peer}`).toBe(true);
        }
      }
    }
    for (const s of PG) expect(stdout).toContain(`| ${s.label} |`);
    expect(stdout).toContain('| PostgreSQL | P |');
    // The throwaway server was stopped: nothing listens on its port any more.
    const refused = await new Promise((resolve) => {
      const socket = connect(meta.pg.port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('error', () => resolve(true));
    });
    expect(refused, `port ${meta.pg.port} still open`).toBe(true);
  },
);
