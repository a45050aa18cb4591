/**
 * Campaigns across machines: n shards run as separate processes (each taking its shard from a
 * job runner's environment with --shard auto), merged by `dirtyring report merge`, give exactly
 * the runs and outcomes of the campaign run unsharded.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { badInputTests, lastJson, runCli } from '../helpers/cli.js';
import { timeoutAbove } from '../helpers/watchdog.js';

const dir = mkdtempSync(join(tmpdir(), 'dirtyring-merge-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CLI_MS = 120_000;

interface Rec {
  index: number;
  seed: number;
  outcome: string;
  outcomes: string[];
  config: string;
  traceHash: string | null;
}
interface Report {
  ok: boolean;
  campaigns: { runs: number; table: unknown; classes: unknown; coverage: unknown; caughtAtRun: number | null; records: Rec[] }[];
  mutants: { mutant: string; caught: boolean; caughtAtRun: number | null }[];
}

const readReport = (f: string): Report => JSON.parse(readFileSync(f, 'utf8')) as Report;
const runsOf = (r: Report): Omit<Rec, never>[] =>
  r.campaigns.flatMap((c) => c.records.map(({ index, seed, outcome, outcomes, config, traceHash }) => ({ index, seed, outcome, outcomes, config, traceHash })));
const testcases = (xml: string): string[] => [...xml.matchAll(/<testcase [^>]*name="([^"]*)"/g)].map((m) => m[1]!).sort();

/** Each shard as its own process, its index from a job runner's convention. */
const SHARD_ENVS: Record<string, string>[] = [
  { JOB_COMPLETION_INDEX: '0', DIRTYRING_SHARD_COUNT: '3' },
  { CI_NODE_INDEX: '2', CI_NODE_TOTAL: '3' },
  { DIRTYRING_SHARD: '3/3' },
];

describe('dirtyring report merge', () => {
  it('three shards merged are the unsharded campaign: the same runs, outcomes, table, coverage and JUnit cases', () => {
    const campaign = ['stress', '--mode', 'controlled', '--runs', '45', '--seed', '21'];
    for (const [i, env] of SHARD_ENVS.entries()) {
      const r = runCli([...campaign, '--shard', 'auto', '--report', join(dir, `s${i}.json`), '--junit', join(dir, `s${i}.xml`)], { timeoutMs: CLI_MS, env });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toContain(`--shard auto: ${i + 1}/3`);
    }
    const whole = runCli([...campaign, '--report', join(dir, 'whole.json'), '--junit', join(dir, 'whole.xml')], { timeoutMs: CLI_MS });
    expect(whole.status, whole.stderr).toBe(0);
    const shards = [0, 1, 2].flatMap((i) => [join(dir, `s${i}.json`), join(dir, `s${i}.xml`)]);
    const m = runCli(['report', 'merge', ...shards, '--report', join(dir, 'merged.json'), '--junit', join(dir, 'merged.xml'), '--json'], { timeoutMs: CLI_MS });
    expect(m.status, m.stderr).toBe(0);
    expect(m.stderr).toContain('OK: 45 runs merged from 6 file(s), 0 forbidden, 0 errors');
    expect(lastJson(m.stdout)).toMatchObject({ ok: true, runs: 45, problems: [] });
    const a = readReport(join(dir, 'whole.json'));
    const b = readReport(join(dir, 'merged.json'));
    expect(runsOf(b)).toEqual(runsOf(a));
    expect(b.campaigns[0]!.table).toEqual(a.campaigns[0]!.table);
    expect(b.campaigns[0]!.classes).toEqual(a.campaigns[0]!.classes);
    expect(b.campaigns[0]!.coverage).toEqual(a.campaigns[0]!.coverage);
    const wholeXml = readFileSync(join(dir, 'whole.xml'), 'utf8');
    const mergedXml = readFileSync(join(dir, 'merged.xml'), 'utf8');
    expect(testcases(mergedXml)).toEqual(testcases(wholeXml));
    expect(mergedXml).toContain('<testsuites name="dirtyring stress" tests="45" failures="0" errors="0">');
  }, timeoutAbove(CLI_MS * 5));

  it('a sharded mutant campaign merged stops where the unsharded one did', () => {
    const campaign = ['stress', '--mode', 'controlled', '--mutant', 'no-tlb-flush', '--seed', '8'];
    for (const i of [1, 2]) {
      const r = runCli([...campaign, '--shard', `${i}/2`, '--report', join(dir, `mut${i}.json`)], { timeoutMs: CLI_MS });
      expect([0, 1], r.stderr).toContain(r.status);
    }
    const whole = runCli([...campaign, '--report', join(dir, 'mut.json')], { timeoutMs: CLI_MS });
    expect(whole.status, whole.stderr).toBe(0);
    const m = runCli(['report', 'merge', join(dir, 'mut1.json'), join(dir, 'mut2.json'), '--report', join(dir, 'mut-merged.json')], { timeoutMs: CLI_MS });
    expect(m.status, m.stdout).toBe(0);
    const a = readReport(join(dir, 'mut.json'));
    const b = readReport(join(dir, 'mut-merged.json'));
    expect(runsOf(b)).toEqual(runsOf(a));
    expect(b.mutants.map((v) => [v.mutant, v.caught, v.caughtAtRun])).toEqual(a.mutants.map((v) => [v.mutant, v.caught, v.caughtAtRun]));
  }, timeoutAbove(CLI_MS * 4));

  it('JUnit files alone merge into one document with every case', () => {
    const xmls = [0, 1, 2].map((i) => join(dir, `s${i}.xml`));
    const m = runCli(['report', 'merge', ...xmls, '--junit', join(dir, 'only.xml')], { timeoutMs: CLI_MS });
    expect(m.status, m.stderr).toBe(0);
    expect(m.stdout).toContain('OK: 3 JUnit file(s) merged, no failure or error');
    const merged = readFileSync(join(dir, 'only.xml'), 'utf8');
    expect(testcases(merged)).toEqual(testcases(readFileSync(join(dir, 'whole.xml'), 'utf8')));
    expect(merged.match(/<testsuite /g)).toHaveLength(1);
  }, timeoutAbove(CLI_MS));

  it('a missing shard fails the merge, naming it', () => {
    const m = runCli(['report', 'merge', join(dir, 's0.json'), join(dir, 's2.json')], { timeoutMs: CLI_MS });
    expect(m.status).toBe(1);
    expect(m.stdout).toContain('INCOMPLETE: controlled random seed 21: shard(s) 2/3 missing');
    expect(m.stdout).toContain('FAILED: the merge is not the whole campaign');
  }, timeoutAbove(CLI_MS));
});

describe('dirtyring report: bad input exits 2 with the parameter and the errno', () => {
  badInputTests(
    'report',
    [
      [['split'], 'report split: EINVAL, the only subcommand is merge'],
      [['merge'], 'FILE (none): EINVAL, give the shard reports to merge'],
      [['merge', join(dir, 'nothing.json')], `FILE ${join(dir, 'nothing.json')}: ENOENT`],
      [['merge', 'package.json'], 'FILE package.json: EINVAL, not a stress report'],
      [['merge', 'README.md'], 'FILE README.md: EINVAL, neither a JSON report nor a JUnit file'],
      [['merge', 'package.json', '--junit', '/proc/version'], '--junit /proc/version: EACCES'],
    ],
    CLI_MS,
  );
});
