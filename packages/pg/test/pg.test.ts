// @bakery/pg against a real server: FIFO under churn, holders killed, terminated and stopped,
// fencing tokens, a transaction-pooling proxy, a standby, planted and bad input.
import { type ChildProcess, fork, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject } from 'vitest';
import { inspectLock, lockKey, openMutex, type PgLease, type PgMutex } from '../dist/index.js';
import { freePort } from '../scripts/throwaway-server.mjs';
import { codeOf, server, sleep, pgTest as test, uniqueName } from './helpers.js';

const holderScript = new URL('./fixtures/holder.mjs', import.meta.url);

let admin: pg.Client;
beforeAll(async () => {
  if (server === null) return;
  admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
});
afterAll(async () => {
  await admin?.end();
});

function open(name: string, options: Parameters<typeof openMutex>[1] = {}): Promise<PgMutex> {
  return openMutex(name, { connection: server!.socketUrl, sessionTimeoutMs: 5_000, ...options });
}

interface Holder {
  child: ChildProcess;
  held: Promise<{ token: string; ownerDied: boolean; pid: number }>;
  next: () => Promise<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: string | null }>;
}

function startHolder(name: string, mode: 'wait' | 'natural', sessionTimeoutMs = 2_000): Holder {
  const child = fork(holderScript, [server!.url, name, mode, String(sessionTimeoutMs)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const messages: Record<string, unknown>[] = [];
  const waiting: ((m: Record<string, unknown>) => void)[] = [];
  child.on('message', (m: Record<string, unknown>) => {
    const w = waiting.shift();
    if (w) w(m);
    else messages.push(m);
  });
  const next = () =>
    new Promise<Record<string, unknown>>((resolve) => {
      const m = messages.shift();
      if (m) resolve(m);
      else waiting.push(resolve);
    });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, held: next() as Holder['held'], next, exited };
}

// One instance per name that never locks: it reads the server's queue on its own idle session
// (an instance that holds or waits would open a session per inspect()).
const watchers = new Map<string, Promise<PgMutex>>();
afterAll(async () => {
  for (const w of watchers.values()) await (await w).close();
});
function watcher(name: string): Promise<PgMutex> {
  let w = watchers.get(name);
  if (w === undefined) watchers.set(name, (w = open(name)));
  return w;
}

async function waiters(m: PgMutex, count: number): Promise<void> {
  const w = await watcher(m.name);
  const end = performance.now() + 30_000;
  while ((await w.inspect()).waiters.length < count) {
    if (performance.now() > end) throw new Error(`never saw ${count} waiters`);
    await sleep(2);
  }
}

describe('@bakery/pg against PostgreSQL', () => {
  test('FIFO under churn: 8 sessions queued one after another are granted in exactly that order, 5 rounds, while others time out, abort and tryLock around them', async () => {
    const name = uniqueName('fifo');
    const observer = await open(name);
    const queue = await Promise.all(Array.from({ length: 8 }, () => open(name)));
    const churn = await Promise.all(Array.from({ length: 3 }, () => open(name)));
    for (let round = 0; round < 5; round++) {
      const held = await observer.lock();
      const order: number[] = [];
      const grants: Promise<void>[] = [];
      let stop = false;
      const churning = churn.map(async (c, k) => {
        for (let j = 0; !stop; j++) {
          const mode = (j + k) % 3;
          if (mode === 0)
            expect(await codeOf(c.lock({ timeout: 3 + (j % 5) }))).toBe('BAKERY_TIMEOUT');
          else if (mode === 1) {
            const ac = new AbortController();
            const p = c.lock({ signal: ac.signal });
            setTimeout(() => ac.abort(), 2);
            expect(await codeOf(p)).toBe('BAKERY_ABORTED');
          } else expect(await c.tryLock()).toBeNull();
        }
      });
      // Their failures surface at the Promise.all below, never as unhandled rejections.
      for (const p of churning) p.catch(() => {});
      for (let i = 0; i < queue.length; i++) {
        grants.push(
          queue[i]!.lock().then(async (lease) => {
            order.push(i);
            await sleep(1);
            await lease.release();
          }),
        );
        // The churners come and go in the server's queue; ours stay, in the order they came.
        const w = await watcher(name);
        const end = performance.now() + 30_000;
        let mine: number[] = [];
        while (mine.length < i + 1) {
          expect(performance.now()).toBeLessThan(end);
          const snap = await w.inspect();
          mine = snap.waiters
            .map((x) => queue.findIndex((q) => q.sessionPid === x.pid))
            .filter((k) => k >= 0);
          if (mine.length < i + 1) await sleep(2);
        }
        expect(mine).toEqual(Array.from({ length: i + 1 }, (_, k) => k));
      }
      stop = true;
      await Promise.all(churning);
      await held.release();
      await Promise.all(grants);
      expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    }
    for (const m of [observer, ...queue, ...churn]) await m.close();
  });

  test('an abort at any moment ends the wait: 300 aborts 0–2 ms after lock() while another holds, each rejects with BAKERY_ABORTED promptly, none is granted, and no wait is left queued', async () => {
    const name = uniqueName('abort');
    const holder = await open(name);
    const held = await holder.lock();
    const c = await open(name);
    let slowest = 0;
    for (let k = 0; k < 300; k++) {
      const ac = new AbortController();
      const t0 = performance.now();
      const p = c.lock({ signal: ac.signal });
      if (k % 3 === 0) queueMicrotask(() => ac.abort());
      else setTimeout(() => ac.abort(), k % 3);
      expect(await codeOf(p)).toBe('BAKERY_ABORTED');
      slowest = Math.max(slowest, performance.now() - t0);
    }
    console.log(`300 aborted waits: the slowest rejected after ${slowest.toFixed(1)} ms`);
    // Nothing of them is left in the server's queue, and the holder kept the lock throughout.
    const end = performance.now() + 5_000;
    while ((await (await watcher(name)).inspect()).waiters.length > 0) {
      expect(performance.now()).toBeLessThan(end);
      await sleep(10);
    }
    expect(held.valid).toBe(true);
    await held.release();
    const after = await c.lock({ timeout: 5_000 });
    expect(after.ownerDied).toBe(false);
    expect(after.fencingToken).toBe(held.fencingToken + 1n);
    await after.release();
    await holder.close();
    await c.close();
  });

  test('a SIGKILLed holder: the lock is freed within milliseconds, the next holder sees ownerDied and the token + 1', async () => {
    const name = uniqueName('kill');
    const h = startHolder(name, 'wait');
    const { token, ownerDied } = await h.held;
    expect(ownerDied).toBe(false);
    const next = await open(name);
    const waiting = next.lock({ timeout: 30_000 });
    await waiters(next, 1);
    const t0 = performance.now();
    h.child.kill('SIGKILL');
    const lease = await waiting;
    const freedMs = performance.now() - t0;
    console.log(
      `SIGKILLed holder's lock granted to the next waiter after ${freedMs.toFixed(1)} ms`,
    );
    expect(lease.ownerDied).toBe(true);
    expect(lease.fencingToken).toBe(BigInt(token) + 1n);
    lease.markConsistent();
    await lease.release();
    const after = await next.lock();
    expect(after.ownerDied).toBe(false);
    expect(after.fencingToken).toBe(BigInt(token) + 2n);
    await after.release();
    await next.close();
  });

  test('a holder whose process ends without releasing or closing lets its event loop end (nothing keeps it alive), and the next holder sees ownerDied', async () => {
    const name = uniqueName('natural');
    const h = startHolder(name, 'natural');
    await h.held;
    const exit = await h.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    const next = await open(name);
    const lease = await next.lock({ timeout: 30_000 });
    expect(lease.ownerDied).toBe(true);
    lease.markConsistent();
    await lease.release();
    await next.close();
  });

  test("pg_terminate_backend of the holder's session: lease.signal aborts with BAKERY_LOCK_LOST, release() rejects with it, the next holder sees ownerDied", async () => {
    const name = uniqueName('terminate');
    const a = await open(name);
    const b = await open(name);
    const lease = await a.lock();
    const waiting = b.lock({ timeout: 30_000 });
    await waiters(b, 1);
    const lost = new Promise<unknown>((resolve) =>
      lease.signal.addEventListener('abort', () => resolve(lease.signal.reason), { once: true }),
    );
    await admin.query('SELECT pg_terminate_backend($1)', [a.sessionPid]);
    const reason = (await lost) as { code?: string };
    expect(reason.code).toBe('BAKERY_LOCK_LOST');
    expect(lease.valid).toBe(false);
    expect(await codeOf(lease.release())).toBe('BAKERY_LOCK_LOST');
    const next = await waiting;
    expect(next.ownerDied).toBe(true);
    expect(next.fencingToken).toBe(lease.fencingToken + 1n);
    next.markConsistent();
    await next.release();
    // The instance that lost its session opens a new one at its next lock.
    const again = await a.lock({ timeout: 30_000 });
    expect(again.ownerDied).toBe(false);
    await again.release();
    await a.close();
    await b.close();
  });

  test('a stopped (SIGSTOP) holder: the server frees the lock after the session timeout, and the old holder had given the lease up before that (expiresAt before the next grant; on resume it is not valid and release() rejects with BAKERY_LOCK_LOST)', async () => {
    const name = uniqueName('sigstop');
    const sessionTimeoutMs = 1_000;
    const h = startHolder(name, 'wait', sessionTimeoutMs);
    const { token } = await h.held;
    const next = await open(name, { sessionTimeoutMs });
    const waiting = next.lock({ timeout: 60_000 });
    await waiters(next, 1);
    const stoppedAt = Date.now();
    h.child.kill('SIGSTOP');
    const lease = await waiting;
    const grantedAt = Date.now();
    h.child.kill('SIGCONT');
    const report = await h.next();
    console.log(
      `stopped holder: lock handed on ${grantedAt - stoppedAt} ms after SIGSTOP (session timeout ${sessionTimeoutMs} ms); the holder's lease expired ${grantedAt - (report.expiresAt as number)} ms before that`,
    );
    expect(grantedAt - stoppedAt).toBeGreaterThanOrEqual(sessionTimeoutMs * 0.9);
    expect(report.expiresAt as number).toBeLessThan(grantedAt);
    expect(report.validOnResume).toBe(false);
    expect(report.release).toBe('BAKERY_LOCK_LOST');
    expect(lease.ownerDied).toBe(true);
    expect(lease.fencingToken).toBe(BigInt(token) + 1n);
    lease.markConsistent();
    await lease.release();
    await h.exited;
    await next.close();
  });

  test('a holder that keeps its event loop free keeps the lock for many session timeouts (the heartbeat), and an idle instance reconnects when its session has timed out', async () => {
    const name = uniqueName('heartbeat');
    const a = await open(name, { sessionTimeoutMs: 400 });
    const lease = await a.lock();
    await sleep(1_500);
    expect(lease.valid).toBe(true);
    expect(lease.signal.aborted).toBe(false);
    await lease.release();
    await sleep(1_000); // idle: the server ends the session after 400 ms
    const again = await a.lock();
    expect(again.ownerDied).toBe(false);
    expect(again.fencingToken).toBe(lease.fencingToken + 1n);
    await again.release();
    await a.close();
  });

  test('fencing tokens are strictly increasing per name across clients, and a resource that checks them refuses a stale holder (UPDATE … WHERE fence < $token)', async () => {
    const name = uniqueName('fence');
    await admin.query(
      'CREATE TABLE IF NOT EXISTS fenced_resource (id int PRIMARY KEY, value text, fence int8)',
    );
    await admin.query(
      `INSERT INTO fenced_resource VALUES (1, '', 0) ON CONFLICT (id) DO UPDATE SET value = '', fence = 0`,
    );
    const clients = await Promise.all([open(name), open(name, { connection: server!.url })]);
    let last = 0n;
    for (let k = 0; k < 20; k++) {
      const lease = await clients[k % 2]!.lock();
      expect(lease.fencingToken).toBeGreaterThan(last);
      last = lease.fencingToken;
      const r = await admin.query(
        'UPDATE fenced_resource SET value = $1, fence = $2 WHERE id = 1 AND fence < $2',
        [`write ${k}`, lease.fencingToken.toString()],
      );
      expect(r.rowCount).toBe(1);
      await lease.release();
    }
    // A holder that lost its lock and comes back late with its old token is refused.
    const stale = await admin.query(
      'UPDATE fenced_resource SET value = $1 WHERE id = 1 AND fence < $2',
      ['stale', (last - 1n).toString()],
    );
    expect(stale.rowCount).toBe(0);
    for (const c of clients) await c.close();
  });

  test('a planted row with another name under our key is BAKERY_NAME_COLLISION at open, and the row is left untouched', async () => {
    const name = uniqueName('collision');
    await (await open('bootstrap-table')).close();
    await admin.query('INSERT INTO bakery_locks (key, name, fence) VALUES ($1, $2, 41)', [
      lockKey(name).toString(),
      'someone-else',
    ]);
    expect(await codeOf(open(name))).toBe('BAKERY_NAME_COLLISION');
    const r = await admin.query('SELECT name, fence, held FROM bakery_locks WHERE key = $1', [
      lockKey(name).toString(),
    ]);
    expect(r.rows).toEqual([{ name: 'someone-else', fence: '41', held: false }]);
    expect(await codeOf(inspectLock(name, { connection: server!.url }))).toBe(
      'BAKERY_NAME_COLLISION',
    );
  });

  test('bad input is a coded error, quickly, and creates nothing: names, options, an unreachable server, lockSync, a closed instance', async () => {
    const before = await admin.query('SELECT count(*)::int AS n FROM bakery_locks');
    for (const bad of ['', 'x'.repeat(1025), 'a\0b', 'lone \ud800 surrogate', 42, null]) {
      expect(await codeOf(() => open(bad as string))).toBe('BAKERY_BAD_NAME');
    }
    for (const sessionTimeoutMs of [0, 199, -1, Number.NaN, Number.POSITIVE_INFINITY, '1000']) {
      expect(await codeOf(() => open('x', { sessionTimeoutMs: sessionTimeoutMs as number }))).toBe(
        'BAKERY_INVALID_ARGUMENT',
      );
    }
    for (const table of ['x;drop table y', 'a.b.c', '', '1abc', 'x'.repeat(64)]) {
      expect(await codeOf(() => open('x', { table }))).toBe('BAKERY_INVALID_ARGUMENT');
    }
    expect(await codeOf(() => open('x', { robust: 'sometimes' as 'auto' }))).toBe(
      'BAKERY_INVALID_ARGUMENT',
    );
    const port = await freePort();
    const t0 = performance.now();
    expect(
      await codeOf(open('x', { connection: `postgresql://postgres@127.0.0.1:${port}/postgres` })),
    ).toBe('BAKERY_CONNECTION');
    expect(performance.now() - t0).toBeLessThan(5_000);
    const after = await admin.query('SELECT count(*)::int AS n FROM bakery_locks');
    expect(after.rows[0].n).toBe(before.rows[0].n);
    const m = await open(uniqueName('bad'));
    expect(() => m.lockSync()).toThrow(expect.objectContaining({ code: 'BAKERY_UNSUPPORTED' }));
    expect(await codeOf(m.lock({ timeout: -5 }))).toBe('BAKERY_INVALID_ARGUMENT');
    expect(await codeOf(m.lock({ signal: 'no' as unknown as AbortSignal }))).toBe(
      'BAKERY_INVALID_ARGUMENT',
    );
    await m.close();
    await m.close();
    expect(await codeOf(m.lock())).toBe('BAKERY_CLOSED');
    expect(await codeOf(m.tryLock())).toBe('BAKERY_CLOSED');
    expect(await codeOf(inspectLock(uniqueName('never-opened'), { connection: server!.url }))).toBe(
      'BAKERY_NOT_FOUND',
    );
  });

  test('several lock() calls on one instance queue locally in order; tryLock on an instance that holds or waits is null', async () => {
    const name = uniqueName('local');
    const a = await open(name);
    const order: number[] = [];
    const first = await a.lock();
    expect(await a.tryLock()).toBeNull();
    const calls = [1, 2, 3].map((k) =>
      a.lock().then(async (l: PgLease) => {
        order.push(k);
        await l.release();
      }),
    );
    await sleep(20);
    await first.release();
    await Promise.all(calls);
    expect(order).toEqual([1, 2, 3]);
    await a.close();
  });

  test('inspect() names the holder and the waiters in the order the server will grant them', async () => {
    const name = uniqueName('inspect');
    const a = await open(name);
    const b = await open(name);
    const c = await open(name);
    const lease = await a.lock();
    const pb = b.lock();
    await waiters(a, 1);
    const pc = c.lock();
    await waiters(a, 2);
    const snap = await a.inspect();
    expect(snap.holder?.pid).toBe(a.sessionPid);
    expect(snap.waiters.map((w) => w.pid)).toEqual([b.sessionPid, c.sessionPid]);
    expect(snap.held).toBe(true);
    expect(snap.fencingToken).toBe(lease.fencingToken);
    expect(snap.recordedHolder).toMatch(new RegExp(` ${process.pid}$`));
    await lease.release();
    await (await pb).release();
    await (await pc).release();
    for (const m of [a, b, c]) await m.close();
  });

  test('through a transaction-pooling proxy (pgbouncer, pool_mode = transaction) two clients share a server session: the lock is refused with BAKERY_SHARED_SESSION, never granted twice', async () => {
    const bouncer = inject('pgbouncer');
    if (bouncer === null) {
      if (process.env.BAKERY_REQUIRE_PG === '1')
        throw new Error('pgbouncer is not installed (BAKERY_REQUIRE_PG=1)');
      console.warn(
        'SKIPPED (printed reason): pgbouncer is not installed (apt-get install pgbouncer)',
      );
      return;
    }
    const proxy = await startPgbouncer(bouncer);
    try {
      const via = { connection: proxy.url };
      const name = uniqueName('bouncer');
      const a = await open(name, via);
      const b = await open(name, via); // same server session: it overwrites a's marker
      expect(await codeOf(a.lock())).toBe('BAKERY_SHARED_SESSION');
      const lb = await b.lock();
      const c = await open(name, via);
      // c's lock is granted re-entrantly in the session b holds it in: refused.
      expect(await codeOf(c.lock({ timeout: 5_000 }))).toBe('BAKERY_SHARED_SESSION');
      // And b's heartbeat sees its session marker changed: b is told it lost the lock.
      const reason = await new Promise<{ code?: string }>((resolve) =>
        lb.signal.addEventListener('abort', () => resolve(lb.signal.reason), { once: true }),
      );
      expect(reason.code).toBe('BAKERY_LOCK_LOST');
      expect(await codeOf(lb.release())).toBe('BAKERY_LOCK_LOST');
      for (const m of [a, b, c]) await m.close();
    } finally {
      proxy.stop();
    }
  });

  test('a hot standby is refused with BAKERY_UNSUPPORTED (advisory locks there exclude nobody on the primary)', async () => {
    const standby = await startStandby();
    try {
      expect(await codeOf(open(uniqueName('standby'), { connection: standby.url }))).toBe(
        'BAKERY_UNSUPPORTED',
      );
    } finally {
      standby.stop();
    }
  });
});

const asRoot = process.getuid?.() === 0;
function asPostgres(cmd: string, args: string[]) {
  return asRoot
    ? spawnSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { encoding: 'utf8' })
    : spawnSync(cmd, args, { encoding: 'utf8' });
}

