// `bakery inspect --pg` against a throwaway PostgreSQL server (see @bakery/pg's
// scripts/throwaway-server.mjs), started for this file and stopped at its end. Without server
// binaries the server tests are skipped with the reason printed — except under
// BAKERY_REQUIRE_PG=1 (CI), where that is a failure. The tests that need no server always run.
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inspectLock, openMutex, type PgLease, type PgMutex } from '@bakery/pg';
import {
  findPgBin,
  freePort,
  startServer,
  type ThrowawayServer,
} from '@bakery/pg/throwaway-server';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Io, run, runAsync } from '../src/index.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const bin = join(here, '..', 'dist', 'bin.js');

const missing =
  findPgBin() === null
    ? 'no PostgreSQL server binaries (initdb, pg_ctl) on this machine — install the `postgresql` package (Debian/Ubuntu) or set PG_BIN'
    : null;
if (missing !== null) {
  if (process.env.BAKERY_REQUIRE_PG === '1') throw new Error(`${missing} (BAKERY_REQUIRE_PG=1)`);
  console.warn(`@bakery/cli bakery inspect --pg tests against a server SKIPPED: ${missing}`);
}
const withServer = missing === null ? describe : describe.skip;

/**
 * Run the built `bakery` executable as a child process, without blocking this process's event
 * loop (the leases held here keep heartbeating meanwhile). Killed after 30 s (then `code` is null).
 */
function bakery(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; out: string; err: string; ms: number }>(
    (resolve, reject) => {
      const t0 = Date.now();
      const child = spawn(process.execPath, [bin, ...args], {
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 30_000,
      });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      child.once('error', reject);
      child.once('close', (code) => resolve({ code, out, err, ms: Date.now() - t0 }));
    },
  );
}

async function json(args: string[], env?: Record<string, string>) {
  const r = await bakery([...args, '--json'], env);
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.out);
}

/** The `{ code, message }` of a failed `--json` run, after checking its exit code. */
async function failure(args: string[], exit: number) {
  const r = await bakery([...args, '--json']);
  expect(r.code, `${args.join(' ')}: ${r.err}`).toBe(exit);
  expect(r.out).toBe('');
  return { ...(JSON.parse(r.err).error as { code: string; message: string }), ms: r.ms };
}

let serial = 0;
const uniqueName = (what: string) => `${what}-${process.pid}-${++serial}`;

