/**
 * `dirtyring replay` and `dirtyring conformance`, run as a user runs them: `node bin/dirtyring.js`
 * in a child process, with a timeout, on scenarios written by hand into a temporary directory.
 */
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runScenarioOnEmulator } from '../../src/fidelity/emulator-engine.js';
import { parseScenario, serializeResults } from '../../src/fidelity/scenario.js';
import { kvmHost, scenarioFiles } from '../../src/fidelity/suite.js';
import { type CliResult, ROOT, runCli } from '../helpers/cli.js';
import { timeoutAbove } from '../helpers/watchdog.js';

const CLI_TIMEOUT_MS = 120_000;
const cli = (...args: string[]): CliResult => runCli(args, { timeoutMs: CLI_TIMEOUT_MS });
/** The Vitest timeout of a test that spawns the CLI once, and twice. */
const ONE_RUN_MS = timeoutAbove(CLI_TIMEOUT_MS);
const TWO_RUNS_MS = timeoutAbove(CLI_TIMEOUT_MS, CLI_TIMEOUT_MS);

const tmp = mkdtempSync(join(tmpdir(), 'dirtyring-fidelity-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function writeJson(name: string, value: unknown): string {
  const p = join(tmp, name);
  writeFileSync(p, `${JSON.stringify(value, null, 2)}\n`);
  return p;
}

/** Written by hand for this test: not in the suite. Two vCPUs, a partial reset, a soft-full exit. */
const HAND = {
  name: 'hand-written: partial reset across two rings, then soft-full',
  path: 'emulated',
  vm: { ring: { bytes: 4096, acqRel: true } },
  memslots: [{ slot: 4, asId: 0, gpa: 6442450944, pages: 300, logDirty: true }],
  vcpus: 2,
  steps: [
    { op: 'write', vcpu: 1, slot: 4, pages: [7, 7, 2], storesPerPage: 2 },
    { op: 'run', vcpu: 1 },
    { op: 'harvest', vcpu: 1, max: 4 },
    { op: 'reset' },
    { op: 'readEntry', vcpu: 1, index: 4 },
    { op: 'write', vcpu: 0, slot: 4, pages: { from: 100, count: 195 }, exitEach: true },
    { op: 'run', vcpu: 0 },
    { op: 'readEntry', vcpu: 0, index: 191 },
    { op: 'run', vcpu: 0 },
    { op: 'harvest', vcpu: 0, max: 10 },
    { op: 'reset' },
    { op: 'run', vcpu: 0 },
    { op: 'harvest', vcpu: 1 },
    { op: 'reset' },
  ],
};

describe('dirtyring replay', () => {
  const file = writeJson('hand.json', HAND);

  it('prints every step\'s result from the emulator', () => {
    const r = cli('replay', file);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('path emulated, engine emulator');
    expect(r.stdout).toMatch(/ 2 {2}harvest vcpu 1 max 4 +entries \(4\): 4:7 4:7 4:7 4:7\n/);
    expect(r.stdout).toMatch(/ 3 {2}reset +count 4\n/);
    expect(r.stdout).toMatch(/ 6 {2}run vcpu 0 +exit dirty_ring_full\n/);
    expect(r.stdout).toMatch(/11 {2}run vcpu 0 +exit hlt\n/);
  }, ONE_RUN_MS);

  it('--json gives the emulator engine\'s results', () => {
    const r = cli('replay', file, '--json');
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { engine: string; results: unknown };
    expect(out.engine).toBe('emulator');
    expect(serializeResults(out.results as never)).toBe(serializeResults(runScenarioOnEmulator(parseScenario(HAND))));
  }, ONE_RUN_MS);

  const host = kvmHost();
  if (!host.available) console.warn(`[fidelity] replay --compare against the kernel SKIPPED: ${host.reason ?? ''}`);

  it.runIf(host.available)('--compare: the kernel and the emulator agree on the hand-written scenario (exit 0)', () => {
    const r = cli('replay', file, '--compare');
    expect(r.stdout).toContain('emulator vs kernel: match (14 steps agree)');
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const j = cli('replay', file, '--compare', '--json');
    const out = JSON.parse(j.stdout) as { match: boolean; kernel: string; differences: string[]; emulator: unknown[]; kvm: unknown[] };
    expect(out).toMatchObject({ match: true, kernel: 'match', differences: [] });
    expect(out.kvm).toEqual(out.emulator);
  }, TWO_RUNS_MS);

  it.runIf(host.available && host.execution === 'emulated')(
    '--compare: a fault-path scenario on this emulating host is "not comparable here", never a match (exit 3)',
    () => {
      const fault = writeJson('hand-fault.json', { ...HAND, path: 'fault' });
      const r = cli('replay', fault, '--compare');
      expect(r.status).toBe(3);
      expect(r.stdout).toMatch(/emulator vs kernel: not comparable here: .*fault path/);
      expect(r.stdout).not.toMatch(/match/);
      const j = JSON.parse(cli('replay', fault, '--compare', '--json').stdout) as { match: boolean; kernel: string };
      expect(j).toMatchObject({ match: false, kernel: 'notComparable' });
    },
    TWO_RUNS_MS,
  );

  it.runIf(!host.available)('--compare without /dev/kvm says why and exits 3 (runs only where /dev/kvm is unavailable)', () => {
    const r = cli('replay', file, '--compare');
    expect(r.status).toBe(3);
    expect(r.stdout).toContain('kvm unavailable:');
  }, ONE_RUN_MS);

  it.each([
    [['replay'], /^scenario \(none\): EINVAL, give exactly one scenario file/m],
    [['replay', join(tmp, 'missing.json')], /^scenario .*missing\.json: ENOENT, cannot read the scenario/m],
    [['replay', file, '--engine', 'qemu'], /^--engine qemu: EINVAL, the engine must be emulator or kvm/m],
    [['replay', file, '--engine', 'kvm', '--compare'], /^--engine kvm: EINVAL, --compare runs both engines/m],
    [['replay', file, '--speed'], /^--speed: EINVAL, unknown option/m],
  ])('bad input %j: exit 2, naming the parameter and the errno', (args, message) => {
    const r = cli(...args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
  }, ONE_RUN_MS);

  it('a scenario with a misspelt field: exit 2, naming the field', () => {
    const bad = writeJson('bad.json', { ...HAND, steps: [{ op: 'run', vcpu: 0, stopOnIO: true }] });
    const r = cli('replay', bad);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^scenario .*bad\.json: EINVAL, scenario: steps\[0\]\.stopOnIO: unknown field/m);
  }, ONE_RUN_MS);

  it('a scenario whose setup the kernel refuses: exit 2, with the errno', () => {
    const bad = writeJson('bad-ring.json', { ...HAND, vm: { ring: { bytes: 12288 } } });
    const r = cli('replay', bad);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/EINVAL, emulator engine: .*setup: enabling the dirty ring \(12288 bytes\) failed: EINVAL/);
  }, ONE_RUN_MS);
});

