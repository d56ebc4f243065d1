import { hostname } from 'node:os';
import {
  type AsyncLease,
  type AsyncMutex,
  BakeryError,
  checkTimeout,
  type LockOptions,
  type MutexOptions,
  rangeError,
  typeError,
} from '@bakery/core';
import { checkName, keyParts, lockKey } from './key.js';
import { type Connection, Session, sqlState } from './session.js';
import { checkTable, ensureTable, type Table } from './table.js';

/** Default {@link PgMutexOptions.sessionTimeoutMs}. */
export const DEFAULT_SESSION_TIMEOUT_MS = 10_000;
/** Smallest {@link PgMutexOptions.sessionTimeoutMs}. */
export const MIN_SESSION_TIMEOUT_MS = 200;

/** Options of {@link openMutex}. */
export interface PgMutexOptions extends Pick<MutexOptions, 'robust'> {
  /** Where the database is: a connection string or node-postgres client options (default: the PG* environment variables). */
  connection?: Connection;
  /**
   * How long a holder that stopped answering keeps the lock (ms, default 10,000, at least 200):
   * the server ends a session idle this long (`idle_session_timeout`), and a holder's heartbeat
   * runs every quarter of it. The holder itself gives the lease up (`BAKERY_LOCK_LOST`) when no
   * heartbeat has been answered within half of it, so it knows before the server hands the lock
   * on. Waiters and vanished peers are bounded by it too (see the README's failure model).
   */
  sessionTimeoutMs?: number;
  /** The state table (default `bakery_locks`, optionally schema-qualified: `ops.locks`). Created if missing. */
  table?: string;
  /** Accepted for code shared with the local backends; PostgreSQL's queue is always strict FIFO. */
  handoff?: 'strict' | 'batched';
  /** Accepted and ignored (local-backend tuning). */
  spin?: number;
  /** Accepted and ignored (local-backend tuning). */
  staleAfterMs?: number;
  /** Accepted and ignored (local-backend tuning). */
  claim?: 'open' | 'lock';
  /** Accepted and ignored (local-backend tuning). */
  maxBatch?: number;
  /** Accepted and ignored (local-backend tuning). */
  maxBatchMs?: number;
  /** Accepted and ignored (the local backends' doorway hooks: this backend has no doorway). */
  trace?: MutexOptions['trace'];
}

