// One throwaway PostgreSQL server for the whole test run: started here, stopped at the end
// (see scripts/throwaway-server.mjs). Without server binaries the pg tests are skipped with a
// printed reason — except where BAKERY_REQUIRE_PG=1 (CI), where that is a failure.
import type { TestProject } from 'vitest/node';
import { findPgBin, findPgbouncer, startServer } from '../scripts/throwaway-server.mjs';

declare module 'vitest' {
  export interface ProvidedContext {
    pg: { url: string; socketUrl: string; port: number; socketDir: string; bin: string } | null;
    pgSkip: string;
    pgbouncer: string | null;
  }
}

export default async function setup(project: TestProject) {
  if (findPgBin() === null) {
    const why =
      'no PostgreSQL server binaries (initdb, pg_ctl) on this machine — install the `postgresql` package (Debian/Ubuntu) or set PG_BIN';
    if (process.env.BAKERY_REQUIRE_PG === '1') throw new Error(`${why} (BAKERY_REQUIRE_PG=1)`);
    console.warn(`@bakery/pg tests SKIPPED: ${why}`);
    project.provide('pg', null);
    project.provide('pgSkip', why);
    project.provide('pgbouncer', null);
    return;
  }
  const server = await startServer();
  console.log(`@bakery/pg tests: throwaway PostgreSQL on port ${server.port} (${server.bin})`);
  project.provide('pg', {
    url: server.url,
    socketUrl: server.socketUrl,
    port: server.port,
    socketDir: server.socketDir,
    bin: server.bin,
  });
  project.provide('pgSkip', '');
  project.provide('pgbouncer', findPgbouncer());
  return () => server.stop();
}
