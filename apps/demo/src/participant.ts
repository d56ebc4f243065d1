// One participant: a forked child (mmap, shm) or a worker thread (sab). It opens the lock,
// reports ready, waits for the parent's go, then loops lock → print → read/yield/write → unlock
// until the deadline, its iteration count, or a stop message, and sends its measurements once.
import * as fs from 'node:fs';
import { isMainThread, parentPort, threadId, workerData } from 'node:worker_threads';
import type { Lease, Mutex } from '@bakery/core';
import {
  CELL,
  type DoneMessage,
  type FromParticipant,
  type GoMessage,
  type ParticipantConfig,
  SAMPLE_CAP,
  type ToParticipant,
} from './protocol.js';
import { FileScratch, MemoryScratch, type Scratch } from './scratch.js';
import { loadShm } from './shm.js';

interface Channel {
  send(msg: FromParticipant, done?: () => void): void;
  onMessage(fn: (msg: ToParticipant) => void): void;
  /** Let this participant end once the last message is out. */
  close(): void;
}

function processChannel(): Channel {
  return {
    send: (msg, done) => process.send!(msg, undefined, {}, () => done?.()),
    onMessage: (fn) => process.on('message', (m) => fn(m as ToParticipant)),
    close: () => process.disconnect(),
  };
}

function threadChannel(): Channel {
  const port = parentPort!;
  return {
    send: (msg, done) => {
      port.postMessage(msg);
      done?.();
    },
    onMessage: (fn) => port.on('message', fn),
    close: () => port.close(),
  };
}

/** write(2) all of `text` to fd 1, riding out EAGAIN if a shared stdout is non-blocking. */
function writeOut(text: string): void {
  const buf = Buffer.from(text);
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(1, buf, off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
    }
  }
}

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

async function open(config: ParticipantConfig): Promise<{ mutex: Mutex; scratch: Scratch }> {
  if (config.backend === 'sab') {
    const { openMutex } = await import('@bakery/sab');
    const data = workerData as {
      handle: import('@bakery/sab').SabHandle;
      scratch: SharedArrayBuffer;
    };
    return {
      mutex: openMutex(data.handle, { robust: 'auto' }),
      scratch: new MemoryScratch(data.scratch),
    };
  }
  if (config.backend === 'mmap') {
    const { openMutex, loadNative } = await import('@bakery/mmap');
    const mutex = openMutex({ robust: 'auto' });
    const native = loadNative();
    const fd = config.scratchFd!;
    native.setCloexec(fd, true);
    const buffer = native.map(fd, native.size(fd));
    native.close(fd);
    return { mutex, scratch: new MemoryScratch(buffer) };
  }
  const shm = await loadShm();
  const { name, slots, dir } = config.shm!;
  return {
    mutex: shm.openMutex(name, { slots, create: false, dir, robust: 'auto' }),
    scratch: new FileScratch(config.scratchPath!),
  };
}

async function main(): Promise<void> {
  const thread = !isMainThread;
  const config: ParticipantConfig = thread
    ? (workerData as { config: ParticipantConfig }).config
    : JSON.parse(process.env.BAKERY_DEMO_CONFIG ?? 'null');
  const channel = thread ? threadChannel() : processChannel();
  // Ctrl-C reaches the whole process group; the parent decides how everyone stops.
  if (!thread) process.on('SIGINT', () => {});

  const abort = new AbortController();
  let stopped = false;
  let go: GoMessage | null = null;
  let onGo: (() => void) | null = null;
  const stop = () => {
    stopped = true;
    abort.abort();
    onGo?.();
  };
  channel.onMessage((msg) => {
    if (msg.type === 'go') {
      go = msg;
      onGo?.();
    } else if (msg.type === 'stop') stop();
  });
  // The parent went away (killed): stop, do not linger as an orphan.
  if (!thread) process.on('disconnect', stop);

  const { mutex, scratch } = await open(config);
  channel.send({ type: 'ready', id: config.id, pid: process.pid, slot: mutex.slot });
  if (go === null && !stopped) await new Promise<void>((resolve) => (onGo = resolve));

  const line = ` ------ ${thread ? `${process.pid}:${threadId}` : process.pid} ------ \n`;
  const samples = new Float64Array(SAMPLE_CAP * 3);
  let kept = 0;
  let acquisitions = 0;
  let violations = 0;
  let error: string | null = null;
  const t0 = (go as GoMessage | null)?.t0 ?? process.hrtime.bigint();
  const endAt = (go as GoMessage | null)?.endAt ?? null;
  const iterations = (go as GoMessage | null)?.iterations ?? null;
  const crashAfter = config.crash ? 5 : -1;
  // mmap and sab block in lockSync, like the recipe: the async lock() costs each hand-off an
  // extra thread hop (a native waiter thread wakes the event loop), which with 64 processes on
  // 2 cores cuts throughput by more than half. A stop message is then read at the yield inside
  // the next turn, at most one round later. shm has no cross-process wait, only polling: there
  // lock() with an AbortSignal lets a stop in at once, and its timer-paced polls burn less CPU.
  const blocking = config.backend !== 'shm';
  // At the deadline a polling waiter withdraws instead of waiting out a whole round. Nobody
  // takes a ticket after the deadline, so these withdrawals cannot raise the ticket bound.
  const deadline =
    endAt !== null && !blocking
      ? setTimeout(() => abort.abort(), Math.max(0, Number(endAt - process.hrtime.bigint()) / 1e6))
      : undefined;

  try {
    while (!stopped) {
      if (iterations !== null && acquisitions >= iterations) break;
      const asked = process.hrtime.bigint();
      if (endAt !== null && asked >= endAt) break;
      let lease: Lease;
      if (blocking) {
        lease = mutex.lockSync();
      } else {
        try {
          lease = await mutex.lock({ signal: abort.signal });
        } catch (err) {
          if (abort.signal.aborted) break;
          throw err;
        }
      }
      const entered = process.hrtime.bigint();
      if (scratch.add(CELL.OCCUPANCY, 1) !== 0) violations++;
      if (acquisitions === crashAfter) {
        // Die holding the lock, as a crashed process would: no release, no goodbye.
        if (thread) process.exit(70);
        process.kill(process.pid, 'SIGKILL');
      }
      if (!config.quiet) writeOut(line);
      const v = scratch.read(CELL.COUNTER);
      await yieldToLoop();
      scratch.write(CELL.COUNTER, v + 1);
      scratch.add(CELL.OCCUPANCY, -1);
      const left = process.hrtime.bigint();
      lease.release();
      acquisitions++;
      if (kept < SAMPLE_CAP) {
        const k = kept++ * 3;
        samples[k] = Number(entered - t0) / 1e3;
        samples[k + 1] = Number(left - entered) / 1e3;
        samples[k + 2] = Number(entered - asked) / 1e3;
      }
    }
  } catch (err) {
    error = (err as Error).stack ?? String(err);
  }
  clearTimeout(deadline);
  const done: DoneMessage = {
    type: 'done',
    id: config.id,
    acquisitions,
    violations,
    samples: samples.slice(0, kept * 3),
    finishedUs: Number(process.hrtime.bigint() - t0) / 1e3,
    stopped,
    error,
  };
  try {
    mutex.close();
  } catch (err) {
    done.error ??= `close: ${(err as Error).message}`;
  }
  scratch.close();
  channel.send(done, () => channel.close());
}

await main();
