#!/usr/bin/env node
// bakery-bench: every subject runs the same workload side by side in one run on this machine.
//   npm run bench                 full run: P = 1, 4, 16, 64; 1 s windows; median of 3 runs
//   npm run bench -- --quick      ≈ 1½ minutes: shorter windows, 1 run
//   options: --procs 1,4,16 --runs N --window MS --recipe-window MS --pg-window MS
//            --only id,id,group (group: pg) --out DIR --pg-url URL (repeatable: one per transport)
//            --no-write (print only) --json (print the JSON instead of the tables)
import { fork, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import * as os from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import {
  caption,
  compare,
  detailTable,
  pgTable,
  summaryTable,
  svgChart,
  targets,
  targetsTable,
} from './report.mjs';
import { Hist, jain, median } from './stats.mjs';
import { entriesBound, locksOf, procsOf, SUBJECTS, selectedBy } from './subjects.mjs';
import { COUNTER_BYTES, GO, mapCounter, runRound, START_AT } from './workload.mjs';

const here = dirname(fileURLToPath(import.meta.url));

function parseArgs(argv) {
  const o = { quick: false, smoke: false, write: true, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => argv[++i];
    if (a === '--quick') o.quick = true;
    else if (a === '--smoke') o.smoke = true;
    else if (a === '--no-write') o.write = false;
    else if (a === '--json') o.json = true;
    else if (a === '--procs') o.procs = next().split(',').map(Number);
    else if (a === '--runs') o.runs = Number(next());
    else if (a === '--window') o.windowMs = Number(next());
    else if (a === '--warmup') o.warmupMs = Number(next());
    else if (a === '--recipe-window') o.recipeWindowMs = Number(next());
    else if (a === '--pg-window') o.pgWindowMs = Number(next());
    else if (a === '--pg-url') (o.pgUrls ??= []).push(next());
    else if (a === '--only') o.only = next().split(',');
    else if (a === '--out') o.out = next();
    else if (a === '--from') o.from = next();
    else if (a === '--spin')
      process.env.BENCH_SPIN = String(Number(next())); // children inherit it
    else if (a === '--help' || a === '-h') {
      console.log(
        'usage: bakery-bench [--quick | --smoke] [--procs 1,4,16,64] [--runs N] [--window MS]\n' +
          '                    [--warmup MS] [--recipe-window MS] [--pg-window MS] [--only id,id]\n' +
          '                    [--pg-url URL [--pg-url URL]] [--out DIR] [--no-write] [--json]\n' +
          '                    [--from results/latest.json (re-render only)]\n' +
          `subjects: ${SUBJECTS.map((s) => s.id).join(', ')}\n` +
          `groups: ${[...new Set(SUBJECTS.map((s) => s.group).filter(Boolean))].join(', ')}\n` +
          'The PostgreSQL rows run on a throwaway server started for the run (needs initdb and\n' +
          'pg_ctl), or on --pg-url servers: a unix-socket URL (host=/dir) and/or a TCP one.',
      );
      process.exit(0);
    } else throw new Error(`unknown option ${a} (try --help)`);
  }
  const preset = o.smoke
    ? {
        procs: [1, 2],
        runs: 1,
        windowMs: 100,
        warmupMs: 30,
        recipeWindowMs: 300,
        pgWindowMs: 100,
        uncMs: 20,
        mode: 'smoke',
      }
    : o.quick
      ? {
          procs: [1, 4, 16, 64],
          runs: 1,
          windowMs: 300,
          warmupMs: 200,
          recipeWindowMs: 1000,
          pgWindowMs: 1000,
          uncMs: 100,
          mode: 'quick',
        }
      : {
          procs: [1, 4, 16, 64],
          runs: 3,
          windowMs: 1000,
          warmupMs: 300,
          recipeWindowMs: 3000,
          pgWindowMs: 1000,
          uncMs: 400,
          mode: 'full',
        };
  const known = new Set(SUBJECTS.flatMap((s) => [s.id, s.group]).filter(Boolean));
  const unknown = (o.only ?? []).filter((x) => !known.has(x));
  if (unknown.length > 0) throw new Error(`--only: unknown ${unknown.join(', ')} (try --help)`);
  return { ...preset, ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) };
}

