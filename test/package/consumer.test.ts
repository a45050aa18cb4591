/**
 * The package as a user gets it: `npm pack` (which builds), the tarball installed into a fresh
 * consumer project, the library imported from Node ESM (run, stress, a harvester the consumer
 * wrote in TypeScript, loaded with no build step), the `dirtyring` command from the install,
 * and the contract bundled into a browser app by Vite.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'dirtyring-consumer-'));
const app = join(dir, 'app');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Packing builds with tsc and installing resolves from npm's cache: slow, but bounded. */
const SETUP_MS = 300_000;
const STEP_MS = 180_000;
let tarball = '';

const HARVESTER = `
import { KVM_DIRTY_GFN_F_DIRTY, defineHarvester, type HarvesterKvm } from 'dirtyring';

// The consumer's own reaper: harvest each ring in order, reset, then report.
export default defineHarvester({
  name: 'consumer-reaper',
  log: 'ring',
  create(kvm: HarvesterKvm) {
    const rings = Array.from({ length: kvm.vcpuCount }, (_, v) => kvm.ring(v));
    const fetch: number[] = rings.map((r) => r.startIndex);
    const held: number[] = [];
    return {
      collect(): void {
        held.length = 0;
        rings.forEach((ring, v) => {
          let i = fetch[v]!;
          while (ring.loadFlagsAcquire(i) === KVM_DIRTY_GFN_F_DIRTY) {
            held.push(ring.readSlot(i), ring.readOffset(i));
            ring.storeResetRelease(i);
            i = (i + 1) >>> 0;
          }
          fetch[v] = i;
        });
        if (held.length > 0 && kvm.resetDirtyRings() !== held.length / 2) throw new Error('reset count');
        for (let k = 0; k < held.length; k += 2) kvm.report(held[k]!, held[k + 1]!);
      },
    };
  },
});
`;

const CHECK = `
import { run, stress, migrate, defineHarvester } from 'dirtyring';
const r = await run({ harvester: './my-harvester.ts', iterations: 2, seed: 5 });
const s = await stress({ harvester: new URL('./my-harvester.ts', import.meta.url), mode: 'controlled', runs: 50, seed: 1 });
const f = await stress({ harvester: './my-harvester.ts', mode: 'free', runs: 3, seed: 1 });
console.log(JSON.stringify({ run: r.ok, reported: r.harvester.pagesReported, controlled: s.classes, free: f.classes, migrate: typeof migrate, define: typeof defineHarvester }));
`;

function sh(cmd: string, args: string[], cwd: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', timeout: STEP_MS, stdio: ['ignore', 'pipe', 'pipe'] });
}

beforeAll(() => {
  const out = sh('npm', ['pack', '--pack-destination', dir, '--silent'], ROOT).trim().split('\n');
  tarball = join(dir, out[out.length - 1]!);
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  sh('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], app);
  writeFileSync(join(app, 'my-harvester.ts'), HARVESTER);
  writeFileSync(join(app, 'check.mjs'), CHECK);
}, SETUP_MS);

describe('the packed package', () => {
  it('holds the build, the workers, the examples and the licence, and no tests or benchmarks', () => {
    const files = sh('tar', ['-tzf', tarball], dir).split('\n');
    for (const f of ['package/dist/src/index.js', 'package/dist/src/index.d.ts', 'package/dist/workers/vcpu.worker.js', 'package/dist/workers/controlled.worker.js', 'package/LICENSE', 'package/bin/dirtyring.js', 'package/examples/harvesters/qemu-reaper.ts']) {
      expect(files).toContain(f);
    }
    expect(files.filter((f) => /^package\/(test|bench|src)\//.test(f))).toEqual([]);
  });

  it('imports from Node ESM and runs a consumer-written TypeScript harvester: run and stress (both modes)', () => {
    const out = sh(process.execPath, ['check.mjs'], app).trim().split('\n');
    const r = JSON.parse(out[out.length - 1]!) as { run: boolean; reported: number; controlled: Record<string, number>; free: Record<string, number>; migrate: string; define: string };
    expect(r.run).toBe(true);
    expect(r.reported).toBeGreaterThan(0);
    expect(r.controlled['forbidden']).toBe(0);
    expect(r.controlled['error']).toBe(0);
    expect(r.free['forbidden']).toBe(0);
    expect(r.free['error']).toBe(0);
    expect([r.migrate, r.define]).toEqual(['function', 'function']);
  }, STEP_MS);

  it('the installed `dirtyring` command runs the harvester; a missing one exits 2', () => {
    const bin = join(app, 'node_modules', '.bin', 'dirtyring');
    const ok = spawnSync(bin, ['run', '--harvester', 'my-harvester.ts', '--iterations', '2', '--seed', '3'], { cwd: app, encoding: 'utf8', timeout: STEP_MS });
    expect(ok.status, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toContain('harvester consumer-reaper');
    const bad = spawnSync(bin, ['run', '--harvester', 'nope.ts'], { cwd: app, encoding: 'utf8', timeout: STEP_MS });
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim()).toBe('--harvester nope.ts: ENOENT, no such file');
  }, STEP_MS);

  it('bundles into a browser app with Vite (the browser entry: the contract, no Node modules)', async () => {
    writeFileSync(join(app, 'index.html'), '<!doctype html><script type="module" src="./main.js"></script>');
    writeFileSync(join(app, 'main.js'), "import { defineHarvester, KVM_DIRTY_GFN_F_RESET } from 'dirtyring';\nexport const h = defineHarvester({ name: 'b', log: 'ring', create: () => ({ collect() {} }) });\ndocument.title = h.name + KVM_DIRTY_GFN_F_RESET;\n");
    const { build } = await import('vite');
    await build({ root: app, logLevel: 'silent', configFile: false, build: { outDir: join(dir, 'bundle'), emptyOutDir: true } });
    const assets = join(dir, 'bundle', 'assets');
    const js = readdirSync(assets).filter((f) => f.endsWith('.js')).map((f) => readFileSync(join(assets, f), 'utf8')).join('\n');
    expect(js).toContain('dirtyring.harvester');
    expect(js).not.toMatch(/node:(fs|module|worker_threads)/);
  }, STEP_MS);
});
