/** A short ring run: userspace on the page's main thread, small rings so that stalls happen. */
import { runRing } from '../../../src/harness/run.js';
import { type TestPage, harnessHooks, numberParam } from './test-page.js';

export const page: TestPage = {
  title: 'ring run in the browser',
  run: (params, progress) => runRing(
    {
      vcpus: numberParam(params, 'vcpus', 2),
      ringEntries: numberParam(params, 'ringEntries', 256),
      iterations: numberParam(params, 'iterations', 6),
      memoryBytes: 8 * 1024 * 1024,
      seed: numberParam(params, 'seed', 1),
    },
    harnessHooks(progress),
  ),
};
