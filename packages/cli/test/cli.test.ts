import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ReadableCopy, readableCopy } from '@bakery/conformance';
import {
  ACCESS,
  type AccessMode,
  bytesFor,
  cellsFor,
  H,
  initLayout,
  S,
  slotBase,
} from '@bakery/core';
import { pidNamespace, processIdentity } from '@bakery/core/node';
import type * as NativeModule from '@bakery/native';
import { openMutex, ShmCells } from '@bakery/shm';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { readLock } from '../src/index.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const bin = join(here, '..', 'dist', 'bin.js');
const fixture = (f: string) => join(here, 'fixtures', f);

let dir: string;
const children: ChildProcess[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bakery-cli-'));
});
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Run the built `bakery` executable. A run that hangs is killed after 30 s (then `code` is
 * null and `signal` says so), so a regression fails the test instead of hanging it.
 */
function bakery(...args: string[]) {
  return runAs([], ...args);
}

/**
 * The CLI and the packages it loads, where another uid can read them (the checkout may be
 * private: a CI clone in a 0700 temp directory); made the first time a wrapper needs it.
 */
let readable: ReadableCopy | undefined;
afterAll(() => readable?.dispose());
function readableBin(): string {
  readable ??= readableCopy(join(here, '..', '..', '..'), ['cli', 'shm', 'core', 'native']);
  return readable.path('cli', 'dist/bin.js');
}