/** A unix-socket connection string names a directory as its host (`host=/dir` or `%2Fdir@`). */
const transportOf = (url) =>
  /[?&]host=(\/|%2F)|^[a-z]+:\/\/([^@/]*@)?%2F/i.test(url) ? 'socket' : 'tcp';

/**
 * The run's PostgreSQL: `{ urls: { socket, tcp }, unusable, meta, server? }`, or `{ error }`
 * (every pg row is then skipped with it as the reason). Without --pg-url, a throwaway server
 * (@bakery/pg/throwaway-server: initdb into a temporary directory, fsync off) that main stops.
 */
async function startPg(opts) {
  if (opts.pgUrls) {
    const urls = {};
    const unusable = {};
    const { inspectLock } = await import('@bakery/pg');
    for (const url of opts.pgUrls) {
      const transport = transportOf(url);
      urls[transport] = url;
      // Reach it first (inspectLock creates nothing): an unreachable or unsupported server is a
      // skip with its reason, not participants failing mid-run.
      const err = await inspectLock('bakery-bench-probe', { connection: url }).then(
        () => null,
        (e) => e,
      );
      if (err && err.code !== 'BAKERY_NOT_FOUND') unusable[transport] = `--pg-url: ${err.message}`;
    }
    return {
      urls,
      unusable,
      meta: { server: 'given by --pg-url', transports: Object.keys(urls) },
    };
  }
  const { findPgBin, startServer } = await import('@bakery/pg/throwaway-server');
  const bin = findPgBin();
  if (bin === null) {
    return {
      error:
        'no PostgreSQL server binaries (initdb, pg_ctl): install the Debian/Ubuntu package postgresql, set PG_BIN, or pass --pg-url URL',
    };
  }
  let server;
  try {
    server = await startServer();
  } catch (err) {
    return {
      error: `the throwaway PostgreSQL did not start: ${String(err.message).split('\n')[0]}`,
    };
  }
  const v = spawnSync(join(bin, 'postgres'), ['--version'], { encoding: 'utf8' });
  let postmasterPid = null;
  try {
    postmasterPid = Number(
      readFileSync(join(server.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0],
    );
  } catch {
    // its CPU is then not measured
  }
  return {
    urls: { socket: server.socketUrl, tcp: server.url },
    server,
    postmasterPid,
    meta: {
      server: 'throwaway (fsync off, full_page_writes off)',
      version: v.stdout?.trim() || bin,
      port: server.port,
      transports: ['socket', 'tcp'],
    },
  };
}

/** Clock ticks per second of /proc/<pid>/stat's times. */
let clockTicks;

/**
 * CPU (µs) the throwaway server has used so far: the postmaster's own and that of its reaped
 * children (an exited backend, such as each of advisory-lock's per-acquisition sessions) plus
 * every live child's. The pg rows add its change over a round to the clients' CPU, as most of
 * their work is done there. Clock ticks (10 ms on most kernels); null without a postmaster pid
 * (--pg-url) or /proc.
 */
function serverCpuUs(pg) {
  if (!pg?.postmasterPid) return null;
  // Fields after the parenthesised command: [1] ppid, [11] utime, [12] stime, [13] cutime,
  // [14] cstime.
  const stat = (pid) => {
    const t = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return t
      .slice(t.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number);
  };
  try {
    clockTicks ??= Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;
    let ticks = 0;
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const f = stat(d);
        if (f[1] === pg.postmasterPid) ticks += f[11] + f[12];
      } catch {
        // ended meanwhile: its time is in the postmaster's cutime now
      }
    }
    const pm = stat(pg.postmasterPid);
    ticks += pm[11] + pm[12] + pm[13] + pm[14];
    return (ticks * 1e6) / clockTicks;
  } catch {
    return null;
  }
}

function machine() {
  let python = null;
  const py = spawnSync('python3', ['--version'], { encoding: 'utf8' });
  if (py.status === 0) python = (py.stdout || py.stderr).trim();
  return {
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown CPU',
    cpus: os.cpus().length,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    python,
    loadavg: os.loadavg(),
    totalMemGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
  };
}

/** How c-fifo.c is compiled (the subject's binary is built at bench time, never committed). */
const C_FLAGS = ['-O2', '-std=c11', '-Wall'];

