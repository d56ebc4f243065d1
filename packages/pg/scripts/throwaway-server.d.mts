// Types of throwaway-server.mjs (a plain script, so that it runs without a build).

/** A running throwaway server (see throwaway-server.mjs). */
export interface ThrowawayServer {
  /** Its temporary directory (data, log, unix socket), deleted by stop(). */
  dir: string;
  /** The directory of the PostgreSQL binaries used. */
  bin: string;
  /** Its TCP port on 127.0.0.1. */
  port: number;
  /** The directory of its unix socket. */
  socketDir: string;
  /** A connection string over TCP (127.0.0.1). */
  url: string;
  /** A connection string over the unix socket. */
  socketUrl: string;
  /** Stop it and delete its directory. */
  stop(): void;
}

/** The directory holding initdb and pg_ctl, or null when none is installed. */
export function findPgBin(): string | null;
/** The pgbouncer binary, or null. */
export function findPgbouncer(): string | null;
/** A TCP port nobody listens on right now. */
export function freePort(): Promise<number>;
/** initdb into a temporary directory and start the server on a random port. */
export function startServer(options?: {
  settings?: Record<string, string>;
}): Promise<ThrowawayServer>;
