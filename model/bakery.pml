/*
 * bakery.pml — a Promela model of OUR lock: the Black-White bakery (Taubenfeld, DISC 2004) as
 * implemented in packages/core/src/acquirer.ts, waiting.ts, slots.ts and recovery.ts, plus its crash recovery (a reaper
 * under a REAPER word; the exit colour for a dead holder; docs/ARCHITECTURE.md "Crash recovery").
 *
 * One Promela process per slot (_pid = slot). Every shared access of the implementation is one
 * atomic step (the backend contract: sequential consistency); purely local work is folded into
 * the neighbouring step. Ghost variables (never read by the protocol) carry the properties.
 *
 * Crashes. A process may crash before any of its shared writes and at any point where it waits.
 * That is "a crash at any step": between two writes a process only reads, and reads leave no
 * trace, so dying anywhere between write k and write k+1 leaves the same memory as dying just
 * before write k+1 (and a process that waits forever may die while waiting). A crashed process
 * stops; its cells keep their values until a reaper frees the slot; then a new participant (a
 * respawn) claims that slot and starts over, so crashes can go on forever.
 *
 * Build-time switches (spin -DNAME; model/check.sh runs the combinations that are checked):
 *   N=2|3              number of slots / processes (default 3)
 *   TRYLOCK            processes may also call tryLock() (idle pre-scan, doorway, one pass)
 *   NO_WITHDRAW        nobody times out (use without TRYLOCK: a failing tryLock withdraws)
 *   MAXWD=k            at most k withdrawals in a run (default: unbounded)
 *   CRASH              processes may crash (and be reaped, and respawn)
 *   MAXCRASH=k         at most k crashes in a run (default: unbounded)
 *   FAIR0              process 0 never crashes, never uses tryLock, and never withdraws
 *                      unless MAXWD gives a budget (shared by all processes)
 *   CALM               withdrawals and crashes stop at some point (unboundedly many before):
 *                      a Calm process ends the chaos phase; weak fairness makes it run
 *   LIVE               ghosts + LTL formulas about process 0 (with FAIR0; pan -a -f -N name)
 *   STATIC_HWM         HIGH_WATER = N from the start (else raised by each slot's first claim)
 *   NOSTEPBACK         no "max + 1 > HWM -> step back" in the doorway
 *   AS_DESCRIBED_REAP_ORDER        reaper: HOLDER = 0, COLOUR, OWNER_DIED = 1 (issue 6's order)
 *   AS_DESCRIBED_NO_STEPBACK_REAP  a doorway that steps back never reaps the high ticket's owner
 *   AS_DESCRIBED_REAPER_SLOT_TOKEN REAPER holds slot + 1 (reused with the slot): ABA on clearing it
 *   OUTSIDER           one more process, _pid = N, is a participant WITHOUT a slot (it waits
 *                      for one: the slot table is full) that reaps dead slots. Its REAPER token
 *                      is its outsider incarnation's (the OUTSIDER_GEN generation, taken under
 *                      the backend's outsider lock): unique, and gone once it is dead. It may
 *                      crash anywhere (CRASH); a new incarnation starts once the kernel lock is
 *                      free, with a new token (the stale one is cleared)
 *   BUG_OUTSIDER_SAME_TOKEN  every outsider incarnation uses one token (no generation), and a
 *                      new incarnation that finds it in REAPER takes it for its own
 *   BUG_REUSE_HWM      the waiting scan reuses the doorway's HWM read (ARCHITECTURE: shortcut 2)
 *   BUG_TRYLOCK_EXIT_COLOUR  a failing tryLock writes the exit colour (ARCHITECTURE: withdrawal)
 *   BATCH              handoff 'batched': a release may RETAIN its ticket (colour passed, the
 *                      ticket marked retained), the same process re-takes it with one CAS
 *                      (retained -> plain) and enters again without a doorway, at most MAXBATCH
 *                      times in a row; any waiter that meets a retained ticket ahead of it
 *                      revokes it (CAS retained -> 0). A retaining process may also park (never
 *                      come back) or give its ticket up itself.
 *   MAXBATCH=k         re-takes per ticket (default 2)
 *   BYPASS             ghost check of the bypass bound: after a waiter's doorway, every other
 *                      process enters at most 1 + MAXBATCH times (strict: 1) before it does
 *                      (on by default with BATCH)
 *   BUG_BATCH_UNBOUNDED     a release retains whatever the count (no MAXBATCH)
 *   BUG_BATCH_RETAKE_STORE  the re-take checks its ticket, then stores it (no CAS)
 *   BUG_BATCH_REVOKER_COLOUR the colour is not passed at retain; the revoker passes it after its CAS
 *   BUG_BATCH_NO_REVOKE     waiters never revoke: they wait for the retaining process to come back
 */

