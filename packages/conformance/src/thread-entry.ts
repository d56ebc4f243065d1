// Worker-thread participant: opens the lock through the backend module named in workerData,
// runs the scripted workload and posts the report.
import { parentPort, workerData } from 'node:worker_threads';
import { fifoTrace, runWorkload } from './participant.js';
import type { ParticipantConfig } from './runners.js';
import { SabScratch } from './scratch.js';

const config = workerData as ParticipantConfig & { scratch: SharedArrayBuffer };
const mod = (await import(config.module)) as Record<string, (...args: unknown[]) => unknown>;
const trace = fifoTrace();
const mutex = (await mod[config.exportName]!(...config.args, {
  ...config.options,
  ...trace.options,
})) as import('@bakery/core').Mutex;
const report = await runWorkload(
  config.id,
  mutex,
  new SabScratch(config.scratch),
  config.workload,
  trace.last,
);
try {
  mutex.close();
} catch (err) {
  report.errors.push(`close: ${(err as Error).message}`);
}
parentPort!.postMessage(report);
