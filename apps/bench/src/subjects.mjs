import { DEFAULT_MAX_BATCH } from '@bakery/core';

// The subjects, in table order. `kind` says who the participants are:
//   threads  worker threads of this process (sab)
//   procs    forked Node children from one pool (mmap, shm, proper-lockfile, the PostgreSQL rows)
//   inproc   async tasks on this process's event loop (async-mutex cannot cross a thread)
//   python   forked Python processes (participants.py)
//   c        forked processes of a C program compiled at bench time (c-fifo.c)
// Our own subjects also say which `backend` they drive, in which `mode` (`lockSync()` or
// `await lock()`), and for shm with which `access` every participant opens the lock (a lock
// keeps the mode it was created with, so each shm path has its own lock files), and with which
// extra `options` every participant opens it (`{ handoff: 'batched' }` for the batched
// subjects; each such set of options has locks of its own, see lockKey).
// The PostgreSQL rows (`group: 'pg'`, so `--only pg` selects them with their peer) say which
// `transport` reaches the one server of the run (`socket` or `tcp`), their `peer` (the subject
// they are judged against, same transport, same server), and `maxP`: they run only at the P of
// `--procs` up to it. Their `entries: 'call'` counts entries while waiting from the lock() call,
// as the queue they join is in the server, where no doorway hook reaches.
// `strictFifo: true` marks the peer that is a strict FIFO lock itself (c-fifo, which counts its
// entries while waiting too). `exclusive: false` marks a subject we expect may lose updates (the recipe); every other
// subject must report 0.
const ours = (id, label, kind, backend, mode, access, options) => ({
  id,
  label,
  kind,
  ours: true,
  backend,
  mode,
  ...(access ? { access } : {}),
  ...(options ? { options } : {}),
});
/**
 * What the PostgreSQL rows share. Up to 16 clients: each holds a server session (advisory-lock
 * connects a new one per acquisition, a backend fork), and 1, 4 and 16 is what their comparison
 * needs; larger P would put 2 × P processes (clients and their server backends) on the cores.
 */
const pgRow = (transport, peer) => ({
  group: 'pg',
  transport,
  maxP: 16,
  entries: 'call',
  ...(peer ? { peer } : {}),
});
/** Core's opt-in batched handoff, with its default `maxBatch` (the batched subjects leave it). */
const BATCHED = { handoff: 'batched' };

export { DEFAULT_MAX_BATCH };
export const SUBJECTS = [
  ours('sab-sync', 'bakery sab · lockSync', 'threads', 'sab', 'sync'),
  ours(
    'sab-sync-batched',
    'bakery sab · lockSync · batched',
    'threads',
    'sab',
    'sync',
    '',
    BATCHED,
  ),
  ours('sab-async', 'bakery sab · await lock()', 'threads', 'sab', 'async'),
  ours('mmap-sync', 'bakery mmap · lockSync', 'procs', 'mmap', 'sync'),
  ours(
    'mmap-sync-batched',
    'bakery mmap · lockSync · batched',
    'procs',
    'mmap',
    'sync',
    '',
    BATCHED,
  ),
  ours('mmap-async', 'bakery mmap · await lock()', 'procs', 'mmap', 'async'),
  ours(
    'mmap-async-batched',
    'bakery mmap · await lock() · batched',
    'procs',
    'mmap',
    'async',
    '',
    BATCHED,
  ),
  ours('shm-sync', 'bakery shm (mapped) · lockSync', 'procs', 'shm', 'sync', 'mapped'),
  ours(
    'shm-sync-batched',
    'bakery shm (mapped) · lockSync · batched',
    'procs',
    'shm',
    'sync',
    'mapped',
    BATCHED,
  ),
  ours('shm-async', 'bakery shm (mapped) · await lock()', 'procs', 'shm', 'async', 'mapped'),
  ours('shm-js-sync', 'bakery shm (pure JS) · lockSync', 'procs', 'shm', 'sync', 'pure-js'),
  ours('shm-js-async', 'bakery shm (pure JS) · await lock()', 'procs', 'shm', 'async', 'pure-js'),
  // The strict-FIFO limit: how fast a first-come-first-served lock across processes can go.
  {
    id: 'c-fifo',
    label: 'C ticket lock, futex handoff (strict FIFO limit)',
    kind: 'c',
    strictFifo: true,
  },
  { id: 'proper-lockfile', label: 'proper-lockfile 4.1.2', kind: 'procs' },
  ...['socket', 'tcp'].flatMap((transport) => {
    const over = transport === 'socket' ? 'unix socket' : 'TCP';
    return [
      {
        ...ours(`pg-${transport}`, `bakery pg · await lock() · ${over}`, 'procs', 'pg', 'async'),
        ...pgRow(transport, `advisory-lock-${transport}`),
      },
      {
        id: `advisory-lock-${transport}`,
        label: `advisory-lock 2.0.0 · ${over}`,
        kind: 'procs',
        mode: 'async',
        ...pgRow(transport),
      },
    ];
  }),
  { id: 'flock', label: 'flock(2) (Python fcntl.flock)', kind: 'python' },
  { id: 'mplock', label: 'Python multiprocessing.Lock', kind: 'python' },
  { id: 'async-mutex', label: 'async-mutex 0.5.0 (one event loop)', kind: 'inproc' },
  { id: 'recipe', label: 'Python recipe (half-baked mutex)', kind: 'python', exclusive: false },
];