#ifndef N
#define N 3
#endif

#define NUM(t) (((t) & 127) >> 1)
#define COL(t) ((t) & 1)
#define RBIT 128        /* TICKET's retained flag (the implementation: bit 30) */
#define RET(t) (((t) & RBIT) != 0)

#ifdef BATCH
#ifndef MAXBATCH
#define MAXBATCH 2
#endif
#ifndef BYPASS
#define BYPASS
#endif
#else
#define MAXBATCH 0
#endif

/* ---- shared cells (docs/LAYOUT.md) ---- */
byte choosing[N];       /* CHOOSING of each slot */
byte ticket[N];         /* TICKET = number << 1 | colour, 0 = none */
bit  colour;            /* COLOUR */
byte holder;            /* HOLDER: slot + 1, 0 = none */
#ifdef STATIC_HWM
byte hwm = N;           /* HIGH_WATER: every slot claimed from the start */
#else
byte hwm;               /* HIGH_WATER: each process raises it to slot + 1 before its first doorway */
#endif
byte reaper;            /* REAPER: slot + 1 of the reaper, 0 = free */
bit  owner_died;        /* OWNER_DIED (robust: 'auto', so 2 never appears) */

/* ---- ghosts ---- */
#ifdef OUTSIDER
bool dead[N + 1];       /* ... and dead[N]: the outsider's current incarnation has crashed */
#else
bool dead[N];           /* the slot's current owner has crashed (the liveness check is exact) */
#endif
bool claimed[N] = 1;    /* the slot's OWNER word is non-zero */
bool incs[N];           /* in the critical section (a crashed holder stays in until reaped) */
bool hold[N];           /* between HOLDER = i + 1 and HOLDER = 0: the user's code may run */
byte ncs;               /* how many incs are set */
bool dirty;             /* a holder died with its update possibly half done, not yet repaired */
#ifdef MAXCRASH
byte crashes;
#endif
#ifdef BYPASS
bool tkd[N];            /* the process's doorway has ended: its place in the queue is fixed */
byte ov[N * N];         /* ov[w * N + k]: entries of k since w's doorway ended */
#endif
#ifdef MAXWD
byte wds;
#endif
#ifdef LIVE
bool try0;              /* process 0 called lock() and has not entered yet */
bool tk0;               /* process 0 holds its ticket and has not entered yet */
ltl fcfs     { [] (tk0 -> <> !tk0) }    /* from the end of the doorway: eventually enters */
ltl nostarve { [] (try0 -> <> !try0) }  /* from the call of lock(): eventually enters */
#endif

#ifdef FAIR0
#define MAYQUIT (_pid != 0)
#else
#define MAYQUIT true
#endif

#ifdef CALM
bit chaos = 1;          /* withdrawals and crashes happen only while chaos = 1; Calm() ends it */
#define CHAOS chaos
#else
#define CHAOS true
#endif

#if defined(NO_WITHDRAW)
#define CANWD false
#define WDCOUNT skip
#elif defined(MAXWD)
#define CANWD (CHAOS && wds < MAXWD)  /* with a budget, process 0 may time out too */
#define WDCOUNT wds++
#else
#define CANWD (CHAOS && MAYQUIT)
#define WDCOUNT skip
#endif

#if !defined(CRASH)
#define CANCRASH false
#define CRASHCOUNT skip
#elif defined(MAXCRASH)
#define CANCRASH (CHAOS && MAYQUIT && crashes < MAXCRASH)
#define CRASHCOUNT crashes++
#else
#define CANCRASH (CHAOS && MAYQUIT)
#define CRASHCOUNT skip
#endif

