// Builds the addon into prebuilds/<platform>-<arch>/ with `prebuildify --napi --strip`, which is
// what the published tarball ships (node-gyp-build loads it when there is no local build/).
//
// prebuildify runs `node-gyp rebuild --target=<version>`; left alone it targets the newest Node
// it knows and downloads that version's headers. N-API binaries do not depend on the Node
// version, so we pin the target to the running Node and point node-gyp at headers that are
// already on disk (npm_config_nodedir, e.g. `nodedir=/usr` in ~/.npmrc, or the running Node's
// own prefix when it has include/node/node_api.h). Only when neither exists does node-gyp
// download headers, as it would for any from-source build.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const require = createRequire(join(root, 'package.json'));

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
const args = [
  bin,
  '--napi',
  '--strip',
  '--target',
  `node@${process.versions.node}`,
  '--node-gyp',
  nodeGyp,
];
console.log(
  `prebuild: prebuildify --napi --strip (nodedir ${env.npm_config_nodedir ?? '(download)'})`,
);
const r = spawnSync(process.execPath, args, { cwd: root, env, stdio: 'inherit' });
process.exit(r.status ?? 1);
