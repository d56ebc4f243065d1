// The one answer to "can these tests reach a PostgreSQL?": why not (printed by each test that
// then skips), or a throwaway server from @bakery/pg's helper. Without the binaries that is a
// printed skip, except under BAKERY_REQUIRE_PG=1 (.ci/run), where it is a failure.

/** Why there is no server here, or '' when the binaries are there. Throws under BAKERY_REQUIRE_PG=1. */
export async function noPgReason(): Promise<string> {
  const { findPgBin } = await import('@bakery/pg/throwaway-server');
  if (findPgBin() !== null) return '';
  const why = 'no PostgreSQL binaries (apt-get install postgresql, or PG_BIN=…)';
  if (process.env.BAKERY_REQUIRE_PG === '1') throw new Error(`${why} (BAKERY_REQUIRE_PG=1)`);
  return why;
}

/** A throwaway server, or null with the reason (see {@link noPgReason}). */
export async function startPgServer(): Promise<{
  server: { url: string; stop(): void } | null;
  skip: string;
}> {
  const skip = await noPgReason();
  if (skip !== '') return { server: null, skip };
  const { startServer } = await import('@bakery/pg/throwaway-server');
  return { server: await startServer(), skip };
}