/** Run `bakery` under a wrapper command (e.g. `setpriv …`); no wrapper runs it directly. */
function runAs(prefix: string[], ...args: string[]) {
  const argv = [...prefix, process.execPath, prefix.length > 0 ? readableBin() : bin, ...args];
  const r = spawnSync(argv[0]!, argv.slice(1), {
    env: { ...process.env, BAKERY_SHM_DIR: dir },
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (r.error !== undefined && r.signal === null) throw r.error; // could not run it at all
  return { code: r.status, signal: r.signal, out: r.stdout, err: r.stderr };
}

function json(...args: string[]) {
  const r = bakery(...args, '--json');
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.out);
}

/**
 * Start a fixture and resolve with the child once it printed a line starting with `ready`.
 * `prefix` runs it under a wrapper command (e.g. `unshare …`), which is then the child.
 */
function start(file: string, args: string[], ready: string, prefix: string[] = []) {
  const argv = [process.execPath, fixture(file), ...args];
  const child = spawn(
    prefix[0] ?? argv[0]!,
    [...prefix.slice(1), ...(prefix.length > 0 ? argv : argv.slice(1))],
    {
      env: { ...process.env, BAKERY_SHM_DIR: dir },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  children.push(child);
  const lines: string[] = [];
  let buffered = '';
  const waiters: Array<() => void> = [];
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buffered += d;
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    lines.push(...parts);
    for (const w of waiters.splice(0)) w();
  });
  const line = (prefix: string, ms = 20_000) =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "${prefix}" from ${file}`)), ms);
      const check = () => {
        const l = lines.find((x) => x.startsWith(prefix));
        if (l !== undefined) {
          clearTimeout(timer);
          resolve(l);
        } else waiters.push(check);
      };
      check();
    });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return line(ready).then(() => ({ child, line, lines, exited }));
}

describe('bakery inspect / reap on a lock held by another process', () => {
  test('inspect shows the holding process as holder, with its pid, alive', async () => {
    const { child } = await start('hold-shm.mjs', ['held'], 'held');
    const v = json('inspect', 'held');
    expect(v.holder).toEqual({ slot: 0, pid: child.pid, alive: true });
    expect(v.slots[0]).toMatchObject({ pid: child.pid, alive: true, ticket: 1, holder: true });
    expect(v.ownerDied).toBe('consistent');
    expect(v.acquisitions).toBe(1);
    const text = bakery('inspect', 'held').out;
    expect(text).toContain(`slot 0 (pid ${child.pid}, alive)`);
    const ls = json('ls');
    expect(ls.locks).toContainEqual(
      expect.objectContaining({ name: 'held', capacity: 4, participants: 1, waiters: 0 }),
    );
  });

  test('a SIGKILLed holder shows as dead, and `bakery reap` frees the lock so a waiting process proceeds', async () => {
    const holder = await start('hold-shm.mjs', ['killed'], 'held');
    const waiter = await start('wait-shm.mjs', ['killed'], 'waiting');
    // The waiter has its ticket once it shows as a waiter.
    for (let i = 0; i < 200 && json('inspect', 'killed').waiters === 0; i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    holder.child.kill('SIGKILL');
    await holder.exited; // reaped by Node: no zombie left to look alive

    const v = json('inspect', 'killed');
    expect(v.holder).toEqual({ slot: 0, pid: holder.child.pid, alive: false });
    expect(v.dead).toBe(1);
    expect(v.waiters).toBe(1);
    expect(v.slots[1]).toMatchObject({ pid: waiter.child.pid, alive: true, holder: false });
    expect(v.slots[1].ticket).toBeGreaterThan(0);
    expect(bakery('inspect', 'killed').out).toContain('DEAD');

    // The waiter never reaps on its own (staleAfterMs 1e9): it is still stuck.
    await new Promise((r) => setTimeout(r, 300));
    expect(waiter.lines.some((l) => l.startsWith('got'))).toBe(false);

    const r = json('reap', 'killed');
    expect(r.reaped).toBe(1);
    expect(await waiter.line('got')).toBe('got ownerDied=true');
    await waiter.exited;
    expect(waiter.child.exitCode).toBe(0);
    const after = json('inspect', 'killed');
    expect(after).toMatchObject({ holder: null, ownerDied: 'consistent', dead: 0 });
  });
});

describe('bakery inspect --pid', () => {
  test("finds a process's @bakery/mmap lock through /proc/<pid>/fd and shows it as holder, alive", async () => {
    const { child } = await start('hold-mmap.mjs', [], 'held');
    const r = json('inspect', '--pid', String(child.pid));
    expect(r.pid).toBe(child.pid);
    expect(r.locks).toHaveLength(1);
    const lock = r.locks[0];
    expect(lock.kind).toBe('mmap');
    expect(lock.target).toMatch(/^\/memfd:bakery/);
    expect(lock.holder).toEqual({ slot: 0, pid: child.pid, alive: true });
    expect(lock.capacity).toBe(4);
    expect(lock.access).toBe('mapped');
    expect(bakery('inspect', '--pid', String(child.pid)).out).toContain(
      `fd ${lock.fd} → /memfd:bakery`,
    );
  });

  test('a process without a bakery lock is exit 3, BAKERY_NOT_FOUND', () => {
    const r = bakery('inspect', '--pid', String(process.pid), '--json');
    expect(r.code).toBe(3);
    expect(JSON.parse(r.err).error.code).toBe('BAKERY_NOT_FOUND');
  });
});

describe('bakery rm, ls, errors and help', () => {
  test('rm removes a lock whose only participant is dead; removing it again is exit 3 unless --force', async () => {
    const { child, exited } = await start('hold-shm.mjs', ['gone'], 'held');
    child.kill('SIGKILL');
    await exited; // reaped by Node: no zombie left to look alive
    expect(json('inspect', 'gone')).toMatchObject({ participants: 1, dead: 1 });
    expect(json('rm', 'gone')).toMatchObject({
      name: 'gone',
      removed: true,
      participants: [],
      warnings: [],
    });
    expect(bakery('inspect', 'gone').code).toBe(3);
    expect(bakery('rm', 'gone').code).toBe(3);
    expect(json('rm', 'gone', '--force').removed).toBe(false);
  });

  test('a file that is not a lock is listed with its error, and inspecting it is exit 4', () => {
    writeFileSync(join(dir, 'bakery.junk'), Buffer.alloc(128));
    const ls = json('ls');
    expect(ls.locks).toContainEqual(
      expect.objectContaining({
        name: 'junk',
        error: expect.objectContaining({ code: 'BAKERY_BAD_LAYOUT' }),
      }),
    );
    const r = bakery('inspect', 'junk', '--json');
    expect(r.code).toBe(4);
    expect(JSON.parse(r.err).error.code).toBe('BAKERY_BAD_LAYOUT');
    rmSync(join(dir, 'bakery.junk'));
  });

  test('usage errors are exit 2 with BAKERY_USAGE or BAKERY_BAD_NAME', () => {
    for (const args of [
      ['frobnicate'],
      ['inspect'],
      ['inspect', 'a', 'b'],
      ['ls', '--pid', '1'],
      ['inspect', '--pid', 'x'],
      ['rm', '--bogus', 'a'],
      ['rm', 'a', '--timeout', '5'],
      ['mark-consistent'],
      ['mark-consistent', 'a', '--timeout', 'soon'],
      ['mark-consistent', 'a', '--timeout', '-1'],
    ]) {
      const r = bakery(...args, '--json');
      expect(r.code, args.join(' ')).toBe(2);
      expect(JSON.parse(r.err).error.code).toBe('BAKERY_USAGE');
    }
    const bad = bakery('inspect', '../etc', '--json');
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.err).error.code).toBe('BAKERY_BAD_NAME');
    expect(bakery('reap', 'missing').code).toBe(3);
  });

  test('every command has --help', () => {
    for (const c of ['ls', 'inspect', 'reap', 'mark-consistent', 'rm']) {
      const r = bakery(c, '--help');
      expect(r.code).toBe(0);
      expect(r.out).toContain(`usage: bakery ${c}`);
      expect(bakery('help', c).out).toBe(r.out);
    }
    expect(bakery('--help').out).toContain('commands:');
  });
});

/** @bakery/native's binding, or why it does not load here (lease tests need it). */
function loadBinding(): { native: NativeModule.Native } | { why: string } {
  try {
    const lib = createRequire(import.meta.url)('@bakery/native') as typeof NativeModule;
    const r = lib.probeNative();
    return 'native' in r ? r : { why: r.error.message };
  } catch (err) {
    return { why: `@bakery/native is not installed: ${(err as Error).message}` };
  }
}
const binding = loadBinding();

/** Skip a test that needs the binding, saying why. */
function needNative(ctx: { skip: () => void }): NativeModule.Native {
  if ('why' in binding) {
    console.warn(`skipped (mapped locks need @bakery/native): ${binding.why}`);
    ctx.skip();
  }
  return (binding as { native: NativeModule.Native }).native;
}

async function until(cond: () => boolean, what: string) {
  for (let i = 0; i < 400; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('access modes and liveness through the per-slot leases', () => {
  test('a mapped lock held by a child shows access mapped and the holder alive; after SIGKILL the lease reads it dead and `bakery reap` frees it', async (ctx) => {
    needNative(ctx);
    const holder = await start('hold-shm.mjs', ['mapped'], 'held');
    const v = json('inspect', 'mapped');
    expect(v.access).toBe('mapped');
    expect(v.holder).toEqual({ slot: 0, pid: holder.child.pid, alive: true });
    const text = bakery('inspect', 'mapped').out;
    expect(text).toContain('  access        mapped\n');
    expect(text).toContain(`slot 0 (pid ${holder.child.pid}, alive)`);
    expect(json('ls').locks).toContainEqual(
      expect.objectContaining({ name: 'mapped', access: 'mapped', participants: 1 }),
    );
    expect(bakery('ls').out).toMatch(/^mapped +mapped +4 +1 +\d+ +0 +consistent$/m);
    const byPid = json('inspect', '--pid', String(holder.child.pid));
    // The creator's fd shows the temporary name it initialised the file under; the CLI
    // resolves it to the lock's name.
    expect(byPid.locks[0]?.target).toBe(join(dir, 'bakery.mapped'));
    expect(byPid.locks).toEqual([
      expect.objectContaining({
        kind: 'shm',
        access: 'mapped',
        holder: expect.objectContaining({ alive: true }),
      }),
    ]);

    holder.child.kill('SIGKILL');
    await holder.exited;
    const dead = json('inspect', 'mapped');
    expect(dead.holder).toEqual({ slot: 0, pid: holder.child.pid, alive: false });
    expect(dead.dead).toBe(1);
    expect(json('reap', 'mapped')).toMatchObject({
      reaped: 1,
      holder: null,
      dead: 0,
      access: 'mapped',
    });
  });

  test('a pure-JS lock shows "pure JS", and its owners are judged by pid', async () => {
    openMutex('purejs', { slots: 4, dir, access: 'pure-js' }).close();
    const holder = await start('hold-shm.mjs', ['purejs'], 'held');
    const v = json('inspect', 'purejs');
    expect(v.access).toBe('pure-js');
    expect(v.holder).toEqual({ slot: 0, pid: holder.child.pid, alive: true });
    expect(bakery('inspect', 'purejs').out).toContain('  access        pure JS\n');
    expect(json('ls').locks).toContainEqual(
      expect.objectContaining({ name: 'purejs', access: 'pure-js' }),
    );
    expect(bakery('ls').out).toMatch(/^purejs +pure JS +4 +1 /m);
    expect(json('inspect', '--pid', String(holder.child.pid)).locks).toEqual([
      expect.objectContaining({ kind: 'shm', access: 'pure-js' }),
    ]);
    expect(bakery('inspect', '--pid', String(holder.child.pid)).out).toContain('pure JS');

    holder.child.kill('SIGKILL');
    await holder.exited;
    expect(json('inspect', 'purejs')).toMatchObject({ access: 'pure-js', dead: 1 });
    expect(json('reap', 'purejs')).toMatchObject({ reaped: 1, holder: null, access: 'pure-js' });
  });

  /** A lock file whose slot 0 names `owner` (as holder), with OWNER_LEASE = `lease`. */
  function craft(
    name: string,
    access: AccessMode,
    owner: { pid: number; tid: number; startTime: number; ns: number },
    lease: 0 | 1,
  ): string {
    const file = join(dir, `bakery.${name}`);
    writeFileSync(file, Buffer.alloc(bytesFor(4)));
    const fd = fs.openSync(file, 'r+');
    try {
      const cells = new ShmCells(fd, cellsFor(4));
      initLayout(cells, 4, access);
      const b = slotBase(0);
      cells.store(b + S.OWNER, owner.pid);
      cells.store(b + S.OWNER_TID, owner.tid);
      cells.store(b + S.OWNER_START_LO, (owner.startTime % 2 ** 32) | 0);
      cells.store(b + S.OWNER_START_HI, Math.floor(owner.startTime / 2 ** 32) | 0);
      cells.store(b + S.OWNER_NS, owner.ns | 0);
      cells.store(b + S.OWNER_LEASE, lease);
      cells.store(b + S.TICKET, 1 << 1);
      cells.store(H.HIGH_WATER, 1);
      cells.store(H.HOLDER, 1);
    } finally {
      fs.closeSync(fd);
    }
    return file;
  }

  test('in a mapped lock the lease decides over the pid: no lease held is dead even for a running pid, a held lease is alive even for an unknown one', (ctx) => {
    const native = needNative(ctx);
    const me = processIdentity();
    const ns = me.ns ?? 0;
    // A running pid (this process) that recorded a lease nobody holds: its owner died (the pid
    // names someone else, e.g. in another pid namespace).
    const a = craft('lease-dead', ACCESS.ATOMIC, { ...me, ns }, 1);
    expect(readLock(a).slots[0]).toMatchObject({ pid: me.pid, alive: false });
    expect(readLock(a).dead).toBe(1);
    // Without the flag only the pid check applies: alive.
    const b = craft('no-lease', ACCESS.ATOMIC, { ...me, ns }, 0);
    expect(readLock(b).slots[0]).toMatchObject({ alive: true });
    // A pure-JS lock never consults leases, whatever the flag says.
    const c = craft('pure-flag', ACCESS.POSITIONAL, { ...me, ns }, 1);
    expect(readLock(c)).toMatchObject({ access: 'pure-js', dead: 0 });
    // A held lease on byte 0 (through another description) keeps an owner alive whose pid the
    // pid check would call dead.
    const gone = { pid: 2 ** 22 + 12345, tid: 2 ** 22 + 12345, startTime: 1, ns };
    const d = craft('lease-held', ACCESS.ATOMIC, gone, 1);
    expect(readLock(d).slots[0]).toMatchObject({ alive: false }); // no lease held yet
    const fd = fs.openSync(d, 'r+');
    try {
      native.leaseTake(fd, 0);
      expect(readLock(d).slots[0]).toMatchObject({ alive: true });
      expect(bakery('inspect', 'lease-held').out).toContain('slot 0 (pid 4206649, alive)');
    } finally {
      fs.closeSync(fd);
    }
    // An owner recorded in another pid namespace without a lease cannot be judged: alive.
    const e = craft('foreign-ns', ACCESS.ATOMIC, { ...gone, ns: (ns + 1) >>> 0 || 1 }, 0);
    expect(readLock(e).slots[0]).toMatchObject({ alive: true });
    for (const n of ['lease-dead', 'no-lease', 'pure-flag', 'lease-held', 'foreign-ns']) {
      rmSync(join(dir, `bakery.${n}`));
    }
  });

  test('a holder in another pid namespace reads alive, and dead after SIGKILL (through its lease); `bakery reap` frees it', async (ctx) => {
    needNative(ctx);
    const probe = spawnSync('unshare', ['--pid', '--fork', 'true'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      console.warn(
        `skipped (needs \`unshare --pid --fork\`): ${probe.error?.message ?? probe.stderr.trim() ?? `exit ${probe.status}`}`,
      );
      ctx.skip();
    }
    const ns = await start('hold-shm.mjs', ['namespaced'], 'held', [
      'unshare',
      '--pid',
      '--fork',
      '--kill-child',
    ]);
    expect(ns.lines.find((l) => l.startsWith('held'))).toBe('held 1'); // pid 1 in its namespace
    // The node process is unshare's child; its pid here is not the one it recorded.
    let host = 0;
    await until(() => {
      const kids = readFileSync(`/proc/${ns.child.pid}/task/${ns.child.pid}/children`, 'utf8');
      host = Number(kids.trim().split(/\s+/)[0] ?? 0);
      return host > 0;
    }, 'the namespaced child');
    const v = json('inspect', 'namespaced');
    expect(v).toMatchObject({ access: 'mapped', dead: 0 });
    expect(v.holder).toEqual({ slot: 0, pid: 1, alive: true });

    process.kill(host, 'SIGKILL');
    await ns.exited;
    const dead = json('inspect', 'namespaced');
    // pid 1 runs here (init), and core's pid check cannot judge another namespace: only the
    // lease can tell.
    expect(dead.holder).toEqual({ slot: 0, pid: 1, alive: false });
    expect(dead.dead).toBe(1);
    expect(bakery('inspect', 'namespaced').out).toContain('slot 0 (pid 1, DEAD)');
    expect(json('reap', 'namespaced')).toMatchObject({ reaped: 1, holder: null, dead: 0 });
  });
});

