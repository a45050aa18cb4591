/**
 * A live migration in the browser: the migration loop on the page's main thread (which may not
 * block: every wait is asynchronous), vCPUs and the destination thread in module Web Workers
 * built from workers/vcpu.worker.ts. The test reads the summary from `window.__dirtyringMigration`.
 */
import { spawnBrowserVcpuWorker } from '../../../src/platform/browser-vcpu-host.js';
import type { LogMode } from '../../../src/userspace/log-collectors.js';
import { runMigration } from '../../../src/userspace/migration/migration.js';

declare global {
  interface Window {
    __dirtyringMigration?: { done: boolean; summary?: unknown; error?: string; isolated: boolean };
  }
}

const params = new URLSearchParams(location.search);
const out = document.getElementById('out')!;
window.__dirtyringMigration = { done: false, isolated: crossOriginIsolated };

runMigration(
  {
    log: (params.get('log') ?? 'ring') as LogMode,
    vcpus: Number(params.get('vcpus') ?? 2),
    memoryBytes: Number(params.get('mib') ?? 16) * 2 ** 20,
    destinationThread: params.get('destinationThread') === '1',
    seed: Number(params.get('seed') ?? 1),
  },
  { spawn: spawnBrowserVcpuWorker, onRound: (r) => (out.textContent += `\nround ${r.round} ${r.kind}: ${r.pagesSent} pages`) },
)
  .then((summary) => {
    out.textContent += `\n${JSON.stringify({ ...summary, roundReports: undefined }, null, 2)}`;
    window.__dirtyringMigration = { done: true, summary, isolated: crossOriginIsolated };
  })
  .catch((e: unknown) => {
    window.__dirtyringMigration = { done: true, error: e instanceof Error ? (e.stack ?? e.message) : String(e), isolated: crossOriginIsolated };
  });
