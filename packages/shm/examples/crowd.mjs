#!/usr/bin/env node
// Many unrelated processes on one named lock, each holding it for a while (like a job that
// writes a file under the lock): what does waiting cost?
//
//   node examples/crowd.mjs [processes=64] [holdMs=2] [seconds=6] [sync|async]
//   BAKERY_SHM_ACCESS=pure-js node examples/crowd.mjs …   # the pure-JS path (at most 127)
//
// Spawns the processes (they share only the lock's name), lets them start, then for `seconds`
// each loops lock → read a counter file → hold `holdMs` (asleep, as I/O would be) → write the
// counter + 1 → unlock, with lockSync() or (async) await lock() and a timer for the hold. Prints acquisitions/s, whether the counter is exact, and the CPU all
// processes used inside the window: `cores` (CPU seconds per wall second) and per acquisition.
// A waiter that polled every few ms would keep every core busy at 64 processes; here a waiter
// far back in the queue sleeps most of the time the acquisitions ahead of it should take.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openMutex, removeMutex } from '@bakery/shm';

const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

if (process.argv[2] === 'child') {
  const [, , , name, dir, file, holdMs, startAt, endAt, mode] = process.argv;
  const mutex = openMutex(name, { dir });
  if (mutex.access !== process.env.CROWD_ACCESS) throw new Error(`child runs ${mutex.access}`);
  const fd = fs.openSync(file, 'r+');
  const buf = Buffer.alloc(4);
  sleep(Math.max(0, Number(startAt) - Date.now()));
  const cpu0 = process.cpuUsage();
  let n = 0;
  while (Date.now() < Number(endAt)) {
    const lease = mode === 'async' ? await mutex.lock() : mutex.lockSync();
    fs.readSync(fd, buf, 0, 4, 0);
    if (mode === 'async') await new Promise((r) => setTimeout(r, Number(holdMs)));
    else sleep(Number(holdMs));
    buf.writeInt32LE(buf.readInt32LE(0) + 1, 0);
    fs.writeSync(fd, buf, 0, 4, 0);
    lease.release();
    n++;
  }
  const cpu = process.cpuUsage(cpu0);
  mutex.close();
  console.log(JSON.stringify({ n, cpuMs: (cpu.user + cpu.system) / 1000, mode }));
} else {
  const processes = Number(process.argv[2] ?? 64);
  const holdMs = Number(process.argv[3] ?? 2);
  const seconds = Number(process.argv[4] ?? 6);
  const mode = process.argv[5] === 'async' ? 'async' : 'sync';
  const dir = fs.mkdtempSync(
    path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'crowd-'),
  );
  const name = 'crowd';
  const file = path.join(dir, 'counter');
  fs.writeFileSync(file, Buffer.alloc(4));
  // The lock has one slot per process; every child opens it the way it was created.
  const creator = openMutex(name, { slots: processes, dir });
  const access = creator.access;
  creator.close();
  // Node takes ~0.2 s of CPU to start; on 2 cores 64 of them need several seconds.
  const startAt = Date.now() + 2000 + processes * 200;
  const endAt = startAt + seconds * 1000;
  const script = new URL(import.meta.url).pathname;
  const reports = await Promise.all(
    Array.from({ length: processes }, () => {
      const args = [
        script,
        'child',
        name,
        dir,
        file,
        String(holdMs),
        String(startAt),
        String(endAt),
        mode,
      ];
      const child = spawn(process.execPath, args, {
        stdio: ['ignore', 'pipe', 'inherit'],
        env: { ...process.env, CROWD_ACCESS: access },
      });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      return new Promise((resolve, reject) =>
        child.on('exit', (code) =>
          code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`a child exited ${code}`)),
        ),
      );
    }),
  );
  const acquisitions = reports.reduce((a, r) => a + r.n, 0);
  const cpuMs = reports.reduce((a, r) => a + r.cpuMs, 0);
  const count = fs.readFileSync(file).readInt32LE(0);
  removeMutex(name, { dir });
  fs.rmSync(dir, { recursive: true, force: true });
  console.log(
    JSON.stringify({
      processes,
      access,
      mode,
      holdMs,
      seconds,
      acquisitions,
      perSecond: Math.round(acquisitions / seconds),
      exact: count === acquisitions,
      cores: Number((cpuMs / (seconds * 1000)).toFixed(2)),
      of: os.availableParallelism(),
      cpuMsPerAcquisition: Number((cpuMs / acquisitions).toFixed(2)),
      fewestPerProcess: Math.min(...reports.map((r) => r.n)),
      mostPerProcess: Math.max(...reports.map((r) => r.n)),
    }),
  );
  // Every child looped the way it was told (sync or async).
  const asTold = reports.every((r) => r.mode === mode);
  process.exitCode = count === acquisitions && asTold ? 0 : 1;
}
