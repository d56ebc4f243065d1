// The `bakery` executable npm links is a committed file, bin/bakery.js, not build output: after
// `npm ci` in a fresh clone dist/ does not exist yet, and npm does not link a bin whose file is
// missing — `npx bakery` would then fetch an unrelated `bakery` package from the registry.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';

const pkgDir = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as {
  bin: Record<string, string>;
  files: string[];
};
const binFile = join(pkgDir, 'bin', 'bakery.js');

function node(file: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [file, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('bin/bakery.js is in the source tree (not build output), a node script', () => {
  expect(existsSync(binFile)).toBe(true);
  expect(readFileSync(binFile, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  // Not ignored by git, so a clone has it before any build.
  const ignored = spawnSync('git', ['check-ignore', '-q', binFile], { cwd: pkgDir });
  if (ignored.error === undefined) expect(ignored.status).toBe(1);
});

test('package.json: bin points at it, and "files" ships it (and the built entry it runs)', () => {
  expect(pkg.bin).toEqual({ bakery: './bin/bakery.js' });
  expect(pkg.files).toEqual(expect.arrayContaining(['bin', 'dist']));
});

test('the lockfile records the same bin (npm ci links what package-lock.json says)', () => {
  const lock = JSON.parse(readFileSync(join(pkgDir, '..', '..', 'package-lock.json'), 'utf8'));
  const recorded = lock.packages['packages/cli'].bin as Record<string, string>;
  expect(recorded).toEqual({ bakery: pkg.bin.bakery!.replace(/^\.\//, '') });
});

test('running it with --help prints the usage', () => {
  const r = node(binFile, '--help');
  expect(r.err).toBe('');
  expect(r.out).toMatch(
    /^bakery — look inside bakery locks\n\nusage: bakery <command> \[options\]/,
  );
  expect(r.out).toMatch(/^ {2}ls {2,}list the named locks/m);
  expect(r.code).toBe(0);
});

test('it passes the exit code through (a usage error is 2)', () => {
  const r = node(binFile, 'no-such-command');
  expect(r.code).toBe(2);
  expect(r.err).toMatch(/BAKERY_USAGE/);
});

test('without dist/ it says to run npm run build first and exits non-zero', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bakery-bin-'));
  try {
    mkdirSync(join(dir, 'bin'));
    copyFileSync(binFile, join(dir, 'bin', 'bakery.js'));
    copyFileSync(join(pkgDir, 'package.json'), join(dir, 'package.json'));
    const r = node(join(dir, 'bin', 'bakery.js'), '--help');
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/dist\/bin\.js is missing\): run npm run build first/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
