import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Backend, cjsProgram, esmProgram, tsPrograms } from './consumers.js';
import { noPgReason } from './pg-server.js';

// Pack every public package, then install each backend from its tarball (plus core's, and
// @bakery/native's for the backends that map memory) into a fresh project under os.tmpdir(), far
// from this monorepo's node_modules, and use it from ESM, CommonJS and TypeScript with two real
// participants. Then take the binding away and show what still works.

const repo = fileURLToPath(new URL('../../..', import.meta.url));
const requireHere = createRequire(import.meta.url);
// The repo's pinned TypeScript and @types/node serve the consumer's type check (only those).
const tsc = join(requireHere.resolve('typescript/package.json'), '..', 'bin', 'tsc');
const typesNode = join(requireHere.resolve('@types/node/package.json'), '..');
const PACKAGES = ['core', 'native', 'sab', 'mmap', 'shm', 'pg', 'conformance', 'cli'] as const;
/** The one binary @bakery/native ships, as packed and as installed. */
const PREBUILD = 'prebuilds/linux-x64/@bakery+native.node';
/** The sources a from-source build (`npm rebuild @bakery/native`) needs. */
const NATIVE_SOURCES = readdirSync(join(repo, 'packages/native/src/native'))
  .filter((f) => /\.(cc|h)$/.test(f))
  .map((f) => `src/native/${f}`);

let root: string;
const tarball: Record<string, string> = {};
const packed: Record<string, string[]> = {};

/** The environment of a user's shell: no npm_* variables of the `npm test` running us, no NODE_PATH. */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (
      !/^npm_/i.test(k) &&
      k !== 'NODE_PATH' &&
      k !== 'NODE_OPTIONS' &&
      !k.startsWith('VITEST') &&
      !k.startsWith('BAKERY_')
    )
      env[k] = v;
  }
  return { ...env, ...extra };
}

function sh(cmd: string, args: string[], cwd: string, env = userEnv()): string {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) {
    throw new Error(
      `${cmd} ${args.join(' ')} failed (${r.status}) in ${cwd}\n${r.stdout}\n${r.stderr}`,
    );
  }
  return r.stdout;
}

beforeAll(() => {
  root = realpathSync(mkdtempSync(join(tmpdir(), 'bakery-install-')));
  const dest = join(root, 'tarballs');
  mkdirSync(dest);
  const ws = PACKAGES.flatMap((p) => ['-w', `@bakery/${p}`]);
  const out = sh('npm', ['pack', ...ws, '--pack-destination', dest, '--json'], repo);
  for (const entry of JSON.parse(out) as Array<{
    name: string;
    filename: string;
    files: Array<{ path: string }>;
  }>) {
    tarball[entry.name] = join(dest, entry.filename);
    packed[entry.name] = entry.files.map((f) => f.path);
  }
});

afterAll(() => {
  if (root !== undefined) rmSync(root, { recursive: true, force: true });
});

test('every package packs with its LICENSE, README, ESM + CJS builds and both declaration flavours', () => {
  for (const p of PACKAGES) {
    const files = packed[`@bakery/${p}`];
    expect(files, p).toEqual(
      expect.arrayContaining([
        'LICENSE',
        'README.md',
        'package.json',
        'dist/index.js',
        'dist/index.cjs',
        'dist/index.d.ts',
        'dist/index.d.cts',
      ]),
    );
    expect(
      files.some((f) => f.startsWith('src/') && f.endsWith('.ts')),
      p,
    ).toBe(false);
  }
  // The bin npm links is committed (bin/bakery.js, there before any build); it runs dist/bin.js.
  expect(packed['@bakery/cli']).toEqual(expect.arrayContaining(['bin/bakery.js', 'dist/bin.js']));
  // The examples the package READMEs tell users to run from node_modules/@bakery/<name>.
  expect(packed['@bakery/sab']).toContain('examples/sixteen-workers.mjs');
  expect(packed['@bakery/mmap']).toContain('examples/children.mjs');
  expect(packed['@bakery/shm']).toEqual(
    expect.arrayContaining(['examples/append.mjs', 'examples/crowd.mjs']),
  );
});

