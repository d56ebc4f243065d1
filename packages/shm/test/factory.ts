import * as fs from 'node:fs';
import { type ConformanceFactory, processFixture } from '@bakery/conformance';
import type { Cells } from '@bakery/core';
import { loadNative, MappedCells } from '@bakery/native';
// The build, as the participants load it: the suite's two sides run the same code.
import { openMutex, ShmCells } from '../dist/index.js';
import { distEntry, freshDir } from './helpers.js';

/**
 * The conformance factory of one shm path. Participants are separate `node` processes started
 * with child_process.spawn: no IPC channel, no inherited fd, no handle. All they get is the
 * lock's name (in their config), the lock directory (BAKERY_SHM_DIR) and the access mode
 * (BAKERY_SHM_ACCESS, so a participant that could not take the path fails instead of falling
 * back) — exactly what two unrelated programs would share.
 */
export function shmFactory(access: 'mapped' | 'pure-js'): ConformanceFactory {
  return {
    name: `@bakery/shm (${access})`,
    participants: 'processes',
    // The mapped path has leases and the outsider lock; the pure-JS path reaps under the
    // registry lock, slot or no slot.
    capabilities: { leases: access === 'mapped', reapsWithoutSlot: true },
    concurrency: 8,
    iterations: 300,
    async create(slots) {
      const dir = freshDir();
      const name = 'conformance';
      let creator: ReturnType<typeof openMutex>;
      try {
        creator = openMutex(name, { slots, dir, access });
      } catch (err) {
        fs.rmSync(dir, { recursive: true, force: true }); // a bad slot count: nothing to keep
        throw err;
      }
      creator.close();
      const fd = fs.openSync(creator.path, 'r+');
      const size = fs.fstatSync(fd).size;
      // The test process reads and pokes the cells the way the participants do.
      let cells: Cells;
      if (access === 'mapped') {
        const native = loadNative();
        cells = new MappedCells(native, native.map(fd, size, true));
      } else {
        cells = new ShmCells(fd, size / 4);
      }
      return processFixture(
        {
          cells,
          open: (options) => openMutex(name, { ...options, dir, access }),
          participant: { module: distEntry, exportName: 'openMutex', args: [name] },
          dispose() {
            fs.closeSync(fd);
            fs.rmSync(dir, { recursive: true, force: true });
          },
        },
        () => ({ env: { BAKERY_SHM_DIR: dir, BAKERY_SHM_ACCESS: access } }),
        'spawn',
      );
    },
  };
}
