import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { codeOf } from '@bakery/conformance';
import { afterEach, describe, expect, test } from 'vitest';
import {
  clusterOptions,
  createMutex,
  FD_ENV,
  forkOptions,
  type MmapMutex,
  openMutex,
} from '../src/index.js';

const primary = fileURLToPath(new URL('./fixtures/cluster-primary.mjs', import.meta.url));

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0).reverse()) {
    try {
      f();
    } catch {}
  }
});

interface Ready {
  id: number;
  pid: number;
  slot: number;
  tryLock?: string;
  lockTimeout?: string;
}
interface Result {
  primarySlot: number;
  ready: Ready[];
  done: { id: number; lines: number }[];
  exits: { code: number | null; signal: string | null }[];
  claimedAfter: number;
  ticketsAfter: number;
  acquisitions: number;
}

/** Runs the fixture primary with `workers` cluster workers; resolves with its report and the file's lines. */
function runCluster(
  workers: number,
  lines: number,
  slots: number,
): Promise<{ result: Result; written: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'bakery-mmap-cluster-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'out.txt');
  // Not a cluster worker ourselves, whatever our environment says.
  const env = { ...process.env };
  delete env.NODE_UNIQUE_ID;
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [primary, file, String(workers), String(lines), String(slots)],
      { env, timeout: 100_000, maxBuffer: 1 << 20 },
      (err, stdout, stderr) => {
        if (err) {
          reject(new Error(`primary failed: ${err.message}\n${stdout}\n${stderr}`));
          return;
        }
        const result = JSON.parse(stdout.trim().split('\n').pop()!) as Result;
        const text = readFileSync(file, 'utf8');
        resolve({ result, written: text.split('\n').slice(0, -1) });
      },
    );
  });
}

const LINE = /^worker (\d+) line (\d+) (0123456789){3} end$/;

/** Every line whole, and each worker's lines exactly 0 … lines-1, in order. */
function checkLines(written: string[], workers: number, lines: number): void {
  const broken = written.filter((l) => !LINE.test(l));
  expect(broken.slice(0, 5), `${broken.length} of ${written.length} lines interleaved`).toEqual([]);
  const seen = Array.from({ length: workers }, () => [] as number[]);
  for (const l of written) {
    const m = LINE.exec(l)!;
    seen[Number(m[1])]!.push(Number(m[2]));
  }
  for (let w = 0; w < workers; w++) {
    expect(seen[w]!.length, `lines of worker ${w}`).toBe(lines);
    expect(seen[w]).toEqual(Array.from({ length: lines }, (_, i) => i));
  }
  expect(written.length).toBe(workers * lines);
}

describe('node:cluster workers (a primary and its workers, through clusterOptions())', () => {
  const LINES = 150;

  test('4 workers on createMutex({ slots: 4 }) append 150 lines each, every line written in 4 pieces with pauses: all intact, exact per worker; the primary takes no slot', async () => {
    const { result, written } = await runCluster(4, LINES, 4);
    expect(result.exits).toEqual(Array(4).fill({ code: 0, signal: null }));
    // The primary never locked: all 4 slots went to the workers, none waited for one.
    expect(result.primarySlot).toBe(-1);
    expect(result.ready.map((r) => r.slot).sort()).toEqual([0, 1, 2, 3]);
    checkLines(written, 4, LINES);
    expect(result.acquisitions).toBe(4 * LINES);
    // The workers closed: nothing claimed, no ticket left.
    expect(result.claimedAfter).toBe(0);
    expect(result.ticketsAfter).toBe(0);
  }, 120_000);

  test('a 5th worker on slots: 4 opens without a slot — tryLock() and lock({ timeout: 100 }) are BAKERY_NO_FREE_SLOT while the others hold theirs — then takes turns: all 5 finish exact', async () => {
    const { result, written } = await runCluster(5, LINES, 4);
    expect(result.exits).toEqual(Array(5).fill({ code: 0, signal: null }));
    expect(result.primarySlot).toBe(-1);
    const slotless = result.ready.filter((r) => r.slot === -1);
    expect(slotless).toHaveLength(1);
    expect(slotless[0]).toMatchObject({
      tryLock: 'BAKERY_NO_FREE_SLOT',
      lockTimeout: 'BAKERY_NO_FREE_SLOT',
    });
    expect(
      result.ready
        .filter((r) => r.slot !== -1)
        .map((r) => r.slot)
        .sort(),
    ).toEqual([0, 1, 2, 3]);
    checkLines(written, 5, LINES);
    expect(result.acquisitions).toBe(5 * LINES);
    expect(result.claimedAfter).toBe(0);
  }, 120_000);
});

