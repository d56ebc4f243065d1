export { FileScratch, SabScratch, type Scratch } from './scratch.js';
export { fifoTrace, runWorkload } from './participant.js';
export { type ParticipantConfig, runProcesses, runThreads } from './runners.js';
export { type DescribeFn, type SuiteOptions, type TestFn, findOvertaking, suite } from './suite.js';
export { type ConformanceFactory, type Fixture, type Report, SCRATCH, type Workload } from './types.js';
export { type FixtureParts, processFixture, threadFixture } from './fixtures.js';
