// Child-process participant: reads its config from BAKERY_CONFORMANCE_CONFIG, opens the lock
// through the backend module named there, runs the workload and sends the report over IPC
// (forked) or writes it to `reportFile` (spawned without IPC).
import * as fs from 'node:fs';
import { participantTrace, runWorkload } from './participant.js';
import type { ParticipantConfig } from './runners.js';
import { FileScratch } from './scratch.js';

const config = JSON.parse(process.env.BAKERY_CONFORMANCE_CONFIG ?? '{}') as ParticipantConfig & {
  scratch: string;
  reportFile?: string;
};
const scratch = new FileScratch(config.scratch);
const trace = participantTrace(config.id, config.workload, scratch);
const mod = (await import(config.module)) as Record<string, (...args: unknown[]) => unknown>;
const mutex = (await mod[config.exportName]!(...config.args, {
  ...config.options,
  ...trace.options,
})) as import('@bakery/core').AsyncMutex;
const report = await runWorkload(config.id, mutex, scratch, config.workload, trace.last);
// The exit workload ends without close() on purpose: its exit hooks must free the slot.
const natural = config.workload.kind === 'exit';
if (!natural) {
  try {
    await mutex.close();
  } catch (err) {
    report.errors.push(`close: ${(err as Error).message}`);
  }
}
scratch.close();
const code = report.errors.length === 0 ? 0 : 1;
if (config.reportFile !== undefined) {
  fs.writeFileSync(config.reportFile, JSON.stringify(report));
  if (natural) process.exitCode = code;
  else process.exit(code);
} else if (natural) {
  process.exitCode = code;
  process.send!(report, () => process.disconnect());
} else {
  process.send!(report, () => process.exit(code));
}
