// The subjects, in table order. `kind` says who the participants are:
//   threads  worker threads of this process (sab)
//   procs    forked Node children from one pool (mmap, shm, proper-lockfile)
//   inproc   async tasks on this process's event loop (async-mutex cannot cross a thread)
//   python   forked Python processes (participants.py)
// `exclusive: false` marks a subject we expect may lose updates (the recipe); every other
// subject must report 0.
export const SUBJECTS = [
  { id: 'sab-sync', label: 'bakery sab · lockSync', kind: 'threads', ours: true },
  { id: 'sab-async', label: 'bakery sab · await lock()', kind: 'threads', ours: true },
  { id: 'mmap-sync', label: 'bakery mmap · lockSync', kind: 'procs', ours: true },
  { id: 'mmap-async', label: 'bakery mmap · await lock()', kind: 'procs', ours: true },
  { id: 'shm-sync', label: 'bakery shm · lockSync', kind: 'procs', ours: true },
  { id: 'shm-async', label: 'bakery shm · await lock()', kind: 'procs', ours: true },
  { id: 'proper-lockfile', label: 'proper-lockfile 4.1.2', kind: 'procs' },
  { id: 'flock', label: 'flock(2) (Python fcntl.flock)', kind: 'python' },
  { id: 'mplock', label: 'Python multiprocessing.Lock', kind: 'python' },
  { id: 'async-mutex', label: 'async-mutex 0.5.0 (one event loop)', kind: 'inproc' },
  { id: 'recipe', label: 'Python recipe (half-baked mutex)', kind: 'python', exclusive: false },
];

/** Participant kind as shown in the table. */
export const KIND_NAMES = {
  threads: 'threads',
  procs: 'processes',
  inproc: 'async tasks',
  python: 'processes',
};
