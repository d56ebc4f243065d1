// Issue 13: a hostile /dev/shm. Another local user can create any name in a world-writable,
// sticky directory; these tests play that user for real (a second uid through setpriv) and
// check that a victim's openMutex fails fast, with a coded error naming the squatter, and
// creates nothing — and that the default per-user directory leaves a squatter nothing to do.
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type ReadableCopy, readableCopy } from '@bakery/conformance';
import { afterAll, afterEach, beforeEach, describe, expect, test } from 'vitest';
import { defaultLockDir, lockDir, lockPath, openMutex, removeMutex } from '../src/index.js';
import { distEntry, freshDir } from './helpers.js';

/** The squatter: `nobody`. */
const SQUATTER = 65534;
/** The victim of the per-user-directory tests: a uid of its own, so no real user's directory is touched. */
const VICTIM = 50_000 + (process.pid % 10_000);
const base = fs.existsSync('/dev/shm') ? '/dev/shm' : '/tmp';
const victimDir = path.join(base, `bakery-${VICTIM}`);

const isRoot = process.getuid?.() === 0;
const hasSetpriv = spawnSync('setpriv', ['--version']).status === 0;
const canSwitchUsers = isRoot && hasSetpriv;
if (!canSwitchUsers) {
  console.warn(
    `[skipped] the second-user tests of hostile.test.ts: they need root and setpriv (${isRoot ? 'setpriv is missing' : 'not root'})`,
  );
}

/** Our environment without BAKERY_SHM_DIR (these tests are about the default directory). */
function baseEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.BAKERY_SHM_DIR;
  return { ...env, ...extra };
}

/** `argv` run as `uid` (null: as ourselves), with a timeout so that a hang fails instead. */
function runAs(
  uid: number | null,
  argv: string[],
  env: NodeJS.ProcessEnv = baseEnv(),
  timeout = 10_000,
): SpawnSyncReturns<string> {
  const [cmd, ...args] =
    uid === null
      ? argv
      : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', ...argv];
  return spawnSync(cmd!, args, { cwd: '/', env, encoding: 'utf8', timeout });
}

/**
 * Run `body` (an ES module's code with `m` = @bakery/shm's dist, `fs`, and `attempt(fn)` →
 * `{ code, message, ms }`) in a fresh node as `uid`; returns what it printed as JSON.
 */
/** What `attempt(fn)` reports. */
interface Attempt {
  code: string;
  message?: string;
  ms: number;
}

/**
 * The built packages as the other uids can load them (the checkout may be private: a CI clone
 * in a 0700 temp directory), made once.
 */
let readable: ReadableCopy | undefined;
afterAll(() => readable?.dispose());
function readableEntry(): string {
  readable ??= readableCopy(
    path.resolve(path.dirname(new URL(distEntry).pathname), '..', '..', '..'),
    ['shm', 'core', 'native'],
  );
  return pathToFileURL(readable.path('shm', 'dist/index.js')).href;
}

