// What the participants do. Each participant runs its `ops` `iters` times, then closes:
//   'lock'      lockSync(), then the critical section (a read, a scheduling point, a write)
//   'lock:<ms>' lockSync({ timeout }) — a timeout is allowed (virtual milliseconds)
//   'try'       tryLock(); null is allowed
//   'reap'      reapDead()
//   'alock'     await lock(); 'alock:<ms>' with a timeout; 'abort:<ms>' with an AbortSignal
//               aborted after <ms> (virtual)
//   'queue:<k>[:<ms>|-…]'  k lock() calls on this one instance at once (its local FIFO), the
//               i-th with the i-th timeout ('-': none)
// `cells`: 'atomic' (compareExchange, wait and notify: sab, mmap, shm mapped), 'poll'
// (compareExchange, no futex: the polling waiter), 'positional' (no compareExchange: the
// registry lock and HIGH_WATER under it, like shm's pure-JS path).
// `crashes`: how many times a schedule may stop a participant for good at any step; with
// `respawn` it starts again as a new process (a new identity), so recovery meets recovery.
// `dies` scripts one such death: the participant's first incarnation dies at its first step
// while it holds the lock ('holding') or the REAPER word ('reaping').
// `strategies`: the strategies its schedules take in turn (default: see cli.mjs).
// Virtual time: every step is 1 µs; sleeps and wait timeouts jump the clock.

const fast = { spin: 0, staleAfterMs: 2 };

export const scenarios = [
  {
    name: 'three-lockers',
    about: 'three participants lock twice each (futex waits, sleeper counts, handoff wake-ups)',
    slots: 3,
    cells: 'atomic',
    options: fast,
    participants: [{ ops: ['lock'], iters: 2 }, { ops: ['lock'], iters: 2 }, { ops: ['lock'] }],
    k: 400,
  },
  {
    name: 'late-joiner',
    about:
      'two lock in a loop while a third opens late (its claim raises HIGH_WATER mid-doorway) and a colour flip',
    slots: 3,
    cells: 'atomic',
    options: fast,
    participants: [
      { ops: ['lock'], iters: 3 },
      { ops: ['lock'], iters: 3 },
      { ops: ['lock'], iters: 1 },
    ],
    k: 600,
  },
  {
    name: 'trylock-storm',
    about:
      'tryLock against lockSync: failing tryLocks write nothing, withdrawals never lift tickets',
    slots: 3,
    cells: 'atomic',
    options: fast,
    participants: [
      { ops: ['lock'], iters: 3 },
      { ops: ['try', 'try', 'lock'], iters: 2 },
      { ops: ['try', 'try', 'try', 'lock'], iters: 2 },
    ],
    k: 600,
  },
  {
    name: 'trylock-pair',
    about: 'two slots, tryLock and lockSync interleaved: tickets stay within HIGH_WATER',
    slots: 2,
    cells: 'atomic',
    options: fast,
    participants: [
      { ops: ['lock', 'try'], iters: 3 },
      { ops: ['try', 'lock'], iters: 3 },
    ],
    k: 400,
  },
  {
    name: 'timeouts',
    about: 'waiters with short timeouts withdraw; the rest still enter in order',
    slots: 3,
    cells: 'atomic',
    options: fast,
    participants: [
      { ops: ['lock'], iters: 2 },
      { ops: ['lock:0.05'], iters: 3 },
      { ops: ['lock:0.02', 'lock'], iters: 2 },
    ],
    k: 600,
  },
  {
    name: 'crash-recovery',
    about:
      'participants die at any step and start again; the living reap them (ownerDied, colour, REAPER)',
    slots: 3,
    cells: 'atomic',
    options: fast,
    crashes: 3,
    respawn: true,
    participants: [
      { ops: ['lock'], iters: 3 },
      { ops: ['lock'], iters: 3 },
      { ops: ['lock'], iters: 3 },
    ],
    k: 1500,
    crashP: 0.01,
  },
  {
    name: 'reapers',
    about:
      'everyone calls reapDead() around its locks while participants die and start again: REAPER stays exclusive',
    slots: 3,
    cells: 'atomic',
    options: fast,
    crashes: 3,
    respawn: true,
    participants: [
      { ops: ['reap', 'lock', 'reap'], iters: 2 },
      { ops: ['reap', 'lock', 'reap'], iters: 2 },
      { ops: ['reap', 'lock', 'reap'], iters: 2 },
    ],
    k: 800,
    crashP: 0.01,
  },
  {
    name: 'reaper-reuse',
    about:
      'a holder dies, then its reaper dies holding REAPER; their slots are reaped and claimed again while a third judges the dead token',
    slots: 3,
    cells: 'atomic',
    options: fast,
    crashes: 4,
    respawn: true,
    participants: [
      { ops: ['lock'], iters: 2, dies: 'holding' },
      { ops: ['reap', 'lock', 'reap'], iters: 2, dies: 'reaping' },
      { ops: ['reap', 'lock', 'reap'], iters: 2 },
    ],
    k: 400,
    crashP: 0.004,
    strategies: ['posaba', 'posaba', 'pos'],
  },
  {
    name: 'crash-pair',
    about: 'two slots, one dies holding a high ticket: the doorway that steps back must reap it',
    slots: 2,
    cells: 'atomic',
    options: fast,
    crashes: 1,
    participants: [
      { ops: ['lock', 'try'], iters: 3 },
      { ops: ['try', 'lock'], iters: 3 },
    ],
    k: 500,
    crashP: 0.01,
  },
  {
    name: 'polling',
    about: 'no futex (a polling backend): pacing, far sleeps and re-scans only',
    slots: 3,
    cells: 'poll',
    options: fast,
    participants: [{ ops: ['lock'], iters: 2 }, { ops: ['lock', 'try'] }, { ops: ['lock'] }],
    k: 600,
  },
  {
    name: 'positional',
    about: 'no compareExchange: claims, frees and HIGH_WATER under the registry lock; crashes',
    slots: 3,
    cells: 'positional',
    options: fast,
    crashes: 1,
    respawn: true,
    participants: [{ ops: ['lock'], iters: 2 }, { ops: ['lock', 'try'] }, { ops: ['lock'] }],
    k: 800,
    crashP: 0.005,
  },
  {
    name: 'crowd',
    about: 'three participants on two slots: one waits for a slot, releasers give theirs up',
    slots: 2,
    cells: 'atomic',
    options: fast,
    crashes: 1,
    participants: [{ ops: ['lock'], iters: 2 }, { ops: ['lock'], iters: 2 }, { ops: ['lock'] }],
    k: 1500,
    crashP: 0.003,
    maxTimeMs: 20_000,
  },
];