/** The code of what `fn` throws (fails the test when it does not throw). */
function thrownCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  throw new Error('expected a throw');
}

describe('bakery mark-consistent', () => {
  test('clears a real poisoned lock: a SIGKILLed holder, a successor that released without markConsistent; inspect and ls show NOT RECOVERABLE before', async () => {
    const holder = await start('hold-shm.mjs', ['poisoned'], 'held');
    holder.child.kill('SIGKILL');
    await holder.exited;
    const m = openMutex('poisoned', { dir });
    try {
      const lease = m.lockSync({ timeout: 20_000 }); // reaps the dead holder after staleAfterMs
      expect(lease.ownerDied).toBe(true);
      lease.release(); // without markConsistent: the lock is poisoned for everyone
      expect(thrownCode(() => m.lockSync({ timeout: 5_000 }))).toBe('BAKERY_NOT_RECOVERABLE');
    } finally {
      m.close();
    }
    const other = openMutex('poisoned', { dir });
    expect(thrownCode(() => other.lockSync({ timeout: 5_000 }))).toBe('BAKERY_NOT_RECOVERABLE');
    other.close();

    const before = json('inspect', 'poisoned');
    expect(before).toMatchObject({ ownerDied: 'not-recoverable', holder: null, outOfRange: [] });
    expect(before.raw.ownerDied).toBe(2);
    const text = bakery('inspect', 'poisoned').out;
    expect(text).toContain(
      'owner-died    NOT RECOVERABLE — every acquirer gets BAKERY_NOT_RECOVERABLE; run `bakery mark-consistent poisoned` after repairing the data',
    );
    expect(bakery('ls').out).toMatch(
      /^poisoned +\S.* +NOT RECOVERABLE \(bakery mark-consistent poisoned\)/m,
    );

    const r = bakery('mark-consistent', 'poisoned');
    expect(r.code).toBe(0);
    expect(r.out).toContain(
      'lock poisoned was poisoned (NOT RECOVERABLE); it is marked consistent',
    );
    expect(json('inspect', 'poisoned')).toMatchObject({ ownerDied: 'consistent', holder: null });
    const healed = openMutex('poisoned', { dir });
    const lease = healed.lockSync({ timeout: 5_000 });
    expect(lease.ownerDied).toBe(false);
    lease.release();
    healed.close();

    // Nothing left to clear: still exit 0, and it says so.
    expect(json('mark-consistent', 'poisoned')).toEqual({
      name: 'poisoned',
      path: join(dir, 'bakery.poisoned'),
      cleared: false,
      was: 'consistent',
      ownerDied: 'consistent',
    });
    expect(bakery('mark-consistent', 'poisoned').out).toContain('nothing to clear');
    rmSync(join(dir, 'bakery.poisoned'));
  });

  test('a live holder is exit 7 BAKERY_TIMEOUT after --timeout, and nothing changes; a missing lock is exit 3', async () => {
    const holder = await start('hold-shm.mjs', ['busy'], 'held');
    const t0 = Date.now();
    const r = bakery('mark-consistent', 'busy', '--timeout', '300', '--json');
    expect(r.code).toBe(7);
    const err = JSON.parse(r.err).error;
    expect(err.code).toBe('BAKERY_TIMEOUT');
    expect(err.message).toContain(`held by pid ${holder.child.pid}`);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    expect(json('inspect', 'busy')).toMatchObject({
      holder: { slot: 0, pid: holder.child.pid, alive: true },
      participants: 1, // the CLI's slot was freed again
      ownerDied: 'consistent',
    });
    const missing = bakery('mark-consistent', 'no-such-lock', '--json');
    expect(missing.code).toBe(3);
    expect(JSON.parse(missing.err).error.code).toBe('BAKERY_NOT_FOUND');
  });
});