/* a shared write, or a crash just before it */
#define W(s) if :: s :: CANCRASH -> goto crashed fi
/* the crash alternative of a wait */
#define CR :: CANCRASH -> goto crashed

/* same-colour wait condition of slot j against our (n, i) */
#define SAMEOK(x) (NUM(x) == 0 || NUM(x) > n || (NUM(x) == n && j > _pid) || COL(x) != c)

/*
 * Reap slot x: called by a waiter that is stuck on x and found x's owner dead. Uses locals r, t.
 * REAPER is taken by compareExchange(0 -> me); a REAPER word whose owner is dead is cleared by
 * compareExchange(r -> 0). In the model REAPER holds slot + 1; see the two variants below.
 */
inline REAP(x) {
  W(atomic { r = reaper; if :: r == 0 -> reaper = _pid + 1 :: else fi });
#ifdef BUG_OUTSIDER_SAME_TOKEN
  if :: r == _pid + 1 && _pid == N -> r = 0 :: else fi;   /* "my token": take it as mine */
#endif
  if
  :: r == 0 ->
     if
     :: claimed[x] && dead[x] ->            /* re-check under REAPER: still the same dead owner */
        if
        :: holder == x + 1 ->               /* x died inside the critical section */
#ifdef AS_DESCRIBED_REAP_ORDER
           W(holder = 0);
           t = ticket[x];
           W(colour = 1 - COL(t));
           W(owner_died = 1);
#else
           W(owner_died = 1);               /* HOLDER stays x + 1 until the repair is complete, */
           t = ticket[x];                   /* so a reaper that dies half-way is redone in full */
           W(colour = 1 - COL(t));
           W(holder = 0);
#endif
        :: else
        fi;
        W(atomic { choosing[x] = 0; assert(dead[x]) });  /* never a live participant's cells */
        W(atomic { ticket[x] = 0; assert(dead[x]); if :: incs[x] -> incs[x] = 0; ncs-- :: else fi });
        W(atomic { claimed[x] = 0; assert(dead[x]) })     /* free the slot (its OWNER word last) */
     :: else
     fi;
     W(atomic { reaper = 0; t = 0 })
  :: else ->
#ifdef AS_DESCRIBED_REAPER_SLOT_TOKEN
     /* REAPER = slot + 1: between reading r, finding r's owner dead and the CAS, that slot
        can be reaped, reused, and its new (live) owner take REAPER: the CAS then frees a
        live reaper's word (ABA) */
     if
     :: dead[r - 1] -> W(atomic { if :: reaper == r -> reaper = 0 :: else fi; r = 0 })
     :: else -> r = 0
     fi
#else
#ifdef BUG_OUTSIDER_SAME_TOKEN
     /* the outsider's token is reused by its next incarnation: reading it, finding its holder
        dead and the CAS are no longer one step (the same ABA as a reused slot token) */
     if
     :: r == N + 1 && dead[N] -> W(atomic { if :: reaper == r -> reaper = 0 :: else fi; r = 0 })
     :: r == N + 1 && !dead[N] -> r = 0
     :: r != N + 1 ->
#endif
     /* REAPER holds a token unique to the reaper's claim of its slot (never reused), so a
        successful CAS(token -> 0) means the word held that dead reaper's token all along:
        read, liveness check and CAS are equivalent to one atomic step */
     W(atomic { if :: reaper == r && dead[r - 1] -> reaper = 0 :: else fi; r = 0 })
#ifdef BUG_OUTSIDER_SAME_TOKEN
     fi
#endif
#endif
  fi
}

#ifdef BYPASS
/* At an entry by _pid: one more entry past every process whose doorway has ended (uses g). */
inline COUNT_ENTRY() {
  g = 0;
  do
  :: g < N ->
     if
     :: g != _pid && tkd[g] ->
        ov[g * N + _pid]++;
        assert(ov[g * N + _pid] <= 1 + MAXBATCH)    /* property: the bypass bound */
     :: else
     fi;
     g++
  :: else -> break
  od;
  g = 0
}
/* _pid's doorway ended (set), or it entered, withdrew or crashed (clear): a new count. */
inline QUEUED(v) {
  tkd[_pid] = v;
  g = 0;
  do
  :: g < N -> ov[_pid * N + g] = 0; g++
  :: else -> break
  od;
  g = 0
}
#else
#define COUNT_ENTRY() skip
#define QUEUED(v) skip
#endif

