// The workload every subject runs, in every Node participant (forked child, worker thread, or an
// async task in the parent): from a shared start time, loop lock → critical section → unlock
// until the window ends. The critical section is a non-atomic read–yield–write of a shared
// counter plus ~1 µs of busy work; a lock that fails to exclude loses updates.
import { closeSync, openSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Hist, work } from './stats.mjs';

/** Bytes of the shared counter file (a tmpfs file every participant maps, Python ones too). */
export const COUNTER_BYTES = 4096;
/** Cells of that file: 0 the counter; GO the round generation that releases armed members. */
export const GO = 2;
/** The round's start time (ms since the epoch) as a float64 at cell START_AT (8-aligned). */
export const START_AT = 4;

/**
 * Maps the counter file shared (with @bakery/native's `map`; `anyFile`, as the run's directory
 * is only on tmpfs when /dev/shm is writable) and returns an Int32Array over it; cell 0 is the
 * counter.
 */
export async function mapCounter(file) {
  const { loadNative } = await import('@bakery/native');
  const fd = openSync(file, 'r+');
  try {
    return new Int32Array(loadNative().map(fd, COUNTER_BYTES, true));
  } finally {
    closeSync(fd);
  }
}

/**
 * A doorway probe for one participant's Mutex: `options` go into the options it opens the lock
 * with (core's public `trace` hook, called right after this participant's doorway ends, i.e.
 * once its place in the queue is fixed); `at` is the shared counter read there, or -1 when no
 * doorway ran since the last entry (a batched re-take has none).
 */
export function doorwayProbe(counter) {
  const probe = {
    at: -1,
    options: {
      trace: {
        doorwayEnd() {
          probe.at = Atomics.load(counter, 0);
        },
      },
    },
  };
  return probe;
}

/**
 * One participant's round. `subject` is `{ mode: 'sync' | 'async', acquire(), release(handle) }`
 * and, for our locks, `probe` (see doorwayProbe). Waits are timed from the lock call to its
 * return; only acquisitions made inside the window (after `warmupMs`) count (`n`), but every
 * critical section increments the counter (`total`), so lost updates = Σ total − counter.
 * Entries while waiting: at each entry, counter − its value at this acquisition's doorway end
 * (the critical sections others ran meanwhile), 0 without a doorway; the round reports the
 * maximum over all its acquisitions, warm-up included (`entriesWhileWaiting`, only with a probe).
 */
export async function runRound(subject, { counter, startAt, windowMs, warmupMs = 0, workUs }) {
  const hist = new Hist();
  const early = startAt - Date.now();
  if (early > 3) await sleep(early - 2);
  while (Date.now() < startAt);
  // Counting starts after the warm-up (the first turns of P freshly woken participants are a
  // start-up transient, not the steady state) and stops at the window's end.
  const from = performance.now() + (startAt + warmupMs - Date.now());
  const end = from + windowMs;
  const cpu0 = process.cpuUsage();
  const { acquire, release } = subject;
  // Without a probe, a stand-in whose `at` stays -1 keeps one loop for both.
  const probe = subject.probe ?? { at: -1 };
  let n = 0;
  let total = 0;
  let ewMax = 0;
  if (subject.mode === 'sync') {
    for (let t0 = performance.now(); t0 < end; t0 = performance.now()) {
      const h = acquire();
      const t1 = performance.now();
      const v = Atomics.load(counter, 0);
      if (probe.at >= 0 && v - probe.at > ewMax) ewMax = v - probe.at;
      probe.at = -1;
      work(workUs); // a sync critical section cannot yield its thread; other participants run concurrently
      Atomics.store(counter, 0, v + 1);
      release(h);
      total++;
      if (t1 < end && t1 >= from) {
        n++;
        hist.add((t1 - t0) * 1e6);
      }
    }
  } else {
    for (let t0 = performance.now(); t0 < end; t0 = performance.now()) {
      const h = await acquire();
      const t1 = performance.now();
      const v = Atomics.load(counter, 0);
      if (probe.at >= 0 && v - probe.at > ewMax) ewMax = v - probe.at;
      probe.at = -1;
      await null; // yield: other tasks of this event loop may run between the read and the write
      work(workUs);
      Atomics.store(counter, 0, v + 1);
      await release(h);
      total++;
      if (t1 < end && t1 >= from) {
        n++;
        hist.add((t1 - t0) * 1e6);
      }
    }
  }
  const cpu = process.cpuUsage(cpu0);
  return {
    n,
    total,
    hist: hist.toJSON(),
    cpuUs: cpu.user + cpu.system,
    ...(subject.probe ? { entriesWhileWaiting: ewMax } : {}),
  };
}

/**
 * For a lock whose queue is in a server (PostgreSQL), out of reach of any doorway hook: `at` is
 * the shared counter read when lock() is called, so entries while waiting count from the call.
 * That includes whatever entered while the request was on its way (and, for advisory-lock, while
 * it connected), so it bounds from above what the server's queue let pass.
 */
export function callProbe(counter, subject) {
  const probe = { at: -1 };
  const { acquire } = subject;
  return {
    ...subject,
    probe,
    acquire: () => {
      probe.at = Atomics.load(counter, 0);
      return acquire();
    },
  };
}

/**
 * Our Mutex as a subject: `lockSync()` or `await lock()`, then `lease.release()`; `probe` (see
 * doorwayProbe) when the Mutex was opened with its options.
 */
export const bakerySubject = (mutex, mode, probe) => ({
  mode,
  ...(probe ? { probe } : {}),
  acquire: mode === 'sync' ? () => mutex.lockSync() : () => mutex.lock(),
  release: (lease) => lease.release(),
});

/**
 * proper-lockfile as users call it across processes: `lock(file)` with retries (its
 * `lockSync` cannot retry), then the returned `release()`. Retries poll from 1 ms up to 20 ms.
 */
export async function properLockfileSubject(file) {
  const lockfile = (await import('proper-lockfile')).default;
  const options = {
    realpath: false,
    retries: { forever: true, minTimeout: 1, maxTimeout: 20, factor: 1.5 },
  };
  return { mode: 'async', acquire: () => lockfile.lock(file, options), release: (r) => r() };
}

/**
 * advisory-lock as its README shows: `advisoryLock(url)(name)`, whose `lock()` resolves to an
 * `unlock()`. Each lock() connects a new pg client (the advisory lock belongs to a session),
 * which that unlock() ends.
 */
export async function advisoryLockSubject(url, name) {
  const mod = await import('advisory-lock');
  const advisoryLock = mod.default.default ?? mod.default; // CommonJS with `exports.default`
  const mutex = advisoryLock(url)(name);
  return { mode: 'async', acquire: () => mutex.lock(), release: (unlock) => unlock() };
}
