/*
 * c-fifo: the strict-FIFO limit for bakery-bench. A ticket lock in MAP_SHARED anonymous memory
 * (created before the fork, so every participant inherits it) in which every waiter sleeps in a
 * futex on a word of its own, and the releaser wakes exactly its successor: no thundering herd,
 * no barging, one FUTEX_WAKE of one waiter per handoff at most. This is about as cheap as a
 * first-come-first-served lock across processes can be, so it is the yardstick for bakery's
 * strict mode.
 *
 * Lock layout: `next` (the next ticket) and one turn word per slot, each on a cache line of its
 * own; there are a power of two ≥ P slots, so ticket t always waits on slot t % slots alone
 * (at most P tickets are outstanding). A turn word holds (ticket << 1) | sleeping: the releaser
 * of ticket t stores (t + 1) << 1 into slot (t + 1)'s word and calls FUTEX_WAKE (non-private:
 * the processes share the memory, not an address space) only when the waiter had set the
 * sleeping bit. A waiter re-checks its word `spin` times (BENCH_C_SPIN, default 0) before it
 * sets the bit and sleeps.
 *
 * The workload is the bench's (see workload.mjs and participants.py): P forked processes arm,
 * block on a futex until the launcher releases them all with one store and wake, then loop
 * lock (timed) → read the shared 32-bit counter (cell 0 of the counter file every participant
 * maps) → ~1 µs of clock-bounded busy work → write counter + 1 → unlock, for a warm-up and a
 * window. Prints the same JSON as participants.py on stdout, each participant also with
 * `entriesWhileWaiting` (the most critical sections others ran between its taking a ticket and
 * its entry; at most P - 1 here) and `wakes`/`sleeps` (its FUTEX_WAKE and FUTEX_WAIT calls).
 *
 *     c-fifo PROCS RUNS WINDOW_MS COUNTER_FILE UNCONTENDED_MS
 *     env: BENCH_WORK_US (1), BENCH_WARMUP_MS (0), BENCH_C_SPIN (0)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define COUNTER_BYTES 4096
#define PER_OCTAVE 8 /* histogram buckets per power of two, as in stats.mjs */
#define BUCKETS 512  /* 2^(512/8) ns: far beyond any wait */
#define SLEEPING 1u

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

typedef struct {
  _Alignas(64) _Atomic uint32_t v;
} word;

typedef struct {
  word next;
  uint32_t mask; /* slots - 1 */
  word turn[];   /* turn[t & mask]: (owner ticket << 1) | SLEEPING */
} fifo_lock;

/* Shared by the launcher and its participants of one round. */
typedef struct {
  word go;           /* the round starts when this holds 1 */
  int64_t start_ns;  /* CLOCK_MONOTONIC start time of the round */
} barrier;

typedef struct {
  uint64_t n, total;
  double cpu_us;
  int64_t entries_while_waiting; /* max over the round's acquisitions */
  uint64_t wakes, sleeps;        /* FUTEX_WAKE calls made, FUTEX_WAIT calls made */
  uint32_t hist[BUCKETS];
} result;

static int spin;
/* This process's FUTEX_WAKE and FUTEX_WAIT calls: how many handoffs went through the kernel. */
static uint64_t wakes, sleeps;
static _Atomic int32_t *counter;

static long futex(_Atomic uint32_t *addr, int op, uint32_t val) {
  return syscall(SYS_futex, (uint32_t *)addr, op, val, NULL, NULL, 0);
}

static int64_t now_ns(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *shared(size_t bytes) {
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    perror("c-fifo: mmap");
    exit(1);
  }
  return p;
}

static size_t lock_bytes(uint32_t slots) { return sizeof(fifo_lock) + slots * sizeof(word); }

static fifo_lock *lock_create(uint32_t procs) {
  uint32_t slots = 2;
  while (slots < procs) slots <<= 1;
  fifo_lock *l = shared(lock_bytes(slots));
  l->mask = slots - 1;
  atomic_store(&l->next.v, 0);
  /* Ticket 0 owns slot 0; every other slot holds the ticket one lap earlier (never its own). */
  for (uint32_t s = 0; s < slots; s++) atomic_store(&l->turn[s].v, (s - (s ? slots : 0)) << 1);
  return l;
}

/*
 * Take a ticket and wait for its turn. `doorway` runs right after the ticket is taken (the
 * point where this participant's place in the queue is fixed). Returns the ticket.
 */
