/**
 * A short ring run in the browser: userspace on the page's main thread (which may not block),
 * vCPUs in module Web Workers built from workers/vcpu.worker.ts. The test reads the summary
 * from `window.__dirtyring`.
 */
import { runRing } from '../../../src/harness/run.js';
import { spawnBrowserVcpuWorker } from '../../../src/platform/browser-vcpu-host.js';

declare global {
  interface Window {
    __dirtyring?: { done: boolean; summary?: unknown; error?: string; isolated: boolean };
  }
}

const params = new URLSearchParams(location.search);
const out = document.getElementById('out')!;
window.__dirtyring = { done: false, isolated: crossOriginIsolated };

runRing(
  {
    vcpus: Number(params.get('vcpus') ?? 2),
    ringEntries: Number(params.get('ringEntries') ?? 256),
    iterations: Number(params.get('iterations') ?? 6),
    memoryBytes: 8 * 1024 * 1024,
    seed: Number(params.get('seed') ?? 1),
  },
  { spawn: spawnBrowserVcpuWorker, onIteration: (r) => (out.textContent += `\niteration ${r.iteration}: ok`) },
)
  .then((summary) => {
    out.textContent += `\n${JSON.stringify(summary, null, 2)}`;
    window.__dirtyring = { done: true, summary, isolated: crossOriginIsolated };
  })
  .catch((e: unknown) => {
    window.__dirtyring = { done: true, error: e instanceof Error ? (e.stack ?? e.message) : String(e), isolated: crossOriginIsolated };
  });
