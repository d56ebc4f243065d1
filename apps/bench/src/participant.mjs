// Entry of every Node participant that is not the parent: a forked child process (mmap, shm,
// proper-lockfile, the PostgreSQL rows) or a worker thread (sab). One pool serves every P and
// every run:
//   { type: 'open', p, locks, peers }
//                              open P's locks and peers (the first P members) → 'opened'
//   { type: 'round', ... }     arm: block on the GO cell until the parent releases everyone at
//                              once, run the window                        → 'armed', 'result'
//   { type: 'exit' }           close everything and leave
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { lockKey, SUBJECTS } from './subjects.mjs';
import {
  advisoryLockSubject,
  bakerySubject,
  callProbe,
  doorwayProbe,
  GO,
  mapCounter,
  properLockfileSubject,
  runRound,
  START_AT,
} from './workload.mjs';

const { loadNative } = await import('@bakery/native');
const native = loadNative();
const counter = await mapCounter(isMainThread ? process.env.BENCH_COUNTER : workerData.counter);
const startAt = new Float64Array(counter.buffer, START_AT * 4, 1);
/** p → { subjects, close() } */
const byP = new Map();
/** `--spin N` of the parent: our backends' spin option (re-checks before sleeping), for experiments. */
const spin = process.env.BENCH_SPIN ? { spin: Number(process.env.BENCH_SPIN) } : {};

/**
 * Open this P's locks (`msg.locks`: one per lockKey, see locksOf) and build its subjects: each of
 * ours over the lock of its key, with a doorway probe of its own (entries while waiting); the
 * PostgreSQL ones count from the call instead (callProbe), as do their peers (`msg.peers`:
 * `{ id: { url, name } }`, advisory-lock over each transport).
 */
async function open(msg) {
  const mutexes = {};
  const probes = {};
  for (const lock of msg.locks) {
    if (lock.backend === 'pg') {
      // Its own session per participant; trace and spin would be accepted and ignored.
      mutexes[lock.key] = await (await import('@bakery/pg')).openMutex(lock.name, {
        connection: lock.url,
      });
      continue;
    }
    const probe = doorwayProbe(counter);
    const options = { ...lock.options, ...spin, ...probe.options };
    let mutex;
    if (lock.backend === 'sab')
      mutex = (await import('@bakery/sab')).openMutex(lock.handle, options);
    else if (lock.backend === 'mmap')
      mutex = (await import('@bakery/mmap')).openMutex({ fd: lock.fd, ...options });
    else {
      // Each shm lock opened with its access mode explicitly (the env default must not decide
      // which path a subject measures).
      const { access } = lock;
      mutex = (await import('@bakery/shm')).openMutex(lock.name, {
        slots: msg.slots,
        dir: process.env.BENCH_DIR,
        access,
        ...options,
      });
      if (mutex.access !== access)
        throw new Error(`shm lock opened ${mutex.access}, not ${access}`);
    }
    mutexes[lock.key] = mutex;
    probes[lock.key] = probe;
  }
  const kind = isMainThread ? 'procs' : 'threads';
  const subjects = Object.fromEntries(
    SUBJECTS.filter((s) => s.ours && s.kind === kind && mutexes[lockKey(s)]).map((s) => {
      const subject = bakerySubject(mutexes[lockKey(s)], s.mode, probes[lockKey(s)]);
      return [s.id, s.entries === 'call' ? callProbe(counter, subject) : subject];
    }),
  );
  if (isMainThread) {
    subjects['proper-lockfile'] = await properLockfileSubject(process.env.BENCH_LOCKFILE);
  }
  for (const [id, { url, name }] of Object.entries(msg.peers ?? {})) {
    subjects[id] = callProbe(counter, await advisoryLockSubject(url, name));
  }
  byP.set(msg.p, {
    subjects,
    // PgMutex.close() ends its session (awaited, so the server sees a clean exit).
    close: () => Promise.all(Object.values(mutexes).map((mutex) => mutex.close())),
  });
}

/** Block this thread until the parent stores generation `gen` into GO (a futex: no polling). */
function awaitGo(gen) {
  for (let v = Atomics.load(counter, GO); v !== gen; v = Atomics.load(counter, GO)) {
    native.wait(counter, GO, v, 1000);
  }
}

const send = isMainThread
  ? (msg) => new Promise((resolve) => process.send(msg, resolve))
  : async (msg) => parentPort.postMessage(msg);

async function onMessage(msg) {
  if (msg.type === 'open') {
    await open(msg);
    await send({ type: 'opened' });
  } else if (msg.type === 'round') {
    const subject = byP.get(msg.p).subjects[msg.subject];
    await send({ type: 'armed' }); // flushed before this thread blocks
    awaitGo(msg.gen);
    const result = await runRound(subject, { counter, ...msg, startAt: startAt[0] });
    await send({ type: 'result', ...result });
  } else if (msg.type === 'exit') {
    await Promise.all([...byP.values()].map((x) => x.close()));
    if (isMainThread) process.disconnect();
    else parentPort.close();
  }
}

if (isMainThread) process.on('message', onMessage);
else parentPort.on('message', onMessage);
await send({ type: 'ready' });