/**
 * Compile c-fifo.c with the system C compiler (`$CC` when set, else the first of cc, gcc,
 * clang that runs) into .cache/ of this app, once per source, compiler and flags. Returns
 * `{ bin, compiler, flags }` or `{ error }` (the subject is then skipped with it as the reason).
 */
function buildCFifo() {
  const candidates = process.env.CC ? [process.env.CC] : ['cc', 'gcc', 'clang'];
  let compiler;
  let version;
  for (const cc of candidates) {
    const v = spawnSync(cc, ['--version'], { encoding: 'utf8' });
    if (v.status === 0) {
      compiler = cc;
      version = (v.stdout || v.stderr).split('\n')[0].trim();
      break;
    }
  }
  if (!compiler) return { error: `no C compiler found (tried ${candidates.join(', ')})` };
  const source = join(here, 'c-fifo.c');
  const text = readFileSync(source);
  const key = createHash('sha256')
    .update(text)
    .update(`\0${version}\0${C_FLAGS.join(' ')}`)
    .digest('hex')
    .slice(0, 16);
  const cache = join(here, '..', '.cache');
  const bin = join(cache, `c-fifo-${key}`);
  if (!existsSync(bin)) {
    mkdirSync(cache, { recursive: true });
    const tmp = `${bin}.${process.pid}.tmp`;
    const r = spawnSync(compiler, [...C_FLAGS, '-o', tmp, source, '-lm'], { encoding: 'utf8' });
    if (r.status !== 0) {
      rmSync(tmp, { force: true });
      const why = (r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n')[0];
      return { error: `${compiler} failed: ${why}` };
    }
    renameSync(tmp, bin);
  }
  return { bin, compiler: version, flags: C_FLAGS.join(' ') };
}

let cFifo;
/** The run's PostgreSQL (see startPg), once some pg row is selected. */
let pg;

/** Why a subject cannot run here, or null. */
async function skipReason(s, m) {
  try {
    if (s.kind === 'python' && !m.python) return 'python3 not found';
    if (s.group === 'pg') {
      if (pg.error) return pg.error;
      if (pg.unusable?.[s.transport]) return pg.unusable[s.transport];
      if (!pg.urls[s.transport])
        return `no ${s.transport === 'socket' ? 'unix-socket' : 'TCP'} --pg-url`;
      await import(s.ours ? '@bakery/pg' : 'advisory-lock');
    }
    if (s.kind === 'c') {
      cFifo ??= buildCFifo();
      if (cFifo.error) return cFifo.error;
    }
    if (s.id === 'proper-lockfile') await import('proper-lockfile');
    if (s.id === 'async-mutex') await import('async-mutex');
    if (s.kind === 'procs' || s.kind === 'threads' || s.kind === 'inproc') {
      const { loadNative } = await import('@bakery/native'); // maps the shared counter
      loadNative();
    }
  } catch (err) {
    return `${err.code ?? err.name}: ${String(err.message).split('\n')[0]}`;
  }
  return null;
}

/** Pool members that have exited (see watchExit). */
const exited = new WeakSet();
const watchExit = (m) => {
  m.once('exit', () => exited.add(m));
  return m;
};

/**
 * The next message of `type` from a pool member. Rejects when the member exits first: one that
 * died (a lock call that threw in it, a kill from outside) sends nothing more, and the run must
 * fail — main's finally then closes the pools and stops the PostgreSQL server — not wait forever.
 */
const once = (emitter, type) =>
  new Promise((resolve, reject) => {
    const done = () => {
      emitter.off('message', onMsg);
      emitter.off('error', onError);
      emitter.off('exit', onExit);
    };
    const onMsg = (msg) => {
      if (msg?.type === type) {
        done();
        resolve(msg);
      }
    };
    const onError = (err) => {
      done();
      reject(err);
    };
    const onExit = (code, signal) => {
      done();
      reject(
        new Error(
          `a participant exited (${signal ?? `code ${code}`}) while the bench waited for '${type}' (its stderr above says why)`,
        ),
      );
    };
    if (exited.has(emitter)) return onExit(emitter.exitCode, emitter.signalCode);
    emitter.on('message', onMsg);
    emitter.once('error', onError);
    emitter.once('exit', onExit);
  });

/**
 * One pool of max(P) participants of a kind, started once (64 Node processes take seconds to
 * start on 2 cores). Each P has its own locks, opened by the first P members only, so a lock's
 * high-water mark (what every scan covers) is P + 1 whatever ran before. `ps`: the P at which
 * some subject of this kind runs (with `--only pg`, at most 16).
 */
async function startPool(kind, ps, ctx, subjects) {
  const participant = join(here, 'participant.mjs');
  const maxP = Math.max(...ps);
  const members = [];
  const perP = {};
  const locks = locksOf(subjects, kind);
  const peers = subjects.filter((s) => s.kind === kind && !s.ours && s.group === 'pg');
  if (kind === 'procs') {
    const mmap = await import('@bakery/mmap');
    const shm = await import('@bakery/shm');
    let options = {
      env: {
        ...process.env,
        BENCH_DIR: ctx.dir,
        BENCH_COUNTER: ctx.counterFile,
        BENCH_LOCKFILE: ctx.lockFile,
      },
    };
    const creators = [];
    const shmNames = [];
    for (const p of ps) {
      const perLock = [];
      for (const lock of locks) {
        if (p > (lock.maxP ?? Number.POSITIVE_INFINITY)) continue;
        if (lock.backend === 'pg') {
          // A lock name per P and transport; every participant opens it on a session of its own.
          const name = `${ctx.shmName}-p${p}-${lock.key}`;
          perLock.push({ ...lock, name, url: ctx.pg.urls[lock.transport] });
        } else if (lock.backend === 'mmap') {
          const mutex = mmap.createMutex({ slots: p + 1 });
          creators.push(mutex);
          // Chained forkOptions: each call appends its memfd to stdio and names it in the env.
          options = mutex.forkOptions(options);
          perLock.push({ ...lock, fd: Number(options.env.BAKERY_MMAP_FD) });
        } else {
          // An shm lock per access mode and handoff, created in that mode; children open
          // them by name.
          const name = `${ctx.shmName}-p${p}-${lock.key}`;
          shm.openMutex(name, { slots: p + 1, dir: ctx.dir, access: lock.access }).close();
          shmNames.push(name);
          perLock.push({ ...lock, name });
        }
      }
      const atP = peers.filter((s) => procsOf(s, [p]).length > 0);
      perP[p] = {
        locks: perLock,
        slots: p + 1,
        peers: Object.fromEntries(
          atP.map((s) => [
            s.id,
            { url: ctx.pg.urls[s.transport], name: `${ctx.shmName}-p${p}-${s.id}` },
          ]),
        ),
      };
    }
    for (let i = 0; i < maxP; i++) members.push(watchExit(fork(participant, [], options)));
    await Promise.all(members.map((m) => once(m, 'ready')));
    for (const c of creators) c.close();
    return {
      kind,
      members,
      perP,
      send: (m, msg) => m.send(msg),
      close: async () => {
        await Promise.all(members.map((m) => exitOf(m, () => m.send({ type: 'exit' }))));
        for (const name of shmNames) shm.removeMutex(name, { dir: ctx.dir });
      },
    };
  }
  const sab = await import('@bakery/sab');
  const creators = [];
  for (const p of ps) {
    const perLock = [];
    for (const lock of locks) {
      const mutex = sab.createMutex({ slots: p + 1 });
      creators.push(mutex);
      perLock.push({ ...lock, handle: mutex.handle });
    }
    perP[p] = { locks: perLock };
  }
  for (let i = 0; i < maxP; i++) {
    members.push(watchExit(new Worker(participant, { workerData: { counter: ctx.counterFile } })));
  }
  await Promise.all(members.map((m) => once(m, 'ready')));
  return {
    kind,
    members,
    perP,
    send: (m, msg) => m.postMessage(msg),
    close: async () => {
      await Promise.all(members.map((m) => exitOf(m, () => m.postMessage({ type: 'exit' }))));
      for (const c of creators) c.close();
    },
  };
}

/**
 * Ask a member to leave and wait until it has. After a failed round a member may still sit
 * armed (blocked on the GO cell, deaf to messages): it is killed after 5 s.
 */
const exitOf = (m, trigger) => {
  if (exited.has(m)) return Promise.resolve();
  const gone = new Promise((r) => m.once('exit', r));
  trigger();
  const timer = setTimeout(() => (m.terminate ? m.terminate() : m.kill('SIGKILL')), 5000);
  return gone.finally(() => clearTimeout(timer));
};

/** The first P members open P's locks (outside any window). */
async function openLocks(pool, p) {
  await Promise.all(
    pool.members.slice(0, p).map((m) => {
      const r = once(m, 'opened');
      pool.send(m, { type: 'open', p, ...pool.perP[p] });
      return r;
    }),
  );
}

let generation = 0;

/**
 * One round: the first P members arm (they block on a futex over the shared file's GO cell),
 * then one store + wake releases them all with a common start time; no message is in flight
 * when the window starts.
 */
async function poolRound(pool, subject, p, ctx, windowMs) {
  Atomics.store(ctx.counter, 0, 0);
  const gen = ++generation;
  const members = pool.members.slice(0, p);
  const results = members.map((m) => once(m, 'result'));
  await Promise.all(
    members.map((m) => {
      const r = once(m, 'armed');
      pool.send(m, {
        type: 'round',
        subject,
        p,
        gen,
        windowMs,
        warmupMs: ctx.warmupMs,
        workUs: ctx.workUs,
      });
      return r;
    }),
  );
  const onServer = SUBJECTS.find((s) => s.id === subject).group === 'pg';
  const server0 = onServer ? serverCpuUs(ctx.pg) : null;
  const cpu0 = process.cpuUsage();
  ctx.startAt[0] = Date.now() + 5 + p / 4;
  Atomics.store(ctx.counter, GO, gen);
  ctx.native.wake(ctx.counter, GO, Number.POSITIVE_INFINITY);
  const participants = await Promise.all(results);
  const cpu = process.cpuUsage(cpu0);
  const server1 = server0 === null ? null : serverCpuUs(ctx.pg);
  return {
    participants,
    counter: Atomics.load(ctx.counter, 0),
    windowMs,
    // Threads share this process's CPU clock: take the whole process's (the main thread idles).
    cpuUs: pool.kind === 'threads' ? cpu.user + cpu.system : undefined,
    ...(server1 !== null ? { serverCpuUs: server1 - server0 } : {}),
  };
}

/** async-mutex: P async tasks of this event loop share one Mutex. */
async function inprocRound(p, ctx, windowMs) {
  const { Mutex } = await import('async-mutex');
  const mutex = new Mutex();
  const subject = { mode: 'async', acquire: () => mutex.acquire(), release: (r) => r() };
  Atomics.store(ctx.counter, 0, 0);
  // Start every task from one synchronous loop: a task whose critical sections never wait on
  // I/O runs entirely in microtasks, so a task started from a later timer would never begin.
  await sleep(20);
  const startAt = Date.now();
  const cpu0 = process.cpuUsage();
  const participants = await Promise.all(
    Array.from({ length: p }, () =>
      runRound(subject, {
        counter: ctx.counter,
        startAt,
        windowMs,
        warmupMs: ctx.warmupMs,
        workUs: ctx.workUs,
      }),
    ),
  );
  const cpu = process.cpuUsage(cpu0);
  return {
    participants,
    counter: Atomics.load(ctx.counter, 0),
    windowMs,
    cpuUs: cpu.user + cpu.system,
  };
}

/**
 * The runs of one non-Node subject at one P: its launcher (participants.py, or the compiled
 * c-fifo) forks the P participants itself, runs the same workload, and prints one JSON object.
 */
function launcherRuns(s, p, runs, windowMs, ctx, uncMs) {
  const [command, args] =
    s.kind === 'c'
      ? [cFifo.bin, [String(p), String(runs), String(windowMs), ctx.counterFile, String(uncMs)]]
      : [
          'python3',
          [
            join(here, 'participants.py'),
            s.id,
            String(p),
            String(runs),
            String(windowMs),
            ctx.counterFile,
            ctx.flockFile,
            String(uncMs),
          ],
        ];
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: {
        ...process.env,
        BENCH_WORK_US: String(ctx.workUs),
        BENCH_WARMUP_MS: String(ctx.warmupMs),
      },
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`${s.id} launcher exited with ${code}`));
      else {
        const d = JSON.parse(out);
        resolve({
          uncontendedNs: d.uncontendedNs,
          spin: d.spin,
          runs: d.runs.map((r) => ({ ...r, windowMs })),
        });
      }
    });
  });
}