function nodeAs<T = Attempt[]>(
  uid: number | null,
  body: string,
  env?: NodeJS.ProcessEnv,
  timeout?: number,
): T {
  const code = `
    import * as fs from 'node:fs';
    const m = await import(${JSON.stringify(readableEntry())});
    const attempt = (fn) => {
      const t = performance.now();
      try { fn(); return { code: 'no error', ms: performance.now() - t }; }
      catch (e) { return { code: e.code ?? e.name, message: e.message, ms: performance.now() - t }; }
    };
    const out = await (async () => { ${body} })();
    console.log(JSON.stringify(out ?? null));
  `;
  const r = runAs(uid, [process.execPath, '--input-type=module', '-e', code], env, timeout);
  if (r.error !== undefined) throw r.error;
  if (r.status !== 0) throw new Error(`node as uid ${uid} exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

/** Run node builtins-only code as `uid` (the squatter needs nothing of ours). */
function squat(code: string): void {
  const r = runAs(SQUATTER, [process.execPath, '-e', `const fs = require('node:fs'); ${code}`]);
  if (r.error !== undefined || r.status !== 0) {
    throw new Error(`squatter failed: ${r.error?.message ?? r.stderr}`);
  }
}

/** Every path owned by `uid` under `roots` (two levels deep), to prove a victim created nothing. */
function ownedBy(uid: number, roots: string[]): string[] {
  const found: string[] = [];
  const visit = (p: string, depth: number) => {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      return; // someone else's temp file, gone again
    }
    if (st.uid === uid) found.push(p);
    if (depth === 0 || !st.isDirectory()) return;
    let entries: string[] = [];
    try {
      entries = fs.readdirSync(p);
    } catch {
      return;
    }
    for (const e of entries) visit(path.join(p, e), depth - 1);
  };
  for (const r of roots) visit(r, 2);
  return found;
}

/** Entries of `d` with type, owner and mode (recursively), to prove nothing changed. */
function listing(d: string): Record<string, string> {
  const out: Record<string, string> = {};
  const visit = (p: string, rel: string) => {
    for (const e of fs.readdirSync(p).sort()) {
      const f = path.join(p, e);
      const st = fs.lstatSync(f);
      out[path.join(rel, e)] = `${st.mode.toString(8)} ${st.uid} ${st.size}`;
      if (st.isDirectory()) visit(f, path.join(rel, e));
    }
  };
  visit(d, '');
  return out;
}

const ACCESSES = ['mapped', 'pure-js'] as const;

describe.skipIf(!canSwitchUsers)('the per-user default directory against a second user', () => {
  beforeEach(() => {
    fs.rmSync(victimDir, { recursive: true, force: true });
  });
  afterEach(() => {
    fs.rmSync(victimDir, { recursive: true, force: true });
  });

  test('it is <base>/bakery-<uid>, made 0700 and owned by the victim; the squatter can plant nothing inside', () => {
    const made = nodeAs<Record<string, unknown>>(
      VICTIM,
      `
      const mapped = m.openMutex('jobs', { slots: 4, access: 'mapped' });
      const pure = m.openMutex('pure', { slots: 4, access: 'pure-js' });
      pure.lockSync().release();
      const st = fs.lstatSync(m.lockDir());
      const r = { dir: m.lockDir(), def: m.defaultLockDir(), path: mapped.path, mode: st.mode & 0o777, uid: st.uid,
        entries: fs.readdirSync(m.lockDir()).sort() };
      mapped.close(); pure.close();
      return r;
    `,
    );
    expect(made).toEqual({
      dir: victimDir,
      def: victimDir,
      path: path.join(victimDir, 'bakery.jobs'),
      mode: 0o700,
      uid: VICTIM,
      entries: ['bakery.jobs', 'bakery.pure'],
    });
    // The squatter tries everything a denial needs: plant a registry, a lock file, a temp name,
    // a symlink, a directory; read or replace the victim's lock.
    const tries = {
      registry: `fs.mkdirSync(${JSON.stringify(path.join(victimDir, '.bakery.pure.registry'))})`,
      file: `fs.writeFileSync(${JSON.stringify(path.join(victimDir, 'bakery.new'))}, 'x')`,
      symlink: `fs.symlinkSync('/etc/passwd', ${JSON.stringify(path.join(victimDir, 'bakery.link'))})`,
      open: `fs.openSync(${JSON.stringify(path.join(victimDir, 'bakery.jobs'))}, 'r')`,
      list: `fs.readdirSync(${JSON.stringify(victimDir)})`,
      rename: `fs.writeFileSync('/dev/shm/.squat-${process.pid}', ''); fs.renameSync('/dev/shm/.squat-${process.pid}', ${JSON.stringify(path.join(victimDir, 'bakery.jobs'))})`,
    };
    for (const [what, code] of Object.entries(tries)) {
      const r = runAs(SQUATTER, [
        process.execPath,
        '-e',
        `const fs = require('node:fs'); try { ${code}; console.log('done') } catch (e) { console.log(e.code) }`,
      ]);
      expect(r.stdout.trim(), what).toBe('EACCES');
    }
    fs.rmSync(`/dev/shm/.squat-${process.pid}`, { force: true });
    const fifo = runAs(SQUATTER, ['mkfifo', path.join(victimDir, 'bakery.fifo')]);
    expect(fifo.status).not.toBe(0);
    expect(fs.readdirSync(victimDir).sort()).toEqual(['bakery.jobs', 'bakery.pure']);
  });

  const squats: [string, string][] = [
    ['a world-writable directory', `fs.mkdirSync(D); fs.chmodSync(D, 0o777);`],
    ['a private directory', `fs.mkdirSync(D, 0o700);`],
    ['a sticky world-writable directory', `fs.mkdirSync(D); fs.chmodSync(D, 0o1777);`],
    ['a symlink to a directory of the victim', `fs.symlinkSync(TARGET, D);`],
    ['a regular file', `fs.writeFileSync(D, '');`],
    ['a FIFO', `require('node:child_process').execFileSync('mkfifo', [D]);`],
  ];
  for (const [what, plant] of squats) {
    test(`the directory's path squatted by uid ${SQUATTER} as ${what}: BAKERY_FOREIGN_OWNER naming ${SQUATTER}, at once, and nothing created`, () => {
      // A directory the victim owns, for the symlink to point at (stat would say "ours").
      const target = fs.mkdtempSync(path.join(base, 'bakery-hostile-target-'));
      fs.chownSync(target, VICTIM, VICTIM);
      fs.chmodSync(target, 0o700);
      try {
        squat(
          `const D = ${JSON.stringify(victimDir)}; const TARGET = ${JSON.stringify(target)}; ${plant}`,
        );
        const squatted = fs.lstatSync(victimDir);
        expect(squatted.uid).toBe(SQUATTER);
        for (const access of ACCESSES) {
          const r = nodeAs(
            VICTIM,
            `return [
              attempt(() => m.openMutex('victim', { slots: 4 })),
              attempt(() => m.openMutex('victim')),
              attempt(() => m.openMutex('victim', { slots: 4, create: false })),
              attempt(() => m.removeMutex('victim')),
            ];`,
            baseEnv({ BAKERY_SHM_ACCESS: access }),
          );
          for (const e of r) {
            expect(e.code, JSON.stringify(e)).toBe('BAKERY_FOREIGN_OWNER');
            expect(e.message).toContain(`uid ${SQUATTER}`);
            expect(e.message).toContain(victimDir);
            expect(e.ms).toBeLessThan(1000);
          }
        }
        // Nothing anywhere belongs to the victim (but its own target), the squat is as it was.
        expect(ownedBy(VICTIM, [base, '/tmp']).filter((p) => p !== target)).toEqual([]);
        expect(fs.readdirSync(target)).toEqual([]);
        const now = fs.lstatSync(victimDir);
        expect([now.ino, now.mode, now.uid]).toEqual([squatted.ino, squatted.mode, squatted.uid]);
        if (now.isDirectory()) expect(fs.readdirSync(victimDir)).toEqual([]);
      } finally {
        fs.rmSync(target, { recursive: true, force: true });
      }
    });
  }

  test("the victim's own path in a wrong shape (a symlink, a file, a group-readable directory) is BAKERY_BAD_LAYOUT and left as it is", () => {
    const r = nodeAs<Record<string, [Attempt, Attempt, boolean, number?]>>(
      VICTIM,
      `
      const D = m.lockDir();
      const out = {};
      for (const [what, make] of [
        ['symlink', () => fs.symlinkSync('/tmp', D)],
        ['file', () => fs.writeFileSync(D, 'x')],
        ['dir 0755', () => { fs.mkdirSync(D); fs.chmodSync(D, 0o755); }],
        ['dir 0770', () => { fs.mkdirSync(D); fs.chmodSync(D, 0o770); }],
      ]) {
        make();
        const before = fs.lstatSync(D);
        out[what] = [attempt(() => m.openMutex('x', { slots: 2 })), attempt(() => m.removeMutex('x'))];
        const after = fs.lstatSync(D);
        out[what].push(before.mode === after.mode && before.ino === after.ino);
        if (after.isDirectory()) out[what].push(fs.readdirSync(D).length);
        fs.rmSync(D, { recursive: true, force: true });
      }
      return out;
    `,
    );
    for (const [what, [open, remove, same, entries]] of Object.entries(r)) {
      expect(open.code, `${what}: ${open.message}`).toBe('BAKERY_BAD_LAYOUT');
      expect(remove.code, what).toBe('BAKERY_BAD_LAYOUT');
      expect(same, what).toBe(true);
      if (entries !== undefined) expect(entries, what).toBe(0);
    }
  });

  test('calls that cannot create a lock never create the directory: removeMutex, create: false, no slots, bad options', () => {
    const r = nodeAs<(Attempt | boolean)[]>(
      VICTIM,
      `return [
        attempt(() => { if (m.removeMutex('x') !== false) throw new Error('removed?'); }),
        attempt(() => m.openMutex('x', { slots: 2, create: false })),
        attempt(() => m.openMutex('x')),
        attempt(() => m.openMutex('x', { slots: 2, spin: -1 })),
        attempt(() => m.openMutex('x', { slots: 2, staleAfterMs: 0 })),
        attempt(() => m.openMutex('x', { slots: 2, robust: 'sometimes' })),
        attempt(() => m.openMutex('x', { slots: 0 })),
        attempt(() => m.openMutex('.x', { slots: 2 })),
        fs.existsSync(m.lockDir()),
      ];`,
    );
    expect(r.map((e) => (typeof e === 'object' ? e.code : e))).toEqual([
      'no error',
      'BAKERY_NOT_FOUND',
      'BAKERY_INVALID_ARGUMENT',
      'BAKERY_INVALID_ARGUMENT',
      'BAKERY_INVALID_ARGUMENT',
      'BAKERY_INVALID_ARGUMENT',
      'BAKERY_INVALID_ARGUMENT',
      'BAKERY_BAD_NAME',
      false,
    ]);
    expect(fs.existsSync(victimDir)).toBe(false);
  });

  test('the same user under different environments (cron, systemd, a login shell) gets the same directory', () => {
    const envs: NodeJS.ProcessEnv[] = [
      { PATH: process.env.PATH },
      baseEnv({ HOME: '/nonexistent', USER: 'someone', LOGNAME: 'someone' }),
      baseEnv({ TMPDIR: '/var/tmp/elsewhere', XDG_RUNTIME_DIR: `/run/user/${VICTIM}` }),
    ];
    for (const env of envs) {
      expect(nodeAs(VICTIM, 'return [m.lockDir(), m.defaultLockDir()];', env)).toEqual([
        victimDir,
        victimDir,
      ]);
    }
  });
});