describe('a full slot table', () => {
  for (const access of ['mapped', 'pure-js'] as const) {
    test(`bakery reap needs no slot: a table full of SIGKILLed owners is reaped in full (${access})`, async (ctx) => {
      if (access === 'mapped') needNative(ctx);
      const name = `full-${access}`;
      openMutex(name, { slots: 3, dir, access }).close();
      const owners = await Promise.all([0, 1, 2].map(() => start('open-shm.mjs', [name], 'open')));
      expect(owners.map((o) => o.lines[0]).sort()).toEqual(['open 0', 'open 1', 'open 2']);
      for (const o of owners) o.child.kill('SIGKILL');
      await Promise.all(owners.map((o) => o.exited));
      expect(json('inspect', name)).toMatchObject({ participants: 3, dead: 3 });
      expect(json('reap', name)).toMatchObject({ reaped: 3, participants: 0, dead: 0 });
    });
  }

  test('mark-consistent on a table full of live participants waits --timeout for a slot, then exit 6 BAKERY_NO_FREE_SLOT, changing nothing', () => {
    const mine = [openMutex('crowded', { slots: 2, dir })];
    mine.push(openMutex('crowded', { dir }));
    const before = readFileSync(join(dir, 'bakery.crowded'));
    const t0 = Date.now();
    const r = bakery('mark-consistent', 'crowded', '--timeout', '300', '--json');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    expect(r.code).toBe(6);
    expect(JSON.parse(r.err).error.code).toBe('BAKERY_NO_FREE_SLOT');
    // Only the SLOT_WANTED hint (header cell 12) changed: it asked for a slot.
    const after = readFileSync(join(dir, 'bakery.crowded'));
    after.writeInt32LE(before.readInt32LE(4 * H.SLOT_WANTED), 4 * H.SLOT_WANTED);
    expect(after.equals(before)).toBe(true);
    for (const m of mine) m.close();
  });
});

