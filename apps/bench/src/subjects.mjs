// The subjects, in table order. `kind` says who the participants are:
//   threads  worker threads of this process (sab)
//   procs    forked Node children from one pool (mmap, shm, proper-lockfile)
//   inproc   async tasks on this process's event loop (async-mutex cannot cross a thread)
//   python   forked Python processes (participants.py)
// Our own subjects also say which `backend` they drive, in which `mode` (`lockSync()` or
// `await lock()`), and for shm with which `access` every participant opens the lock (a lock
// keeps the mode it was created with, so each shm path has its own lock files).
// `exclusive: false` marks a subject we expect may lose updates (the recipe); every other
// subject must report 0.
const ours = (id, label, kind, backend, mode, access) => ({
  id,
  label,
  kind,
  ours: true,
  backend,
  mode,
  ...(access ? { access } : {}),
});
export const SUBJECTS = [
  ours('sab-sync', 'bakery sab · lockSync', 'threads', 'sab', 'sync'),
  ours('sab-async', 'bakery sab · await lock()', 'threads', 'sab', 'async'),
  ours('mmap-sync', 'bakery mmap · lockSync', 'procs', 'mmap', 'sync'),
  ours('mmap-async', 'bakery mmap · await lock()', 'procs', 'mmap', 'async'),
  ours('shm-sync', 'bakery shm (mapped) · lockSync', 'procs', 'shm', 'sync', 'mapped'),
  ours('shm-async', 'bakery shm (mapped) · await lock()', 'procs', 'shm', 'async', 'mapped'),
  ours('shm-js-sync', 'bakery shm (pure JS) · lockSync', 'procs', 'shm', 'sync', 'pure-js'),
  ours('shm-js-async', 'bakery shm (pure JS) · await lock()', 'procs', 'shm', 'async', 'pure-js'),
  { id: 'proper-lockfile', label: 'proper-lockfile 4.1.2', kind: 'procs' },
  { id: 'flock', label: 'flock(2) (Python fcntl.flock)', kind: 'python' },
  { id: 'mplock', label: 'Python multiprocessing.Lock', kind: 'python' },
  { id: 'async-mutex', label: 'async-mutex 0.5.0 (one event loop)', kind: 'inproc' },
  { id: 'recipe', label: 'Python recipe (half-baked mutex)', kind: 'python', exclusive: false },
];

/** The shm access modes the bench measures, each with its own lock files. */
export const SHM_ACCESS = ['mapped', 'pure-js'];

/** The shm lock name of one access mode (`base` plus a suffix for the pure-JS path). */
export const shmName = (base, access) => (access === 'mapped' ? base : `${base}-js`);

/** Participant kind as shown in the table. */
export const KIND_NAMES = {
  threads: 'threads',
  procs: 'processes',
  inproc: 'async tasks',
  python: 'processes',
};
