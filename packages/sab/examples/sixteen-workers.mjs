// 16 worker threads × 20,000 lock / read–yield–write / unlock cycles through the public API,
// half of them with lockSync and half with await lock(). Prints the count and the lock's state.
//   node examples/sixteen-workers.mjs [workers] [iterations]
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { createMutex, openMutex } from '@bakery/sab';

if (isMainThread) {
  const workers = Number(process.argv[2] ?? 16);
  const iterations = Number(process.argv[3] ?? 20_000);
  const mutex = createMutex({ slots: workers + 1 });
  const counter = new SharedArrayBuffer(4);
  const started = performance.now();
  await Promise.all(
    Array.from({ length: workers }, (_, id) => {
      const w = new Worker(new URL(import.meta.url), {
        workerData: { handle: mutex.handle, counter, id, iterations },
      });
      return new Promise((resolve, reject) => {
        w.on('error', reject);
        w.on('exit', resolve);
      });
    }),
  );
  const count = new Int32Array(counter)[0];
  const snap = mutex.inspect();
  const leftover = snap.slots.filter((s) => s.ticket !== 0).length;
  console.log(
    JSON.stringify({
      workers,
      iterations,
      count,
      expected: workers * iterations,
      exact: count === workers * iterations,
      maxTicket: snap.maxTicket,
      capacity: snap.capacity,
      ticketsLeft: leftover,
      seconds: Number(((performance.now() - started) / 1000).toFixed(2)),
    }),
  );
  mutex.close();
  process.exitCode =
    count === workers * iterations && leftover === 0 && snap.maxTicket <= snap.capacity ? 0 : 1;
} else {
  const { handle, counter, id, iterations } = workerData;
  const mutex = openMutex(handle);
  const cell = new Int32Array(counter);
  for (let k = 0; k < iterations; k++) {
    const lease = (k + id) % 2 === 0 ? mutex.lockSync() : await mutex.lock();
    const c = cell[0]; // a plain, non-atomic read...
    if (k % 64 === 0) await new Promise((r) => setImmediate(r)); // ...a yield...
    cell[0] = c + 1; // ...and a plain write: only the lock keeps the count exact
    lease.release();
  }
  mutex.close();
  parentPort.postMessage('done');
}