/** Medians over runs of one subject at one P. */
function summarise(runs, s, p) {
  const per = runs.map((r) => {
    const counts = r.participants.map((x) => x.n);
    const total = r.participants.reduce((a, x) => a + x.total, 0);
    const inWindow = counts.reduce((a, b) => a + b, 0);
    const clientUs = r.cpuUs ?? r.participants.reduce((a, x) => a + x.cpuUs, 0);
    // The pg rows' CPU is the clients' plus the server's (when it is ours to measure).
    const cpuUs = clientUs + (r.serverCpuUs ?? 0);
    const per1k = (us) => (total > 0 ? us / 1e6 / (total / 1000) : Number.NaN);
    return {
      rate: inWindow / (r.windowMs / 1000),
      min: Math.min(...counts),
      max: Math.max(...counts),
      jain: jain(counts),
      cpuPer1k: per1k(cpuUs),
      ...(s.group === 'pg'
        ? {
            clientCpuPer1k: per1k(clientUs),
            serverCpuPer1k: r.serverCpuUs === undefined ? Number.NaN : per1k(r.serverCpuUs),
          }
        : {}),
      lost: total - r.counter,
      total,
      counter: r.counter,
    };
  });
  const byRate = [...per].sort((a, b) => a.rate - b.rate);
  const mid = byRate[(byRate.length - 1) >> 1];
  const hist = new Hist();
  for (const r of runs) for (const x of r.participants) hist.merge(x.hist);
  return {
    rate: median(per.map((x) => x.rate)),
    rates: per.map((x) => x.rate),
    // min/max of the median run, so both come from the same window
    min: mid.min,
    max: mid.max,
    jain: median(per.map((x) => x.jain)),
    p50: hist.quantile(0.5),
    p99: hist.quantile(0.99),
    cpuPer1k: median(per.map((x) => x.cpuPer1k)),
    ...(s.group === 'pg'
      ? {
          clientCpuPer1k: median(per.map((x) => x.clientCpuPer1k)),
          serverCpuPer1k: median(per.map((x) => x.serverCpuPer1k)),
        }
      : {}),
    lost: per.reduce((a, x) => a + x.lost, 0),
    // Critical sections run and the counters they left, over all runs (lost = their difference).
    criticalSections: per.reduce((a, x) => a + x.total, 0),
    counted: per.reduce((a, x) => a + x.counter, 0),
    ...entriesWhileWaiting(runs, s, p),
    ...kernelHandoffs(runs),
  };
}

