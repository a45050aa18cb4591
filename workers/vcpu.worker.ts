/**
 * The vCPU worker: one source for Node (worker_threads) and the browser (a module Web Worker).
 * It only wires the control plane; everything it runs lives in src/ (kernel + userspace).
 */
import { exposeToParent } from '../src/platform/expose-worker.js';
import { createVcpuWorkerApi } from '../src/userspace/vcpu-worker-main.js';
// Registers the stress harness's step-hook kind, which a run may ask this thread to install.
import '../src/stress/harvesters/step-perturbation.js';

await exposeToParent(createVcpuWorkerApi(), 'vcpu.worker');