test('@bakery/native ships its linux-x64 prebuild and what a from-source build needs; no other package ships native code', () => {
  const native = packed['@bakery/native']!;
  expect(NATIVE_SOURCES.length).toBeGreaterThan(0);
  expect(native).toEqual(expect.arrayContaining([PREBUILD, 'binding.gyp', ...NATIVE_SOURCES]));
  // linux-arm64 too when the build had the cross compiler (packages/native/test/pack.test.ts).
  const arm64 = 'prebuilds/linux-arm64/@bakery+native.node';
  for (const f of native.filter((f) => f.endsWith('.node'))) expect([PREBUILD, arm64]).toContain(f);
  for (const p of PACKAGES.filter((p) => p !== 'native')) {
    const nativeCode = packed[`@bakery/${p}`]!.filter((f) =>
      /(^prebuilds\/|^build\/|^src\/native\/|binding\.gyp$|\.node$|\.(cc|h)$)/.test(f),
    );
    expect(nativeCode, p).toEqual([]);
  }
});

/** Our packages a backend's project installs from tarballs (the rest come from the registry). */
function ours(backend: Backend): string[] {
  return {
    sab: ['core', 'sab'],
    // @bakery/native is not published: npm must get it from its tarball, not the registry.
    mmap: ['core', 'mmap', 'native'],
    // @bakery/cli depends on @bakery/pg (for `bakery inspect --pg`).
    shm: ['cli', 'core', 'native', 'pg', 'shm'],
  }[backend];
}

/** A fresh project `name` with only `packages` of ours installed, each from its tarball. */
function project(name: string, packages: string[], flags: string[] = []): string {
  const dir = join(root, name);
  mkdirSync(dir);
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: `try-${name}`, version: '1.0.0', private: true }, null, 2),
  );
  const tgz = packages.map((p) => tarball[`@bakery/${p}`]!);
  // --ignore-scripts: the native backends must work from the shipped prebuild, with no compiler
  // and no install script.
  sh(
    'npm',
    [
      'install',
      ...tgz,
      '--no-audit',
      '--no-fund',
      '--ignore-scripts',
      '--no-package-lock',
      ...flags,
    ],
    dir,
  );
  return dir;
}

/** What a consumer program (consumers.ts) prints. */
interface Report {
  backend: Backend;
  acquisitions: number;
  /** `mutex.access` (shm only; null for the others) and `inspect().backend`, A's and B's. */
  access: string | null;
  described: string;
  peer: { access: string | null; described: string };
  /** The files of @bakery/native and node-gyp-build the process loaded. */
  native: string[];
  resolved: string[];
  /** CommonJS only: every module in require.cache. */
  loaded?: string[];
}

/** Runs consumer `file` in `dir`. */
function consumer(dir: string, file: string, env: NodeJS.ProcessEnv): Report {
  return JSON.parse(sh(process.execPath, [file], dir, env));
}

/** Runs an inline ES module in `dir` and parses the one JSON line it prints. */
function esm(dir: string, script: string, env: NodeJS.ProcessEnv): Record<string, unknown> {
  return JSON.parse(sh(process.execPath, ['--input-type=module', '-e', script], dir, env));
}

/** Inline-script helpers: `attempt(f)` is f's result, or the code and message it threw. */
const ATTEMPT = `
  const attempt = (f) => {
    try { return f(); } catch (err) { return { code: err.code, message: err.message, cause: err.cause?.message ?? null }; }
  };
  const open = (name, opts) => attempt(() => {
    const m = shm.openMutex(name, opts);
    const r = { access: m.access, described: m.inspect().backend, path: m.path };
    m.close();
    return r;
  });`;

/**
 * Ways to make the installed binding unloadable: take its prebuilds (and any local build) away,
 * or leave a corrupt binary where the prebuild was. Each returns the undo.
 */
