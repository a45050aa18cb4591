/**
 * `npm run bench [-- --quick] [-- --only=ID,ID] [-- --update-docs]`
 *
 * Runs every suite in one process, prints the table on stdout (progress on stderr), and writes
 * bench/results/latest.json and the SVG plots of the scaling curves into bench/results/.
 * Every figure is a ratio against a baseline measured in this same run (see lib/report.ts).
 * --update-docs also rewrites the generated figures section of docs/PERFORMANCE.md.
 *
 * A quick (--quick) or partial (--only=…) run must not replace the tracked full-run results: it
 * writes bench/results/latest-partial.json (gitignored) and no SVGs, and --update-docs is refused
 * for it, so the committed figures always come from one full run.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { arch, cpus, loadavg, platform, release, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Suite, SuiteContext } from './lib/context.js';
import { Reporter, renderTable } from './lib/report.js';
import { renderSvg } from './lib/svg.js';
import { now } from './lib/timing.js';
import { renderDocFigures } from './lib/doc.js';
import { diagnosticsSuite } from './suites/diagnostics.js';
import { ringPathSuite } from './suites/ring-path.js';
import { writePathSuite } from './suites/write-path.js';
import { kernelSuite } from './suites/kernel.js';
import { pageCopySuite } from './suites/page-copy.js';
import { stallSuite } from './suites/stall.js';
import { scalingSuite } from './suites/scaling.js';
import { controlledSuite } from './suites/controlled.js';
import { harvesterSdkSuite } from './suites/harvester-sdk.js';
import { controlledCeilingSuite } from './suites/controlled-ceiling.js';
import { freeRunsSuite } from './suites/free-runs.js';
import { mutantCatchSuite } from './suites/mutant-catch.js';
import { memorySuite } from './suites/memory.js';

const SUITES: readonly Suite[] = [diagnosticsSuite, ringPathSuite, writePathSuite, kernelSuite, pageCopySuite, stallSuite, scalingSuite, controlledSuite, harvesterSdkSuite, controlledCeilingSuite, freeRunsSuite, mutantCatchSuite, memorySuite];

/** The repository root: dist/bench/run.js → ../.. ; bench/run.ts (tsx) → .. */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === 'dirtyring') return dir;
    } catch {
      /* not here */
    }
    dir = dirname(dir);
  }
  throw new Error('bench: cannot find the repository root (package.json of dirtyring)');
}

function writeAtomic(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const updateDocs = args.includes('--update-docs');
  const onlyArg = args.find((a) => a.startsWith('--only='));
  const only = onlyArg ? new Set(onlyArg.slice('--only='.length).split(',').filter((id) => id !== '')) : null;
  const unknown = args.filter((a) => a !== '--quick' && a !== '--update-docs' && !a.startsWith('--only='));
  if (unknown.length > 0) {
    process.stderr.write(`bench: unknown argument ${unknown[0]} (use --quick, --only=ID[,ID], --update-docs)\n`);
    return 2;
  }
  const validIds = SUITES.map((s) => s.id);
  if (only) {
    const badIds = [...only].filter((id) => !validIds.includes(id));
    if (badIds.length > 0 || only.size === 0) {
      const what = badIds.length > 0 ? `unknown suite id(s) ${badIds.join(', ')}` : 'empty --only list';
      process.stderr.write(`bench: ${what}; valid ids: ${validIds.join(', ')}\n`);
      return 2;
    }
  }
  const partial = quick || only !== null;
  if (updateDocs && partial) {
    process.stderr.write('bench: --update-docs needs a full run (no --quick, no --only); the doc table must come from one full run\n');
    return 2;
  }
  const root = repoRoot();
  const reporter = new Reporter();
  const ctx: SuiteContext = {
    quick,
    reporter,
    root,
    log: (m) => process.stderr.write(`${m}\n`),
  };
  const t0 = now();
  const startLoad = loadavg();
  const suiteTimes: Record<string, number> = {};
  let failed = false;
  for (const suite of SUITES) {
    if (only && !only.has(suite.id)) continue;
    const ts = now();
    ctx.log(`== ${suite.title}`);
    try {
      await suite.run(ctx);
    } catch (e) {
      failed = true;
      const msg = e instanceof Error ? (e.stack ?? e.message) : String(e);
      ctx.log(`bench: suite ${suite.id} failed: ${msg}`);
      reporter.skip(suite.title, `failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    suiteTimes[suite.id] = Math.round(now() - ts);
    ctx.log(`   (${(suiteTimes[suite.id]! / 1000).toFixed(1)} s)`);
  }
  const durationMs = Math.round(now() - t0);
  const cpu = cpus();
  const doc = {
    schema: 1,
    generatedAt: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    suites: SUITES.filter((suite) => !only || only.has(suite.id)).map((suite) => suite.id),
    durationMs,
    suiteTimesMs: suiteTimes,
    machine: {
      platform: platform(),
      arch: arch(),
      kernel: release(),
      cpuModel: cpu[0]?.model ?? 'unknown',
      cpus: cpu.length,
      totalMemoryBytes: totalmem(),
      loadAverageAtStart: startLoad.map((x) => Math.round(x * 100) / 100),
    },
    node: process.version,
    v8: process.versions.v8,
    ratioConvention: 'ratio = emulator speed / baseline speed, paired per repeat (rates: emulator/baseline; times: baseline/emulator)',
    figures: reporter.figures,
    curves: reporter.curves,
    skipped: reporter.skipped,
  };
  const resultsDir = join(root, 'bench', 'results');
  const jsonName = partial ? 'latest-partial.json' : 'latest.json';
  writeAtomic(join(resultsDir, jsonName), `${JSON.stringify(doc, null, 2)}\n`);
  if (!partial) for (const c of reporter.curves) writeAtomic(join(resultsDir, `${c.id}.svg`), renderSvg(c));
  if (updateDocs) {
    const path = join(root, 'docs', 'PERFORMANCE.md');
    writeAtomic(path, renderDocFigures(readFileSync(path, 'utf8'), doc));
  }
  process.stdout.write(`dirtyring bench (${doc.mode}), ${doc.machine.cpus} × ${doc.machine.cpuModel}, Node ${doc.node}, ${(durationMs / 1000).toFixed(1)} s\n`);
  process.stdout.write(`${renderTable(reporter.figures)}\n`);
  for (const s of reporter.skipped) process.stdout.write(`skipped: ${s.section}: ${s.reason}\n`);
  const met = reporter.figures.filter((f) => f.target?.met === true).length;
  const targets = reporter.figures.filter((f) => f.target !== null).length;
  const svgs = partial ? 'no SVG plots (partial run)' : `${reporter.curves.length} SVG plot(s)`;
  process.stdout.write(`targets met: ${met}/${targets}; wrote bench/results/${jsonName} and ${svgs}\n`);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
