// @bakery/mmap (forked processes) next to @bakery/sab (worker threads), sync and async, in one
// run. The harness is apps/bench (bakery-bench): the same workload, ready/go barrier and table
// as the comparison with other locks; this wrapper only picks the two backends.
//   npm run bench -w @bakery/mmap -- [--quick] [--procs 1,4,32] [--window ms] [--runs n]
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../../../apps/bench/src/cli.mjs', import.meta.url));
const only = ['--only', 'sab-sync,sab-async,mmap-sync,mmap-async', '--no-write'];
const r = spawnSync(process.execPath, [cli, ...only, ...process.argv.slice(2)], {
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
