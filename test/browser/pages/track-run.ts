/**
 * A run with page write-tracking in the browser: the notifiers (shadow page table, notification
 * rings, the per-iteration probe) are instantiated inside module Web Workers from the specs the
 * page posts, and userspace — registering, unregistering with its grace period, draining —
 * runs on the page's main thread, which may not block.
 */
import { runDirtyLog } from '../../../src/harness/run.js';
import { spawnBrowserVcpuWorker } from '../../../src/platform/browser-vcpu-host.js';

declare global {
  interface Window {
    __dirtyringTrack?: { done: boolean; summary?: unknown; error?: string; isolated: boolean };
  }
}

const params = new URLSearchParams(location.search);
const out = document.getElementById('out')!;
window.__dirtyringTrack = { done: false, isolated: crossOriginIsolated };

runDirtyLog(
  {
    vcpus: Number(params.get('vcpus') ?? 2),
    trackPages: Number(params.get('trackPages') ?? 32),
    iterations: Number(params.get('iterations') ?? 4),
    memoryBytes: 4 * 1024 * 1024,
    seed: Number(params.get('seed') ?? 1),
  },
  { spawn: spawnBrowserVcpuWorker, onIteration: (r) => (out.textContent += `\niteration ${r.iteration}: ok`) },
)
  .then((summary) => {
    out.textContent += `\n${JSON.stringify(summary, null, 2)}`;
    window.__dirtyringTrack = { done: true, summary, isolated: crossOriginIsolated };
  })
  .catch((e: unknown) => {
    window.__dirtyringTrack = { done: true, error: e instanceof Error ? (e.stack ?? e.message) : String(e), isolated: crossOriginIsolated };
  });