describe('bakery rm refuses a lock with live participants', () => {
  test('a live holder: rm is exit 8 BAKERY_IN_USE naming it, the file stays; rm --force removes it with a warning', async () => {
    const holder = await start('hold-shm.mjs', ['inuse'], 'held');
    const file = join(dir, 'bakery.inuse');
    const r = bakery('rm', 'inuse', '--json');
    expect(r.code).toBe(8);
    const err = JSON.parse(r.err).error;
    expect(err.code).toBe('BAKERY_IN_USE');
    expect(err.message).toContain(`1 live participant: pid ${holder.child.pid} (holder, slot 0)`);
    expect(existsSync(file)).toBe(true);
    const text = bakery('rm', 'inuse');
    expect(text.code).toBe(8);
    expect(text.err).toContain(`pid ${holder.child.pid} (holder, slot 0)`);
    expect(text.err).toContain('bakery rm --force inuse');
    expect(existsSync(file)).toBe(true);

    const forced = bakery('rm', 'inuse', '--force');
    expect(forced.code).toBe(0);
    expect(forced.out).toBe(`removed ${file}\n`);
    expect(forced.err).toMatch(
      /^bakery: warning: removed lock inuse while it had 1 live participant/,
    );
    expect(forced.err).toContain('two locks under one name');
    expect(existsSync(file)).toBe(false);
    // The holder keeps the old file: its fd on it now shows as deleted (the creator's fd is
    // the one it initialised the file under a temporary name with).
    expect(json('inspect', '--pid', String(holder.child.pid)).locks).toEqual([
      expect.objectContaining({
        kind: 'shm',
        target: expect.stringMatching(/inuse.* \(deleted\)$/),
        holder: expect.objectContaining({ pid: holder.child.pid, alive: true }),
      }),
    ]);
  });

  test('rm --force --json reports the participants it split off', async () => {
    const holder = await start('hold-shm.mjs', ['inuse2'], 'held');
    const r = json('rm', 'inuse2', '--force');
    expect(r).toMatchObject({ removed: true });
    expect(r.participants).toEqual([
      expect.objectContaining({ slot: 0, pid: holder.child.pid, holder: true }),
    ]);
    expect(r.warnings).toHaveLength(1);
  });
});

