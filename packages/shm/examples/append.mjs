#!/usr/bin/env node
// Two shells, one file:
//
//   shell 1$ node examples/append.mjs demo /tmp/out.txt
//   shell 2$ node examples/append.mjs demo /tmp/out.txt
//
// Each run takes the named lock 2,000 times and appends one line per turn, written in two
// pieces so that without the lock the other run's pieces would land in the middle of it.
// Afterwards /tmp/out.txt has exactly 4,000 intact lines. The two runs share nothing but the
// name: no parent process, no fd. The lock lives in /dev/shm/bakery-<uid>/bakery.demo (or
// $BAKERY_SHM_DIR); remove it with `node -e "require('@bakery/shm').removeMutex('demo')"` when done.
import * as fs from 'node:fs';
import { openMutex } from '@bakery/shm';

const [name = 'demo', file = 'out.txt', count = '2000'] = process.argv.slice(2);
const n = Number(count);

const mutex = openMutex(name, { slots: 16 });
const fd = fs.openSync(file, 'a');
for (let i = 0; i < n; i++) {
  const lease = mutex.lockSync();
  try {
    fs.writeSync(fd, `${process.pid} ${String(i).padStart(5, '0')} `);
    fs.writeSync(fd, `${'-'.repeat(40)} end\n`);
  } finally {
    lease.release();
  }
}
fs.closeSync(fd);
mutex.close();
console.log(`${process.pid}: appended ${n} lines to ${file} under lock ${mutex.path}`);