/**
 * c-fifo's FUTEX_WAKE calls per acquisition over these runs: the share of handoffs that went
 * through the kernel (the successor was asleep), which is what its speed turns on.
 */
function kernelHandoffs(runs) {
  const all = runs.flatMap((r) => r.participants);
  if (!all.every((x) => Number.isFinite(x.wakes))) return {};
  const total = all.reduce((a, x) => a + x.total, 0);
  return { wakesPerAcq: total > 0 ? all.reduce((a, x) => a + x.wakes, 0) / total : Number.NaN };
}

/**
 * The most entries while waiting of any acquisition in these runs, with the bound of the
 * subject's handoff at this P (see entriesBound); nothing for subjects that do not count them.
 */
function entriesWhileWaiting(runs, s, p) {
  const counts = runs.flatMap((r) => r.participants.map((x) => x.entriesWhileWaiting));
  if (counts.length === 0 || counts.some((x) => !Number.isFinite(x))) return {};
  const max = Math.max(...counts);
  // Counted from the lock() call (a server's queue): no bound to hold it to.
  if (s.entries === 'call') return { entriesWhileWaiting: { max, from: 'call' } };
  const bound = entriesBound(s, p);
  if (bound === undefined) return {};
  return { entriesWhileWaiting: { max, bound, over: max > bound } };
}

