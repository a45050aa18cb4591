/**
 * A run with page write-tracking: the notifiers (shadow page table, notification rings, the
 * per-iteration probe) are instantiated inside the vCPU workers from the specs the page posts,
 * and userspace (registering, unregistering with its grace period, draining) runs on the
 * page's main thread.
 */
import { runDirtyLog } from '../../../src/harness/run.js';
import { type TestPage, harnessHooks, numberParam } from './test-page.js';

export const page: TestPage = {
  title: 'page write-tracking in the browser',
  run: (params, progress) => runDirtyLog(
    {
      vcpus: numberParam(params, 'vcpus', 2),
      trackPages: numberParam(params, 'trackPages', 32),
      iterations: numberParam(params, 'iterations', 4),
      memoryBytes: 4 * 1024 * 1024,
      seed: numberParam(params, 'seed', 1),
    },
    harnessHooks(progress),
  ),
};
