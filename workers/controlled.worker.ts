/**
 * A controlled participant worker of the stress harness: a vCPU or userspace under the
 * controlled scheduler. Like workers/vcpu.worker.ts it only wires the control plane.
 */
import { exposeToParent } from '../src/platform/expose-worker.js';
import { createControlledWorkerApi } from '../src/stress/controlled/participant-main.js';

await exposeToParent(createControlledWorkerApi(), 'controlled.worker');