/**
 * The uncontended lock+unlock of one subject, in a fresh Node process of its own: core's call
 * sites would turn polymorphic (slower) if one process drove sab, mmap and shm cells in turn,
 * which no user does.
 */
function uncontended(s, ctx, uncMs) {
  // The pg rows' lock name and server (a round trip is wall time: see uncontended.mjs).
  const env =
    s.group === 'pg' ? { ...process.env, BENCH_PG_URL: ctx.pg.urls[s.transport] } : process.env;
  const r = spawnSync(
    process.execPath,
    [
      join(here, 'uncontended.mjs'),
      s.id,
      String(uncMs),
      ctx.dir,
      `${ctx.shmName}-unc-${s.id}`,
      ctx.lockFile,
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env },
  );
  if (r.status !== 0) throw new Error(`uncontended ${s.id} exited with ${r.status}`);
  return Number(r.stdout.trim());
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.from) {
    // Re-render the tables and chart of an earlier run (no measuring).
    const { meta, results } = JSON.parse(readFileSync(opts.from, 'utf8'));
    write({ ...opts, mode: meta.mode }, meta, results);
    return;
  }
  const started = Date.now();
  const m = machine();
  const meta = {
    date: new Date().toISOString(),
    mode: opts.mode,
    procs: opts.procs,
    runs: opts.runs,
    windowMs: opts.windowMs,
    warmupMs: opts.warmupMs,
    recipeWindowMs: opts.recipeWindowMs,
    pgWindowMs: opts.pgWindowMs,
    workUs: 1,
    machine: m,
    workload:
      'P participants loop lock → read a shared 32-bit counter (a tmpfs file every participant maps) → ~1 µs busy work ' +
      '(async subjects also yield to the event loop here) → write counter + 1 → unlock, from a shared start time for a fixed window',
  };
  const subjects = SUBJECTS.filter(selectedBy(opts.only));
  const dir = mkdtempSync(join(existsShm() ? '/dev/shm' : os.tmpdir(), 'bakery-bench-'));
  const ctx = {
    dir,
    shmName: `bench-${process.pid}`,
    counterFile: join(dir, 'counter'),
    lockFile: join(dir, 'proper-lockfile.target'),
    flockFile: join(dir, 'flock.target'),
    workUs: meta.workUs,
    warmupMs: opts.warmupMs,
  };
  writeFileSync(ctx.counterFile, Buffer.alloc(COUNTER_BYTES));
  writeFileSync(ctx.lockFile, '');
  const log = (msg) =>
    process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}\n`);
  const results = {};
  const pools = {};
  // pg_ctl starts the server in a session of its own, so Ctrl-C does not reach it: stop it (and
  // the pool, and the run's directory) here.
  const onSignal = (signal) => {
    log(`${signal}: stopping`);
    for (const pool of Object.values(pools))
      for (const m of pool.members) pool.kind === 'threads' ? m.terminate() : m.kill();
    pg?.server?.stop();
    rmSync(dir, { recursive: true, force: true });
    process.exit(128 + os.constants.signals[signal]);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    if (subjects.some((s) => s.group === 'pg')) {
      const t0 = Date.now();
      pg = await startPg(opts);
      ctx.pg = pg;
      if (pg.server) log(`PostgreSQL: ${pg.meta.version}, throwaway, up in ${Date.now() - t0} ms`);
      if (!pg.error) meta.pg = pg.meta;
    }
    for (const s of subjects) {
      const why = await skipReason(s, m);
      results[s.id] = why ? { skipped: why } : { byP: {}, runs: {} };
      if (why) log(`${s.id}: skipped (${why})`);
    }
    const live = subjects.filter((s) => !results[s.id].skipped);
    // Python and C launchers map the counter file themselves and time their own uncontended.
    const node = live.filter((s) => s.kind !== 'python' && s.kind !== 'c');
    if (node.length > 0) {
      ctx.counter = await mapCounter(ctx.counterFile);
      ctx.startAt = new Float64Array(ctx.counter.buffer, START_AT * 4, 1);
      ctx.native = (await import('@bakery/native')).loadNative();
    }

    log(`uncontended lock+unlock (${opts.uncMs} ms per subject)`);
    for (const s of node) {
      results[s.id].uncontendedNs = uncontended(s, ctx, opts.uncMs);
      if (s.group === 'pg') results[s.id].uncontendedClock = 'wall';
    }

    // The pg rows' longer window: at a few hundred acquisitions/s a 300 ms window holds too few.
    const windowOf = (s) =>
      s.group === 'pg' ? Math.max(opts.windowMs, opts.pgWindowMs) : opts.windowMs;
    for (const kind of ['threads', 'procs']) {
      const ps = opts.procs.filter((p) =>
        live.some((s) => s.kind === kind && procsOf(s, [p]).length > 0),
      );
      if (ps.length === 0) continue;
      const t0 = Date.now();
      pools[kind] = await startPool(kind, ps, ctx, live);
      log(
        `${Math.max(...ps)} ${kind === 'procs' ? 'processes' : 'threads'} up in ${Date.now() - t0} ms`,
      );
    }
    for (const p of opts.procs) {
      if (!live.some((s) => procsOf(s, [p]).length > 0)) continue; // --only pg at P = 64
      for (const pool of Object.values(pools)) {
        const group = live.filter((s) => s.kind === pool.kind && procsOf(s, [p]).length > 0);
        if (group.length === 0) continue;
        await openLocks(pool, p);
        // Interleave subjects run by run, so a burst of load from elsewhere hits all of them.
        for (let r = 0; r < opts.runs; r++) {
          for (const s of group) {
            (results[s.id].runs[p] ??= []).push(await poolRound(pool, s.id, p, ctx, windowOf(s)));
          }
        }
      }
      for (const s of live.filter((s) => s.kind === 'inproc')) {
        for (let r = 0; r < opts.runs; r++) {
          (results[s.id].runs[p] ??= []).push(await inprocRound(p, ctx, opts.windowMs));
        }
      }
      for (const s of live.filter((s) => s.kind === 'python' || s.kind === 'c')) {
        const windowMs =
          s.id === 'recipe' ? Math.max(opts.windowMs, opts.recipeWindowMs) : opts.windowMs;
        const d = await launcherRuns(
          s,
          p,
          opts.runs,
          windowMs,
          ctx,
          p === opts.procs[0] ? opts.uncMs : 1,
        );
        if (p === opts.procs[0]) results[s.id].uncontendedNs = d.uncontendedNs;
        if (s.kind === 'c')
          meta.cFifo = { compiler: cFifo.compiler, flags: cFifo.flags, spin: d.spin };
        results[s.id].runs[p] = d.runs;
      }
      for (const s of live) {
        const runs = results[s.id].runs[p];
        if (runs) results[s.id].byP[p] = summarise(runs, s, p);
      }
      log(`P=${p}: done`);
    }
  } finally {
    for (const pool of Object.values(pools)) await pool.close();
    pg?.server?.stop();
    if (pg?.server) log('PostgreSQL stopped');
    rmSync(dir, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  for (const s of subjects) delete results[s.id].runs;
  meta.seconds = +((Date.now() - started) / 1000).toFixed(1);
  write(opts, meta, results);
}

/** Print the tables and write results/<base>.{md,json,svg}. */
function write(opts, meta, results) {
  compare(results, meta);
  const tgt = targets(results);
  const md = [
    `## bakery-bench (${meta.mode})`,
    '',
    caption(meta),
    '',
    summaryTable(results, meta),
    '',
    detailTable(results, meta),
    '',
    ...(pgTable(results, meta) ? [pgTable(results, meta), ''] : []),
    targetsTable(tgt),
    '',
    `Workload: ${meta.workload}. Acquisitions/s count lock returns inside the window; wait = time in the lock call; ` +
      'CPU = user + system of every participant during its round (threads and async tasks: the whole process); ' +
      'lost updates = critical sections run − final counter (0 for every lock that excludes).' +
      (meta.pg
        ? ' PostgreSQL rows: uncontended is wall time (round trips); CPU adds the server processes’ when the server is the throwaway one; ' +
          'entries while waiting count from the lock() call (the queue is in the server).'
        : ''),
    '',
  ].join('\n');
  if (opts.json) console.log(JSON.stringify({ meta, results, targets: tgt }, null, 2));
  else console.log(md);
  if (opts.write) {
    const out = opts.out ?? join(here, '..', 'results');
    mkdirSync(out, { recursive: true });
    const base = opts.mode === 'full' ? 'latest' : `latest-${opts.mode}`;
    writeFileSync(join(out, `${base}.md`), md);
    writeFileSync(
      join(out, `${base}.json`),
      `${JSON.stringify({ meta, results, targets: tgt }, null, 2)}\n`,
    );
    writeFileSync(join(out, `${base}.svg`), svgChart(results, meta));
    process.stderr.write(
      `[bench] wrote ${join(out, base)}.{md,json,svg} (run took ${meta.seconds} s)\n`,
    );
  }
}

function existsShm() {
  try {
    accessSync('/dev/shm', constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

await main();
