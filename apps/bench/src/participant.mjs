// Entry of every Node participant that is not the parent: a forked child process (mmap, shm,
// proper-lockfile) or a worker thread (sab). One pool serves every P and every run:
//   { type: 'open', p, ... }   open P's locks (the first P members only)  → 'opened'
//   { type: 'round', ... }     arm: block on the GO cell until the parent releases everyone at
//                              once, run the window                        → 'armed', 'result'
//   { type: 'exit' }           close everything and leave
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { SUBJECTS } from './subjects.mjs';
import {
  bakerySubject,
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

/** This P's bakery subjects of `kind`, each over the lock of its backend (and shm access). */
function bakerySubjects(kind, lockOf) {
  return Object.fromEntries(
    SUBJECTS.filter((s) => s.ours && s.kind === kind).map((s) => [
      s.id,
      bakerySubject(lockOf(s), s.mode),
    ]),
  );
}

async function open(msg) {
  if (isMainThread) {
    const mmap = await import('@bakery/mmap');
    const shm = await import('@bakery/shm');
    const m = mmap.openMutex({ fd: msg.fd, ...spin });
    // One lock per shm access mode, each opened with its mode explicitly (the env default must
    // not decide which path a subject measures).
    const s = Object.fromEntries(
      Object.entries(msg.shmNames).map(([access, name]) => [
        access,
        shm.openMutex(name, { slots: msg.slots, dir: process.env.BENCH_DIR, access, ...spin }),
      ]),
    );
    for (const [access, mutex] of Object.entries(s)) {
      if (mutex.access !== access)
        throw new Error(`shm lock opened ${mutex.access}, not ${access}`);
    }
    byP.set(msg.p, {
      subjects: {
        ...bakerySubjects('procs', (x) => (x.backend === 'mmap' ? m : s[x.access])),
        'proper-lockfile': await properLockfileSubject(process.env.BENCH_LOCKFILE),
      },
      close: () => {
        m.close();
        for (const mutex of Object.values(s)) mutex.close();
      },
    });
  } else {
    const sab = await import('@bakery/sab');
    const m = sab.openMutex(msg.handle, spin);
    byP.set(msg.p, { subjects: bakerySubjects('threads', () => m), close: () => m.close() });
  }
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
    for (const x of byP.values()) x.close();
    if (isMainThread) process.disconnect();
    else parentPort.close();
  }
}

if (isMainThread) process.on('message', onMessage);
else parentPort.on('message', onMessage);
await send({ type: 'ready' });
