/**
 * `--harvester FILE` from the command line: a module that cannot be used is bad input (exit 2,
 * one line); the shipped examples give their stated results in `run` and in free and
 * controlled `stress` campaigns; a harvester that throws fails the run with its stack and the
 * seed; one that hangs is stopped and classified; one that writes garbage and makes bad ioctls
 * gets KVM's errnos and the run goes on.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { badInputTests, cliWithin, lastJson } from '../helpers/cli.js';
import { timeoutAbove } from '../helpers/watchdog.js';

const dir = mkdtempSync(join(tmpdir(), 'dirtyring-harvester-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CLI_MS = 120_000;
const dirtyring = cliWithin(CLI_MS);
const example = (name: string): string => `examples/harvesters/${name}.ts`;
const fixture = (file: string): string => `test/fixtures/harvesters/${file}`;
const RUN = ['--iterations', '3', '--seed', '9'];

describe('a harvester module that cannot be used exits 2 with one line naming it', () => {
  const cases: [string[], string][] = [
    [['--harvester', 'missing.ts'], '--harvester missing.ts: ENOENT, no such file'],
    [['--harvester', fixture('no-export.mjs')], `--harvester ${fixture('no-export.mjs')}: EINVAL, exports no harvester`],
    [['--harvester', fixture('throws-on-load.mjs')], `--harvester ${fixture('throws-on-load.mjs')}: EINVAL, threw on load: Error: configuration file missing`],
    [['--harvester', 'README.md'], '--harvester README.md: EINVAL, must be an ES module'],
    [['--harvester', example('qemu-reaper'), '--log', 'bitmap'], '--log bitmap: EINVAL, harvester qemu-reaper'],
  ];
  badInputTests('run', cases, CLI_MS);
  badInputTests(
    'stress',
    [
      ...cases,
      [['--harvester', example('qemu-reaper'), '--mutant', 'no-tlb-flush'], '--harvester'],
      [['--harvester', example('qemu-reaper'), '--harvester-threads', '9'], "--harvester-threads 9: EINVAL, expected an integer in 0..8 (0: the harness's thread)"],
      [['--harvester-threads', '1'], '--harvester-threads 1: EINVAL, only with a harvester (--harvester FILE)'],
    ],
    CLI_MS,
  );
});

describe('dirtyring run --harvester', () => {
  it('the QEMU-style reaper and the GET + chunked CLEAR loop lose nothing', () => {
    for (const name of ['qemu-reaper', 'get-chunked-clear']) {
      const r = dirtyring('run', '--harvester', example(name), ...RUN, '--json');
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(lastJson(r.stdout)).toMatchObject({ ok: true, lostPages: 0, copyMismatches: 0, resetMismatches: 0, harvester: { name, ioctlErrors: 0 } });
    }
  }, timeoutAbove(2 * CLI_MS));

  // copy-before-reset is left to the campaigns: in one free run its window is a race.
  it.each([['skips-entry'], ['unaligned-clear']])('the buggy %s fails the run (exit 1, the seed printed)', (name) => {
    const r = dirtyring('run', '--harvester', example(name), ...RUN);
    expect(r.status, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(/LOST PAGE|COPY MISMATCH/);
    expect(r.stdout).toContain('reproduce with --seed 9');
  }, timeoutAbove(CLI_MS));

  it('a harvester that throws during the run: exit 1, its stack and the seed', () => {
    const r = dirtyring('run', '--harvester', fixture('throws-in-collect.ts'), ...RUN);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain("harvester 'throws-in-collect' threw in collection 3");
    expect(r.stdout).toContain('RangeError: reaper state corrupted');
    expect(r.stdout).toMatch(/throws-in-collect\.ts:\d+/);
    expect(r.stdout).toContain('--seed 9');
  }, timeoutAbove(CLI_MS));

  it('garbage ring entries and bad ioctls: errnos to the harvester, skipped batches in the kernel, the run completes', () => {
    const r = dirtyring('run', '--harvester', fixture('hostile.ts'), ...RUN, '--json');
    const s = lastJson(r.stdout) as { error: unknown; iterations: number; kernelBugs: number; harvester: { ioctlErrors: number; firstIoctlError: string; kernelSkippedBatches: number } };
    expect(s.error).toBeNull();
    expect(s.iterations).toBe(3);
    expect(s.kernelBugs).toBe(0);
    expect(s.harvester.ioctlErrors).toBeGreaterThan(0);
    expect(s.harvester.firstIoctlError).toMatch(/^ENXIO/);
    expect(s.harvester.kernelSkippedBatches).toBeGreaterThan(0);
  }, timeoutAbove(CLI_MS));
});

describe('dirtyring migrate --harvester', () => {
  it('the correct examples migrate byte for byte; the entry-skipping one leaves the destination stale', () => {
    for (const name of ['qemu-reaper', 'get-chunked-clear']) {
      const r = dirtyring('migrate', '--harvester', example(name), '--seed', '3', '--json');
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(lastJson(r.stdout)).toMatchObject({ ok: true, harvester: { name } });
    }
    const bad = dirtyring('migrate', '--harvester', example('skips-entry'), '--seed', '3');
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/FAILED: \d+ pages differ/);
  }, timeoutAbove(3 * CLI_MS));
});

/** One campaign's JSON summary. */
function campaign(...args: string[]): { status: number | null; harvester: string | null; classes: Record<string, number>; table: { outcome: string }[]; text: string } {
  const r = dirtyring('stress', '--json', '--trace-dir', dir, ...args);
  const j = lastJson(r.stdout) as { harvester: string | null; campaigns: { classes: Record<string, number>; table: { outcome: string }[] }[] };
  const c = j.campaigns[0]!;
  return { status: r.status, harvester: j.harvester, classes: c.classes, table: c.table, text: r.stdout + r.stderr };
}