async function until(cond: () => Promise<boolean>, what: string) {
  for (let i = 0; i < 400; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

withServer('bakery inspect --pg on a throwaway server', () => {
  let server: ThrowawayServer;
  const mutexes: PgMutex[] = [];
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    // Whatever a failed test left: end every session before the server goes.
    await Promise.all(mutexes.map((m) => m.close().catch(() => {})));
    server?.stop();
  });

  async function open(name: string): Promise<PgMutex> {
    const m = await openMutex(name, { connection: server.url });
    mutexes.push(m);
    return m;
  }

  test('a held lock with two waiters: holder session, waiters in grant order, fencing token — text and --json', async () => {
    const name = uniqueName('held');
    const holder = await open(name);
    const first = await open(name);
    const second = await open(name);
    const lease = await holder.lock();
    const queued: Promise<PgLease>[] = [];
    const waiters = () =>
      inspectLock(name, { connection: server.url }).then((s) => s.waiters.length);
    try {
      // Each confirmed queued on the server before the next one asks.
      queued.push(first.lock());
      await until(async () => (await waiters()) === 1, 'the first waiter');
      queued.push(second.lock());
      await until(async () => (await waiters()) === 2, 'the second waiter');

      const v = await json(['inspect', '--pg', server.url, name]);
      expect(v).toMatchObject({
        name,
        table: 'bakery_locks',
        fencingToken: String(lease.fencingToken),
        held: true,
        state: 'consistent',
        holder: { pid: holder.sessionPid, clientAddr: '127.0.0.1', waitStart: null },
      });
      expect(v.key).toMatch(/^-?\d+$/); // a bigint, as a string
      expect(v.holder.applicationName).toMatch(/^bakery /);
      expect(v.recordedHolder).toMatch(new RegExp(` ${process.pid}$`));
      expect(Date.parse(v.acquiredAt)).not.toBeNaN();
      expect(v.waiters.map((w: { pid: number }) => w.pid)).toEqual([
        first.sessionPid,
        second.sessionPid,
      ]);
      for (const w of v.waiters) expect(Date.parse(w.waitStart)).not.toBeNaN();

      const text = await bakery(['inspect', '--pg', server.url, name]);
      expect(text.code, text.err).toBe(0);
      expect(text.out).toContain(`lock ${name} (PostgreSQL, table bakery_locks)\n`);
      expect(text.out).toContain(`\n  key            ${v.key} (pg_locks advisory classid `);
      expect(text.out).toContain(`\n  fencing token  ${lease.fencingToken}\n`);
      expect(text.out).toContain(`\n  held           yes (recorded holder: ${v.recordedHolder})\n`);
      expect(text.out).toContain('\n  state          consistent\n');
      expect(text.out).toContain(
        `\n  holder         pid ${holder.sessionPid} · 127.0.0.1 · application_name ${JSON.stringify(v.holder.applicationName)} · since ${v.acquiredAt}\n`,
      );
      expect(text.out).toContain('\n  waiters        2 (in the order the server grants them)\n');
      const rows = text.out
        .split('\n')
        .filter((l) => /^ {2}[12] /.test(l))
        .map((l) => l.trim().split(/\s+/).slice(0, 3));
      expect(rows).toEqual([
        ['1', String(first.sessionPid), '127.0.0.1'],
        ['2', String(second.sessionPid), '127.0.0.1'],
      ]);

      // The connection from $BAKERY_PG_URL with --pg= (empty): the same lock.
      const env = await json(['inspect', '--pg=', name], { BAKERY_PG_URL: server.url });
      expect(env.waiters).toHaveLength(2);
      expect(env.holder.pid).toBe(holder.sessionPid);
    } finally {
      await lease.release();
      for (const q of queued) await (await q).release();
    }
    const after = await json(['inspect', '--pg', server.url, name]);
    expect(after).toMatchObject({
      fencingToken: String(lease.fencingToken + 2n),
      held: false,
      holder: null,
      waiters: [],
      recordedHolder: null,
    });
    const idle = await bakery(['inspect', '--pg', server.url, name]);
    expect(idle.out).toContain('\n  holder         none\n');
    expect(idle.out).toContain('\n  waiters        0\n');
  });

  test('a holder whose session was terminated shows as gone without releasing; a successor that releases without markConsistent leaves it NOT RECOVERABLE', async () => {
    const name = uniqueName('died');
    const holder = await open(name);
    const lease = await holder.lock();
    const pid = holder.sessionPid;
    const psql = spawnSync(
      join(server.bin, 'psql'),
      ['-X', '-q', '-d', server.url, '-c', `SELECT pg_terminate_backend(${pid})`],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(psql.status, psql.stderr).toBe(0);
    await until(
      async () => (await inspectLock(name, { connection: server.url })).holder === null,
      'the terminated session to leave pg_locks',
    );
    await expect(lease.release()).rejects.toMatchObject({ code: 'BAKERY_LOCK_LOST' });

    const v = await json(['inspect', '--pg', server.url, name]);
    expect(v).toMatchObject({ held: true, holder: null, state: 'consistent', waiters: [] });
    const text = await bakery(['inspect', '--pg', server.url, name]);
    expect(text.out).toContain(
      `\n  holder         none — the state row still records ${v.recordedHolder} (since ${v.acquiredAt}), but no session holds the advisory lock: it ended without releasing`,
    );

    const successor = await open(name);
    const next = await successor.lock();
    expect(next.ownerDied).toBe(true);
    await next.release(); // without markConsistent (robust: 'manual')
    expect(await json(['inspect', '--pg', server.url, name])).toMatchObject({
      held: false,
      state: 'not-recoverable',
      fencingToken: String(next.fencingToken),
    });
    const poisoned = await bakery(['inspect', '--pg', server.url, name]);
    expect(poisoned.out).toContain(
      '\n  state          NOT RECOVERABLE — every acquirer gets BAKERY_NOT_RECOVERABLE',
    );
    expect(await successor.markConsistent({ timeout: 5_000 })).toBe(true);
    expect((await json(['inspect', '--pg', server.url, name])).state).toBe('consistent');
  });

  test('a lock never opened is exit 3 BAKERY_NOT_FOUND — in a database with the table and without it', async () => {
    await (await open(uniqueName('other'))).close(); // the state table exists now
    const e = await failure(['inspect', '--pg', server.url, uniqueName('never')], 3);
    expect(e.code).toBe('BAKERY_NOT_FOUND');
    expect(e.message).toContain('there is no lock named');
    const noTable = await failure(
      ['inspect', '--pg', server.url, 'x', '--table', 'no_such_table'],
      3,
    );
    expect(noTable.code).toBe('BAKERY_NOT_FOUND');
    expect(noTable.message).toContain('there is no table no_such_table');
    const text = await bakery(['inspect', '--pg', server.url, 'never-opened']);
    expect(text.code).toBe(3);
    expect(text.err).toMatch(
      /^bakery: there is no lock named "never-opened" .*\[BAKERY_NOT_FOUND\]\n$/,
    );
  });

  test('runAsync runs it in-process; the synchronous run() refuses it without connecting', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io: Io = { out: (t) => out.push(t), err: (t) => err.push(t) };
    const name = uniqueName('inproc');
    await (await open(name)).close();
    expect(await runAsync(['inspect', '--pg', server.url, name, '--json'], io)).toBe(0);
    expect(JSON.parse(out.join(''))).toMatchObject({ name, fencingToken: '0', held: false });
    expect(run(['inspect', '--pg', server.url, name, '--json'], io)).toBe(1);
    expect(JSON.parse(err.join('')).error.code).toBe('BAKERY_UNSUPPORTED');
  });
});

