export { type AsyncSuiteOptions, asyncSuite } from './async-suite.js';
export {
  FAULT_STALE_MS,
  type FaultSuiteOptions,
  faultKills,
  faultSuite,
  STALL_BOUND_MS,
} from './faults.js';
export {
  type AsyncFixtureParts,
  asyncProcessFixture,
  type FixtureParts,
  processFixture,
  threadFixture,
} from './fixtures.js';
export { fifoTrace, participantTrace, runWorkload } from './participant.js';
export { type ReadableCopy, readableCopy } from './readable.js';
export {
  type ParticipantConfig,
  type ProcessLaunch,
  runProcesses,
  runThreads,
  startProcesses,
  startThreads,
} from './runners.js';
export { FileScratch, SabScratch, type Scratch } from './scratch.js';
export { type DescribeFn, findOvertaking, type SuiteOptions, suite, type TestFn } from './suite.js';
export {
  type AsyncConformanceFactory,
  type AsyncFixture,
  type Capabilities,
  type ConformanceFactory,
  type Crew,
  type Exit,
  type Fixture,
  PHASE,
  type Report,
  SCRATCH,
  type Workload,
} from './types.js';
export { BAD_SLOT_COUNTS, codeOf, codeOfAsync } from './util.js';