// The asynchronous driver (lock()): its waits, sleeps and timers run on the virtual clock too.
scenarios.push(
  {
    name: 'async-lockers',
    about: 'await lock() against lockSync, with timeouts and AbortSignals that fire mid-wait',
    slots: 3,
    cells: 'atomic',
    options: fast,
    participants: [
      { ops: ['alock'], iters: 2 },
      { ops: ['alock', 'lock'], iters: 2 },
      { ops: ['alock:0.05', 'abort:0.03', 'alock'], iters: 1 },
    ],
    k: 600,
  },
  {
    name: 'local-queue',
    about:
      'several lock() calls on one instance queue in its local FIFO; queued and leading ones time out',
    slots: 2,
    cells: 'atomic',
    options: fast,
    participants: [
      { ops: ['queue:3'], iters: 1 },
      { ops: ['queue:3:0.03:-:0.05', 'alock'], iters: 1 },
    ],
    k: 500,
  },
  {
    name: 'queue-timeouts',
    about:
      'a lock() queued behind another call of the same instance times out while still queued; the calls after it proceed',
    slots: 2,
    cells: 'atomic',
    options: fast,
    participants: [
      { ops: ['alock'], iters: 2 },
      { ops: ['queue:3:-:0.01:-', 'alock'], iters: 1 },
    ],
    k: 400,
  },
  {
    name: 'async-crashes',
    about: 'await lock() while participants die at any step and start again',
    slots: 3,
    cells: 'atomic',
    options: fast,
    crashes: 2,
    respawn: true,
    participants: [
      { ops: ['alock'], iters: 2 },
      { ops: ['alock', 'lock'], iters: 2 },
      { ops: ['alock:0.2'], iters: 2 },
    ],
    k: 800,
    crashP: 0.005,
  },
  {
    name: 'batched',
    about:
      "handoff 'batched': releases keep the ticket, re-entries by compareExchange, revocation by waiters and tryLock, maxBatch 2 (the bypass bound is checked)",
    slots: 3,
    cells: 'atomic',
    options: { ...fast, handoff: 'batched', maxBatch: 2 },
    participants: [
      { ops: ['lock', 'lock', 'lock'], iters: 2 },
      { ops: ['lock', 'alock'], iters: 2 },
      { ops: ['try', 'lock'], iters: 2 },
    ],
    k: 800,
  },
  {
    name: 'batched-crashes',
    about:
      "handoff 'batched' while participants die at any step (a dead owner's retained ticket is revoked or reaped) and start again",
    slots: 3,
    cells: 'atomic',
    options: { ...fast, handoff: 'batched', maxBatch: 2 },
    crashes: 2,
    respawn: true,
    participants: [
      { ops: ['lock', 'lock'], iters: 2 },
      { ops: ['lock', 'alock'], iters: 2 },
      { ops: ['lock:0.2', 'try'], iters: 2 },
    ],
    k: 800,
    crashP: 0.005,
  },
  {
    name: 'batched-positional',
    about: "handoff 'batched' on cells without compareExchange: it runs strict (bound: one entry)",
    slots: 3,
    cells: 'positional',
    options: { ...fast, handoff: 'batched', maxBatch: 2 },
    participants: [
      { ops: ['lock', 'lock'], iters: 2 },
      { ops: ['lock'], iters: 2 },
      { ops: ['try', 'lock'] },
    ],
    k: 600,
  },
);

export function scenario(name) {
  const s = scenarios.find((x) => x.name === name);
  if (s === undefined) throw new Error(`no scenario named ${name}`);
  return s;
}
