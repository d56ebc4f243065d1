// Worker-thread participant: opens the lock through the backend module named in workerData,
// runs the scripted workload and posts the report.
import { parentPort, workerData } from 'node:worker_threads';
import { participantTrace, runWorkload } from './participant.js';
import type { ParticipantConfig } from './runners.js';
import { SabScratch } from './scratch.js';

const config = workerData as ParticipantConfig & { scratch: SharedArrayBuffer };
const scratch = new SabScratch(config.scratch);
const trace = participantTrace(config.id, config.workload, scratch);
const mod = (await import(config.module)) as Record<string, (...args: unknown[]) => unknown>;
const mutex = (await mod[config.exportName]!(...config.args, {
  ...config.options,
  ...trace.options,
})) as import('@bakery/core').Mutex;
const report = await runWorkload(config.id, mutex, scratch, config.workload, trace.last);
// The exit workload ends without close() on purpose: its exit hooks must free the slot.
if (config.workload.kind !== 'exit') {
  try {
    mutex.close();
  } catch (err) {
    report.errors.push(`close: ${(err as Error).message}`);
  }
}
parentPort!.postMessage(report);
