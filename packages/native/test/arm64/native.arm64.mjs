// The binding's tests on arm64: run by scripts/test-arm64.mjs with a real arm64 Node under
// qemu-aarch64 (or natively on an arm64 machine), with node:test — vitest cannot run there. It
// imports the BUILT package (dist/ and prebuilds/linux-arm64), first proves that this is arm64 and
// that the arm64 prebuild is the binary that loaded, then runs the cases of test/native-cases.mjs.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BakeryError } from '@bakery/core';
import { loadNative, SEAL } from '@bakery/native';
import { EM, elfMachine } from '../../scripts/elf.mjs';
import { nativeCases } from '../native-cases.mjs';

const packageRoot = fileURLToPath(new URL('../..', import.meta.url));
const expected = join(packageRoot, 'prebuilds', 'linux-arm64', '@bakery+native.node');
// Under qemu-user a process cannot exec the arm64 node itself: children go through the wrapper.
const execPath = process.env.BAKERY_ARM64_EXEC || process.execPath;
const slowdown = Number(process.env.BAKERY_ARM64_SLOWDOWN || 1);

// Which case started last, for when the runner's watchdog kills a run whose JS thread is stuck
// (node:test's own timeouts cannot fire then).
beforeEach((t) => process.stderr.write(`# started: ${t.name}\n`));

let native;
let loadError;
try {
  native = loadNative();
} catch (err) {
  loadError = err;
}

describe('arm64', () => {
  test('this is an arm64 Node of the major version the repository builds with', () => {
    assert.equal(process.arch, 'arm64');
    assert.equal(process.platform, 'linux');
    const major = process.env.BAKERY_ARM64_EXPECT_NODE_MAJOR;
    if (major) assert.equal(process.versions.node.split('.')[0], major);
  });

  test('@bakery/native loads prebuilds/linux-arm64/@bakery+native.node, an aarch64 ELF', () => {
    if (loadError) throw loadError;
    const loaded = Object.keys(createRequire(import.meta.url).cache).filter((k) =>
      k.endsWith('.node'),
    );
    assert.deepEqual(loaded, [expected], 'the binary that loaded is not the arm64 prebuild');
    assert.equal(
      createRequire(join(packageRoot, 'package.json'))('node-gyp-build').resolve(packageRoot),
      expected,
    );
    assert.deepEqual(elfMachine(expected), { bits: 64, machine: EM.AARCH64 });
    // What the (emulated) kernel mapped: the arm64 file, and no other bakery binary.
    const maps = readFileSync('/proc/self/maps', 'utf8')
      .split('\n')
      .map((line) => line.split(/\s+/).slice(5).join(' '))
      .filter((file) => file.endsWith('.node'));
    assert.ok(maps.length > 0, '/proc/self/maps shows no .node file');
    assert.deepEqual([...new Set(maps)], [expected]);
  });
});

// node:test takes its timeout as an option: a case that hangs fails instead of stalling the run.
const timed = (name, fn, timeout = 300_000) => test(name, { timeout }, fn);
if (native) {
  nativeCases({ test: timed, describe, afterEach, native, SEAL, BakeryError, execPath, slowdown });
}