static uint32_t lock_acquire(fifo_lock *l, int64_t *doorway) {
  uint32_t t = atomic_fetch_add(&l->next.v, 1);
  if (doorway) *doorway = atomic_load_explicit(counter, memory_order_relaxed);
  _Atomic uint32_t *w = &l->turn[t & l->mask].v;
  const uint32_t mine = t << 1;
  uint32_t v = atomic_load(w);
  for (int i = 0; v != mine && i < spin; i++) {
    cpu_relax();
    v = atomic_load(w);
  }
  while (v != mine) {
    /* Only this waiter ever sets the bit on this word: announce the sleep, then sleep on it. */
    if (!(v & SLEEPING)) {
      if (!atomic_compare_exchange_strong(w, &v, v | SLEEPING)) continue;
      v |= SLEEPING;
    }
    sleeps++;
    futex(w, FUTEX_WAIT, v); /* returns at once if the word changed meanwhile */
    v = atomic_load(w);
  }
  return t;
}

/* Hand the lock to ticket t + 1: its word only, and a wake-up only if it sleeps. */
static void lock_release(fifo_lock *l, uint32_t t) {
  _Atomic uint32_t *w = &l->turn[(t + 1) & l->mask].v;
  if (atomic_exchange(w, (t + 1) << 1) & SLEEPING) {
    wakes++;
    futex(w, FUTEX_WAKE, 1);
  }
}

static void work(double us) {
  const int64_t until = now_ns(CLOCK_MONOTONIC) + (int64_t)(us * 1000);
  while (now_ns(CLOCK_MONOTONIC) < until) {
  }
}

static double cpu_us_of(const struct rusage *r) {
  return (r->ru_utime.tv_sec + r->ru_stime.tv_sec) * 1e6 + r->ru_utime.tv_usec +
         r->ru_stime.tv_usec;
}

static void participant(fifo_lock *l, barrier *b, result *out, double window_ms, double warmup_ms,
                        double work_us, int ready_fd) {
  if (write(ready_fd, "r", 1) != 1) _exit(2);
  close(ready_fd);
  while (atomic_load(&b->go.v) == 0) futex(&b->go.v, FUTEX_WAIT, 0);
  const int64_t start = b->start_ns;
  const struct timespec at = {start / 1000000000, start % 1000000000};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) == EINTR) {
  }
  const int64_t from = start + (int64_t)(warmup_ms * 1e6);
  const int64_t end = from + (int64_t)(window_ms * 1e6);
  struct rusage r0, r1;
  getrusage(RUSAGE_SELF, &r0);
  wakes = sleeps = 0;
  uint64_t n = 0, total = 0;
  int64_t ewMax = 0;
  for (int64_t t0 = now_ns(CLOCK_MONOTONIC); t0 < end; t0 = now_ns(CLOCK_MONOTONIC)) {
    int64_t doorway;
    const uint32_t ticket = lock_acquire(l, &doorway);
    const int64_t t1 = now_ns(CLOCK_MONOTONIC);
    const int32_t v = atomic_load_explicit(counter, memory_order_relaxed);
    if ((int64_t)v - doorway > ewMax) ewMax = (int64_t)v - doorway;
    work(work_us);
    atomic_store_explicit(counter, v + 1, memory_order_relaxed);
    lock_release(l, ticket);
    total++;
    if (t1 < end && t1 >= from) {
      n++;
      const double ns = (double)(t1 - t0);
      int k = ns < 1 ? 0 : (int)floor(log2(ns) * PER_OCTAVE);
      if (k >= BUCKETS) k = BUCKETS - 1;
      out->hist[k]++;
    }
  }
  getrusage(RUSAGE_SELF, &r1);
  out->n = n;
  out->total = total;
  out->cpu_us = cpu_us_of(&r1) - cpu_us_of(&r0);
  out->entries_while_waiting = ewMax;
  out->wakes = wakes;
  out->sleeps = sleeps;
}

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Uncontended lock+unlock in CPU ns: median of 5 batches within ~budget_ms (as stats.mjs). */
static double uncontended(double budget_ms) {
  fifo_lock *l = lock_create(1);
  uint64_t n = 0;
  const int64_t t0 = now_ns(CLOCK_MONOTONIC);
  const double warm_ns = fmax(2e6, budget_ms * 1e6 / 20);
  while (now_ns(CLOCK_MONOTONIC) - t0 < warm_ns) {
    lock_release(l, lock_acquire(l, NULL));
    n++;
  }
  const double per = (double)(now_ns(CLOCK_MONOTONIC) - t0) / n;
  uint64_t batch = (uint64_t)fmax(1, budget_ms * 1e6 / 5 / per);
  double samples[5];
  for (int r = 0; r < 5; r++) {
    const int64_t s = now_ns(CLOCK_PROCESS_CPUTIME_ID);
    for (uint64_t k = 0; k < batch; k++) lock_release(l, lock_acquire(l, NULL));
    samples[r] = (double)(now_ns(CLOCK_PROCESS_CPUTIME_ID) - s) / batch;
  }
  munmap(l, lock_bytes(l->mask + 1));
  qsort(samples, 5, sizeof samples[0], cmp_double);
  return samples[2];
}

