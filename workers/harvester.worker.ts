/**
 * A thread of a user's harvester that runs on threads of its own (src/harvester/thread-runner.ts).
 * Like the other worker entries it only wires the control plane.
 */
import { exposeToParent } from '../src/platform/expose-worker.js';
import { runHarvesterThread } from '../src/harvester/thread-runner.js';
import type { HarvesterThreadApi } from '../src/harvester/thread-layout.js';

const api: HarvesterThreadApi = { run: runHarvesterThread };
await exposeToParent(api, 'harvester.worker');