/** The lease of a @bakery/pg lock. */
export interface PgLease extends AsyncLease {
  /** True when the previous holder ended (died, lost its session) without releasing. */
  readonly ownerDied: boolean;
  /**
   * Strictly increasing per lock name, across every client of the database: pass it to the
   * resource you protect and have it refuse older tokens (`UPDATE … WHERE fence < $token`).
   */
  readonly fencingToken: bigint;
  /**
   * Aborts with `BAKERY_LOCK_LOST` when the lease stops being the lock: its session ended
   * (killed, terminated, network) or no heartbeat was answered in time. Not aborted by a
   * normal release.
   */
  readonly signal: AbortSignal;
  /**
   * Until when (epoch ms) the lease is surely still the lock, as far as this client knows;
   * each answered heartbeat moves it on. Check it before an irreversible step when the event
   * loop may have been blocked (a timer cannot fire then, so `signal` may not have aborted yet).
   */
  readonly expiresAt: number;
  /** `Date.now() < expiresAt` and not lost. */
  readonly valid: boolean;
  /** Declare the protected data repaired after `ownerDied` (recorded by `release()`). */
  markConsistent(): void;
  /**
   * Record the release, then unlock. Rejects with `BAKERY_LOCK_LOST` when the lease was lost
   * (whatever the critical section did was not protected to the end), `BAKERY_NOT_HELD` on a
   * second call. Bound to its lease.
   */
  release(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** One participant in the queue of {@link PgMutex.inspect}. */
export interface PgParticipant {
  /** The server process of its session (pg_backend_pid()). */
  pid: number;
  /** Its client's address (null over a unix socket). */
  clientAddr: string | null;
  /** The application_name of its session (bakery sets `bakery <host> <pid>`). */
  applicationName: string | null;
  /** When it started waiting (null for the holder). */
  waitStart: Date | null;
}

/** What {@link PgMutex.inspect} reads: the state row and the server's lock queue. */
export interface PgSnapshot {
  name: string;
  /** The 64-bit advisory-lock key. */
  key: bigint;
  /** The last fencing token handed out (0 before the first acquisition). */
  fencingToken: bigint;
  /** The state row says a holder is inside (it, or its successor, sees ownerDied if it ends). */
  held: boolean;
  state: 'consistent' | 'not-recoverable';
  /** Who the state row names as holder (`host pid`), and when it acquired. */
  recordedHolder: string | null;
  acquiredAt: Date | null;
  /** The session holding the advisory lock, from pg_locks. */
  holder: PgParticipant | null;
  /** Sessions waiting for it, in the order the server will grant them. */
  waiters: PgParticipant[];
}

const LOST_HELP =
  'the lock may now be held by another client; whatever the critical section did after this point was not protected';

function lostError(name: string, why: string, cause?: unknown): BakeryError {
  return new BakeryError(
    'BAKERY_LOCK_LOST',
    `lock ${JSON.stringify(name)} was lost: ${why}; ${LOST_HELP}`,
    {
      cause,
    },
  );
}

function dbError(name: string, what: string, err: unknown): BakeryError {
  if (err instanceof BakeryError) return err;
  const state = sqlState(err);
  const message = (err as Error)?.message ?? String(err);
  // Class 08 (connection exception), 57P (operator intervention, e.g. a terminated backend,
  // an idle-session timeout) and socket errors without a SQLSTATE: the session is gone.
  const connection = state === undefined || state.startsWith('08') || state.startsWith('57P');
  return new BakeryError(
    connection ? 'BAKERY_CONNECTION' : 'BAKERY_IO',
    `${what} of lock ${JSON.stringify(name)} failed${state ? ` (SQLSTATE ${state})` : ''}: ${message}`,
    { cause: err },
  );
}

interface LocalWaiter {
  resolve(): void;
  reject(err: unknown): void;
}

/** The acquisition statement's view of the state row before it. */
interface StateRow {
  held: boolean;
  name: string;
  state: string;
  fence: string | null;
}

class Lease implements PgLease {
  readonly ownerDied: boolean;
  readonly fencingToken: bigint;
  readonly #owner: PgMutex;
  readonly #abort = new AbortController();
  #deadline: number;
  #consistent = false;
  #released = false;
  #lost: BakeryError | null = null;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #expiry: ReturnType<typeof setTimeout> | undefined;
  readonly session: Session;
  /** The operator's lease of a not-recoverable lock (markConsistent): no token was issued. */
  poisoned = false;

  constructor(owner: PgMutex, session: Session, ownerDied: boolean, token: bigint, sentAt: number) {
    this.#owner = owner;
    this.session = session;
    this.ownerDied = ownerDied;
    this.fencingToken = token;
    this.#deadline = sentAt + owner.sessionTimeoutMs / 2;
    session.onDeath = (err) => this.lose('its database session ended', err);
    if (session.dead !== null) this.lose('its database session ended', session.dead);
    this.#heartbeat = setInterval(() => void this.#beat(), owner.sessionTimeoutMs / 4);
    this.#heartbeat.unref();
    this.#arm();
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  get expiresAt(): number {
    return Math.round(performance.timeOrigin + this.#deadline);
  }

  get valid(): boolean {
    return this.#lost === null && !this.#released && performance.now() < this.#deadline;
  }

  markConsistent = (): void => {
    if (this.#released) {
      throw new BakeryError(
        'BAKERY_NOT_HELD',
        `the lease of lock ${JSON.stringify(this.#owner.name)} was already released`,
      );
    }
    this.#consistent = true;
  };

  release = async (): Promise<void> => {
    if (this.#released) {
      throw new BakeryError(
        'BAKERY_NOT_HELD',
        `the lease of lock ${JSON.stringify(this.#owner.name)} was already released`,
      );
    }
    this.#released = true;
    this.#stopTimers();
    try {
      if (this.#lost !== null) throw this.#lost;
      if (!this.valid && performance.now() >= this.#deadline) {
        this.lose('no heartbeat was answered within half the session timeout');
        throw this.#lost!;
      }
      const state =
        this.ownerDied && !this.#consistent && this.#owner.robust === 'manual'
          ? 'not-recoverable'
          : 'consistent';
      await this.#owner.recordRelease(this, state);
      this.session.onDeath = null;
    } catch (err) {
      if (this.#lost === null) this.lose('the release could not be confirmed', err);
      throw this.#lost;
    } finally {
      this.#owner.leaseEnded(this);
    }
  };

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#released) await this.release();
  }

  /** The lease is not the lock any more: tell the holder, end the session (the server frees it). */
  lose(why: string, cause?: unknown): void {
    if (this.#lost !== null) return;
    this.#lost = lostError(this.#owner.name, why, cause);
    this.#stopTimers();
    this.session.onDeath = null;
    this.session.destroy(this.#lost);
    this.#abort.abort(this.#lost);
  }

  #stopTimers(): void {
    clearInterval(this.#heartbeat);
    clearTimeout(this.#expiry);
  }

  #arm(): void {
    clearTimeout(this.#expiry);
    if (this.#lost !== null || this.#released) return;
    this.#expiry = setTimeout(
      () => {
        if (performance.now() >= this.#deadline)
          this.lose('no heartbeat was answered within half the session timeout');
        else this.#arm();
      },
      Math.max(0, this.#deadline - performance.now()),
    );
    this.#expiry.unref();
  }

  async #beat(): Promise<void> {
    if (this.#lost !== null || this.#released) return;
    const sent = performance.now();
    try {
      const r = await this.session.query<{ pid: number; marker: string | null }>(
        `SELECT pg_backend_pid() AS pid, current_setting('bakery.session', true) AS marker`,
      );
      const row = r.rows[0]!;
      if (row.pid !== this.session.pid || row.marker !== this.session.marker) {
        this.lose('the heartbeat ran in another server session (a transaction-pooling proxy?)');
        return;
      }
      if (this.#released || this.#lost !== null) return;
      if (performance.now() >= this.#deadline) {
        this.lose('no heartbeat was answered within half the session timeout');
        return;
      }
      this.#deadline = sent + this.#owner.sessionTimeoutMs / 2;
      this.#arm();
    } catch (err) {
      if (!this.#released) this.lose('its heartbeat failed', err);
    }
  }

  stopForRelease(): void {
    this.#stopTimers();
  }
}

/**
 * A first-come-first-served lock on a PostgreSQL server, shared by every client of the
 * database, on any machine. The asynchronous subset of the bakery Mutex ({@link AsyncMutex}),
 * plus fencing tokens, lost-lock reports and `inspect()`. Open it with {@link openMutex}.
 */
export class PgMutex implements AsyncMutex {
  /** The lock's name. */
  readonly name: string;
  /** Its 64-bit advisory-lock key ({@link lockKey}). */
  readonly key: bigint;
  readonly robust: 'manual' | 'auto';
  readonly sessionTimeoutMs: number;
  /** Always `'strict'`: the server grants advisory locks in arrival order. */
  readonly handoff = 'strict' as const;
  readonly #connection: Connection | undefined;
  readonly #table: Table;
  readonly #parts: { classid: number; objid: number };
  #session: Session | null;
  #lease: Lease | null = null;
  #acquiring = false;
  #closed = false;
  readonly #queue: LocalWaiter[] = [];

  /** @internal Use {@link openMutex}. */
  constructor(
    name: string,
    options: {
      connection: Connection | undefined;
      robust: 'manual' | 'auto';
      sessionTimeoutMs: number;
      table: Table;
    },
    session: Session,
  ) {
    this.name = name;
    this.key = lockKey(name);
    this.#parts = keyParts(this.key);
    this.robust = options.robust;
    this.sessionTimeoutMs = options.sessionTimeoutMs;
    this.#connection = options.connection;
    this.#table = options.table;
    this.#session = session;
  }

  /** True while this instance holds the lock. */
  get held(): boolean {
    return this.#lease !== null;
  }

  /** The backend pid of this instance's current session (null while it has none). */
  get sessionPid(): number | null {
    return this.#session?.dead === null ? this.#session.pid : null;
  }

  /**
   * Wait for the lock in the server's FIFO queue. Rejects with `BAKERY_TIMEOUT` after
   * `timeout` ms (the server's lock_timeout), `BAKERY_ABORTED` when `signal` fires (the wait is
   * cancelled with the protocol's cancel request; when the grant wins that race, the lock is
   * released before the promise rejects), `BAKERY_CONNECTION` when the database cannot be
   * reached. Several calls on one instance queue locally, in order.
   */
  lock(options?: LockOptions): Promise<PgLease> {
    return this.#lock(options, 'wait') as Promise<PgLease>;
  }

  /** Take the lock only if it is free right now (or null): `pg_try_advisory_lock`. */
  tryLock(): Promise<PgLease | null> {
    return this.#lock(undefined, 'try');
  }

  /** Not offered over a network: throws `BAKERY_UNSUPPORTED`. Use `await lock()`. */
  lockSync(): never {
    throw new BakeryError(
      'BAKERY_UNSUPPORTED',
      `lockSync() is not offered by @bakery/pg (lock ${JSON.stringify(this.name)}): a network round trip cannot block a thread safely — use await mutex.lock()`,
    );
  }

  /** Run `fn` holding the lock; the lease is released (awaited) when `fn` settles. */
  async withLock<T>(fn: (lease: PgLease) => T | Promise<T>, options?: LockOptions): Promise<T> {
    const lease = await this.lock(options);
    let result: T;
    try {
      result = await fn(lease);
    } catch (err) {
      await lease.release().catch(() => {});
      throw err;
    }
    await lease.release();
    return result;
  }

  /**
   * The operator's way out of a not-recoverable lock, after repairing the data: takes the lock
   * (at most `timeout` ms), records it consistent and not held, releases. True when there was
   * something to clear.
   */
  async markConsistent(options?: { timeout?: number }): Promise<boolean> {
    const lease = await this.#lock(options, 'wait', true);
    if (lease === null) return false;
    const r = await this.#session!.query<{ was: boolean }>(
      `UPDATE ${this.#table.sql} SET state = 'consistent', held = false WHERE key = $1 RETURNING true AS was`,
      [this.key.toString()],
    ).catch((err) => {
      throw dbError(this.name, 'markConsistent', err);
    });
    const cleared = lease.poisoned || lease.ownerDied;
    lease.markConsistent();
    await lease.release();
    return cleared && r.rowCount === 1;
  }

  /** The state row and the server's queue for this lock (racy by nature: for diagnostics). */
  async inspect(): Promise<PgSnapshot> {
    this.#checkOpen();
    // While this instance holds or waits, its session is busy (a waiting lock statement blocks
    // it; ending a holder's session would drop the lock): read on a session of its own.
    const busy = this.#lease !== null || this.#acquiring;
    let session: Session;
    try {
      session = busy
        ? await Session.connect(this.#connection, this.sessionTimeoutMs, this.name)
        : await this.#idleSession();
    } catch (err) {
      throw dbError(this.name, 'inspect', err);
    }
    try {
      return await readSnapshot((t, v) => session.query(t, v), this.#table, this.name);
    } catch (err) {
      throw dbError(this.name, 'inspect', err);
    } finally {
      if (busy) void session.end();
    }
  }

  /** End the session. `BAKERY_ALREADY_HELD` while held or acquiring; a second close is a no-op. */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#lease !== null || this.#acquiring || this.#queue.length > 0) {
      throw new BakeryError(
        'BAKERY_ALREADY_HELD',
        `close() of lock ${JSON.stringify(this.name)} while this instance holds or waits for it: release the lease first`,
      );
    }
    this.#closed = true;
    const s = this.#session;
    this.#session = null;
    await s?.end();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #checkOpen(): void {
    if (this.#closed)
      throw new BakeryError('BAKERY_CLOSED', `lock ${JSON.stringify(this.name)} was closed`);
  }

  /** The session to run a statement on while this instance neither holds nor waits. */
  async #idleSession(): Promise<Session> {
    const s = this.#session;
    // Idle for more than half the session timeout: the server may end it any moment.
    if (
      s !== null &&
      s.dead === null &&
      performance.now() - s.idleSince < this.sessionTimeoutMs / 2
    )
      return s;
    if (s !== null) void s.end();
    this.#session = null;
    const fresh = await Session.connect(this.#connection, this.sessionTimeoutMs, this.name);
    if (this.#closed) {
      await fresh.end();
      this.#checkOpen();
    }
    this.#session = fresh;
    return fresh;
  }

  async #lock(
    options: LockOptions | undefined,
    mode: 'wait' | 'try',
    operator = false,
  ): Promise<Lease | null> {
    if (options !== undefined && (typeof options !== 'object' || options === null))
      throw typeError('lock options must be an object');
    const timeout = checkTimeout(options?.timeout);
    const signal = options?.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal))
      throw typeError('signal must be an AbortSignal');
    this.#checkOpen();
    const start = performance.now();
    if (signal?.aborted) throw this.#aborted(signal);
    if (mode === 'try' && (this.#lease !== null || this.#acquiring || this.#queue.length > 0))
      return null;
    await this.#localTurn(signal, start + timeout, timeout);
    this.#acquiring = true;
    try {
      const lease = await this.#acquire(mode, signal, start + timeout, timeout, operator);
      if (lease !== null) this.#lease = lease;
      return lease;
    } finally {
      this.#acquiring = false;
      if (this.#lease === null) this.#next();
    }
  }

  /** Wait until no other lock() of this instance is acquiring or holding. */
  #localTurn(signal: AbortSignal | undefined, deadline: number, timeout: number): Promise<void> {
    if (this.#lease === null && !this.#acquiring && this.#queue.length === 0)
      return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const k = this.#queue.indexOf(waiter);
        if (k >= 0) this.#queue.splice(k, 1);
      };
      const onAbort = () => {
        done();
        reject(this.#aborted(signal!));
      };
      const waiter: LocalWaiter = {
        resolve: () => {
          done();
          resolve();
        },
        reject: (err) => {
          done();
          reject(err);
        },
      };
      this.#queue.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (Number.isFinite(deadline)) {
        timer = setTimeout(
          () => waiter.reject(this.#timedOut(timeout)),
          Math.max(0, deadline - performance.now()),
        );
      }
    });
  }

  #next(): void {
    this.#queue[0]?.resolve();
  }

  /** @internal A lease ended (released or lost): the next local lock() may go. */
  leaseEnded(lease: Lease): void {
    if (this.#lease === lease) this.#lease = null;
    if (lease.session.dead !== null && this.#session === lease.session) this.#session = null;
    this.#next();
  }

  #aborted(signal: AbortSignal): BakeryError {
    return new BakeryError('BAKERY_ABORTED', `lock() of ${JSON.stringify(this.name)} was aborted`, {
      cause: signal.reason,
    });
  }

  #timedOut(timeout: number): BakeryError {
    return new BakeryError(
      'BAKERY_TIMEOUT',
      `lock ${JSON.stringify(this.name)} was not granted within ${timeout} ms; the wait was withdrawn (raise the timeout, or find the holder with mutex.inspect())`,
    );
  }

  async #acquire(
    mode: 'wait' | 'try',
    signal: AbortSignal | undefined,
    deadline: number,
    timeout: number,
    operator: boolean,
  ): Promise<Lease | null> {
    // A reused idle session can be ended by the server just as the lock statement goes out
    // (idle_session_timeout, a restart, a proxy): nothing was granted, so try once more on a
    // fresh session before reporting the connection error.
    for (let attempt = 0; ; attempt++) {
      const before = this.#session;
      let session: Session;
      try {
        session = await this.#idleSession();
      } catch (err) {
        throw dbError(this.name, 'lock', err);
      }
      try {
        return await this.#acquireOn(session, mode, signal, deadline, timeout, operator);
      } catch (err) {
        const retry =
          attempt === 0 &&
          session === before &&
          err instanceof BakeryError &&
          endedBeforeGrant.has(err) &&
          !signal?.aborted;
        if (!retry) throw err;
      }
    }
  }

  async #acquireOn(
    session: Session,
    mode: 'wait' | 'try',
    signal: AbortSignal | undefined,
    deadline: number,
    timeout: number,
    operator: boolean,
  ): Promise<Lease | null> {
    const remaining = deadline - performance.now();
    if (signal?.aborted) throw this.#aborted(signal);
    const key = this.key.toString();
    // A wait that may already be over is a try.
    const tryOnly = mode === 'try' || remaining <= 0;
    let aborted = false;
    let grace: ReturnType<typeof setTimeout> | undefined;
    const onAbort = () => {
      aborted = true;
      // The cancel request is lost when it reaches the backend before the statement does (an
      // idle backend ignores it): if the statement has not ended soon, close the session.
      session.cancel();
      grace = setTimeout(() => session.destroy(this.#aborted(signal!)), CANCEL_GRACE_MS);
    };
    let row: { already: boolean; pid: number; marker: string | null; ok: boolean };
    try {
      if (!tryOnly) {
        // The server's lock_timeout bounds the wait (it counts from the statement's lock request).
        await session.setLockTimeout(
          Number.isFinite(remaining) ? Math.max(1, Math.ceil(remaining)) : 0,
        );
      }
      if (signal?.aborted) throw this.#aborted(signal);
      signal?.addEventListener('abort', onAbort, { once: true });
      // The subquery (OFFSET 0 keeps it one) runs before the lock call: did this session hold
      // the lock already? Advisory locks are re-entrant per session, so a grant to a session
      // that held it means another client shares the session.
      const r = await session.query<typeof row>(
        `SELECT pre.already, ${tryOnly ? 'pg_try_advisory_lock($1::int8)' : 'pg_advisory_lock($1::int8) IS NULL'} AS ok,
                pg_backend_pid() AS pid, current_setting('bakery.session', true) AS marker
           FROM (SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
                   AND pid = pg_backend_pid() AND classid = $2 AND objid = $3 AND objsubid = 1) AS already
                 OFFSET 0) pre`,
        [key, this.#parts.classid, this.#parts.objid],
      );
      row = r.rows[0]!;
    } catch (err) {
      signal?.removeEventListener('abort', onAbort);
      clearTimeout(grace);
      if (err instanceof BakeryError) throw err;
      const state = sqlState(err);
      if (aborted) {
        // Cancelled (57014) or closed. A cancel that lands after the grant, before the statement
        // returns, fails the statement but keeps the session-level lock (advisory locks ignore
        // the rollback): the session is never reused.
        const e = this.#aborted(signal!);
        session.destroy(e);
        throw e;
      }
      // lock_timeout ends the wait itself: nothing was granted, the session stays usable.
      if (state === '55P03') throw this.#timedOut(timeout);
      session.destroy(err as Error);
      const e = dbError(this.name, 'lock', err);
      if (e.code === 'BAKERY_CONNECTION') endedBeforeGrant.add(e);
      throw e;
    }
    signal?.removeEventListener('abort', onAbort);
    clearTimeout(grace);
    if (tryOnly && !row.ok) {
      if (aborted) {
        // Not granted, but a cancel may still be on its way to the next statement.
        const e = this.#aborted(signal!);
        session.destroy(e);
        throw e;
      }
      if (mode === 'try') return null;
      throw this.#timedOut(timeout);
    }
    if (row.already || row.pid !== session.pid || row.marker !== session.marker) {
      // Undo our grant (one level of the session's re-entrant count) and never use it again.
      await session.query('SELECT pg_advisory_unlock($1::int8)', [key]).catch(() => {});
      const err = new BakeryError(
        'BAKERY_SHARED_SESSION',
        `lock ${JSON.stringify(this.name)}: the database session is shared with other clients (${row.already ? 'the lock was granted re-entrantly' : 'the statement ran in another server session'}) — a transaction-pooling proxy such as pgbouncer cannot carry session locks; connect to PostgreSQL directly or through session pooling`,
      );
      session.destroy(err);
      throw err;
    }
    if (aborted || signal?.aborted) {
      // The grant won the race with the cancel: ending the session frees the lock at once
      // (the state row was not touched, so nobody sees ownerDied), and a cancel still on its
      // way cannot hit a later statement.
      const err = this.#aborted(signal!);
      session.destroy(err);
      throw err;
    }
    // Holding the advisory lock: record the acquisition (autocommit). The heartbeat deadline
    // counts from when this statement was sent; the server's idle clock starts after it.
    const sent = performance.now();
    let state: StateRow | undefined;
    try {
      for (let attempt = 0; state === undefined && attempt < 2; attempt++) {
        const r = await session.query<StateRow>(
          `WITH o AS (SELECT held, name, state FROM ${this.#table.sql} WHERE key = $1),
                u AS (UPDATE ${this.#table.sql} t
                         SET fence = t.fence + 1, held = true, holder = $3,
                             holder_pid = pg_backend_pid(), acquired_at = now()
                       WHERE t.key = $1 AND t.name = $2 AND t.state <> 'not-recoverable'
                   RETURNING t.fence)
           SELECT o.held, o.name, o.state, (SELECT fence FROM u) AS fence FROM o`,
          [key, this.name, holderName()],
        );
        state = r.rows[0];
        if (state === undefined) await ensureRow(session, this.#table, this.key, this.name);
      }
    } catch (err) {
      const e = dbError(this.name, 'lock', err);
      session.destroy(e);
      throw e;
    }
    if (state === undefined || state.name !== this.name) {
      await session
        .query('SELECT pg_advisory_unlock($1::int8)', [key])
        .catch(() => session.destroy(new Error('unlock failed')));
      throw collision(this.name, state?.name ?? '(missing row)', this.key);
    }
    if (state.state === 'not-recoverable' && state.fence === null) {
      if (operator) {
        const lease = new Lease(this, session, state.held, 0n, sent);
        lease.poisoned = true;
        return lease;
      }
      await session
        .query('SELECT pg_advisory_unlock($1::int8)', [key])
        .catch(() => session.destroy(new Error('unlock failed')));
      throw new BakeryError(
        'BAKERY_NOT_RECOVERABLE',
        `lock ${JSON.stringify(this.name)} is not recoverable: a holder died and its successor released without markConsistent() — repair the data, then call mutex.markConsistent()`,
      );
    }
    const lease = new Lease(this, session, state.held, BigInt(state.fence!), sent);
    return lease;
  }

  /** @internal Record the release (committed), then unlock the advisory lock. */
  async recordRelease(lease: Lease, state: 'consistent' | 'not-recoverable'): Promise<void> {
    const key = this.key.toString();
    const session = lease.session;
    lease.stopForRelease();
    // First the state row, committed; only then the advisory unlock. The other order lets the
    // next holder read held = true and report a false ownerDied.
    const r = await session.query(
      `UPDATE ${this.#table.sql} SET held = false, state = $3, holder = NULL, holder_pid = NULL
        WHERE key = $1 AND fence = $2`,
      [key, lease.fencingToken.toString(), state],
    );
    if (lease.poisoned) {
      // The operator's lease of a poisoned lock: the fence was not advanced, the row is cleared above.
    } else if (r.rowCount !== 1) {
      throw new Error('the state row has moved on to a newer fencing token');
    }
    const u = await session.query<{ ok: boolean; pid: number }>(
      'SELECT pg_advisory_unlock($1::int8) AS ok, pg_backend_pid() AS pid',
      [key],
    );
    if (!u.rows[0]!.ok || u.rows[0]!.pid !== session.pid)
      throw new Error('the session no longer held the advisory lock');
  }
}

/** How long an aborted wait may take to end after its cancel request before the session is closed. */
const CANCEL_GRACE_MS = 250;

/** Connection errors of the lock statement itself: the session ended with nothing granted. */
const endedBeforeGrant = new WeakSet<BakeryError>();

function holderName(): string {
  return `${hostname()} ${process.pid}`;
}

function collision(name: string, other: string, key: bigint): BakeryError {
  return new BakeryError(
    'BAKERY_NAME_COLLISION',
    `lock ${JSON.stringify(name)} maps to key ${key}, which lock ${JSON.stringify(other)} already uses — choose another name`,
  );
}

async function ensureRow(session: Session, table: Table, key: bigint, name: string): Promise<void> {
  await session.query(
    `INSERT INTO ${table.sql} (key, name) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`,
    [key.toString(), name],
  );
}

type Query = (text: string, values?: unknown[]) => Promise<{ rows: Record<string, unknown>[] }>;

/** Read a lock's state row and queue (the CLI uses it without opening the lock). */
export async function readSnapshot(query: Query, table: Table, name: string): Promise<PgSnapshot> {
  const key = lockKey(name);
  const { classid, objid } = keyParts(key);
  const rows = await query(
    `SELECT name, fence, held, state, holder, acquired_at FROM ${table.sql} WHERE key = $1`,
    [key.toString()],
  );
  const row = rows.rows[0] as
    | {
        name: string;
        fence: string;
        held: boolean;
        state: string;
        holder: string | null;
        acquired_at: Date | null;
      }
    | undefined;
  if (row === undefined) {
    throw new BakeryError(
      'BAKERY_NOT_FOUND',
      `there is no lock named ${JSON.stringify(name)} in ${table.display}`,
    );
  }
  if (row.name !== name) throw collision(name, row.name, key);
  const q = await query(
    `SELECT l.pid, l.granted, l.waitstart, host(a.client_addr) AS client_addr, a.application_name
       FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 1
      ORDER BY l.granted DESC, l.waitstart NULLS FIRST, l.pid`,
    [classid, objid],
  );
  const part = (r: Record<string, unknown>): PgParticipant => ({
    pid: r.pid as number,
    clientAddr: (r.client_addr as string | null) ?? null,
    applicationName: (r.application_name as string | null) ?? null,
    waitStart: (r.waitstart as Date | null) ?? null,
  });
  const holder = q.rows.find((r) => r.granted === true);
  return {
    name,
    key,
    fencingToken: BigInt(row.fence),
    held: row.held,
    state: row.state === 'not-recoverable' ? 'not-recoverable' : 'consistent',
    recordedHolder: row.holder,
    acquiredAt: row.acquired_at,
    holder: holder === undefined ? null : { ...part(holder), waitStart: null },
    waiters: q.rows.filter((r) => r.granted !== true).map(part),
  };
}

/**
 * Open the lock `name` on a PostgreSQL server (14 or newer, a primary): connects one session,
 * creates the state table and the lock's row if missing, and checks the name against the row
 * (`BAKERY_NAME_COLLISION`). Rejects with `BAKERY_CONNECTION` when the server cannot be reached,
 * `BAKERY_UNSUPPORTED` for an old server or a standby, `BAKERY_BAD_NAME`, or
 * `BAKERY_INVALID_ARGUMENT` for bad options.
 *
 * @example
 * ```ts
 * import { openMutex } from '@bakery/pg';
 * const mutex = await openMutex('nightly-report', { connection: process.env.DATABASE_URL });
 * await mutex.withLock(async (lease) => {
 *   await writeReport({ fence: lease.fencingToken });
 * });
 * await mutex.close();
 * ```
 */
export async function openMutex(name: string, options: PgMutexOptions = {}): Promise<PgMutex> {
  checkName(name);
  if (typeof options !== 'object' || options === null) throw typeError('options must be an object');
  const robust = options.robust ?? 'manual';
  if (robust !== 'manual' && robust !== 'auto')
    throw rangeError(`robust must be 'manual' or 'auto'`);
  const sessionTimeoutMs = options.sessionTimeoutMs ?? DEFAULT_SESSION_TIMEOUT_MS;
  if (
    typeof sessionTimeoutMs !== 'number' ||
    !Number.isFinite(sessionTimeoutMs) ||
    sessionTimeoutMs < MIN_SESSION_TIMEOUT_MS ||
    sessionTimeoutMs > 2_147_483_647
  ) {
    throw rangeError(
      `sessionTimeoutMs must be a number of milliseconds from ${MIN_SESSION_TIMEOUT_MS} to 2147483647, got ${String(sessionTimeoutMs)}`,
    );
  }
  const handoff = options.handoff ?? 'strict';
  if (handoff !== 'strict' && handoff !== 'batched')
    throw rangeError(`handoff must be 'strict' or 'batched'`);
  const c = options.connection;
  if (c !== undefined && typeof c !== 'string' && (typeof c !== 'object' || c === null))
    throw typeError('connection must be a connection string or node-postgres client options');
  const table = checkTable(options.table);
  const session = await Session.connect(c, sessionTimeoutMs, name);
  try {
    await ensureTable(session, table);
    const key = lockKey(name);
    await ensureRow(session, table, key, name);
    const r = await session.query<{ name: string }>(
      `SELECT name FROM ${table.sql} WHERE key = $1`,
      [key.toString()],
    );
    const stored = r.rows[0]?.name;
    if (stored !== name) throw collision(name, stored ?? '(missing row)', key);
  } catch (err) {
    await session.end();
    throw dbError(name, 'open', err);
  }
  return new PgMutex(name, { connection: c, robust, sessionTimeoutMs, table }, session);
}
