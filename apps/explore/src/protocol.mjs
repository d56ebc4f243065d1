// The handshake between the scheduler (main thread) and one participant (a worker thread), over
// one SharedArrayBuffer `ctrl`. Each participant owns a block of BLOCK cells; the scheduler owns
// the global cells. Only one participant runs at a time: every other one is parked in a request.

/** Global cells of ctrl. */
export const CLOCK = 0; // virtual time in µs (every granted step advances it by 1)
export const GEN = 1; // schedule generation: a participant starts its script when it changes
export const STEP = 2; // steps granted so far in this schedule (read by the trace hooks)
export const READY = 3; // participants loaded and parked
export const GLOBALS = 8;

/** Per-participant block: base(p) + … */
export const BLOCK = 16;
export const STATE = 0; // 0 running, 1 requesting, 2 granted
export const OP = 1;
export const A = 2;
export const B = 3;
export const C = 4;
export const RESULT = 5;
export const DIE = 6; // set with a grant: the participant has crashed (stops for good)
export const base = (p) => GLOBALS + p * BLOCK;

/** Requests. Memory and OS operations are scheduling points; ghosts are answered at once. */
export const OPS = {
  LOAD: 1,
  STORE: 2,
  CAS: 3,
  WAIT: 4, // futex wait: compare at the grant; then blocked until notify or timeout
  NOTIFY: 5,
  SLEEP: 6, // a timed sleep (sleepSync): enabled once virtual time has passed
  START: 7, // before a participant's first shared access (a late joiner is one started late)
  ALIVE: 8, // the liveness question (isAlive): the harness knows who crashed
  REG_ENTER: 9, // the registry lock (cells without compareExchange)
  REG_LEAVE: 10,
  OUT_ENTER: 11, // the outsider lock (participants without a slot reap under it)
  OUT_LEAVE: 12,
  OUT_HELD: 13,
  ENTER: 14, // the user's critical section begins (a = ownerDied)
  EXIT: 15, // and ends (before release)
  // ghosts (no scheduling point)
  DOORWAY_START: 32,
  DOORWAY_END: 33, // a = ticket
  SLOT: 34, // a = the participant's slot after open / lock
  GAVE_UP: 35, // a = kind (1 timeout, 2 no free slot, 3 tryLock null)
  ERROR: 36, // an unexpected error: the message follows in the error channel
  DIED: 37, // unwound after a crash; result = 1: start again (a respawn)
  FINISHED: 38,
};
export const GHOST_FIRST = 32;
export const OP_NAMES = Object.fromEntries(Object.entries(OPS).map(([k, v]) => [v, k]));

/** Results of a WAIT (indices into WAIT_NAMES, the names Cells.wait returns). */
export const WAIT_OK = 0;
export const WAIT_NOT_EQUAL = 1;
export const WAIT_TIMED_OUT = 2;
export const WAIT_NAMES = ['ok', 'not-equal', 'timed-out'];

/** The pid participant p's incarnation `inc` records in its slot (one encoding, both sides). */
export const pidFor = (p, inc) => 1000 + p * 100 + inc;
/** The participant whose incarnation a recorded pid was (see pidFor). */
export const participantOf = (pid) => Math.floor((pid - 1000) / 100);
