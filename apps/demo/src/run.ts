import * as fs from 'node:fs';
import { type Backend, openBackend, type Peer } from './backends.js';
import type { DemoOptions } from './options.js';
import { CELL, type DoneMessage } from './protocol.js';
import { type Casualty, type Summary, summarize, summaryLines } from './stats.js';
import { renderSvg } from './svg.js';

/** How long stopped participants get to report before they are killed. */
const GRACE_MS = 5_000;

/** Where {@link runDemo} writes; tests pass their own. */
export interface DemoIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

/** The outcome of {@link runDemo}: the summary and the exit status the CLI should use. */
export interface DemoResult {
  summary: Summary;
  exitCode: number;
}

interface PeerState {
  peer: Peer;
  ready: boolean;
  slot: number;
  done: DoneMessage | null;
  exited: boolean;
  killedByUs: boolean;
}

function describeBound(o: DemoOptions): string {
  if (o.forever) return 'until Ctrl-C';
  if (o.iterations !== null) return `${o.iterations} acquisitions each`;
  return `${o.seconds} s`;
}

/**
 * Run the demo: start the participants, release them together, wait for them to finish (or for
 * Ctrl-C, or for one to crash), verify what they did and report. Children are always reaped and
 * the lock's handles and files removed before this resolves.
 */
