import { processFixture, suite } from '@bakery/conformance';
import { describe, test } from 'vitest';
// The build, as the participants load it: the suite's two sides run the same code.
import { createMutex, forkOptions, loadNative, MmapCells, openMutex } from '../dist/index.js';

suite({
  test,
  describe,
  factory: {
    name: '@bakery/mmap',
    participants: 'processes',
    capabilities: { leases: true, reapsWithoutSlot: true },
    concurrency: 16,
    iterations: 300,
    async create(slots) {
      // The fixture keeps its own fd (a second description of the same memfd) so that the
      // creator's participant can be closed like any other and does not hold a slot.
      const creator = createMutex({ slots });
      const native = loadNative();
      const fd = native.reopen(creator.fd);
      creator.close();
      return processFixture(
        {
          cells: new MmapCells(native, native.map(fd, native.size(fd))),
          open: (options) => openMutex({ ...options, fd }),
          participant: {
            module: new URL('../dist/index.js', import.meta.url).href,
            exportName: 'openMutex',
            args: [],
          },
          dispose: () => native.close(fd),
        },
        () => forkOptions(fd, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
      );
    },
  },
});
