/*
 * @bakery/pg's state protocol (docs/LAYOUT.md, "On a PostgreSQL server"): a session advisory
 * lock the server grants to one session at a time and frees when the session ends, plus a state
 * row (held, fence) written only by the lock's holder, in separate autocommitted statements.
 *
 * Checked, with clients whose sessions end at any step (a crash, a kill, a lost connection):
 *   - at most one recorded holder at a time;
 *   - ownerDied is exact: a new holder reads held = true exactly when the previous recorded
 *     holder's session ended before its release was committed;
 *   - fencing tokens strictly increase.
 * Not modelled: FIFO order (the server's queue), timing (heartbeat deadline vs
 * idle_session_timeout), proxies — those are tested against a real server.
 *
 *   -DBUG_UNLOCK_FIRST   the release order the other way round (unlock, then held = false):
 *                        must fail with a false ownerDied.
 *   -DBUG_REUSE_ABORTED  an aborted wait's session kept after a failed statement that was in
 *                        fact granted (advisory locks ignore rollback): must fail — the lock is
 *                        held by nobody's lease and everyone blocks (invalid end state).
 */
#ifndef N
#define N 3
#endif
#ifndef MAXCRASH
#define MAXCRASH 2
#endif
#ifndef ROUNDS
#define ROUNDS 3    /* acquisitions per client: keeps the fence in a byte and the search finite */
#endif
#define FREE 255

byte lock = FREE;     /* the session (client) holding the advisory lock */
bool held = 0;        /* the state row */
byte fence = 0;
/* ghosts */
bool died = 0;        /* the last recorded holder ended without a committed release */
byte recorded = 0;    /* recorded holders right now */
byte last = 0;        /* the last token handed out */
byte crashes = 0;

/* The session ends: the server frees whatever advisory lock it holds. */
inline end_session() {
  atomic { crashes++; if :: lock == i -> lock = FREE :: else -> skip fi }
}

proctype client(byte i) {
  bool sawHeld;
  byte tok;
  byte rounds = 0;
idle:
  if
  :: rounds == ROUNDS -> goto done
  :: else -> rounds++
  fi;
  /* pg_advisory_lock: granted when free */
  atomic { lock == FREE -> lock = i };
  if
  :: crashes < MAXCRASH -> end_session(); goto idle   /* granted, nothing recorded yet */
#ifdef BUG_REUSE_ABORTED
  /* an abort whose cancel landed after the grant: the statement failed, the session lock stayed,
     and the session is kept for the next lock() */
  :: crashes < MAXCRASH -> crashes++; goto idle
#endif
  :: else -> skip
  fi;
  /* one statement: read held, fence + 1, held = true */
  atomic {
    sawHeld = held; fence++; tok = fence; held = 1;
    assert(sawHeld == died);   /* ownerDied */
    died = 0;
    assert(tok > last);
    last = tok;
    recorded++;
    assert(recorded == 1)
  };
  if
  :: crashes < MAXCRASH -> atomic { recorded--; died = 1 }; end_session(); goto idle
  :: else -> skip
  fi;
#ifdef BUG_UNLOCK_FIRST
  atomic { recorded--; lock = FREE };       /* pg_advisory_unlock */
  if
  :: crashes < MAXCRASH -> end_session(); goto idle
  :: else -> skip
  fi;
  held = 0;
#else
  atomic { recorded--; held = 0 };          /* UPDATE … held = false, committed */
  if
  :: crashes < MAXCRASH -> end_session(); goto idle   /* released the data; the lock goes with the session */
  :: else -> skip
  fi;
  lock = FREE;                              /* pg_advisory_unlock */
#endif
  goto idle;
done:
  skip
}

init {
  atomic {
    byte k = 0;
    do
    :: k < N -> run client(k); k++
    :: else -> break
    od
  }
}
