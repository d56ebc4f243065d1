import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { hostname } from 'node:os';
import { BakeryError } from '@bakery/core';
import pg from 'pg';

/** Where to connect: a connection string or node-postgres client options (PG* env vars fill in the rest). */
export type Connection = string | pg.ClientConfig;

/** The oldest server @bakery/pg runs on: 14 brought idle_session_timeout, client_connection_check_interval and pg_locks.waitstart. */
export const MIN_SERVER_VERSION = 140000;

/** The session settings derived from `sessionTimeoutMs` (see the package README, "Failure model"). */
export function sessionSettings(sessionTimeoutMs: number): Record<string, string> {
  const t = Math.round(sessionTimeoutMs);
  const keepalive = String(Math.max(1, Math.floor(t / 4000)));
  return {
    // A holder is idle between its queries; its heartbeat runs every t/4. A holder that stops
    // (SIGSTOP, a frozen VM, a partition) is ended by the server after t.
    idle_session_timeout: String(t),
    // A waiter is inside pg_advisory_lock: the server polls its socket this often and ends the
    // session when the client has gone (a SIGKILLed waiter would stay queued otherwise).
    client_connection_check_interval: String(Math.max(100, Math.round(t / 4))),
    // A peer that vanished without a FIN/RST (power loss, partition): TCP keepalives and the
    // retransmission limit end the session; ignored on a unix socket.
    tcp_keepalives_idle: keepalive,
    tcp_keepalives_interval: keepalive,
    tcp_keepalives_count: '3',
    tcp_user_timeout: String(t),
    // A role default must not end our waits: waits are bounded by lock_timeout, set per lock.
    statement_timeout: '0',
    lock_timeout: '0',
    idle_in_transaction_session_timeout: '0',
  };
}

/** The SQLSTATE of a server error, else undefined (a client-side or socket error). */
export function sqlState(err: unknown): string | undefined {
  const c = (err as { code?: unknown })?.code;
  return typeof c === 'string' && /^[0-9A-Z]{5}$/.test(c) ? c : undefined;
}

/**
 * One dedicated server session: the connection of one participant, never shared with the
 * application's pool. Knows its backend pid and a random marker set in the session, which every
 * lock and heartbeat query reads back: a proxy that moves our statements to another server
 * session shows up as a changed pid or marker.
 */
export class Session {
  readonly client: pg.Client;
  readonly pid: number;
  readonly marker: string;
  /** Set once the connection ended or failed; the session is then never used again. */
  dead: Error | null = null;
  /** performance.now() when the session last finished a query (its server idle clock starts). */
  idleSince = performance.now();
  /** The lock_timeout currently set in the session (ms, 0 = none). */
  lockTimeout = 0;
  /** Called once when the connection ends or fails. */
  onDeath: ((err: Error) => void) | null = null;
  #inFlight = 0;

  private constructor(client: pg.Client, pid: number, marker: string) {
    this.client = client;
    this.pid = pid;
    this.marker = marker;
    const die = (err: Error) => {
      if (this.dead !== null) return;
      this.dead = err;
      this.onDeath?.(err);
    };
    client.on('error', (err) => die(err));
    client.on('end', () => die(new Error('the connection to the server ended')));
    this.#ref(false);
  }

