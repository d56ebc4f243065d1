import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
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
import { processIdentity } from '@bakery/core/node';
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

/** Run the built `bakery` executable. */
function bakery(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], {
    env: { ...process.env, BAKERY_SHM_DIR: dir },
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
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
  test('rm removes a lock; removing it again is exit 3 unless --force', async () => {
    const { child } = await start('hold-shm.mjs', ['gone'], 'held');
    child.kill('SIGKILL');
    expect(json('rm', 'gone')).toMatchObject({ name: 'gone', removed: true });
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
    for (const c of ['ls', 'inspect', 'reap', 'rm']) {
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
