// A parent creates the lock, forks children through mutex.forkOptions(); each child does
// lock / read–yield–write / unlock cycles (sync or async) on a counter in a shared file.
// Prints the count and the CPU the children used:
//  - whole lives against wall time × cores (includes Node's own start-up, ~0.2 s CPU each here);
//  - `locking`: only from each child's first lock to its last unlock, against that window ×
//    min(children, cores). Waiters that spun would fill every core (share ≈ 1; try a huge
//    `spin`); waiters that sleep in the futex leave only the serial chain of holders running.
//   node examples/children.mjs [children=32] [iterations=5000] [spin=default]
import { fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createMutex, openMutex } from '@bakery/mmap';

const [, , role] = process.argv;
if (role === 'child') {
  const [, , , file, iterations, id, spin] = process.argv;
  const mutex = openMutex(spin ? { spin: Number(spin) } : {});
  const fd = fs.openSync(file, 'r+');
  const buf = Buffer.alloc(4);
  const begin = performance.timeOrigin + performance.now();
  const cpu0 = process.cpuUsage();
  for (let k = 0; k < Number(iterations); k++) {
    const lease = (k + Number(id)) % 2 === 0 ? mutex.lockSync() : await mutex.lock();
    fs.readSync(fd, buf, 0, 4, 0); // read...
    if (k % 16 === 0) await new Promise((r) => setImmediate(r)); // ...yield...
    buf.writeInt32LE(buf.readInt32LE(0) + 1, 0);
    fs.writeSync(fd, buf, 0, 4, 0); // ...write
    lease.release();
  }
  const locking = process.cpuUsage(cpu0);
  const end = performance.timeOrigin + performance.now();
  mutex.close();
  const cpu = process.cpuUsage();
  const report = {
    cpuMs: (cpu.user + cpu.system) / 1000,
    lockingCpuMs: (locking.user + locking.system) / 1000,
    begin,
    end,
  };
  process.send(report, () => process.exit(0));
} else {
  const children = Number(process.argv[2] ?? 32);
  const iterations = Number(process.argv[3] ?? 5_000);
  const spin = process.argv[4];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bakery-mmap-example-'));
  const file = path.join(dir, 'counter');
  fs.writeFileSync(file, Buffer.alloc(4));
  const mutex = createMutex({ slots: 64 });
  const started = performance.now();
  const reports = await Promise.all(
    Array.from({ length: children }, (_, id) => {
      const args = ['child', file, String(iterations), String(id)];
      if (spin !== undefined) args.push(spin);
      const child = fork(new URL(import.meta.url).pathname, args, mutex.forkOptions());
      return new Promise((resolve, reject) => {
        let report;
        child.on('message', (m) => (report = m));
        child.on('exit', (code) =>
          code === 0 && report ? resolve(report) : reject(new Error(`child ${id} exited ${code}`)),
        );
      });
    }),
  );
  const wallMs = performance.now() - started;
  const count = fs.readFileSync(file).readInt32LE(0);
  const snap = mutex.inspect();
  const cores = os.availableParallelism();
  const sum = (key) => reports.reduce((a, r) => a + r[key], 0);
  const lockingMs =
    Math.max(...reports.map((r) => r.end)) - Math.min(...reports.map((r) => r.begin));
  const round = (x) => Number(x.toFixed(2));
  console.log(
    JSON.stringify({
      children,
      iterations,
      count,
      expected: children * iterations,
      exact: count === children * iterations,
      maxTicket: snap.maxTicket,
      ticketsLeft: snap.slots.filter((s) => s.ticket !== 0).length,
      cores,
      wallSeconds: round(wallMs / 1000),
      childCpuSeconds: round(sum('cpuMs') / 1000),
      cpuShareOfWallTimesCores: round(sum('cpuMs') / (wallMs * cores)),
      locking: {
        seconds: round(lockingMs / 1000),
        cpuSeconds: round(sum('lockingCpuMs') / 1000),
        cpuShare: round(sum('lockingCpuMs') / (lockingMs * Math.min(children, cores))),
      },
    }),
  );
  mutex.close();
  fs.rmSync(dir, { recursive: true, force: true });
  process.exitCode = count === children * iterations ? 0 : 1;
}