  /** Connect, check the server, apply the session settings. */
  static async connect(
    connection: Connection | undefined,
    sessionTimeoutMs: number,
    name: string,
  ): Promise<Session> {
    const config: pg.ClientConfig =
      typeof connection === 'string' ? { connectionString: connection } : { ...connection };
    config.keepAlive = true;
    config.keepAliveInitialDelayMillis ??= Math.max(1000, Math.round(sessionTimeoutMs / 4));
    config.application_name ??= `bakery ${hostname()} ${process.pid}`.slice(0, 63);
    const client = new pg.Client(config);
    // Until the Session owns it: an error event with no listener would crash the process.
    const early = (): void => {};
    client.on('error', early);
    try {
      await client.connect();
    } catch (err) {
      client.removeListener('error', early);
      throw new BakeryError(
        'BAKERY_CONNECTION',
        `cannot connect to PostgreSQL for lock ${JSON.stringify(name)}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    try {
      const info = await client.query(
        `SELECT current_setting('server_version_num')::int AS version,
                pg_is_in_recovery() AS recovery, pg_backend_pid() AS pid`,
      );
      const row = info.rows[0] as { version: number; recovery: boolean; pid: number };
      if (row.version < MIN_SERVER_VERSION) {
        throw new BakeryError(
          'BAKERY_UNSUPPORTED',
          `PostgreSQL ${row.version} is too old for @bakery/pg (lock ${JSON.stringify(name)}): it needs 14 or newer (idle_session_timeout, client_connection_check_interval, pg_locks.waitstart)`,
        );
      }
      if (row.recovery) {
        throw new BakeryError(
          'BAKERY_UNSUPPORTED',
          `the server is a standby in recovery (lock ${JSON.stringify(name)}): advisory locks there do not exclude anyone on the primary — connect to the primary`,
        );
      }
      const marker = randomBytes(12).toString('hex');
      const settings = { ...sessionSettings(sessionTimeoutMs), 'bakery.session': marker };
      const keys = Object.keys(settings);
      await client.query(
        `SELECT ${keys.map((_, i) => `set_config($${2 * i + 1}, $${2 * i + 2}, false)`).join(', ')}`,
        keys.flatMap((k) => [k, settings[k as keyof typeof settings]]),
      );
      client.removeListener('error', early);
      return new Session(client, row.pid, marker);
    } catch (err) {
      client.removeListener('error', early);
      client.on('error', early);
      void client.end().catch(() => {});
      if (err instanceof BakeryError) throw err;
      throw new BakeryError(
        'BAKERY_CONNECTION',
        `cannot set up a PostgreSQL session for lock ${JSON.stringify(name)}: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }

  /** Run one statement. The socket keeps the process alive only while a statement is in flight. */
  async query<R extends pg.QueryResultRow>(
    text: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    if (this.dead !== null) throw this.dead;
    this.#inFlight++;
    this.#ref(true);
    try {
      return await this.client.query<R>(text, values);
    } finally {
      this.idleSince = performance.now();
      if (--this.#inFlight === 0) this.#ref(false);
    }
  }

  /** Set lock_timeout (ms, 0 = wait forever) if the session has another value. */
  async setLockTimeout(ms: number): Promise<void> {
    if (ms === this.lockTimeout) return;
    await this.query(`SELECT set_config('lock_timeout', $1, false)`, [String(ms)]);
    this.lockTimeout = ms;
  }

  /**
   * Ask the server to cancel the statement in flight: the protocol's CancelRequest (backend
   * pid and secret key) on a separate connection to the same server. It may arrive too late, or
   * while the session is idle: the statement then completes normally (the caller handles that
   * race), and an idle session ignores it.
   */
  cancel(): void {
    if (this.dead !== null || this.#inFlight === 0) return;
    const c = this.client as unknown as {
      processID: number | null;
      secretKey: number | null;
      host: string;
      port: number;
    };
    if (c.processID == null || c.secretKey == null) return;
    const packet = Buffer.alloc(16);
    packet.writeInt32BE(16, 0);
    packet.writeInt32BE(80877102, 4);
    packet.writeInt32BE(c.processID, 8);
    packet.writeInt32BE(c.secretKey, 12);
    const socket = c.host.startsWith('/')
      ? connect(`${c.host}/.s.PGSQL.${c.port}`)
      : connect(c.port, c.host);
    socket.on('error', () => {});
    socket.on('connect', () => socket.end(packet));
    socket.setTimeout(10_000, () => socket.destroy());
  }

  /**
   * End the session now: close the socket (a statement in flight rejects). The server ends the
   * backend, freeing every lock it holds, as soon as it sees the socket closed — at once when
   * idle, within client_connection_check_interval while a statement waits.
   */
  destroy(reason: Error): void {
    if (this.dead === null) {
      this.dead = reason;
      this.onDeath?.(reason);
    }
    const stream = (this.client as unknown as { connection?: { stream?: { destroy?(): void } } })
      .connection?.stream;
    stream?.destroy?.();
    void this.client.end().catch(() => {});
  }

  /** Close cleanly (the server frees the session's locks). */
  async end(): Promise<void> {
    if (this.dead === null) this.dead = new Error('the session was closed');
    this.#ref(true);
    await this.client.end().catch(() => {});
  }

  #ref(on: boolean): void {
    const stream = (
      this.client as unknown as { connection?: { stream?: { ref?(): void; unref?(): void } } }
    ).connection?.stream;
    if (stream === undefined) return;
    if (on) stream.ref?.();
    else stream.unref?.();
  }
}