describe('bakery inspect --pg without a server', () => {
  test('a bad lock name is exit 2 BAKERY_BAD_NAME, a bad table exit 2 BAKERY_INVALID_ARGUMENT — before connecting', async () => {
    const nowhere = 'postgresql://postgres@127.0.0.1:1/postgres';
    for (const name of ['', 'x'.repeat(1025)]) {
      const e = await failure(['inspect', '--pg', nowhere, name], 2);
      expect(e.code).toBe('BAKERY_BAD_NAME');
    }
    const t = await failure(['inspect', '--pg', nowhere, 'a', '--table', 'a;drop'], 2);
    expect(t.code).toBe('BAKERY_INVALID_ARGUMENT');
  });

  test('usage errors are exit 2 BAKERY_USAGE', async () => {
    for (const args of [
      ['inspect', '--pg', 'postgresql://h/db'], // no name
      ['inspect', '--pg', 'jobs'], // the name taken as the URL
      ['inspect', '--pg', 'postgresql://h/db', 'a', 'b'],
      ['inspect', '--pg', 'postgresql://h/db', 'a', '--dir', '/tmp'],
      ['inspect', '--pg', 'postgresql://h/db', '--pid', '1'],
      ['inspect', 'a', '--table', 't'],
      ['ls', '--pg', 'postgresql://h/db'],
      ['reap', '--pg', 'postgresql://h/db', 'a'],
    ]) {
      const e = await failure(args, 2);
      expect(e.code, args.join(' ')).toBe('BAKERY_USAGE');
    }
  });

  test('an unreachable server (a free port) is exit 1 BAKERY_CONNECTION, at once', async () => {
    const port = await freePort();
    const e = await failure(
      ['inspect', '--pg', `postgresql://postgres@127.0.0.1:${port}/postgres`, 'jobs'],
      1,
    );
    expect(e.code).toBe('BAKERY_CONNECTION');
    expect(e.message).toContain('cannot connect to PostgreSQL');
    expect(e.ms).toBeLessThan(5_000);
  });
});