describe('dirtyring conformance', () => {
  it('the whole suite: every scenario matches its expectation and, where comparable, the kernel (exit 0)', () => {
    const r = cli('conformance');
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const files = scenarioFiles(join(ROOT, 'test', 'scenarios'));
    for (const f of files) expect(r.stdout).toMatch(new RegExp(`^${f.replace(/\.json$/, '')} +(fault|emulated) +match +`, 'm'));
    expect(r.stdout).toMatch(/^fault-path-dedupe +fault +match +(not comparable|match|kvm unavailable)/m);
    expect(r.stdout).toMatch(new RegExp(`^OK: emulator matches the expectation in ${files.length} of ${files.length};`, 'm'));
    expect(r.stdout).not.toMatch(/DIFFER/);
  }, ONE_RUN_MS);

  it('--json and --dir: a wrong expectation is a DIFFER and exit 1; a missing one too', () => {
    const dir = mkdtempSync(join(tmp, 'suite-'));
    writeJson(join(dir, 'a.json').slice(tmp.length + 1), { ...HAND, steps: HAND.steps.slice(0, 4) });
    const results = runScenarioOnEmulator(parseScenario({ ...HAND, steps: HAND.steps.slice(0, 4) }));
    const wrong = serializeResults(results).replace('"count":4', '"count":5');
    writeFileSync(join(dir, 'a.expected.json'), wrong);
    copyFileSync(join(ROOT, 'test', 'scenarios', 'reset-gap.json'), join(dir, 'b.json'));
    const r = cli('conformance', '--dir', dir);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/^a +emulated +DIFFER/m);
    expect(r.stdout).toContain('step 3 (reset): expected {"rc":0,"count":5}, got {"rc":0,"count":4}');
    expect(r.stdout).toMatch(/^b +emulated +DIFFER: no expectation file/m);
    const j = JSON.parse(cli('conformance', '--dir', dir, '--json').stdout) as { ok: boolean; scenarios: { file: string; expected: string }[] };
    expect(j.ok).toBe(false);
    expect(j.scenarios.map((s) => [s.file, s.expected])).toEqual([['a.json', 'differ'], ['b.json', 'missing']]);
  }, TWO_RUNS_MS);

  it('a directory that does not exist: exit 2', () => {
    const r = cli('conformance', '--dir', join(tmp, 'nope'));
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^--dir .*nope: ENOENT, not a directory/m);
  }, ONE_RUN_MS);
});