describe.skipIf(!canSwitchUsers)('a shared directory the victim chose (dir option)', () => {
  let dir: string;
  beforeEach(() => {
    dir = freshDir();
    fs.chmodSync(dir, 0o1777); // like /dev/shm: anyone may create names, only owners remove them
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test(`a lock file planted by uid ${SQUATTER} is BAKERY_FOREIGN_OWNER naming it, and nothing changes`, () => {
    squat(
      `fs.writeFileSync(${JSON.stringify(path.join(dir, 'bakery.victim'))}, Buffer.alloc(4096), { mode: 0o666 });`,
    );
    const before = listing(dir);
    for (const access of ACCESSES) {
      for (const options of [{ slots: 4 }, {}, { create: false }]) {
        let err: { code?: string; message: string } | undefined;
        try {
          openMutex('victim', { ...options, dir, access });
        } catch (e) {
          err = e as typeof err;
        }
        expect(err?.code).toBe('BAKERY_FOREIGN_OWNER');
        expect(err?.message).toContain(`uid ${SQUATTER}`);
      }
    }
    expect(listing(dir)).toEqual(before);
  });

  test(`a registry directory planted by uid ${SQUATTER} fails a pure-JS open at once with BAKERY_FOREIGN_OWNER naming it, before the lock file is created; a mapped lock ignores it`, () => {
    const registry = path.join(dir, '.bakery.victim.registry');
    squat(
      `fs.mkdirSync(${JSON.stringify(registry)}); fs.writeFileSync(${JSON.stringify(path.join(registry, 'o.1.1.1.1.1.abc'))}, '');`,
    );
    const before = listing(dir);
    const t = performance.now();
    let err: { code?: string; message: string } | undefined;
    try {
      openMutex('victim', { slots: 4, dir, access: 'pure-js' });
    } catch (e) {
      err = e as typeof err;
    }
    expect(performance.now() - t).toBeLessThan(1000); // not the registry's 30 s patience
    expect(err?.code).toBe('BAKERY_FOREIGN_OWNER');
    expect(err?.message).toContain(`uid ${SQUATTER}`);
    expect(listing(dir)).toEqual(before);
    // On an existing pure-JS lock the slot claim fails as fast, and the lock file is unchanged.
    fs.renameSync(registry, path.join(dir, 'aside'));
    const lock = openMutex('victim', { slots: 4, dir, access: 'pure-js' });
    lock.close();
    fs.renameSync(path.join(dir, 'aside'), registry);
    const bytes = fs.readFileSync(lock.path);
    const t2 = performance.now();
    let err2: { code?: string; message: string } | undefined;
    try {
      openMutex('victim', { dir });
    } catch (e) {
      err2 = e as typeof err2;
    }
    expect(performance.now() - t2).toBeLessThan(1000);
    expect(err2?.code).toBe('BAKERY_FOREIGN_OWNER');
    expect(err2?.message).toContain(`uid ${SQUATTER}`);
    expect(fs.readFileSync(lock.path)).toEqual(bytes);
    // A mapped lock claims slots by compareExchange: the planted directory is never used.
    const mapped = openMutex('mapped', { slots: 4, dir, access: 'mapped' });
    squat(`fs.mkdirSync(${JSON.stringify(path.join(dir, '.bakery.mapped.registry'))});`);
    mapped.lockSync().release();
    mapped.close();
  });

  test(`sharing stays possible explicitly: mode 0o666 + allowForeignOwner lets uid ${SQUATTER} take part, on both paths`, () => {
    for (const access of ACCESSES) {
      const name = `shared-${access}`;
      const m = openMutex(name, { slots: 4, dir, mode: 0o666, access });
      const r = nodeAs(
        SQUATTER,
        `return [
          attempt(() => m.openMutex(${JSON.stringify(name)}, { dir: ${JSON.stringify(dir)} })),
          attempt(() => { const x = m.openMutex(${JSON.stringify(name)}, { dir: ${JSON.stringify(dir)}, allowForeignOwner: true });
            x.lockSync().release(); x.close(); }),
        ];`,
      );
      expect(r.map((e) => e.code)).toEqual(['BAKERY_FOREIGN_OWNER', 'no error']);
      m.lockSync().release();
      expect(m.inspect().acquisitions).toBe(2);
      m.close();
    }
  });
});

// mkfifo is coreutils: on every Linux these tests run on; a missing one fails, not skips.
describe('planted FIFOs: every open is non-blocking', () => {
  let dir: string;
  beforeEach(() => {
    dir = freshDir();
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** openMutex in a child with a 5 s timeout: a regression fails instead of hanging the suite. */
  function openInChild<T = Attempt[]>(body: string): T {
    return nodeAs<T>(null, body, baseEnv({ BAKERY_SHM_DIR: dir }), 5_000);
  }

  for (const access of ACCESSES) {
    test(`${access}: a FIFO at the lock path is BAKERY_BAD_LAYOUT "not a regular file", at once, and is left as it is`, () => {
      const fifo = path.join(dir, 'bakery.victim');
      expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
      const r = openInChild(`return [
        attempt(() => m.openMutex('victim', { slots: 4, access: '${access}' })),
        attempt(() => m.openMutex('victim', { access: '${access}' })),
        attempt(() => m.openMutex('victim', { create: false, access: '${access}' })),
      ];`);
      for (const e of r) {
        expect(e.code, e.message).toBe('BAKERY_BAD_LAYOUT');
        expect(e.message).toContain('not a regular file');
        expect(e.ms).toBeLessThan(1000);
      }
      expect(fs.lstatSync(fifo).isFIFO()).toBe(true);
      expect(fs.readdirSync(dir)).toEqual(['bakery.victim']);
    });
  }

  test('pure-js: a FIFO at the registry path is BAKERY_BAD_LAYOUT at once, creating no lock file, and fails a claim on an existing lock the same way', () => {
    const fifo = path.join(dir, '.bakery.victim.registry');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const r = openInChild<[Attempt, string[]]>(`return [
      attempt(() => m.openMutex('victim', { slots: 4, access: 'pure-js' })),
      fs.readdirSync(${JSON.stringify(dir)}),
    ];`);
    expect(r[0].code, r[0].message).toBe('BAKERY_BAD_LAYOUT');
    expect(r[0].message).toContain('FIFO');
    expect(r[1]).toEqual(['.bakery.victim.registry']);
    fs.rmSync(fifo);
    openMutex('victim', { slots: 4, dir, access: 'pure-js' }).close();
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const again = openInChild<Attempt>(
      `return attempt(() => m.openMutex('victim', { access: 'pure-js' }));`,
    );
    expect(again.code, again.message).toBe('BAKERY_BAD_LAYOUT');
    expect(again.ms).toBeLessThan(1000);
    expect(fs.lstatSync(fifo).isFIFO()).toBe(true);
  });

  test('mapped: a FIFO at the registry path is never opened; the lock works', () => {
    const fifo = path.join(dir, '.bakery.victim.registry');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const r = openInChild<Attempt>(`return attempt(() => {
      const x = m.openMutex('victim', { slots: 4, access: 'mapped' });
      x.lockSync().release();
      x.close();
    });`);
    expect(r.code).toBe('no error');
    expect(fs.lstatSync(fifo).isFIFO()).toBe(true);
  });
});

test('the default directory depends on the real uid only, never on HOME, USER, TMPDIR or XDG_RUNTIME_DIR', () => {
  const uid = process.getuid?.();
  if (uid === undefined) {
    console.warn('[skipped] no process.getuid on this platform');
    return;
  }
  const expected = path.join(base, `bakery-${uid}`);
  expect(defaultLockDir()).toBe(expected);
  const saved = process.env.BAKERY_SHM_DIR;
  delete process.env.BAKERY_SHM_DIR;
  try {
    expect(lockDir()).toBe(expected);
  } finally {
    if (saved !== undefined) process.env.BAKERY_SHM_DIR = saved;
  }
  expect(lockDir('/somewhere')).toBe('/somewhere');
  const envs: NodeJS.ProcessEnv[] = [
    {},
    { PATH: process.env.PATH },
    baseEnv({ HOME: '/nonexistent', USER: 'someone-else', LOGNAME: 'someone-else' }),
    baseEnv({ TMPDIR: '/var/tmp/elsewhere', TMP: '/x', TEMP: '/y' }),
    baseEnv({ XDG_RUNTIME_DIR: '/run/user/12345' }),
  ];
  for (const env of envs) {
    expect(nodeAs(null, 'return [m.lockDir(), m.defaultLockDir()];', env)).toEqual([
      expected,
      expected,
    ]);
  }
  // Computing the path creates nothing.
  if (!fs.existsSync(expected)) {
    lockDir();
    expect(fs.existsSync(expected)).toBe(false);
  }
});

if (!fs.existsSync('/dev/shm')) console.warn('[skipped] the upgrade guard: no /dev/shm here');
test.skipIf(!fs.existsSync('/dev/shm'))(
  "upgrades never split a lock silently: an earlier release's lock file of ours at /dev/shm/bakery.<name> blocks creating the same name in the per-user directory",
  () => {
    const saved = process.env.BAKERY_SHM_DIR;
    delete process.env.BAKERY_SHM_DIR;
    const name = `legacy-${process.pid}-${Date.now()}`;
    const legacy = `/dev/shm/bakery.${name}`;
    try {
      fs.writeFileSync(legacy, Buffer.alloc(128), { mode: 0o600 }); // what release 0.1 left
      let err: unknown;
      try {
        openMutex(name, { slots: 2 });
      } catch (e) {
        err = e;
      }
      expect((err as { code?: string }).code).toBe('BAKERY_BAD_LAYOUT');
      expect((err as Error).message).toMatch(/earlier bakery release/);
      expect(fs.existsSync(lockPath(name))).toBe(false);
      fs.rmSync(legacy);
      const m = openMutex(name, { slots: 2 });
      expect(m.path).toBe(lockPath(name));
      m.close();
      expect(removeMutex(name)).toBe(true);
    } finally {
      fs.rmSync(legacy, { force: true });
      if (saved !== undefined) process.env.BAKERY_SHM_DIR = saved;
    }
  },
);