/* Revoke slot x's retained ticket t (compareExchange(t -> 0)): it fails if x re-took it. */
inline REVOKE(x) {
#if defined(BUG_BATCH_NO_REVOKE)
  (ticket[x] != t)                                 /* wait for the owner to re-take or give up */
#elif defined(BUG_BATCH_REVOKER_COLOUR)
  W(atomic { if :: ticket[x] == t -> ticket[x] = 0; r = 1 :: else -> r = 0 fi });
  if :: r == 1 -> W(colour = 1 - COL(t)) :: else fi;
  r = 0
#else
  W(atomic { if :: ticket[x] == t -> ticket[x] = 0 :: else fi })
#endif
}

active [N] proctype P()
{
  byte h, h2, c, n, mk, j, t, r, g, bc;
  bit odf;
  bool istry;

life:
  /* claim: raise HIGH_WATER to slot + 1 (compareExchange loop) before the first doorway — or
     die first, leaving a claimed slot above the mark (reapers of a full table judge every
     slot, as O below does; found by the schedule explorer) */
  W(atomic { if :: hwm < _pid + 1 -> hwm = _pid + 1 :: else fi });
idle:
  atomic { h = 0; h2 = 0; c = 0; n = 0; mk = 0; j = 0; t = 0; r = 0; odf = 0; istry = false; bc = 0 };
  if
  :: true ->
#ifdef LIVE
     if :: _pid == 0 -> try0 = true :: else fi;
#endif
     goto doorway
#ifdef TRYLOCK
  :: MAYQUIT -> istry = true; goto tryidle
#endif
  fi;

  /* ---------- tryLock: Acquirer.idle() scans first and fails without writing ---------- */
tryidle:
  h = hwm;
  do
  :: atomic { j == _pid -> j++ }
  :: atomic { j >= h -> j = 0 }; break
  :: j < h && j != _pid ->
     if
     :: choosing[j] != 0 -> goto idle
     :: else
     fi;
     if
     :: ticket[j] != 0 && !RET(ticket[j]) -> goto idle   /* retained: free, revoked below */
     :: else -> j++
     fi
  od;

  /* ---------- doorway ---------- */
doorway:
  W(choosing[_pid] = 1);
  h = hwm;                                         /* HWM read after choosing = 1 */
  atomic { c = colour; j = 0; n = 1; mk = 0 };
  do
  :: atomic { j < h -> t = ticket[j];
              if :: t != 0 && COL(t) == c && NUM(t) >= n -> n = NUM(t) + 1; mk = j
                 :: else fi;
              j++ }
  :: atomic { j >= h -> j = 0; t = 0 }; break
  od;
#ifndef NOSTEPBACK
  if
  :: n > h ->
     W(choosing[_pid] = 0);                        /* step back: no ticket above HWM */
     if :: istry -> goto idle :: else fi;         /* tryLock returns null */
     /* sleep and retry; a retry before any of these changed would step back again */
     do
     :: atomic { (ticket[mk] != (((n - 1) << 1) | c) || colour != c || hwm != h) -> skip };
        goto doorway
     :: CANWD -> goto idle                         /* timeout while stepping back: no ticket */
#ifndef AS_DESCRIBED_NO_STEPBACK_REAP
     :: (ticket[mk] == (((n - 1) << 1) | c) && dead[mk]) ->
        REAP(mk); goto doorway                     /* stuck on the high ticket's owner */
#endif
     CR
     od
  :: else
  fi;
#endif
  if
  :: atomic {
      ticket[_pid] = (n << 1) | c;
      assert(n <= N);                              /* property 2: never above the cell limit */
#ifdef NOSTEPBACK
      assert(n <= hwm);                            /* the BW bound, no step-back enforcing it */
#endif
#ifdef LIVE
      if :: _pid == 0 -> tk0 = true :: else fi;
#endif
      QUEUED(true)
    }
  CR
  fi;
  W(choosing[_pid] = 0);
#ifdef BUG_REUSE_HWM
  atomic { h2 = h; h = 0; mk = 0; j = 0 };
#else
  atomic { h2 = hwm; h = 0; mk = 0; j = 0 };       /* HWM read AGAIN for the waiting scan */
#endif

  /* ---------- waiting scan (Acquirer.advance, phase 1) ---------- */
nextj:
  if
  :: atomic { j == _pid -> j++ }; goto nextj
  :: atomic { j >= h2 -> j = 0; t = 0 }; goto enter
  :: j < h2 && j != _pid
  fi;
wch:                                               /* wait until choosing[j] == 0 */
  if
  :: choosing[j] == 0
  :: istry && choosing[j] != 0 -> goto twd
  :: !istry && CANWD -> goto wd
  :: !istry && choosing[j] != 0 && dead[j] -> REAP(j); goto wch
  CR
  fi;
  t = ticket[j];                                   /* the read that picks the branch */
  if
  :: t == 0 -> goto incj
  :: t != 0 && COL(t) == c -> goto same
  :: t != 0 && COL(t) != c -> goto other
  fi;
same:                                              /* until no ticket, later (n, j), or other colour */
  if
  :: SAMEOK(t) -> goto incj
  :: else
  fi;
#ifdef BATCH
  if :: RET(t) -> REVOKE(j); goto wch :: else fi;  /* retained ahead of us: revoke, look again */
#endif
  if :: istry -> goto twd :: else fi;
  do
  :: atomic { SAMEOK(ticket[j]) -> t = 0 }; goto incj
  :: CANWD -> goto wd
  :: !SAMEOK(ticket[j]) && dead[j] -> REAP(j)
#ifdef BATCH
  :: atomic { !SAMEOK(ticket[j]) && RET(ticket[j]) -> t = ticket[j] }; REVOKE(j); goto wch
#endif
  CR
  od;
other:                                             /* until no ticket, COLOUR != c, or colour(j) == c */
  if
  :: (t == 0 || COL(t) == c) -> goto incj
  :: else
  fi;
  if
  :: colour != c -> goto incj
  :: else
  fi;
#ifdef BATCH
  if :: RET(t) -> REVOKE(j); goto wch :: else fi;  /* retained ahead of us: revoke, look again */
#endif
  if :: istry -> goto twd :: else fi;
  if                                               /* blocked: sleep until t or COLOUR changes */
  :: atomic { (ticket[j] != t || colour != c) -> t = ticket[j] }; goto other
  :: CANWD -> goto wd
  :: ticket[j] == t && colour == c && dead[j] -> REAP(j); t = ticket[j]; goto other
  CR
  fi;
incj:
  atomic { j++; t = 0 };
  goto nextj;

  /* ---------- critical section: Mutex.#enter, the user's code, releaseLease ---------- */
enter:
  if
  :: atomic {
      incs[_pid] = true; ncs++;
      assert(ncs == 1);                            /* property 1: mutual exclusion */
      COUNT_ENTRY();
      QUEUED(false);
#ifdef LIVE
      if :: _pid == 0 -> try0 = false; tk0 = false :: else fi
#endif
    }
  CR
  fi;
  W(atomic { holder = _pid + 1; hold[_pid] = true });
  atomic {
    odf = owner_died;
    assert(!dirty || odf);                         /* a dead holder's damage is always reported */
    if :: odf -> dirty = false :: else fi          /* ... and this holder repairs it */
  };
  if
  :: odf -> W(owner_died = 0)                      /* markConsistent() */
  :: else
  fi;
  /* release: HOLDER = 0, then Acquirer.exit(): COLOUR = opposite of ours, TICKET = 0 */
  W(atomic { holder = 0; hold[_pid] = false; incs[_pid] = false; ncs-- });
#ifdef BATCH
  if
#ifdef BUG_BATCH_UNBOUNDED
  :: true ->
#else
  :: bc < MAXBATCH ->                              /* retain: the count allows another re-take */
#endif
#ifndef BUG_BATCH_REVOKER_COLOUR
     W(colour = 1 - c);
#endif
     W(ticket[_pid] = (n << 1) | c | RBIT);
     goto retained
  :: true                                          /* full exit (count reached, or maxBatchMs) */
  fi;
#endif
  W(colour = 1 - c);
  W(ticket[_pid] = 0);
  bc = 0;
  goto idle;

#ifdef BATCH
  /* ---------- retained: outside the critical section, the ticket kept ---------- */
retained:
  if
#ifdef BUG_BATCH_RETAKE_STORE
  :: ticket[_pid] == ((n << 1) | c | RBIT) -> W(atomic { ticket[_pid] = (n << 1) | c; bc++ }); goto enter
#else
  :: W(atomic { ticket[_pid] == ((n << 1) | c | RBIT) -> ticket[_pid] = (n << 1) | c; bc++ });
     goto enter                                    /* re-take: compareExchange(retained -> plain) */
#endif
  :: atomic { ticket[_pid] != ((n << 1) | c | RBIT) -> bc = 0 }; goto idle   /* revoked */
  :: W(atomic { if :: ticket[_pid] == ((n << 1) | c | RBIT) -> ticket[_pid] = 0 :: else fi; bc = 0 });
     goto idle                                     /* close(): give the retained ticket up */
  :: MAYQUIT -> goto end_parked                    /* never locks again (and never closes) */
  CR
  fi;
end_parked:
  (false);
#endif

  /* ---------- withdrawal: own ticket only, never the exit colour ---------- */
wd:
  W(atomic { ticket[_pid] = 0; WDCOUNT; QUEUED(false) });  /* choosing[_pid] is already 0 here */
  goto idle;
twd:                                               /* a failing tryLock's pass */
#ifdef BUG_TRYLOCK_EXIT_COLOUR
  W(colour = 1 - c);
#endif
  W(atomic { ticket[_pid] = 0; WDCOUNT; QUEUED(false) });
  goto idle;

  /* ---------- crashed ---------- */
crashed:
  atomic {
    dead[_pid] = true; CRASHCOUNT;
    if :: hold[_pid] -> dirty = true :: else fi;
    QUEUED(false);
    h = 0; h2 = 0; c = 0; n = 0; mk = 0; j = 0; t = 0; r = 0; odf = 0; istry = false; bc = 0
  };
end_dead:                                          /* until a reaper frees the slot; then respawn */
  atomic { !claimed[_pid] -> claimed[_pid] = true; dead[_pid] = false; hold[_pid] = false };
  goto life
}

