/**
 * The library entry (`import ... from 'dirtyring'`): the harvester contract and the commands
 * as functions — run, stress, migrate — on Node worker threads.
 */
// The contract and the errors, as in the browser entry.
export * from './index.browser.js';
export { HarvesterLoadError, loadHarvester } from './harvester/load-harvester.js';
export { HarvesterRunError } from './harvester/user-collector.js';
export { type HarvesterReport } from './harvester/user-collector.js';
export { type HarvesterInput } from './api/harvester-input.js';
export { type MigrateOptions, type MigrateResult, type RunOptions, type RunResult, migrate, run } from './api/run-api.js';
export { type StressFailure, type StressOptions, type StressResult, stress } from './api/stress-api.js';
export { HarvesterCheckFailed, checkHarvester } from './api/check-harvester.js';
export type { RunSummary, IterationReport } from './harness/run.js';
export type { OutcomeKind, OutcomeRow, OutcomeClass } from './stress/outcome.js';