/**
 * Which lock a subject of ours runs on: one per backend, shm access mode and set of extra
 * options (strict and batched participants never share a lock). Subjects with the same key
 * (sync and async of one backend) share it, as they always did.
 */
export const lockKey = (s) =>
  [s.backend, s.access, s.transport, s.options?.handoff]
    .filter((x) => x && x !== 'strict')
    .join('-');

/** The P of `procs` a subject runs at (the PostgreSQL rows stop at their maxP). */
export const procsOf = (s, procs) => procs.filter((p) => p <= (s.maxP ?? Number.POSITIVE_INFINITY));

/** `--only` names: subject ids, or a group (`pg`: every PostgreSQL row and its peer). */
export const selectedBy = (only) => (s) => !only || only.includes(s.id) || only.includes(s.group);

/** The handoff a subject's participants ask for: 'batched' or 'strict' (the default). */
export const handoffOf = (s) => s.options?.handoff ?? 'strict';

/**
 * The most critical sections other participants can run between one participant's doorway end
 * and its entry: P − 1 for a strict FIFO lock (each other participant at most once); for a
 * batched one each of them may also keep the lock for up to maxBatch re-takes, so
 * (P − 1) × (1 + maxBatch). Undefined for subjects whose entries while waiting are not counted.
 */
export function entriesBound(s, p) {
  // PostgreSQL's queue is in the server: counted from the call, no bound (see `entries: 'call'`).
  if (s.entries === 'call') return undefined;
  if (!s.ours && !s.strictFifo) return undefined;
  if (handoffOf(s) === 'batched') return (p - 1) * (1 + (s.options.maxBatch ?? DEFAULT_MAX_BATCH));
  return p - 1;
}

/**
 * The locks a pool of `kind` needs for `subjects` (ours only), one per lockKey:
 * `{ key, backend, access, transport, maxP, options }`.
 */
export function locksOf(subjects, kind) {
  const locks = new Map();
  for (const s of subjects) {
    if (!s.ours || s.kind !== kind || locks.has(lockKey(s))) continue;
    locks.set(lockKey(s), {
      key: lockKey(s),
      backend: s.backend,
      access: s.access,
      transport: s.transport,
      maxP: s.maxP,
      options: s.options ?? {},
    });
  }
  return [...locks.values()];
}

/** Participant kind as shown in the table. */
export const KIND_NAMES = {
  threads: 'threads',
  procs: 'processes',
  inproc: 'async tasks',
  python: 'processes',
  c: 'processes',
};