const BREAKS: Record<string, (nativeDir: string) => () => void> = {
  'prebuilds and build/ removed': (nativeDir) => {
    const moved = ['prebuilds', 'build']
      .map((d) => join(nativeDir, d))
      .filter((d) => existsSync(d))
      .map((d) => {
        renameSync(d, `${d}.away`);
        return d;
      });
    expect(moved).toEqual([join(nativeDir, 'prebuilds')]);
    return () => {
      for (const d of moved) renameSync(`${d}.away`, d);
    };
  },
  'the .node overwritten with garbage': (nativeDir) => {
    const file = join(nativeDir, PREBUILD);
    const good = readFileSync(file);
    writeFileSync(file, Buffer.alloc(4096, 'not an ELF shared object\n'));
    return () => writeFileSync(file, good);
  },
};

/** Every path a consumer reports must be inside its own project, never in the monorepo. */
function expectInside(dir: string, paths: string[]) {
  expect(paths.length).toBeGreaterThan(0);
  for (const p of paths) {
    expect(p.startsWith(dir + sep), `${p} resolved outside ${dir}`).toBe(true);
    expect(p.startsWith(repo), `${p} resolved into the monorepo`).toBe(false);
  }
}

describe.each(['sab', 'mmap', 'shm'] as const)('npm i @bakery/%s in a fresh project', (backend) => {
  let dir: string;
  const lockName = `install-test-${process.pid}`;
  const env = (name = lockName) => userEnv({ BAKERY_SHM_DIR: dir, LOCK_NAME: name });

  beforeAll(() => {
    dir = project(backend, ours(backend));
    writeFileSync(join(dir, 'two.mjs'), esmProgram(backend));
    writeFileSync(join(dir, 'two.cjs'), cjsProgram(backend));
    for (const [f, src] of Object.entries(tsPrograms(backend))) writeFileSync(join(dir, f), src);
  });

  test('installs core and the backend from the tarballs, nothing else of ours', () => {
    const installed = readdirSync(join(dir, 'node_modules', '@bakery')).sort();
    expect(installed).toEqual(ours(backend));
    const deps = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).dependencies;
    for (const p of ours(backend)) expect(deps[`@bakery/${p}`], p).toMatch(/^file:.*\.tgz$/);
    if (backend !== 'sab') {
      // No install script ran: no local build, only the shipped prebuild, and only in native.
      const nativeDir = join(dir, 'node_modules/@bakery/native');
      expect(existsSync(join(nativeDir, 'build'))).toBe(false);
      expect(existsSync(join(nativeDir, PREBUILD))).toBe(true);
      const own = join(dir, 'node_modules', '@bakery', backend);
      expect(readdirSync(own).filter((f) => /^(prebuilds|build|src)$|\.gyp$/.test(f))).toEqual([]);
    }
  });

  /** What a consumer printed: two real participants, and the path it says it took. */
  function expectRun(r: Report, name: string) {
    expect(r).toMatchObject({ backend, acquisitions: 3 });
    expectInside(dir, r.resolved);
    if (backend === 'sab') {
      expect(r.native).toEqual([]);
      return;
    }
    // The binary the backend runs on is the installed prebuild, nowhere else.
    expect(r.native).toContain(join(dir, 'node_modules/@bakery/native', PREBUILD));
    expectInside(dir, r.native);
    if (backend === 'shm') {
      const described = `shm ${join(dir, `bakery.${name}`)} (mapped)`;
      expect(r).toMatchObject({ access: 'mapped', described });
      expect(r.peer).toEqual({ access: 'mapped', described });
    } else {
      expect(r.described).toMatch(/^mmap fd \d+$/);
      expect(r.peer.described).toMatch(/^mmap fd \d+$/);
    }
  }

  test('an ES module script: two participants take turns', () => {
    const r = consumer(dir, 'two.mjs', env());
    expectRun(r, lockName);
  });

  test('a CommonJS script: two participants take turns', () => {
    const r = consumer(dir, 'two.cjs', env(`${lockName}-cjs`));
    expectRun(r, `${lockName}-cjs`);
    expectInside(
      dir,
      r.loaded!.filter((f) => !f.endsWith('two.cjs')),
    );
  });

  test('a TypeScript consumer type-checks against the installed declarations (ESM and CJS)', () => {
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          lib: ['ES2022', 'ESNext.Disposable'],
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          // @types/node from the monorepo by path: only Node's own types come from there.
          typeRoots: [join(typesNode, '..')],
          types: ['node'],
        },
        files: ['typed.mts', 'typed.cts'],
      }),
    );
    const listed = sh(process.execPath, [tsc, '-p', '.', '--listFiles'], dir).split('\n');
    const bakery = listed.filter((f) => f.includes('/@bakery/'));
    expect(bakery.some((f) => f.endsWith('/dist/index.d.ts'))).toBe(true);
    expect(bakery.some((f) => f.endsWith('/dist/index.d.cts'))).toBe(true);
    expectInside(dir, bakery);
  });

  if (backend === 'shm') {
    test('npx bakery sees the lock the scripts used', () => {
      const out = sh('npx', ['--no-install', 'bakery', 'ls', '--json'], dir, env());
      const { locks } = JSON.parse(out);
      expect(locks).toContainEqual(
        expect.objectContaining({
          name: `install-test-${process.pid}`,
          holder: null,
          participants: 0,
        }),
      );
      for (const name of [lockName, `${lockName}-cjs`]) {
        sh('npx', ['--no-install', 'bakery', 'rm', name], dir, env());
      }
    });
  }

  if (backend === 'mmap') {
    test.each(Object.keys(BREAKS))(
      'binding unloadable (%s): importing still works and createMutex is BAKERY_NATIVE_UNAVAILABLE',
      (how) => {
        const undo = BREAKS[how]!(join(dir, 'node_modules/@bakery/native'));
        try {
          const script = `${ATTEMPT}
          const m = await import('@bakery/mmap');
          console.log(JSON.stringify(attempt(() => { m.createMutex({ slots: 2 }).close(); return 'loaded'; })));`;
          const r = esm(dir, script, userEnv());
          expect(r.code).toBe('BAKERY_NATIVE_UNAVAILABLE');
          expect(r.message).toMatch(/npm rebuild @bakery\/native/);
          if (how.includes('garbage')) {
            expect(r.cause).toMatch(/ELF|too short/);
            expect(r.message).toMatch(/found but did not load/);
          }
        } finally {
          undo();
        }
        // Put back, the prebuild loads again.
        const ok = esm(
          dir,
          `const m = await import('@bakery/mmap'); m.createMutex({ slots: 2 }).close(); console.log('"loaded"');`,
          userEnv(),
        );
        expect(ok).toBe('loaded');
      },
    );
  }

  if (backend === 'shm') {
    test.each(Object.keys(BREAKS))(
      'binding unloadable (%s): shm runs pure JS with two participants; a mapped lock is BAKERY_ACCESS_MISMATCH',
      (how) => {
        const k = how.includes('garbage') ? 'garbage' : 'removed';
        // A lock created while the binding loads is mapped, and stays mapped.
        const mappedLock = `${lockName}-kept-${k}`;
        const pure = `${lockName}-pure-${k}`;
        const fresh = `${lockName}-fresh-${k}`;
        const before = esm(
          dir,
          `${ATTEMPT} const shm = await import('@bakery/shm');
         console.log(JSON.stringify(open(${JSON.stringify(mappedLock)}, { slots: 4 })));`,
          env(),
        );
        expect(before).toMatchObject({ access: 'mapped', path: join(dir, `bakery.${mappedLock}`) });

        const undo = BREAKS[how]!(join(dir, 'node_modules/@bakery/native'));
        try {
          // @bakery/native itself says why.
          const probe = esm(
            dir,
            `const { probeNative } = await import('@bakery/native'); const r = probeNative();
           console.log(JSON.stringify('native' in r ? 'loaded' : { code: r.error.code, message: r.error.message, cause: r.error.cause?.message }));`,
            env(),
          );
          expect(probe).toMatchObject({ code: 'BAKERY_NATIVE_UNAVAILABLE' });
          expect(probe.message).toMatch(/npm rebuild @bakery\/native/);
          if (k === 'garbage') {
            expect(probe.cause).toMatch(/ELF|too short/);
            expect(probe.message).toMatch(/found but did not load/);
          }

          // Two real participants on a fresh lock, ES module and CommonJS: pure JS, and it says why.
          for (const [file, name] of [
            ['two.mjs', pure],
            ['two.cjs', `${pure}-cjs`],
          ] as const) {
            const r = consumer(dir, file, env(name));
            const described = `shm ${join(dir, `bakery.${name}`)} (pure JS: @bakery/native is not loaded)`;
            expect(r, file).toMatchObject({
              backend,
              acquisitions: 3,
              access: 'pure-js',
              described,
            });
            // B only joins: it never needs the binding, so it says why from the lock itself.
            expect(r.peer, file).toEqual({
              access: 'pure-js',
              described: described.replace(
                '@bakery/native is not loaded',
                'the lock was created pure JS',
              ),
            });
            expectInside(dir, r.resolved);
            // It tried the installed binding (and nothing else); no binary got loaded.
            expect(
              r.native.filter((f) => f.endsWith('.node')),
              file,
            ).toEqual([]);
            if (file === 'two.cjs') {
              expectInside(
                dir,
                r.loaded!.filter((f) => !f.endsWith('two.cjs')),
              );
            }
          }

          // The mixed-participant rule: a mapped lock cannot be joined pure JS; 'mapped' cannot be had.
          const rule = esm(
            dir,
            `${ATTEMPT} const shm = await import('@bakery/shm');
           console.log(JSON.stringify({
             mapped: open(${JSON.stringify(mappedLock)}),
             insisted: open(${JSON.stringify(fresh)}, { slots: 2, access: 'mapped' }),
           }));`,
            env(),
          );
          expect(rule.mapped).toMatchObject({ code: 'BAKERY_ACCESS_MISMATCH' });
          expect((rule.mapped as { message: string }).message).toMatch(
            /is a mapped lock .*cannot load @bakery\/native/,
          );
          expect(rule.insisted).toMatchObject({ code: 'BAKERY_NATIVE_UNAVAILABLE' });
          expect(existsSync(join(dir, `bakery.${fresh}`))).toBe(false);
        } finally {
          undo();
        }

        // Binding back: the mapped lock is mapped again; the pure-JS one stays pure JS.
        const after = esm(
          dir,
          `${ATTEMPT} const shm = await import('@bakery/shm');
         console.log(JSON.stringify({
           mapped: open(${JSON.stringify(mappedLock)}),
           pure: open(${JSON.stringify(pure)}),
           insisted: open(${JSON.stringify(pure)}, { access: 'mapped' }),
         }));`,
          env(),
        );
        expect(after.mapped).toMatchObject({ access: 'mapped' });
        expect(after.pure).toMatchObject({
          access: 'pure-js',
          described: `shm ${join(dir, `bakery.${pure}`)} (pure JS: the lock was created pure JS)`,
        });
        expect(after.insisted).toMatchObject({ code: 'BAKERY_ACCESS_MISMATCH' });
      },
    );
  }
});