describe('dirtyring stress --harvester', () => {
  it.each([
    ['qemu-reaper', 'controlled', '300'],
    ['get-chunked-clear', 'controlled', '300'],
    ['qemu-reaper', 'free', '30'],
    ['get-chunked-clear', 'free', '30'],
  ])('%s in %s mode: 0 forbidden in %s runs', (name, mode, runs) => {
    const c = campaign('--harvester', example(name), '--mode', mode, '--runs', runs, '--seed', '1');
    expect(c.status, c.text).toBe(0);
    expect(c.harvester).toBe(example(name));
    expect(c.classes['forbidden']).toBe(0);
    expect(c.classes['error']).toBe(0);
  }, timeoutAbove(CLI_MS));

  it.each([
    ['skips-entry', 'controlled', '100', ['lost-page', 'copy-mismatch']],
    ['copy-before-reset', 'controlled', '100', ['copy-mismatch', 'unlogged-write', 'lost-page']],
    ['unaligned-clear', 'controlled', '20', ['lost-page', 'copy-mismatch']],
    ['skips-entry', 'free', '3', ['lost-page', 'copy-mismatch']],
    ['copy-before-reset', 'free', '20', ['lost-page', 'copy-mismatch']],
    ['unaligned-clear', 'free', '3', ['lost-page', 'copy-mismatch']],
  ])('the buggy %s is caught in %s mode within %s runs', (name, mode, runs, outcomes) => {
    const c = campaign('--harvester', example(name), '--mode', mode, '--runs', runs, '--seed', '1');
    expect(c.status, c.text).toBe(1);
    expect(c.classes['forbidden']).toBeGreaterThan(0);
    expect(outcomes).toContain(c.table[0]!.outcome);
  }, timeoutAbove(CLI_MS));

  it('a failing controlled run prints its seed, schedule file and shrunk schedule, and the file replays', () => {
    const r = dirtyring('stress', '--harvester', example('skips-entry'), '--mode', 'controlled', '--runs', '40', '--seed', '1', '--trace-dir', dir);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/FORBIDDEN run \d+ \(seed \d+\): lost-page/);
    expect(r.stdout).toContain('config: ring/user:skips-entry.ts');
    expect(r.stdout).toMatch(/shrunk to .* 32 stores/);
    const replay = /replay: npx dirtyring stress --replay (\S+)/.exec(r.stdout)![1]!;
    const again = dirtyring('stress', '--replay', replay);
    expect(again.stdout).toContain('outcome: lost-page (forbidden)');
    expect(again.stdout).toContain('identical to the recording');
  }, timeoutAbove(2 * CLI_MS));

  it('the accessors follow the memory model: a plain flags load is correct under sc, caught under arm64', () => {
    const args = ['--harvester', fixture('relaxed-flags.ts'), '--mode', 'controlled', '--runs', '60', '--seed', '1'];
    const sc = campaign(...args);
    expect(sc.classes['forbidden'], sc.text).toBe(0);
    const arm = campaign(...args, '--memory-model', 'arm64');
    expect(arm.classes['forbidden'], arm.text).toBeGreaterThan(0);
    expect(['lost-page', 'bad-entry', 'unlogged-write']).toContain(arm.table[0]!.outcome);
    const reaper = campaign('--harvester', example('qemu-reaper'), '--mode', 'controlled', '--runs', '200', '--seed', '1', '--memory-model', 'arm64');
    expect(reaper.classes['forbidden'], reaper.text).toBe(0);
  }, timeoutAbove(3 * CLI_MS));

  it('a harvester that throws: each run is harness-error with the stack, and the campaign goes on', () => {
    for (const mode of ['free', 'controlled']) {
      const c = campaign('--harvester', fixture('create-throws.mjs'), '--mode', mode, '--runs', '3', '--seed', '1');
      expect(c.status).toBe(1);
      expect(c.table).toEqual([expect.objectContaining({ outcome: 'harness-error', runs: 3 })]);
      expect(c.text).toContain("harvester 'create-throws' threw in create(): Error: no rings for me");
    }
  }, timeoutAbove(2 * CLI_MS));

  it('a harvester that hangs in a controlled run is stopped: harness-error naming the thread and its last step', () => {
    const c = campaign('--harvester', fixture('hangs.mjs'), '--mode', 'controlled', '--runs', '1', '--seed', '1');
    expect(c.status).toBe(1);
    expect(c.table[0]!.outcome).toBe('harness-error');
    expect(c.text).toMatch(/U did not reach its next step within \d+ ms after user-collect/);
  }, timeoutAbove(CLI_MS));
});