#ifdef OUTSIDER
/*
 * A participant without a slot (Mutex.#reapDead while waiting for a free slot): it may reap any
 * slot whose owner is dead, under REAPER like everyone. Declared after the N slot processes, so
 * _pid == N; its token is N + 1 and dead[N] says whether the incarnation that holds it is dead.
 * A new incarnation (after a crash) has a new token in the implementation (OUTSIDER_GEN is
 * bumped under the outsider lock, which the kernel released with the dead incarnation); here the
 * token number stays N + 1, so a stale one is cleared in the step that starts the new
 * incarnation — as the code's gone rule clears a token of a generation that is not current.
 */
active proctype O()
{
  byte x, r, t;
life:
  do
  :: select(x : 0 .. N - 1);
     if
     :: claimed[x] && dead[x] -> REAP(x)
     :: else
     fi;
     atomic { x = 0; r = 0; t = 0 }
  :: CANCRASH -> goto crashed
  od;
crashed:
  atomic { dead[N] = true; CRASHCOUNT; x = 0; r = 0; t = 0 };
#ifdef BUG_OUTSIDER_SAME_TOKEN
  dead[N] = false;                                 /* a new incarnation, the same token */
#else
  /* a new incarnation, with a new token: the old one, if still in REAPER, names an outsider
     generation that is no longer current, so the new incarnation (like anyone) clears it */
  atomic { dead[N] = false; if :: reaper == N + 1 -> reaper = 0 :: else fi };
#endif
  goto life
}
#endif

#ifdef CALM
active proctype Calm() { chaos = 0 }
#endif
