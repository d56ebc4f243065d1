export { type FixtureParts, processFixture, threadFixture } from './fixtures.js';
export { fifoTrace, runWorkload } from './participant.js';
export { type ParticipantConfig, type ProcessLaunch, runProcesses, runThreads } from './runners.js';
export { FileScratch, SabScratch, type Scratch } from './scratch.js';
export { type DescribeFn, findOvertaking, type SuiteOptions, suite, type TestFn } from './suite.js';
export {
  type ConformanceFactory,
  type Fixture,
  type Report,
  SCRATCH,
  type Workload,
} from './types.js';