describe('npm i @bakery/shm --omit=optional: no @bakery/native at all', () => {
  let dir: string;
  const lockName = `install-test-omit-${process.pid}`;
  const env = (name = lockName) => userEnv({ BAKERY_SHM_DIR: dir, LOCK_NAME: name });

  beforeAll(() => {
    // Only core's and shm's tarballs: npm still asks the registry for the optional
    // @bakery/native (404) and must leave it out without failing the install.
    dir = project('shm-omit-optional', ['core', 'shm'], ['--omit=optional']);
    writeFileSync(join(dir, 'two.mjs'), esmProgram('shm'));
    writeFileSync(join(dir, 'two.cjs'), cjsProgram('shm'));
  });

  test('the install succeeds without @bakery/native', () => {
    expect(readdirSync(join(dir, 'node_modules', '@bakery')).sort()).toEqual(['core', 'shm']);
    expect(existsSync(join(dir, 'node_modules/node-gyp-build'))).toBe(false);
  });

  test.each(['two.mjs', 'two.cjs'])(
    '%s: two participants take turns on the pure-JS path',
    (file) => {
      const name = `${lockName}-${file}`;
      const r = consumer(dir, file, env(name));
      const described = `shm ${join(dir, `bakery.${name}`)} (pure JS: @bakery/native is not loaded)`;
      expect(r).toMatchObject({ backend: 'shm', acquisitions: 3, access: 'pure-js', described });
      expect(r.peer).toEqual({
        access: 'pure-js',
        described: described.replace(
          '@bakery/native is not loaded',
          'the lock was created pure JS',
        ),
      });
      expect(r.native).toEqual([]);
      expectInside(dir, r.resolved);
      if (file === 'two.cjs') {
        expectInside(
          dir,
          r.loaded!.filter((f) => !f.endsWith('two.cjs')),
        );
      }
    },
  );

  test("access 'mapped' is BAKERY_NATIVE_UNAVAILABLE and says @bakery/native is not installed", () => {
    const r = esm(
      dir,
      `${ATTEMPT} const shm = await import('@bakery/shm');
       console.log(JSON.stringify(open('insisted', { slots: 2, access: 'mapped' })));`,
      env(),
    );
    expect(r).toMatchObject({ code: 'BAKERY_NATIVE_UNAVAILABLE' });
    expect(r.message).toMatch(/@bakery\/native is not installed/);
  });
});

