import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
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

// Pack every public package, then install each backend from its tarball (plus core's) into a
// fresh project under os.tmpdir(), far from this monorepo's node_modules, and use it from ESM,
// CommonJS and TypeScript with two real participants.

const repo = fileURLToPath(new URL('../../..', import.meta.url));
const requireHere = createRequire(import.meta.url);
// The repo's pinned TypeScript and @types/node serve the consumer's type check (only those).
const tsc = join(requireHere.resolve('typescript/package.json'), '..', 'bin', 'tsc');
const typesNode = join(requireHere.resolve('@types/node/package.json'), '..');
const PACKAGES = ['core', 'sab', 'mmap', 'shm', 'conformance', 'cli'] as const;

let root: string;
const tarball: Record<string, string> = {};
const packed: Record<string, string[]> = {};

/** The environment of a user's shell: no npm_* variables of the `npm test` running us, no NODE_PATH. */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^npm_/i.test(k) && k !== 'NODE_PATH' && k !== 'NODE_OPTIONS' && !k.startsWith('VITEST'))
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
  expect(packed['@bakery/mmap']).toContain('prebuilds/linux-x64/@bakery+mmap.node');
  expect(packed['@bakery/cli']).toContain('dist/bin.js');
});

/** A fresh project with only `backend` (and core, and for shm the CLI) installed from tarballs. */
function project(backend: Backend): string {
  const dir = join(root, backend);
  mkdirSync(dir);
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: `try-${backend}`, version: '1.0.0', private: true }, null, 2),
  );
  const tgz = [tarball['@bakery/core']!, tarball[`@bakery/${backend}`]!];
  if (backend === 'shm') tgz.push(tarball['@bakery/cli']!);
  // --ignore-scripts: mmap must work from its prebuild, with no compiler and no install script.
  sh(
    'npm',
    ['install', ...tgz, '--no-audit', '--no-fund', '--ignore-scripts', '--no-package-lock'],
    dir,
  );
  return dir;
}

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
    dir = project(backend);
    writeFileSync(join(dir, 'two.mjs'), esmProgram(backend));
    writeFileSync(join(dir, 'two.cjs'), cjsProgram(backend));
    for (const [f, src] of Object.entries(tsPrograms(backend))) writeFileSync(join(dir, f), src);
  });

  test('installs core and the backend from the tarballs, nothing else of ours', () => {
    const ours = readdirSync(join(dir, 'node_modules', '@bakery')).sort();
    expect(ours).toEqual(backend === 'shm' ? ['cli', 'core', 'shm'] : ['core', backend].sort());
    if (backend === 'mmap') {
      // No install script ran: no local build, only the shipped prebuild.
      expect(existsSync(join(dir, 'node_modules/@bakery/mmap/build'))).toBe(false);
      expect(
        existsSync(join(dir, 'node_modules/@bakery/mmap/prebuilds/linux-x64/@bakery+mmap.node')),
      ).toBe(true);
    }
  });

  test('an ES module script: two participants take turns', () => {
    const r = JSON.parse(sh(process.execPath, ['two.mjs'], dir, env()));
    expect(r).toMatchObject({ backend, acquisitions: 3 });
    expectInside(dir, r.resolved);
  });

  test('a CommonJS script: two participants take turns', () => {
    const r = JSON.parse(sh(process.execPath, ['two.cjs'], dir, env(`${lockName}-cjs`)));
    expect(r).toMatchObject({ backend, acquisitions: 3 });
    expectInside(dir, r.resolved);
    expectInside(
      dir,
      r.loaded.filter((f: string) => !f.endsWith('two.cjs')),
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
    test('without a matching binary, importing still works and createMutex is BAKERY_NATIVE_UNAVAILABLE', () => {
      const pre = join(dir, 'node_modules/@bakery/mmap/prebuilds');
      renameSync(pre, `${pre}.away`);
      try {
        const script = `
          const m = await import('@bakery/mmap');
          try { m.createMutex({ slots: 2 }); console.log('loaded'); }
          catch (err) { console.log(JSON.stringify({ code: err.code, message: err.message })); }`;
        const r = JSON.parse(sh(process.execPath, ['--input-type=module', '-e', script], dir));
        expect(r.code).toBe('BAKERY_NATIVE_UNAVAILABLE');
        expect(r.message).toMatch(/npm rebuild @bakery\/mmap/);
      } finally {
        renameSync(`${pre}.away`, pre);
      }
    });
  }
});
