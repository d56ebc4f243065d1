export type { Backend, Peer } from './backends.js';
export { openBackend } from './backends.js';
export {
  type BackendName,
  type DemoOptions,
  parseOptions,
  USAGE,
  UsageError,
} from './options.js';
export { type DemoIo, type DemoResult, runDemo } from './run.js';
export {
  type Casualty,
  jain,
  type RunRecord,
  type Section,
  type Summary,
  sections,
  summarize,
  summaryLines,
} from './stats.js';
export { renderSvg } from './svg.js';
