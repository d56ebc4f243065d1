// Side-by-side numbers for @bakery/mmap (forked processes) and @bakery/sab (worker threads) in
// one run: uncontended lockSync+release in ns, and contended acquisitions/s for 4 and 32
// participants (each loops lockSync → tiny critical section → release for a fixed window).
// Medians of several runs; machines here are shared and noisy.
//   node bench/bench.mjs [--window ms] [--runs n]
import { fork } from 'node:child_process';
import * as os from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import * as mmap from '@bakery/mmap';
import * as sab from '@bakery/sab';

const arg = (name, dflt) => {
  const k = process.argv.indexOf(name);
  return k > 0 ? Number(process.argv[k + 1]) : dflt;
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** One participant: loop from the start signal until the window ends, report the count. */
async function participant(mutex, windowMs) {
  const end = performance.now() + windowMs;
  let n = 0;
  let x = 0;
  while (performance.now() < end) {
    const lease = mutex.lockSync();
    for (let k = 0; k < 20; k++) x = (x * 31 + k) | 0; // ~tens of ns of work
    lease.release();
    n++;
  }
  return n + (x & 0);
}

if (process.argv[2] === 'mmap-child') {
  // Barrier: every participant has opened the lock before anyone starts the window.
  const mutex = mmap.openMutex();
  process.send('ready');
  await new Promise((r) => process.once('message', r));
  const n = await participant(mutex, Number(process.argv[3]));
  mutex.close();
  process.send(n, () => process.exit(0));
} else if (!isMainThread) {
  const mutex = sab.openMutex(workerData.handle);
  parentPort.postMessage('ready');
  await new Promise((r) => parentPort.once('message', r));
  const n = await participant(mutex, workerData.windowMs);
  mutex.close();
  parentPort.postMessage(n);
} else {
  const windowMs = arg('--window', 1000);
  const runs = arg('--runs', 3);

  const uncontended = (mutex) => {
    const iters = 1_000_000;
    const samples = [];
    for (let r = 0; r < 5; r++) {
      const t0 = process.hrtime.bigint();
      for (let k = 0; k < iters; k++) mutex.lockSync().release();
      samples.push(Number(process.hrtime.bigint() - t0) / iters);
    }
    return median(samples);
  };

  const contended = async (kind, p) => {
    const results = [];
    for (let r = 0; r < runs; r++) {
      const m =
        kind === 'mmap' ? mmap.createMutex({ slots: p + 1 }) : sab.createMutex({ slots: p + 1 });
      const peers = Array.from({ length: p }, () =>
        kind === 'mmap'
          ? fork(
              new URL(import.meta.url).pathname,
              ['mmap-child', String(windowMs)],
              m.forkOptions(),
            )
          : new Worker(new URL(import.meta.url), { workerData: { handle: m.handle, windowMs } }),
      );
      const next = (peer) => new Promise((resolve) => peer.once('message', resolve));
      await Promise.all(peers.map(next));
      const done = peers.map(next);
      for (const peer of peers) (peer.send ?? peer.postMessage).call(peer, 'go');
      const counts = await Promise.all(done);
      m.close();
      const total = counts.reduce((a, b) => a + b, 0);
      const jain = total ** 2 / (counts.length * counts.reduce((a, b) => a + b * b, 0));
      results.push({ rate: (total / windowMs) * 1000, jain });
    }
    const rate = median(results.map((x) => x.rate));
    return { rate, jain: median(results.map((x) => x.jain)) };
  };

  const rows = [];
  const mm = mmap.createMutex({ slots: 2 });
  const sm = sab.createMutex({ slots: 2 });
  rows.push([
    'uncontended lockSync+release (ns, P=1)',
    uncontended(sm).toFixed(0),
    uncontended(mm).toFixed(0),
  ]);
  mm.close();
  sm.close();
  for (const p of [4, 32]) {
    const s = await contended('sab', p);
    const m = await contended('mmap', p);
    rows.push([
      `contended acquisitions/s, P=${p} (Jain fairness)`,
      `${s.rate.toFixed(0)} (${s.jain.toFixed(3)})`,
      `${m.rate.toFixed(0)} (${m.jain.toFixed(3)})`,
    ]);
  }
  console.log(
    `\n${os.cpus().length} CPUs, Node ${process.version}, window ${windowMs} ms, median of ${runs} runs\n`,
  );
  console.log('| measure | sab (threads) | mmap (processes) |');
  console.log('|---|---|---|');
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
}