export async function runDemo(
  opts: DemoOptions,
  io: DemoIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<DemoResult> {
  const backend: Backend = await openBackend(opts.backend, opts.procs);
  const states: PeerState[] = [];
  const tty = io.stderr.isTTY === true;
  let stopReason: 'interrupt' | 'crash' | null = null;
  let graceTimer: NodeJS.Timeout | undefined;
  let progressTimer: NodeJS.Timeout | undefined;
  let progressShown = false;
  const casualties: Casualty[] = [];

  const killAll = () => {
    for (const s of states) {
      if (!s.exited) {
        s.killedByUs = true;
        s.peer.kill();
      }
    }
  };
  // Last resort if the parent itself dies of an exception: no orphans, no stale files.
  const onExit = () => {
    killAll();
    backend.cleanup();
  };
  process.on('exit', onExit);

  const stopAll = (why: 'interrupt' | 'crash') => {
    if (stopReason !== null) return;
    stopReason = why;
    for (const s of states) s.peer.send({ type: 'stop' });
    graceTimer = setTimeout(killAll, GRACE_MS);
    graceTimer.unref();
    wake();
  };
  const onSignal = () => {
    if (stopReason === null) {
      clearProgress();
      io.stderr.write('\nstopping: waiting for every participant to leave the lock…\n');
      stopAll('interrupt');
    } else killAll(); // a second Ctrl-C: do not wait any longer
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let wake: () => void = () => {};
  const until = (cond: () => boolean) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (cond()) resolve();
      };
      wake = check;
      check();
    });

  const clearProgress = () => {
    if (progressShown) io.stderr.write('\r\x1b[K');
    progressShown = false;
  };
  const progress = (text: string) => {
    if (!tty) return;
    io.stderr.write(`\r\x1b[K${text}`);
    progressShown = true;
  };

  const started = process.hrtime.bigint();
  let readyAt = started;
  const crashId = Math.floor(opts.procs / 2);
  try {
    for (let id = 0; id < opts.procs && stopReason === null; id++) {
      const state: PeerState = {
        peer: backend.start({
          id,
          backend: opts.backend,
          quiet: opts.quiet,
          crash: opts.crashOne && id === crashId,
        }),
        ready: false,
        slot: -1,
        done: null,
        exited: false,
        killedByUs: false,
      };
      states.push(state);
      state.peer.onMessage((msg) => {
        if (msg.type === 'ready') {
          state.ready = true;
          state.slot = msg.slot;
          readyAt = process.hrtime.bigint();
        } else if (msg.type === 'done') state.done = msg;
        wake();
      });
      state.peer.onExit((code, signal) => {
        state.exited = true;
        if (state.done === null || code !== 0 || state.done.error !== null) {
          casualties.push({
            id,
            pid: state.peer.pid,
            code,
            signal,
            error: state.done?.error ?? null,
            forced: state.killedByUs,
          });
          if (!state.killedByUs) {
            stopAll('crash');
            // A holder that died inside the critical section wedges the lock: participants
            // blocked in lockSync can never get the turn in which they would read the stop.
            const held = backend.mutex.inspect().holder;
            if (backend.blocking && held !== null && held === state.slot) killAll();
          }
        }
        wake();
      });
    }

    if (tty) {
      progressTimer = setInterval(() => {
        const n = states.filter((s) => s.ready).length;
        progress(`starting: ${n}/${opts.procs} participants have opened the lock`);
      }, 200);
    }
    await until(() => stopReason !== null || states.every((s) => s.ready || s.exited));
    clearInterval(progressTimer);
    clearProgress();
    const startupMs = Number(readyAt - started) / 1e6;

    const t0 = process.hrtime.bigint();
    const endAt = opts.seconds !== null ? t0 + BigInt(Math.round(opts.seconds * 1e9)) : null;
    if (stopReason === null) {
      if (!opts.quiet)
        io.stderr.write(
          `${opts.procs} participants opened the lock in ${(startupMs / 1e3).toFixed(1)} s; go! Each prints its line while it holds the lock (--quiet hides them).\n`,
        );
      for (const s of states) s.peer.send({ type: 'go', t0, endAt, iterations: opts.iterations });
    }

    if (tty && opts.quiet) {
      progressTimer = setInterval(() => {
        const n = backend.scratch.read(CELL.COUNTER);
        const secs = Number(process.hrtime.bigint() - t0) / 1e9;
        progress(
          `${n.toLocaleString('en-US')} acquisitions · ${Math.round(n / secs).toLocaleString('en-US')}/s · ${secs.toFixed(1)} s${opts.forever ? ' · Ctrl-C stops' : ''}`,
        );
      }, 250);
    }
    await until(() => states.every((s) => s.exited));
    clearInterval(progressTimer);
    clearProgress();

    const snapshot = backend.mutex.inspect();
    const counter = backend.scratch.read(CELL.COUNTER);
    const summary = summarize({
      backend: backend.name,
      kind: backend.kind,
      participants: opts.procs,
      slots: backend.slots,
      bound: describeBound(opts),
      startupMs,
      reports: states.flatMap((s) => (s.done === null ? [] : [s.done])),
      counter,
      maxTicket: snapshot.maxTicket,
      stoppedBy: stopReason,
      casualties: casualties.sort((a, b) => a.id - b.id),
      pids: states.map((s) => s.peer.pid),
    });
    if (snapshot.holder !== null) {
      const holder = states.find((s) => s.slot === snapshot.holder);
      summary.problems.push(
        `the lock was still held${holder ? ` by participant ${holder.peer.id}` : ''} (slot ${snapshot.holder}): its holder died inside the critical section; every other participant was stopped and reaped, and the lock's memory is released with them`,
      );
      summary.ok = false;
    }

    if (opts.svg !== null) {
      fs.writeFileSync(
        opts.svg,
        renderSvg(
          summary,
          states.flatMap((s) => (s.done === null ? [] : [s.done])),
        ),
      );
    }
    if (opts.json) io.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    else io.stdout.write(`\n${summaryLines(summary).join('\n')}\n`);
    if (opts.svg !== null && !opts.json) io.stdout.write(`  picture      ${opts.svg}\n`);

    const exitCode = !summary.ok ? 1 : stopReason === 'interrupt' && !opts.forever ? 130 : 0;
    return { summary, exitCode };
  } finally {
    clearInterval(progressTimer);
    clearTimeout(graceTimer);
    killAll();
    backend.cleanup();
    process.off('exit', onExit);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
