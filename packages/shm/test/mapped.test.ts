import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ACCESS, H, S, slotBase } from '@bakery/core';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { BakeryError, openMutex, removeMutex, ShmCells } from '../src/index.js';
import { codeOf, distEntry, freshDir } from './helpers.js';

let dir: string;
beforeEach(() => {
  dir = freshDir();
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Every entry of the lock directory with its bytes, to prove nothing changed. */
function listing(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of fs.readdirSync(dir).sort()) {
    const p = path.join(dir, e);
    out[e] = fs.lstatSync(p).isFile() ? fs.readFileSync(p).toString('hex') : 'not a file';
  }
  return out;
}

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;

/**
 * Resolves with the first stdout line of `child` that `match` accepts. Call it right after the
 * spawn: when a child exits while nothing listens on its stdout, Node resumes the stream and its
 * output is discarded, so a listener added after that waits forever. Fails on 'close' (stdio
 * drained), not 'exit', which can come before the last output.
 */
function line(child: ChildProcess, match: (l: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const hit = out.split('\n').find(match);
      if (hit !== undefined) resolve(hit);
    });
    child.on('close', (code, signal) =>
      reject(new Error(`child exited (${code ?? signal}) before printing it; stdout: ${out}`)),
    );
  });
}

/** All of `child`'s stdout and how it ended, once it has exited and its stdio closed. Call right after the spawn (see {@link line}). */
function runOf(
  child: ChildProcess,
): Promise<{ out: string; code: number | null; signal: string | null }> {
  return new Promise((resolve) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
    });
    child.on('close', (code, signal) => resolve({ out, code, signal }));
  });
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: string | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null)
      resolve({ code: child.exitCode, signal: child.signalCode });
    else child.on('exit', (code, signal) => resolve({ code, signal }));
  });
}