describe('no open blocks: a FIFO at a lock path', () => {
  test('ls lists it as an error row; inspect, reap, mark-consistent and rm fail at once with exit 4; rm --force removes it', () => {
    const fifo = join(dir, 'bakery.fifo');
    const mk = spawnSync('mkfifo', [fifo]);
    expect(mk.status).toBe(0);
    try {
      const ls = bakery('ls', '--json');
      expect(ls.signal).toBeNull(); // not killed by the timeout: it did not hang
      expect(ls.code).toBe(0);
      expect(JSON.parse(ls.out).locks).toContainEqual({
        name: 'fifo',
        path: fifo,
        error: { code: 'BAKERY_BAD_LAYOUT', message: `${fifo} is a FIFO, not a lock file` },
      });
      expect(bakery('ls').out).toMatch(/^fifo +- .*BAKERY_BAD_LAYOUT: .* is a FIFO/m);
      for (const args of [
        ['inspect', 'fifo'],
        ['reap', 'fifo'],
        ['mark-consistent', 'fifo'],
        ['rm', 'fifo'],
      ]) {
        const r = bakery(...args, '--json');
        expect(r.signal, args.join(' ')).toBeNull();
        expect(r.code, args.join(' ')).toBe(4);
        expect(JSON.parse(r.err).error.code).toBe('BAKERY_BAD_LAYOUT');
      }
      expect(existsSync(fifo)).toBe(true);
      expect(readLockCode(fifo)).toBe('BAKERY_BAD_LAYOUT');
      const forced = bakery('rm', 'fifo', '--force');
      expect(forced.code).toBe(0);
      expect(forced.err).toContain('is a FIFO, not a lock file; removed it anyway (--force)');
      expect(existsSync(fifo)).toBe(false);
    } finally {
      rmSync(fifo, { force: true });
    }
  });
});

function readLockCode(file: string): string | undefined {
  return thrownCode(() => readLock(file));
}

/** Why running as uid 65534 with setpriv is not possible here, or null when it is. */
function cannotSetpriv(): string | null {
  if (process.getuid?.() !== 0) return 'not root';
  const p = spawnSync('setpriv', [...NOBODY, 'true']);
  if (p.status !== 0) return `setpriv does not run: ${p.error?.message ?? `exit ${p.status}`}`;
  return null;
}
const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups'];

