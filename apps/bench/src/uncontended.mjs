// One subject's uncontended lock+unlock in ns (CPU time, see timePairs; wall time for the
// PostgreSQL rows, on the server at $BENCH_PG_URL), printed on stdout.
// Run by cli.mjs in a fresh process per subject.
//   node uncontended.mjs SUBJECT BUDGET_MS DIR SHM_NAME LOCK_FILE
import { timePairs } from './stats.mjs';
import { SUBJECTS } from './subjects.mjs';
import { advisoryLockSubject, bakerySubject, properLockfileSubject } from './workload.mjs';

const [id, budget, dir, shmName, lockFile] = process.argv.slice(2);
const uncMs = Number(budget);
const s = SUBJECTS.find((x) => x.id === id);
if (!s) throw new Error(`unknown subject ${id}`);
let ns;
if (id === 'async-mutex') {
  const { Mutex } = await import('async-mutex');
  const m = new Mutex();
  ns = await timePairs(async () => (await m.acquire())(), true, uncMs);
} else if (s.group === 'pg' && !s.ours) {
  const sub = await advisoryLockSubject(process.env.BENCH_PG_URL, `${shmName}-${id}`);
  ns = await timePairs(async () => sub.release(await sub.acquire()), true, uncMs, 'wall');
} else if (s.group === 'pg') {
  const mutex = await (await import('@bakery/pg')).openMutex(shmName, {
    connection: process.env.BENCH_PG_URL,
  });
  const sub = bakerySubject(mutex, 'async');
  ns = await timePairs(async () => sub.release(await sub.acquire()), true, uncMs, 'wall');
  await mutex.close();
} else if (id === 'proper-lockfile') {
  const sub = await properLockfileSubject(lockFile);
  ns = await timePairs(async () => sub.release(await sub.acquire()), true, uncMs);
} else {
  // The subject's own options (the batched handoff), no trace hooks: the tight loop measures
  // the lock alone.
  const { backend, mode, access, options = {} } = s;
  let mutex;
  if (backend === 'sab')
    mutex = (await import('@bakery/sab')).createMutex({ slots: 2, ...options });
  else if (backend === 'mmap')
    mutex = (await import('@bakery/mmap')).createMutex({ slots: 2, ...options });
  else {
    mutex = (await import('@bakery/shm')).openMutex(shmName, { slots: 2, dir, access, ...options });
    if (mutex.access !== access) throw new Error(`${id}: opened ${mutex.access}, not ${access}`);
  }
  const sub = bakerySubject(mutex, mode);
  ns =
    mode === 'sync'
      ? await timePairs(() => sub.release(sub.acquire()), false, uncMs)
      : await timePairs(async () => sub.release(await sub.acquire()), true, uncMs);
  mutex.close();
  if (backend === 'shm') (await import('@bakery/shm')).removeMutex(shmName, { dir });
}
process.stdout.write(`${ns}\n`);
