// Builds the addon into prebuilds/<platform>-<arch>/ with `prebuildify --napi --strip`, which is
// what the published tarball ships (node-gyp-build loads it when there is no local build/):
// linux-x64 for the machine it runs on, and linux-arm64 cross-compiled next to it with Debian's
// g++-aarch64-linux-gnu (both builds run at once, each in its own directory).
//
// prebuildify runs `node-gyp rebuild --target=<version>`; left alone it targets the newest Node
// it knows and downloads that version's headers. N-API binaries do not depend on the Node
// version, so we pin the target to the running Node and point node-gyp at headers that are
// already on disk (npm_config_nodedir, e.g. `nodedir=/usr` in ~/.npmrc, or the running Node's
// own prefix when it has include/node/node_api.h). Only when neither exists does node-gyp
// download headers, as it would for any from-source build. The headers are the same for every
// architecture (N-API is C and arch-independent), so the cross build uses them too.
//
// No cross compiler: the host prebuild is still built and the arm64 one is skipped with a note
// on how to get it — unless BAKERY_REQUIRE_ARM64=1 (CI), where that is an error.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EM_OF_ARCH, elfMachine } from './elf.mjs';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const require = createRequire(join(root, 'package.json'));
const BINARY = '@bakery+native.node';

const env = { ...process.env };
if (!env.npm_config_nodedir) {
  const prefix = dirname(dirname(process.execPath));
  if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) env.npm_config_nodedir = prefix;
}

if (process.platform !== 'linux') {
  // binding.gyp compiles nothing elsewhere; there is nothing to ship.
  console.log(`prebuild: skipped on ${process.platform} (the addon is Linux-only)`);
  process.exit(0);
}

const bin = require.resolve('prebuildify/bin.js');
const nodeGyp = join(dirname(require.resolve('node-gyp/package.json')), 'bin', 'node-gyp.js');
const prebuildify = ['--napi', '--strip', '--target', `node@${process.versions.node}`];

/** Runs prebuildify in `cwd` with `extra` arguments, each output line prefixed with `label`. */
function build(label, cwd, extra, buildEnv) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...prebuildify, '--node-gyp', nodeGyp, ...extra], {
      cwd,
      env: buildEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const [from, to] of [
      [child.stdout, process.stdout],
      [child.stderr, process.stderr],
    ]) {
      let rest = '';
      from.setEncoding('utf8');
      from.on('data', (chunk) => {
        const lines = (rest + chunk).split('\n');
        rest = lines.pop();
        for (const line of lines) to.write(`[${label}] ${line}\n`);
      });
      from.on('end', () => rest && to.write(`[${label}] ${rest}\n`));
    }
    child.on('error', (err) => {
      console.error(`[${label}] ${err.message}`);
      resolve(1);
    });
    child.on('close', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

/** Fails unless `file` is an ELF binary for `arch`. */
function checkMachine(file, arch) {
  const elf = existsSync(file) ? elfMachine(file) : null;
  if (elf?.machine !== EM_OF_ARCH[arch]) {
    throw new Error(
      `${file} is not a ${arch} ELF binary (e_machine ${elf?.machine ?? 'none'}, expected ${EM_OF_ARCH[arch]})`,
    );
  }
}

// --- the cross build: linux-arm64 from any other Linux host -------------------------------------
const cross = process.env.BAKERY_ARM64_CROSS_PREFIX || 'aarch64-linux-gnu-';
const requireArm64 = process.env.BAKERY_REQUIRE_ARM64 === '1';
const arm64Out = join(root, 'prebuilds', 'linux-arm64', BINARY);
let arm64 = null;
if (process.arch !== 'arm64') {
  const missing = ['g++', 'gcc', 'strip'].filter(
    (tool) => spawnSync(`${cross}${tool}`, ['--version'], { stdio: 'ignore' }).status !== 0,
  );
  if (missing.length > 0) {
    const what = `no aarch64 cross toolchain (${missing.map((t) => cross + t).join(', ')} not on PATH)`;
    if (requireArm64) {
      console.error(`prebuild: ERROR: BAKERY_REQUIRE_ARM64=1 but ${what}`);
      process.exit(1);
    }
    rmSync(arm64Out, { force: true });
    console.log(
      [
        '',
        `prebuild: *** linux-arm64 prebuild SKIPPED: ${what}. ***`,
        `prebuild:     Only ${process.platform}-${process.arch} is built; a tarball packed now ships no arm64 binary.`,
        'prebuild:     To build it: apt-get install g++-aarch64-linux-gnu (Debian/Ubuntu; add qemu-user to',
        'prebuild:     run `npm run test:arm64`), then `npm run build:prebuilds -w @bakery/native`',
        'prebuild:     (a plain `npm run build` may replay this build from the turbo cache).',
        '',
      ].join('\n'),
    );
  } else {
    // A directory of its own outside the package: the host build's `node-gyp rebuild` wipes
    // build/ while this one runs, and build/Release must never hold an arm64 binary (node-gyp-build
    // prefers it to prebuilds/). NODE_PATH lets binding.gyp's `require('node-addon-api')` resolve.
    const stage = mkdtempSync(join(tmpdir(), 'bakery-native-arm64-'));
    for (const part of ['binding.gyp', 'package.json', 'src/native']) {
      cpSync(join(root, part), join(stage, part), { recursive: true });
    }
    const addonApiParent = dirname(dirname(require.resolve('node-addon-api/package.json')));
    arm64 = {
      stage,
      start: () =>
        // Its own --cache (node-gyp's devdir): should headers have to be downloaded, the two
        // builds must not fetch into one directory at once.
        build(
          'linux-arm64',
          stage,
          ['--arch', 'arm64', '--strip-bin', `${cross}strip`, '--cache', join(stage, '.devdir')],
          {
            ...env,
            CC: `${cross}gcc`,
            CXX: `${cross}g++`,
            LINK: `${cross}g++`,
            AR: `${cross}ar`,
            NODE_PATH: [addonApiParent, env.NODE_PATH].filter(Boolean).join(delimiter),
          },
        ),
    };
  }
}

console.log(
  `prebuild: prebuildify --napi --strip for ${process.platform}-${process.arch}${arm64 ? ' and linux-arm64 (cross)' : ''} (nodedir ${env.npm_config_nodedir ?? '(download)'})`,
);
const t0 = performance.now();
const [hostCode, arm64Code] = await Promise.all([
  build(`${process.platform}-${process.arch}`, root, [], env),
  arm64?.start(),
]);
let failed = hostCode !== 0;
if (!failed && process.arch in EM_OF_ARCH)
  checkMachine(join(root, 'prebuilds', `linux-${process.arch}`, BINARY), process.arch);
if (arm64) {
  try {
    if (arm64Code !== 0) throw new Error(`the linux-arm64 cross build failed (exit ${arm64Code})`);
    const built = join(arm64.stage, 'prebuilds', 'linux-arm64', BINARY);
    checkMachine(built, 'arm64');
    mkdirSync(dirname(arm64Out), { recursive: true });
    copyFileSync(built, arm64Out);
  } catch (err) {
    rmSync(arm64Out, { force: true });
    console.error(`prebuild: ${err.message}`);
    failed = true;
  } finally {
    rmSync(arm64.stage, { recursive: true, force: true });
  }
}
if (failed) process.exit(1);
console.log(
  `prebuild: done in ${((performance.now() - t0) / 1000).toFixed(1)} s: prebuilds/linux-${process.arch}${arm64 ? ', prebuilds/linux-arm64' : ''}`,
);
