"""Python subjects of bakery-bench: the original recipe (a line-for-line Python 3 port of the
Python recipe bakery re-engineers), multiprocessing.Lock, and flock(2) via fcntl.flock.

Runs the same workload as the Node participants (see workload.mjs): P forked processes loop
lock -> read the shared counter, ~1 us of busy work, write it + 1 -> unlock from a shared start
time until the window ends, and report counts, a wait histogram (same buckets as stats.mjs) and
their CPU time. Prints one JSON object on stdout.

    python3 participants.py SUBJECT PROCS RUNS WINDOW_MS COUNTER_FILE LOCK_FILE UNCONTENDED_MS
"""

import json
import math
import mmap
import os
import resource
import signal
import struct
import sys
import time
from time import sleep

PER_OCTAVE = 8
COUNTER_BYTES = 4096
# Byte offsets in the counter file used by this launcher's barrier (workload.mjs uses 8..24).
GO = 32
START_AT = 40


class HalfBakedMutex:
    """The recipe, ported line for line: 1-byte tickets (limit 256), pid % 1024 slots,
    sleep(0.1) polling. Python 3's mmap indexes as ints, so chr()/ord() disappear."""

    def __init__(self):
        # C is an array of people waiting for a ticket
        self.C = mmap.mmap(-1, 1024, mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
        # N is list of tickets people are holding
        self.N = mmap.mmap(-1, 1024, mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)

    def take_a_number(self):
        i = os.getpid() % 1024
        while True:
            self.C[i] = 1
            max = 0
            for j in range(1024):
                if self.N[j] > max:
                    max = self.N[j]
            # we can't have max > 256 as chr(256) will fail
            if max + 1 < 256:
                break
            else:
                self.C[i] = 0
                sleep(0.1)
        self.N[i] = max + 1
        self.C[i] = 0

    def lock(self):
        self.take_a_number()
        i = os.getpid() % 1024
        for j in range(1024):
            while self.C[j] == 1:
                sleep(0.1)
                continue
            while (self.N[j] > 0) and (self.N[j], j) < (self.N[i], i):
                sleep(0.1)
                continue
        return

    def unlock(self):
        i = os.getpid() % 1024
        self.N[i] = 0


class Flock:
    """flock(2) on a shared file. Each process opens the file itself after the fork: a flock
    belongs to the open file description, so an inherited fd would not exclude."""

    def __init__(self, path):
        self.path = path
        self.fd = None

    def after_fork(self):
        import fcntl

        self.fcntl = fcntl
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    def lock(self):
        self.fcntl.flock(self.fd, self.fcntl.LOCK_EX)

    def unlock(self):
        self.fcntl.flock(self.fd, self.fcntl.LOCK_UN)


class MpLock:
    def __init__(self):
        import multiprocessing

        self.lk = multiprocessing.get_context("fork").Lock()

    def lock(self):
        self.lk.acquire()

    def unlock(self):
        self.lk.release()


def make(subject, lock_file):
    if subject == "recipe":
        return HalfBakedMutex()
    if subject == "mplock":
        return MpLock()
    if subject == "flock":
        return Flock(lock_file)
    raise SystemExit("unknown subject " + subject)


class Abandon(Exception):
    pass


def work(us):
    until = time.perf_counter_ns() + int(us * 1000)
    while time.perf_counter_ns() < until:
        pass


def child(lock, counter, gen, window_ms, warmup_ms, work_us, ready_fd, out_fd):
    if hasattr(lock, "after_fork"):
        lock.after_fork()
    # Barrier: say ready, then poll the GO word until the parent publishes the start time.
    os.write(ready_fd, b"r")
    os.close(ready_fd)
    while int.from_bytes(counter[GO:GO + 4], "little") != gen:
        sleep(0.0002)
    start_at = struct.unpack_from("<d", counter, START_AT)[0]
    state = {"waiting": False, "stop": False}

    def on_term(signum, frame):
        # The window is long over and this process is still queued (the recipe's polls take
        # 0.1 s each): give up the wait, never a critical section.
        state["stop"] = True
        if state["waiting"]:
            raise Abandon()

    signal.signal(signal.SIGTERM, on_term)
    hist = {}
    n = total = 0
    delay = start_at - time.time()
    if delay > 0:
        sleep(delay)
    begin = time.perf_counter() + (start_at + warmup_ms / 1000 - time.time())
    end = begin + window_ms / 1000
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    try:
        while not state["stop"]:
            t0 = time.perf_counter()
            if t0 >= end:
                break
            state["waiting"] = True
            lock.lock()
            state["waiting"] = False
            t1 = time.perf_counter()
            v = int.from_bytes(counter[0:4], "little", signed=True)
            work(work_us)
            counter[0:4] = (v + 1).to_bytes(4, "little", signed=True)
            lock.unlock()
            total += 1
            if begin <= t1 < end:
                n += 1
                ns = (t1 - t0) * 1e9
                b = 0 if ns < 1 else math.floor(math.log2(ns) * PER_OCTAVE)
                hist[b] = hist.get(b, 0) + 1
    except Abandon:
        pass
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu_us = ((r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)) * 1e6
    data = json.dumps({"n": n, "total": total, "hist": hist, "cpuUs": cpu_us}).encode()
    os.write(out_fd, data)
    os.close(out_fd)


def uncontended(subject, lock_file, budget_ms):
    lock = make(subject, lock_file)
    if hasattr(lock, "after_fork"):
        lock.after_fork()
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < max(0.002, budget_ms / 20000):
        lock.lock()
        lock.unlock()
        n += 1
    per = (time.perf_counter() - t0) / n
    batch = max(1, int(budget_ms / 5000 / per))
    samples = []
    # CPU time, as in stats.mjs: a shared machine's other tenants must not count.
    for _ in range(5):
        s = time.process_time_ns()
        for _ in range(batch):
            lock.lock()
            lock.unlock()
        samples.append((time.process_time_ns() - s) / batch)
    samples.sort()
    return samples[2]


def main():
    subject, procs, runs, window_ms, counter_file, lock_file, unc_ms = sys.argv[1:8]
    procs, runs, window_ms, unc_ms = int(procs), int(runs), float(window_ms), float(unc_ms)
    work_us = float(os.environ.get("BENCH_WORK_US", "1"))
    warmup_ms = float(os.environ.get("BENCH_WARMUP_MS", "0"))
    fd = os.open(counter_file, os.O_RDWR)
    counter = mmap.mmap(fd, COUNTER_BYTES, mmap.MAP_SHARED)
    os.close(fd)
    out = {"uncontendedNs": uncontended(subject, lock_file, unc_ms), "runs": []}
    for _ in range(runs):
        counter[0:4] = (0).to_bytes(4, "little")
        lock = make(subject, lock_file)
        gen = (int.from_bytes(counter[GO:GO + 4], "little") + 1) % 2**31
        ready_r, ready_w = os.pipe()
        kids = []
        for _ in range(procs):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                os.close(ready_r)
                try:
                    child(lock, counter, gen, window_ms, warmup_ms, work_us, ready_w, w)
                finally:
                    os._exit(0)
            os.close(w)
            kids.append((pid, r))
        os.close(ready_w)
        got = 0
        while got < procs:
            b = os.read(ready_r, procs - got)
            if not b:
                break
            got += len(b)
        os.close(ready_r)
        start_at = time.time() + 0.005 + 0.00025 * procs
        struct.pack_into("<d", counter, START_AT, start_at)
        counter[GO:GO + 4] = gen.to_bytes(4, "little")
        # Past the window plus a grace period, stop whoever is still queued for the lock.
        grace = max(1.0, window_ms / 2000)
        deadline = start_at + (warmup_ms + window_ms) / 1000 + grace
        alive = {pid for pid, _ in kids}
        while alive and time.time() < deadline:
            for pid in list(alive):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    alive.discard(pid)
            sleep(0.005)
        for pid in alive:
            os.kill(pid, signal.SIGTERM)
        for pid in alive:
            os.waitpid(pid, 0)
        parts = []
        for pid, r in kids:
            chunks = []
            while True:
                b = os.read(r, 65536)
                if not b:
                    break
                chunks.append(b)
            os.close(r)
            parts.append(json.loads(b"".join(chunks) or b'{"n":0,"total":0,"hist":{},"cpuUs":0}'))
        value = int.from_bytes(counter[0:4], "little", signed=True)
        out["runs"].append({"participants": parts, "counter": value})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