describe('exit codes as documented', () => {
  test('ls --dir: a missing directory and a file are exit 3 BAKERY_NOT_FOUND', () => {
    const missing = bakery('ls', '--dir', join(dir, 'no-such-dir'), '--json');
    expect(missing.code).toBe(3);
    expect(JSON.parse(missing.err).error.code).toBe('BAKERY_NOT_FOUND');
    expect(JSON.parse(missing.err).error.message).toContain('ENOENT');
    const file = join(dir, 'plain-file');
    writeFileSync(file, 'x');
    const notDir = bakery('ls', '--dir', file, '--json');
    expect(notDir.code).toBe(3);
    expect(JSON.parse(notDir.err).error.code).toBe('BAKERY_NOT_FOUND');
    expect(JSON.parse(notDir.err).error.message).toContain('ENOTDIR');
    // A lock "in" a file: no such lock either.
    expect(bakery('inspect', 'x', '--dir', file).code).toBe(3);
    rmSync(file);
  });

  test('ls and inspect of an unreadable directory (as another user) are exit 5 BAKERY_PERMISSION', (ctx) => {
    const why = cannotSetpriv();
    if (why !== null) {
      console.warn(`skipped (needs root and setpriv to run as uid 65534): ${why}`);
      ctx.skip();
    }
    const closed = mkdtempSync(join(tmpdir(), 'bakery-cli-closed-')); // 0700, root's
    try {
      openMutex('secret', { dir: closed, slots: 4 }).close();
      const ls = runAs(['setpriv', ...NOBODY], 'ls', '--dir', closed, '--json');
      expect(ls.code, ls.err).toBe(5);
      expect(JSON.parse(ls.err).error).toMatchObject({ code: 'BAKERY_PERMISSION' });
      expect(JSON.parse(ls.err).error.message).toContain('EACCES');
      const inspect = runAs(['setpriv', ...NOBODY], 'inspect', 'secret', '--dir', closed, '--json');
      expect(inspect.code, inspect.err).toBe(5);
      expect(JSON.parse(inspect.err).error.code).toBe('BAKERY_PERMISSION');
    } finally {
      rmSync(closed, { recursive: true, force: true });
    }
  });

  test("rm of another user's lock is exit 5 BAKERY_FOREIGN_OWNER and leaves it; --force removes it", (ctx) => {
    if (process.getuid?.() !== 0) {
      console.warn('skipped (needs root to chown a lock file to uid 65534): not root');
      ctx.skip();
    }
    openMutex('foreign', { dir, slots: 4 }).close();
    const file = join(dir, 'bakery.foreign');
    chownSync(file, 65534, 65534);
    const r = bakery('rm', 'foreign', '--json');
    expect(r.code).toBe(5);
    expect(JSON.parse(r.err).error.code).toBe('BAKERY_FOREIGN_OWNER');
    expect(JSON.parse(r.err).error.message).toContain('belongs to uid 65534');
    expect(existsSync(file)).toBe(true);
    expect(json('inspect', 'foreign')).toMatchObject({ participants: 0 }); // reading is fine
    const forced = json('rm', 'foreign', '--force');
    expect(forced).toMatchObject({ removed: true, participants: [] });
    expect(forced.warnings[0]).toContain('belongs to uid 65534');
    expect(existsSync(file)).toBe(false);
  });

  test('as another user in a sticky directory: rm is exit 5 (FOREIGN_OWNER), and rm --force, which the kernel refuses, exit 5 (PERMISSION)', (ctx) => {
    const why = cannotSetpriv();
    if (why !== null) {
      console.warn(`skipped (needs root and setpriv to run as uid 65534): ${why}`);
      ctx.skip();
    }
    const shared = mkdtempSync(join(tmpdir(), 'bakery-cli-sticky-'));
    try {
      chmodSync(shared, 0o1777); // like /dev/shm
      openMutex('roots', { dir: shared, slots: 4 }).close();
      const r = runAs(['setpriv', ...NOBODY], 'rm', 'roots', '--dir', shared, '--json');
      expect(r.code, r.err).toBe(5);
      expect(JSON.parse(r.err).error.code).toBe('BAKERY_FOREIGN_OWNER');
      const forced = runAs(['setpriv', ...NOBODY], 'rm', 'roots', '--force', '--dir', shared);
      expect(forced.code, forced.err).toBe(5);
      expect(forced.err).toContain('[BAKERY_PERMISSION]');
      expect(existsSync(join(shared, 'bakery.roots'))).toBe(true);
    } finally {
      rmSync(shared, { recursive: true, force: true });
    }
  });
});

test('a pure-JS registry lock held by a live process for 30 s is exit 7 BAKERY_TIMEOUT naming the registry, and nothing changes', () => {
  openMutex('registry-held', { slots: 2, dir, access: 'pure-js' }).close();
  const reg = join(dir, '.bakery.registry-held.registry');
  fs.mkdirSync(reg);
  // The registry entry of a live process: this test's own thread.
  const me = processIdentity();
  fs.writeFileSync(join(reg, `o.${me.pid}.${me.tid}.${me.startTime}.${pidNamespace()}.abcdef`), '');
  const before = readFileSync(join(dir, 'bakery.registry-held'));
  const t0 = Date.now();
  // (not bakery(): that kills a run after 30 s)
  const r = spawnSync(process.execPath, [bin, 'reap', 'registry-held', '--json'], {
    env: { ...process.env, BAKERY_SHM_DIR: dir },
    encoding: 'utf8',
    timeout: 50_000,
  });
  expect(Date.now() - t0).toBeGreaterThanOrEqual(30_000);
  expect(r.status).toBe(7);
  const err = JSON.parse(r.stderr).error;
  expect(err.code).toBe('BAKERY_TIMEOUT');
  expect(err.message).toContain('registry lock');
  expect(readFileSync(join(dir, 'bakery.registry-held')).equals(before)).toBe(true);
  fs.rmSync(reg, { recursive: true });
}, 60_000);

