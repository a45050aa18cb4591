/**
 * Running stress campaigns with a planted bug (test/planted/): the planted modules transpiled
 * next to the compiled project (dist/test/planted/, so that they load the same compiled kernel
 * the workers run), and a platform whose workers plant the bug before running anything.
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import ts from 'typescript';
import { controlledWorkerHandle } from '../../src/platform/node-controlled-host.js';
import { watchNodeWorker } from '../../src/platform/node-worker.js';
import type { StressPlatform } from '../../src/stress/campaign.js';
import type { VcpuWorkerApi } from '../../src/userspace/vcpu-worker-api.js';

const SOURCE = new URL('../planted/', import.meta.url);
const TARGET = new URL('../../dist/test/planted/', import.meta.url);

/**
 * Transpile test/planted/*.ts into dist/test/planted/ (type-checked by `npm run typecheck`;
 * the global setup has compiled the rest of the project into dist/ already).
 */
export function buildPlanted(): void {
  mkdirSync(TARGET, { recursive: true });
  for (const file of readdirSync(SOURCE).filter((f) => f.endsWith('.ts'))) {
    const source = readFileSync(new URL(file, SOURCE), 'utf8');
    const out = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
      fileName: file,
    });
    writeFileSync(new URL(file.replace(/\.ts$/, '.js'), TARGET), out.outputText);
  }
}

/** Node workers that plant the bug of edge state `id` before they run anything. */
export function plantedPlatform(id: string): StressPlatform {
  const env = { ...process.env, DIRTYRING_PLANTED_BUG: id };
  const url = (name: string): URL => new URL(name, TARGET);
  return {
    spawnControlled: (i) => controlledWorkerHandle(new Worker(url('controlled.worker.js'), { name: `planted-controlled${i}`, env }), i),
    spawnVcpu: (i) => watchNodeWorker<VcpuWorkerApi>(new Worker(url('vcpu.worker.js'), { name: `planted-vcpu${i}`, env }), `planted vCPU ${i} worker`),
  };
}

export const PLANTED_DIR = fileURLToPath(TARGET);
