// A parent creates the lock, forks 32 children through mutex.forkOptions(); each child does
// 5,000 lock / read–yield–write / unlock cycles (sync or async) on a counter in a shared file.
// Prints the count, and the CPU the children used against wall time × cores: waiters sleep in
// the futex instead of spinning.
//   node examples/children.mjs [children] [iterations]
import { fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createMutex, openMutex } from '@bakery/mmap';

const [, , role] = process.argv;
if (role === 'child') {
  const [, , , file, iterations, id] = process.argv;
  const mutex = openMutex();
  const fd = fs.openSync(file, 'r+');
  const buf = Buffer.alloc(4);
  for (let k = 0; k < Number(iterations); k++) {
    const lease = (k + Number(id)) % 2 === 0 ? mutex.lockSync() : await mutex.lock();
    fs.readSync(fd, buf, 0, 4, 0); // read...
    if (k % 16 === 0) await new Promise((r) => setImmediate(r)); // ...yield...
    buf.writeInt32LE(buf.readInt32LE(0) + 1, 0);
    fs.writeSync(fd, buf, 0, 4, 0); // ...write
    lease.release();
  }
  mutex.close();
  const cpu = process.cpuUsage();
  process.send({ cpuMs: (cpu.user + cpu.system) / 1000 }, () => process.exit(0));
} else {
  const children = Number(process.argv[2] ?? 32);
  const iterations = Number(process.argv[3] ?? 5_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bakery-mmap-example-'));
  const file = path.join(dir, 'counter');
  fs.writeFileSync(file, Buffer.alloc(4));
  const mutex = createMutex({ slots: 64 });
  const started = performance.now();
  const cpu = await Promise.all(
    Array.from({ length: children }, (_, id) => {
      const child = fork(
        new URL(import.meta.url).pathname,
        ['child', file, String(iterations), String(id)],
        mutex.forkOptions(),
      );
      return new Promise((resolve, reject) => {
        let report;
        child.on('message', (m) => (report = m));
        child.on('exit', (code) =>
          code === 0 && report
            ? resolve(report.cpuMs)
            : reject(new Error(`child ${id} exited ${code}`)),
        );
      });
    }),
  );
  const wallMs = performance.now() - started;
  const count = fs.readFileSync(file).readInt32LE(0);
  const snap = mutex.inspect();
  const cpuMs = cpu.reduce((a, b) => a + b, 0);
  console.log(
    JSON.stringify({
      children,
      iterations,
      count,
      expected: children * iterations,
      exact: count === children * iterations,
      maxTicket: snap.maxTicket,
      ticketsLeft: snap.slots.filter((s) => s.ticket !== 0).length,
      wallSeconds: Number((wallMs / 1000).toFixed(2)),
      childCpuSeconds: Number((cpuMs / 1000).toFixed(2)),
      cpuShareOfWallTimesCores: Number((cpuMs / (wallMs * os.availableParallelism())).toFixed(2)),
    }),
  );
  mutex.close();
  fs.rmSync(dir, { recursive: true, force: true });
  process.exitCode = count === children * iterations ? 0 : 1;
}
