import * as fs from 'node:fs';
import { processFixture, suite } from '@bakery/conformance';
import { describe, test } from 'vitest';
import { openMutex, ShmCells } from '../src/index.js';
import { distEntry, freshDir } from './helpers.js';

// Participants are separate `node` processes started with child_process.spawn: no IPC channel,
// no inherited fd, no handle. All they get is the lock's name (in their config) and the lock
// directory (in BAKERY_SHM_DIR) — exactly what two unrelated programs would share.
suite({
  test,
  describe,
  factory: {
    name: '@bakery/shm',
    participants: 'processes',
    concurrency: 8,
    iterations: 300,
    async create(slots) {
      const dir = freshDir();
      const name = 'conformance';
      let creator: ReturnType<typeof openMutex>;
      try {
        creator = openMutex(name, { slots, dir });
      } catch (err) {
        fs.rmSync(dir, { recursive: true, force: true }); // a bad slot count: nothing to keep
        throw err;
      }
      creator.close();
      const fd = fs.openSync(creator.path, 'r+');
      return processFixture(
        {
          cells: new ShmCells(fd, fs.fstatSync(fd).size / 4),
          open: (options) => openMutex(name, { ...options, dir }),
          participant: { module: distEntry, exportName: 'openMutex', args: [name] },
          dispose() {
            fs.closeSync(fd);
            fs.rmSync(dir, { recursive: true, force: true });
          },
        },
        () => ({ env: { BAKERY_SHM_DIR: dir } }),
        'spawn',
      );
    },
  },
});
