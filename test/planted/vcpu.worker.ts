/** The vCPU worker with a planted bug (from-env.ts): for the coverage tests only. */
import './from-env.js';
import '../../workers/vcpu.worker.js';