describe('npm i @bakery/pg in a fresh project: a lock on a real server', () => {
  // The server is a throwaway one started by the installed package's own helper
  // (`@bakery/pg/throwaway-server`), so this also shows that helper works from the tarball.
  let dir: string;
  let skip = '';
  const program = (kind: 'esm' | 'cjs') => `
${kind === 'esm' ? "import { openMutex } from '@bakery/pg';\nimport { createRequire } from 'node:module';" : "const { openMutex } = require('@bakery/pg');"}
${kind === 'esm' ? '' : '(async () => {'}
const { startServer } = await import('@bakery/pg/throwaway-server');
const server = await startServer();
try {
  const connection = server.url;
  const a = await openMutex('install-test', { connection });
  const b = await openMutex('install-test', { connection });
  const first = await a.lock();
  const busy = await b.tryLock();
  const waiting = b.lock({ timeout: 10_000 });
  await first.release();
  const next = await waiting;
  const out = {
    busy,
    tokens: [String(first.fencingToken), String(next.fencingToken)],
    types: [typeof first.fencingToken, typeof next.fencingToken],
    ownerDied: next.ownerDied,
    sync: (() => { try { b.lockSync(); return 'no error'; } catch (err) { return err.code; } })(),
  };
  await next.release();
  await a.close();
  await b.close();
  const req = ${kind === 'esm' ? 'createRequire(import.meta.url)' : 'require'};
  out.resolved = [req.resolve('@bakery/pg'), req.resolve('@bakery/core'), req.resolve('pg')];
  console.log(JSON.stringify(out));
} finally {
  server.stop();
}
${kind === 'esm' ? '' : '})().catch((err) => { console.error(err); process.exit(1); });'}
`;

  beforeAll(async () => {
    skip = await noPgReason();
    if (skip !== '') return;
    dir = project('pg', ['core', 'pg']);
    writeFileSync(join(dir, 'pg-lock.mjs'), program('esm'));
    writeFileSync(join(dir, 'pg-lock.cjs'), program('cjs'));
  }, 300_000);

  for (const file of ['pg-lock.mjs', 'pg-lock.cjs']) {
    test(`${file}: two sessions take turns with fencing tokens 1 and 2; lockSync is BAKERY_UNSUPPORTED`, () => {
      if (skip !== '') {
        console.warn(`SKIPPED ${file} (printed reason): ${skip}`);
        return;
      }
      expect(readdirSync(join(dir, 'node_modules', '@bakery')).sort()).toEqual(['core', 'pg']);
      const r = JSON.parse(sh(process.execPath, [file], dir).trim().split('\n').pop()!);
      expect(r).toMatchObject({
        busy: null,
        tokens: ['1', '2'],
        types: ['bigint', 'bigint'],
        ownerDied: false,
        sync: 'BAKERY_UNSUPPORTED',
      });
      expectInside(dir, r.resolved);
    }, 180_000);
  }
});