async function startPgbouncer(bin: string): Promise<{ url: string; stop(): void }> {
  const dir = fs.mkdtempSync(path.join(tmpdir(), 'bakery-pgbouncer-'));
  fs.chmodSync(dir, 0o777);
  const port = await freePort();
  fs.writeFileSync(path.join(dir, 'users.txt'), '"postgres" ""\n');
  fs.writeFileSync(
    path.join(dir, 'pgbouncer.ini'),
    `[databases]
postgres = host=127.0.0.1 port=${server!.port} dbname=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = trust
auth_file = ${dir}/users.txt
pool_mode = transaction
default_pool_size = 1
max_client_conn = 50
pidfile = ${dir}/pgbouncer.pid
logfile = ${dir}/pgbouncer.log
ignore_startup_parameters = extra_float_digits
`,
  );
  for (const f of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, f), 0o666);
  const r = asPostgres(bin, ['-d', path.join(dir, 'pgbouncer.ini')]);
  if (r.status !== 0) throw new Error(`pgbouncer failed: ${r.stderr}`);
  // Wait for it to listen.
  const url = `postgresql://postgres@127.0.0.1:${port}/postgres`;
  for (let k = 0; ; k++) {
    const c = new pg.Client({ connectionString: url });
    try {
      await c.connect();
      await c.end();
      break;
    } catch (err) {
      if (k > 100) throw err;
      await sleep(50);
    }
  }
  return {
    url,
    stop() {
      try {
        process.kill(Number(fs.readFileSync(path.join(dir, 'pgbouncer.pid'), 'utf8')), 'SIGTERM');
      } catch {
        // gone already
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startStandby(): Promise<{ url: string; stop(): void }> {
  const dir = fs.mkdtempSync(path.join(tmpdir(), 'bakery-standby-'));
  fs.chmodSync(dir, 0o777);
  const data = path.join(dir, 'data');
  const bin = server!.bin;
  let r = asPostgres(path.join(bin, 'pg_basebackup'), [
    '-h',
    '127.0.0.1',
    '-p',
    String(server!.port),
    '-U',
    'postgres',
    '-D',
    data,
    '-R',
    '-X',
    'stream',
  ]);
  if (r.status !== 0) throw new Error(`pg_basebackup failed: ${r.stderr}`);
  const port = await freePort();
  // A standby refuses to start with fewer connections than its primary.
  const { max_connections } = (await admin.query('SHOW max_connections')).rows[0];
  r = asPostgres(path.join(bin, 'pg_ctl'), [
    '-D',
    data,
    '-o',
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c hot_standby=on -c max_connections=${max_connections}`,
    '-l',
    path.join(dir, 'log'),
    '-w',
    'start',
  ]);
  if (r.status !== 0)
    throw new Error(
      `standby start failed: ${r.stderr}${fs.readFileSync(path.join(dir, 'log'), 'utf8')}`,
    );
  return {
    url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    stop() {
      asPostgres(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
