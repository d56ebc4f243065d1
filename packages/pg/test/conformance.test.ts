// The asynchronous subset of the conformance suite over a real PostgreSQL server. Participants
// are forked node processes that open the lock by name, from the PG* environment variables:
// even ids over the unix socket, odd ids over TCP — two ways of reaching the same queue.
import { asyncProcessFixture, asyncSuite } from '@bakery/conformance';
import type { MutexOptions } from '@bakery/core';
import { describe } from 'vitest';
import { openMutex } from '../dist/index.js';
import { distEntry, pgTest, server, uniqueName } from './helpers.js';

const SESSION_TIMEOUT_MS = 5_000;

asyncSuite({
  test: pgTest,
  describe,
  factory: {
    name: '@bakery/pg (PostgreSQL, unix socket and TCP)',
    concurrency: 8,
    iterations: 150,
    async create() {
      const name = uniqueName('conformance');
      const s = server!;
      const base = { sessionTimeoutMs: SESSION_TIMEOUT_MS };
      return asyncProcessFixture(
        {
          open: (options) =>
            openMutex(name, {
              ...options,
              ...base,
              connection: ++id % 2 === 0 ? s.socketUrl : s.url,
            }),
          participant: {
            module: distEntry,
            exportName: 'openMutex',
            args: [name],
            options: base as MutexOptions,
          },
        },
        (id) => ({
          env: {
            PGHOST: id % 2 === 0 ? s.socketDir : '127.0.0.1',
            PGPORT: String(s.port),
            PGUSER: 'postgres',
            PGDATABASE: 'postgres',
          },
        }),
      );
    },
  },
});
let id = 0;