static double env_num(const char *name, double fallback) {
  const char *s = getenv(name);
  return s && *s ? atof(s) : fallback;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: c-fifo PROCS RUNS WINDOW_MS COUNTER_FILE UNCONTENDED_MS\n");
    return 2;
  }
  const int procs = atoi(argv[1]), runs = atoi(argv[2]);
  const double window_ms = atof(argv[3]), unc_ms = atof(argv[5]);
  const double work_us = env_num("BENCH_WORK_US", 1), warmup_ms = env_num("BENCH_WARMUP_MS", 0);
  spin = (int)env_num("BENCH_C_SPIN", 0);
  if (procs < 1 || runs < 1) {
    fprintf(stderr, "c-fifo: PROCS and RUNS must be positive\n");
    return 2;
  }
  const int fd = open(argv[4], O_RDWR);
  if (fd < 0) {
    perror("c-fifo: counter file");
    return 1;
  }
  counter = mmap(NULL, COUNTER_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (counter == MAP_FAILED) {
    perror("c-fifo: mmap counter");
    return 1;
  }
  close(fd);

  printf("{\"uncontendedNs\":%.3f,\"spin\":%d,\"runs\":[", uncontended(unc_ms), spin);
  pid_t *kids = calloc(procs, sizeof *kids);
  for (int run = 0; run < runs; run++) {
    atomic_store(counter, 0);
    fifo_lock *l = lock_create(procs);
    barrier *b = shared(sizeof *b);
    result *res = shared(procs * sizeof *res);
    int ready[2];
    if (pipe(ready) != 0) {
      perror("c-fifo: pipe");
      return 1;
    }
    fflush(stdout); /* children must not inherit unflushed output */
    for (int i = 0; i < procs; i++) {
      kids[i] = fork();
      if (kids[i] < 0) {
        perror("c-fifo: fork");
        return 1;
      }
      if (kids[i] == 0) {
        close(ready[0]);
        participant(l, b, &res[i], window_ms, warmup_ms, work_us, ready[1]);
        _exit(0);
      }
    }
    close(ready[1]);
    for (int got = 0; got < procs;) {
      char buf[256];
      const ssize_t k = read(ready[0], buf, sizeof buf);
      if (k <= 0) break;
      got += (int)k;
    }
    close(ready[0]);
    /* The same lead as the Node pools and the Python launcher: 5 ms + P/4 ms. */
    b->start_ns = now_ns(CLOCK_MONOTONIC) + 5000000 + (int64_t)procs * 250000;
    atomic_store(&b->go.v, 1);
    futex(&b->go.v, FUTEX_WAKE, INT_MAX);
    /* A FIFO lock never strands a participant; one that is still running long past the window
       means the lock is broken: stop everyone and fail. */
    const double grace_ms = fmax(1000, window_ms / 2);
    const int64_t deadline =
        b->start_ns + (int64_t)((warmup_ms + window_ms + grace_ms) * 1e6);
    int alive = procs;
    while (alive > 0) {
      int status;
      const pid_t pid = waitpid(-1, &status, WNOHANG);
      if (pid > 0) {
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
          fprintf(stderr, "c-fifo: participant %d failed\n", (int)pid);
          for (int i = 0; i < procs; i++) kill(kids[i], SIGKILL);
          return 1;
        }
        alive--;
      } else if (now_ns(CLOCK_MONOTONIC) > deadline) {
        fprintf(stderr, "c-fifo: participants still running past the window; lock stuck\n");
        for (int i = 0; i < procs; i++) kill(kids[i], SIGKILL);
        return 1;
      } else {
        const struct timespec pause = {0, 2000000};
        nanosleep(&pause, NULL);
      }
    }
    printf("%s{\"participants\":[", run ? "," : "");
    for (int i = 0; i < procs; i++) {
      const result *x = &res[i];
      printf("%s{\"n\":%llu,\"total\":%llu,\"cpuUs\":%.1f,\"entriesWhileWaiting\":%lld,"
             "\"wakes\":%llu,\"sleeps\":%llu,\"hist\":{",
             i ? "," : "", (unsigned long long)x->n, (unsigned long long)x->total, x->cpu_us,
             (long long)x->entries_while_waiting, (unsigned long long)x->wakes,
             (unsigned long long)x->sleeps);
      int first = 1;
      for (int k = 0; k < BUCKETS; k++) {
        if (!x->hist[k]) continue;
        printf("%s\"%d\":%u", first ? "" : ",", k, x->hist[k]);
        first = 0;
      }
      printf("}}");
    }
    printf("],\"counter\":%d}", (int)atomic_load(counter));
    munmap(res, procs * sizeof *res);
    munmap(b, sizeof *b);
    munmap(l, lock_bytes(l->mask + 1));
  }
  printf("]}\n");
  return 0;
}
