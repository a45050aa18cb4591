/** A live migration, with the destination thread in a module Web Worker too. */
import { spawnBrowserVcpuWorker } from '../../../src/platform/browser-vcpu-host.js';
import type { LogMode } from '../../../src/userspace/log-collectors.js';
import { runMigration } from '../../../src/userspace/migration/migration.js';
import { type TestPage, numberParam } from './test-page.js';

export const page: TestPage = {
  title: 'live migration in the browser',
  async run(params, progress) {
    const summary = await runMigration(
      {
        log: (params.get('log') ?? 'ring') as LogMode,
        vcpus: numberParam(params, 'vcpus', 2),
        memoryBytes: numberParam(params, 'mib', 16) * 2 ** 20,
        destinationThread: params.get('destinationThread') === '1',
        seed: numberParam(params, 'seed', 1),
      },
      { spawn: spawnBrowserVcpuWorker, onRound: (r) => progress(`round ${r.round} ${r.kind}: ${r.pagesSent} pages`) },
    );
    // The test checks the totals; one report per round would bury a failure message.
    return { ...summary, roundReports: undefined };
  },
};