describe('a harvester with threads of its own (free runs)', () => {
  it('per-vcpu-threads (a coordinator resets between two barriers): 0 forbidden; second-thread-reset (no synchronisation): caught', () => {
    const ok = campaign('--harvester', example('per-vcpu-threads'), '--mode', 'free', '--runs', '20', '--seed', '1');
    expect(ok.status, ok.text).toBe(0);
    expect(ok.classes['forbidden']).toBe(0);
    const run = dirtyring('run', '--harvester', example('per-vcpu-threads'), '--vcpus', '3', ...RUN);
    expect(run.status, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toMatch(/pages reported by 2 thread\(s\) of its own/);
    const bad = campaign('--harvester', example('second-thread-reset'), '--mode', 'free', '--runs', '20', '--seed', '1');
    expect(bad.status).toBe(1);
    expect(bad.classes['forbidden']).toBeGreaterThan(0);
    expect(['lost-page', 'copy-mismatch', 'reset-mismatch']).toContain(bad.table[0]!.outcome);
  }, timeoutAbove(3 * CLI_MS));

  it('a thread that hangs: the run ends after the bound naming the thread and its last step; the campaign goes on', () => {
    const r = dirtyring('run', '--harvester', fixture('thread-hangs.mjs'), ...RUN);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain("run failed: harvester 'thread-hangs' did not finish collection 2 within 10000 ms: thread 1, last step loadFlagsAcquire of entry 7");
    expect(r.stdout).toContain('--seed 9');
    const c = campaign('--harvester', fixture('thread-hangs.mjs'), '--mode', 'free', '--runs', '2', '--seed', '1');
    expect(c.table).toEqual([expect.objectContaining({ outcome: 'harness-error', runs: 2 })]);
  }, timeoutAbove(2 * CLI_MS));

  it('a harvester without threads runs in free campaigns on one of its own: a hang is stopped after the bound naming thread 0 and its last step; the campaign goes on', () => {
    const c = campaign('--harvester', fixture('hangs.mjs'), '--mode', 'free', '--runs', '2', '--seed', '1');
    expect(c.status).toBe(1);
    expect(c.table).toEqual([expect.objectContaining({ outcome: 'harness-error', runs: 2 })]);
    expect(c.text).toContain("harvester 'hangs' did not finish collection 1 within 10000 ms: thread 0, last step collect() entered, no ring access or ioctl since");
  }, timeoutAbove(CLI_MS));

  it('copy-before-reset is caught on the harness\'s thread too (--harvester-threads 0): pages are copied when reported, wherever the harvester runs', () => {
    const c = campaign('--harvester', example('copy-before-reset'), '--harvester-threads', '0', '--mode', 'free', '--runs', '10', '--seed', '1');
    expect(c.status, c.text).toBe(1);
    expect(c.classes['forbidden']).toBeGreaterThan(0);
    expect(['lost-page', 'copy-mismatch']).toContain(c.table[0]!.outcome);
  }, timeoutAbove(CLI_MS));

  it('a thread that throws: its stack ends the run, the waiting thread is released', () => {
    const r = dirtyring('run', '--harvester', fixture('thread-throws.mjs'), ...RUN);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain("run failed: harvester thread 1 of 2: harvester 'thread-throws' threw in collection 1: RangeError: thread 1 lost its place");
    expect(r.stdout).toMatch(/thread-throws\.mjs:\d+/);
  }, timeoutAbove(CLI_MS));

});

describe('a harvester with threads of its own (controlled runs: each thread a participant H0, H1, ...)', () => {
  it('per-vcpu-threads: 0 forbidden; second-thread-reset: caught, shrunk, and its shrunk schedule replays exactly', () => {
    const ok = campaign('--harvester', example('per-vcpu-threads'), '--mode', 'controlled', '--runs', '100', '--seed', '1');
    expect(ok.status, ok.text).toBe(0);
    expect(ok.classes['forbidden']).toBe(0);
    const bad = campaign('--harvester', example('second-thread-reset'), '--mode', 'controlled', '--runs', '5', '--seed', '1');
    expect(bad.status).toBe(1);
    expect(['lost-page', 'copy-mismatch', 'reset-mismatch', 'unlogged-write']).toContain(bad.table[0]!.outcome);
    expect(bad.text).toMatch(/config: ring\/user:second-thread-reset\.ts×2/);
    const shrunk = /replay: npx dirtyring stress --replay (\S+-shrunk\.json)/.exec(bad.text)![1]!;
    const replay = dirtyring('stress', '--replay', shrunk);
    expect(replay.stdout).toMatch(/trace: identical to the recording/);
  }, timeoutAbove(3 * CLI_MS));

  it('a relaxed hand-off through kvm.shared: correct under sc, caught under arm64; with release/acquire correct under arm64', () => {
    const sc = campaign('--harvester', example('flag-handoff-reset'), '--mode', 'controlled', '--runs', '50', '--seed', '1');
    expect(sc.classes['forbidden'], sc.text).toBe(0);
    const arm = campaign('--harvester', example('flag-handoff-reset'), '--mode', 'controlled', '--runs', '10', '--seed', '1', '--memory-model', 'arm64');
    expect(arm.classes['forbidden'], arm.text).toBeGreaterThan(0);
    const fixed = campaign('--harvester', example('flag-handoff-reset-release'), '--mode', 'controlled', '--runs', '50', '--seed', '1', '--memory-model', 'arm64');
    expect(fixed.classes['forbidden'], fixed.text).toBe(0);
  }, timeoutAbove(3 * CLI_MS));
});