describe('capacity: the creator claims its slot at its first lock', () => {
  function create(slots: number, claim?: 'open' | 'lock'): MmapMutex {
    const m = createMutex({ slots, ...(claim === undefined ? {} : { claim }) });
    cleanup.push(() => m.close());
    return m;
  }
  function join(m: MmapMutex): MmapMutex {
    const o = openMutex({ fd: m.fd });
    cleanup.push(() => o.close());
    return o;
  }

  test('slots: 2 fits two other participants; the creator then waits for a slot like anyone', async () => {
    const creator = create(2);
    expect(creator.slot).toBe(-1);
    expect(creator.inspect().highWater).toBe(0);
    const [a, b] = [join(creator), join(creator)];
    expect([a.slot, b.slot]).toEqual([0, 1]);
    // The lock is free but no slot is.
    expect(codeOf(() => creator.tryLock())).toBe('BAKERY_NO_FREE_SLOT');
    // Waiting for one: a's release gives a's slot up for it.
    const waiting = creator.lock({ timeout: 5_000 });
    await new Promise((r) => setTimeout(r, 20));
    a.lockSync().release();
    const lease = await waiting;
    expect(creator.slot).toBe(0);
    expect(a.slot).toBe(-1);
    lease.release();
  });

  test('the creator claims at its first lockSync()/tryLock() and keeps the slot', () => {
    const creator = create(2);
    creator.lockSync().release();
    expect(creator.slot).toBe(0);
    const other = create(2);
    other.tryLock()!.release();
    expect(other.slot).toBe(0);
  });

  test("claim: 'open' claims at create, as before", () => {
    const creator = create(1, 'open');
    expect(creator.slot).toBe(0);
    const late = join(creator);
    expect(late.slot).toBe(-1);
  });

  test('slots: 1 and a creator that never locks: the one other participant gets the slot', () => {
    const creator = create(1);
    expect(join(creator).slot).toBe(0);
    expect(creator.slot).toBe(-1);
  });
});

describe('clusterOptions()', () => {
  test('settings.stdio carries the fd after an ipc entry, env names its index and nothing else', () => {
    const m = createMutex({ slots: 2 });
    cleanup.push(() => m.close());
    const { settings, env } = m.clusterOptions();
    expect(settings).toEqual({ stdio: ['inherit', 'inherit', 'inherit', 'ipc', m.fd] });
    expect(env).toEqual({ [FD_ENV]: '4' });
    expect(clusterOptions(m.fd)).toEqual({ settings, env });
  });

  test('base settings are kept; ipc is added where missing, kept where present; silent pipes', () => {
    const fd = 7;
    const base = {
      exec: 'worker.js',
      args: ['--x'],
      execArgv: [],
      serialization: 'advanced' as const,
    };
    expect(clusterOptions(fd, { ...base, stdio: ['ignore', 'inherit', 'inherit'] })).toEqual({
      settings: { ...base, stdio: ['ignore', 'inherit', 'inherit', 'ipc', fd] },
      env: { [FD_ENV]: '4' },
    });
    expect(clusterOptions(fd, { stdio: ['pipe', 'ipc', 'pipe', 'pipe'] })).toEqual({
      settings: { stdio: ['pipe', 'ipc', 'pipe', 'pipe', fd] },
      env: { [FD_ENV]: '4' },
    });
    expect(clusterOptions(fd, { silent: true }).settings).toEqual({
      silent: true,
      stdio: ['pipe', 'pipe', 'pipe', 'ipc', fd],
    });
    // The same rule for child_process.fork, where silent used to be lost.
    expect(forkOptions(fd, { silent: true }).stdio).toEqual(['pipe', 'pipe', 'pipe', 'ipc', fd]);
    // A string stdio, as fork accepts it (cluster passes it to fork).
    expect(clusterOptions(fd, { stdio: 'ignore' as unknown as [] }).settings.stdio).toEqual([
      'ignore',
      'ignore',
      'ignore',
      'ipc',
      fd,
    ]);
  });

  test('bad input is BAKERY_INVALID_ARGUMENT', () => {
    for (const fd of [-1, 1.5, Number.NaN, '3'])
      expect(codeOf(() => clusterOptions(fd as number))).toBe('BAKERY_INVALID_ARGUMENT');
    for (const base of [5, 'inherit', [], true])
      expect(codeOf(() => clusterOptions(3, base as object))).toBe('BAKERY_INVALID_ARGUMENT');
    for (const stdio of [5, {}, true])
      expect(codeOf(() => clusterOptions(3, { stdio } as object))).toBe('BAKERY_INVALID_ARGUMENT');
    expect(codeOf(() => forkOptions(3, 5 as unknown as object))).toBe('BAKERY_INVALID_ARGUMENT');
  });
});
