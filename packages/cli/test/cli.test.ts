import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';

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

/** Start a fixture and resolve with the child once it printed a line starting with `ready`. */
function start(file: string, args: string[], ready: string) {
  const child = spawn(process.execPath, [fixture(file), ...args], {
    env: { ...process.env, BAKERY_SHM_DIR: dir },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
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