describe('header cells shown as stored', () => {
  /** A fresh 4-slot lock file with slot 0 claimed by this process, then `poke` applied. */
  function poked(name: string, poke: Record<number, number>): string {
    const file = join(dir, `bakery.${name}`);
    writeFileSync(file, Buffer.alloc(bytesFor(4)));
    const fd = fs.openSync(file, 'r+');
    try {
      const cells = new ShmCells(fd, cellsFor(4));
      initLayout(cells, 4, ACCESS.POSITIONAL);
      cells.store(slotBase(0) + S.OWNER, process.pid);
      cells.store(H.HIGH_WATER, 1);
      for (const [i, v] of Object.entries(poke)) cells.store(Number(i), v);
    } finally {
      fs.closeSync(fd);
    }
    return file;
  }

  test('a HOLDER that names no slot below HIGH_WATER, a COLOUR not 0/1 and an OWNER_DIED not 0-2 are shown raw and flagged', () => {
    poked('poked', { [H.HOLDER]: 99, [H.COLOUR]: 7, [H.OWNER_DIED]: 5 });
    const v = json('inspect', 'poked');
    expect(v.holder).toEqual({ slot: 98, pid: null, alive: null, outOfRange: true });
    expect(v.colour).toBeNull();
    expect(v.raw).toEqual({ holder: 99, colour: 7, ownerDied: 5 });
    expect(v.outOfRange).toEqual(['holder', 'colour', 'ownerDied']);
    expect(v.slots[0]).toMatchObject({ pid: process.pid, holder: false });
    const text = bakery('inspect', 'poked').out;
    expect(text).toContain('colour 7 (COLOUR cell OUT OF RANGE: not 0 white or 1 black)');
    expect(text).toContain(
      'holder        HOLDER cell 99: OUT OF RANGE (no slot 98 below high-water 1)',
    );
    expect(text).toContain(
      'NOT RECOVERABLE (OWNER_DIED cell 5 OUT OF RANGE, read as not recoverable)',
    );
    expect(text).toContain('out of range: holder, colour, ownerDied — shown as stored');
    expect(text).not.toContain('← holder');
    expect(bakery('ls').out).toMatch(
      /^poked +pure JS +4 +1 +\? \(HOLDER 99\) +0 +NOT RECOVERABLE .*OUT OF RANGE: holder, colour, ownerDied$/m,
    );
    rmSync(join(dir, 'bakery.poked'));
  });

  test('HOLDER of a slot at or above HIGH_WATER (though below capacity), or negative, is out of range; a sound header is not', () => {
    const a = poked('above-hwm', { [H.HOLDER]: 2 }); // slot 1, but HIGH_WATER is 1
    expect(readLock(a)).toMatchObject({
      holder: { slot: 1, pid: null, alive: null, outOfRange: true },
      outOfRange: ['holder'],
      colour: 'white',
    });
    const b = poked('negative', { [H.HOLDER]: -5, [H.COLOUR]: 1 });
    expect(readLock(b)).toMatchObject({
      holder: { slot: -6, outOfRange: true },
      outOfRange: ['holder'],
      colour: 'black',
    });
    const c = poked('sound', { [H.HOLDER]: 1, [H.COLOUR]: 1, [H.OWNER_DIED]: 1 });
    const v = readLock(c);
    expect(v).toMatchObject({ colour: 'black', ownerDied: 'owner-died', outOfRange: [] });
    expect(v.holder).toEqual({ slot: 0, pid: process.pid, alive: true });
    expect(v.slots[0]?.holder).toBe(true);
    for (const f of [a, b, c]) rmSync(f);
  });

  test('a ticket left on a free slot is listed as an anomaly by inspect, and bakery reap clears it', () => {
    // Slot 2 (slot 1 is free and clean: the reaper claims that one for itself).
    const file = poked('stray', { [H.HIGH_WATER]: 3, [slotBase(2) + S.TICKET]: 3 });
    const before = json('inspect', 'stray');
    expect(before.anomalies).toContain('slot 2 is free but has a ticket left on it');
    expect(bakery('inspect', 'stray').out).toMatch(
      /anomalies .*\n\s+- slot 2 is free but has a ticket left on it/,
    );
    const r = json('reap', 'stray');
    expect(r.reaped).toBe(1);
    expect(r.anomalies).toEqual([]);
    rmSync(file);
  });
});
