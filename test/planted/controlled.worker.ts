/** The controlled participant worker with a planted bug (from-env.ts): for the coverage tests only. */
import './from-env.js';
import '../../workers/controlled.worker.js';
