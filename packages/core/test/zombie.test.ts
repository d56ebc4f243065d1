import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import { isAlive, taskStartTime } from '../src/node.js';

const block = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

test('a child that exited but was not waited for (a zombie) is dead, by pid + tid + start time and by pid alone', () => {
  // While this thread blocks, libuv cannot wait for the child: it stays a zombie in /proc —
  // what a parent blocked in lockSync behind its own killed child sees.
  const child = spawn('sleep', ['0.3'], { stdio: 'ignore' });
  const pid = child.pid!;
  const start = taskStartTime(pid, pid);
  expect(typeof start).toBe('number');
  const owner = { pid, tid: pid, startTime: start as number };
  expect(isAlive(owner)).toBe(true);
  block(1200);
  const state = readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1]![0];
  expect(state).toBe('Z');
  expect(isAlive(owner)).toBe(false);
  expect(isAlive({ pid, tid: 0, startTime: 0 })).toBe(false);
  // A live process is never dead, whichever way it is named.
  expect(isAlive({ pid: process.pid, tid: 0, startTime: 0 })).toBe(true);
  expect(
    isAlive({
      pid: process.pid,
      tid: process.pid,
      startTime: taskStartTime(process.pid, process.pid) as number,
    }),
  ).toBe(true);
});