describe('the mapped path', () => {
  test('where @bakery/native loads, a new lock is mapped and says so (access, inspect().backend, the ACCESS cell)', () => {
    const m = openMutex('fast', { slots: 4, dir });
    expect(m.access).toBe('mapped');
    const snap = m.inspect();
    expect(snap.access).toBe('atomic');
    expect(snap.backend).toBe(`shm ${m.path} (mapped)`);
    m.lockSync().release();
    m.close();
    const p = openMutex('slow', { slots: 4, dir, access: 'pure-js' });
    expect(p.access).toBe('pure-js');
    expect(p.inspect().access).toBe('positional');
    expect(p.inspect().backend).toBe(`shm ${p.path} (pure JS: access 'pure-js')`);
    p.close();
    // A later participant in 'auto' follows the lock's recorded mode.
    const q = openMutex('slow', { dir });
    expect(q.access).toBe('pure-js');
    expect(q.inspect().backend).toBe(`shm ${q.path} (pure JS: the lock was created pure JS)`);
    q.close();
  });

  test('a lock with 200 slots opens on the mapped path, and all 200 participants exclude one another', () => {
    const opened = Array.from({ length: 200 }, () => openMutex('wide', { slots: 200, dir }));
    expect(opened.every((m) => m.access === 'mapped')).toBe(true);
    const first = opened[0]!;
    const last = opened[199]!;
    expect(last.slot).toBe(199);
    expect(first.inspect().highWater).toBe(200);
    const lease = last.lockSync();
    expect(first.tryLock()).toBeNull();
    lease.release();
    const l0 = first.lockSync();
    expect(last.tryLock()).toBeNull();
    l0.release();
    for (const m of opened) m.close();
    // Pure JS cannot have it: refused before anything is created.
    expect(codeOf(() => openMutex('wider', { slots: 200, dir, access: 'pure-js' }))).toBe(
      'BAKERY_INVALID_ARGUMENT',
    );
    expect(fs.existsSync(path.join(dir, 'bakery.wider'))).toBe(false);
  });

  test('errors of a mapped participant are the BakeryError this module exports (instanceof holds, although @bakery/native is loaded through require)', () => {
    const a = openMutex('inst', { slots: 1, dir });
    expect(a.access).toBe('mapped');
    const b = openMutex('inst', { dir }); // no slot left: tryLock says so
    expect(b.slot).toBe(-1);
    let full: unknown;
    try {
      b.tryLock();
    } catch (err) {
      full = err;
    }
    b.close();
    expect(full).toBeInstanceOf(BakeryError);
    expect((full as BakeryError).code).toBe('BAKERY_NO_FREE_SLOT');
    const lease = a.lockSync();
    let twice: unknown;
    lease.release();
    try {
      lease.release();
    } catch (err) {
      twice = err;
    }
    expect(twice).toBeInstanceOf(BakeryError);
    expect((twice as BakeryError).code).toBe('BAKERY_NOT_HELD');
    a.close();
  });

  test('mapped participants sleep in the futex: a release wakes the next ticket (sleepers counted, no poll)', async () => {
    const a = openMutex('wake', { slots: 4, dir });
    const lease = a.lockSync();
    const counter = path.join(dir, 'counter');
    fs.writeFileSync(counter, Buffer.alloc(4));
    const child = spawn(
      process.execPath,
      [fixture('loop-child.mjs'), distEntry, dir, 'wake', '1', counter],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    expect(await line(child, (l) => l.startsWith('started'))).toBe('started mapped');
    // The child blocks behind us; it must end up asleep on our slot's ticket cell.
    const deadline = Date.now() + 20_000;
    while (a.inspect().slots[a.slot]!.sleepers === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    expect(a.inspect().slots[a.slot]!.sleepers).toBe(1);
    lease.release();
    expect(await exitOf(child)).toEqual({ code: 0, signal: null });
    expect(fs.readFileSync(counter).readInt32LE(0)).toBe(1);
    a.close();
  });
});

describe('mixed participants are refused, never silently unsafe', () => {
  test('a pure-JS participant on a mapped lock, and a mapped one on a pure-JS lock, get BAKERY_ACCESS_MISMATCH and leave every file untouched', () => {
    openMutex('m', { slots: 4, dir }).close();
    openMutex('p', { slots: 4, dir, access: 'pure-js' }).close();
    const before = listing();
    let err: unknown;
    try {
      openMutex('m', { dir, access: 'pure-js' });
    } catch (e) {
      err = e;
    }
    expect((err as { code?: string }).code).toBe('BAKERY_ACCESS_MISMATCH');
    // The message says how to make them agree.
    expect((err as Error).message).toMatch(/mapped lock/);
    expect((err as Error).message).toMatch(/remove it/);
    expect(codeOf(() => openMutex('p', { dir, access: 'mapped' }))).toBe('BAKERY_ACCESS_MISMATCH');
    expect(listing()).toEqual(before);
  });

  test('BAKERY_SHM_ACCESS=pure-js in another process is refused on a mapped lock that is in use; the lock keeps working', () => {
    const m = openMutex('busy', { slots: 4, dir });
    const lease = m.lockSync();
    const before = fs.readFileSync(m.path);
    const r = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { openMutex } = await import(${JSON.stringify(distEntry)});
         try { openMutex('busy', { dir: ${JSON.stringify(dir)} }); console.log('opened'); }
         catch (err) { console.log(err.code); }`,
      ],
      { encoding: 'utf8', env: { ...process.env, BAKERY_SHM_ACCESS: 'pure-js' } },
    );
    expect(r.stdout.trim()).toBe('BAKERY_ACCESS_MISMATCH');
    expect(fs.readFileSync(m.path).equals(before)).toBe(true);
    lease.release();
    m.close();
  });

  test('a bad access option or BAKERY_SHM_ACCESS value is BAKERY_INVALID_ARGUMENT and creates nothing', () => {
    expect(
      codeOf(() => openMutex('x', { slots: 2, dir, access: 'fast' as unknown as 'mapped' })),
    ).toBe('BAKERY_INVALID_ARGUMENT');
    const saved = process.env.BAKERY_SHM_ACCESS;
    process.env.BAKERY_SHM_ACCESS = 'native';
    try {
      expect(codeOf(() => openMutex('x', { slots: 2, dir }))).toBe('BAKERY_INVALID_ARGUMENT');
    } finally {
      if (saved === undefined) delete process.env.BAKERY_SHM_ACCESS;
      else process.env.BAKERY_SHM_ACCESS = saved;
    }
    expect(listing()).toEqual({});
  });
});

// Root may create pid namespaces; elsewhere (no privilege, a locked-down container) the case
// cannot run, and says so.
const unshareProbe = spawnSync('unshare', ['--pid', '--fork', '--kill-child', 'true'], {
  encoding: 'utf8',
});
const noNamespaces =
  unshareProbe.error !== undefined
    ? `unshare is not available (${unshareProbe.error.message})`
    : unshareProbe.status !== 0
      ? `unshare --pid is not permitted here (${unshareProbe.stderr.trim() || `exit ${unshareProbe.status}`})`
      : null;
if (noNamespaces !== null) console.warn(`[skipped] the pid-namespace case: ${noNamespaces}`);

describe('a dead owner is proven dead by the kernel, whatever its pid namespace', () => {
  test.skipIf(noNamespaces !== null)(
    'a holder started in another pid namespace is not reaped while it lives, and once SIGKILLed the waiter gets the lock with ownerDied within staleAfterMs + 1 s',
    async () => {
      const staleAfterMs = 250;
      const waiter = openMutex('ns', { slots: 4, dir, staleAfterMs });
      const child = spawn(
        'unshare',
        [
          '--pid',
          '--fork',
          '--kill-child',
          process.execPath,
          fixture('ns-holder.mjs'),
          distEntry,
          dir,
          'ns',
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      try {
        const report = JSON.parse(await line(child, (l) => l.startsWith('{'))) as {
          pid: number;
          outerPid: number;
          ns: string;
          access: string;
        };
        expect(report.access).toBe('mapped');
        expect(report.ns).not.toBe(fs.readlinkSync('/proc/self/ns/pid'));
        expect(report.pid).toBe(1); // pid 1 of its namespace: meaningless here
        const holder = waiter.inspect().holder!;
        expect(waiter.inspect().slots[holder]!.owner!.pid).toBe(1);
        // Alive: its lease is held, so it is waited for, well past staleAfterMs.
        await expect(waiter.lock({ timeout: 4 * staleAfterMs })).rejects.toMatchObject({
          code: 'BAKERY_TIMEOUT',
        });
        expect(waiter.inspect().holder).toBe(holder);

        process.kill(report.outerPid, 'SIGKILL');
        const killedAt = performance.now();
        const lease = await waiter.lock({ timeout: 30_000 });
        const waited = performance.now() - killedAt;
        expect(lease.ownerDied).toBe(true);
        expect(waited).toBeLessThan(staleAfterMs + 1000);
        lease.markConsistent();
        lease.release();
        expect(waiter.inspect().slots[holder]!.owner).toBeNull();
      } finally {
        child.kill('SIGKILL');
        await exitOf(child);
        waiter.close();
      }
    },
  );
});

describe('truncation and removal under a mapping', () => {
  test('a file truncated under a mapped participant kills it with SIGBUS (never silent); a later open is BAKERY_BAD_LAYOUT and leaves the file as it is', async () => {
    openMutex('cut', { slots: 4, dir }).close(); // the test process keeps no mapping of its own
    const file = path.join(dir, 'bakery.cut');
    const counter = path.join(dir, 'counter');
    fs.writeFileSync(counter, Buffer.alloc(4));
    const child = spawn(
      process.execPath,
      [fixture('loop-child.mjs'), distEntry, dir, 'cut', '100000000', counter],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    expect(await line(child, (l) => l.startsWith('started'))).toBe('started mapped');
    fs.truncateSync(file, 0);
    expect(await exitOf(child)).toEqual({ code: null, signal: 'SIGBUS' });
    expect(codeOf(() => openMutex('cut', { dir }))).toBe('BAKERY_BAD_LAYOUT');
    expect(fs.statSync(file).size).toBe(0);
  });

  test('removeMutex never truncates: participants that have the lock mapped finish on their file with an exact count', async () => {
    const m = openMutex('live', { slots: 4, dir });
    const counter = path.join(dir, 'counter');
    fs.writeFileSync(counter, Buffer.alloc(4));
    // The children open the lock, announce ready.<pid> and wait for `go`: both have the file
    // mapped (and a slot) when it is removed, and they run while we lock. Their output is
    // listened to from the spawn on: awaiting one child's "started" before listening to the
    // other's lost the second child's output whenever it had already run to the end and exited
    // (Node discards what nobody listens to at exit), and the test waited forever.
    const barrier = fs.mkdtempSync(path.join(dir, 'barrier-'));
    const kids = [0, 1].map(() =>
      spawn(
        process.execPath,
        [fixture('loop-child.mjs'), distEntry, dir, 'live', '500', counter, barrier],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      ),
    );
    const runs = kids.map(runOf);
    const ready = () => kids.every((k) => fs.existsSync(path.join(barrier, `ready.${k.pid}`)));
    while (!ready()) {
      for (const k of kids) expect(k.exitCode ?? k.signalCode).toBeNull();
      await new Promise((r) => setTimeout(r, 10));
    }
    const size = fs.statSync(m.path).size;
    expect(removeMutex('live', { dir })).toBe(true);
    fs.writeFileSync(path.join(barrier, 'go'), '');
    for (let i = 0; i < 500; i++) m.lockSync().release();
    for (const r of await Promise.all(runs))
      expect(r).toEqual({ out: 'started mapped\ndone 500\n', code: 0, signal: null });
    expect(fs.readFileSync(counter).readInt32LE(0)).toBe(1000);
    // The unlinked file is intact: its cells are still a valid, idle lock.
    const snap = m.inspect();
    expect(snap.holder).toBeNull();
    expect(snap.capacity).toBe(4);
    expect(snap.acquisitions).toBe(1500);
    m.close();
    expect(size).toBeGreaterThan(0);
  });
});

test("a mapped participant records the mapped access mode and holds its slot's lease (OWNER_LEASE = 1)", () => {
  const m = openMutex('owner', { slots: 2, dir });
  const fd = fs.openSync(m.path, 'r');
  try {
    const cells = new ShmCells(fd, fs.fstatSync(fd).size / 4);
    expect(cells.load(H.ACCESS)).toBe(ACCESS.ATOMIC);
    expect(cells.load(slotBase(m.slot) + S.OWNER)).toBe(process.pid);
    expect(cells.load(slotBase(m.slot) + S.OWNER_LEASE)).toBe(1);
  } finally {
    fs.closeSync(fd);
  }
  m.close();
});
