/**
 * C harvesters on threads of their own (DIRTYRING_THREADS): the flag hand-off examples run in
 * `run` and `migrate` on two real threads, are clean in controlled runs under sc and x86, and
 * under arm64 the plain flag store is caught (shrunk, replayed exactly) while its release fix is
 * not; a thread count out of range exits 2, a module without threads refuses
 * `--harvester-threads 2` (exit 2), a thread that traps fails the run naming it, and one that hangs in a
 * free campaign is a bounded harness-error naming the thread. Seeds are fixed and in the args.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliWithin, lastJson } from '../helpers/cli.js';
import { NO_TOOLCHAIN, buildC } from '../helpers/c-harvester.js';
import { timeoutAbove } from '../helpers/watchdog.js';

const CLI_MS = 240_000;
const dirtyring = cliWithin(CLI_MS);
const dir = mkdtempSync(join(tmpdir(), 'dirtyring-wasm-threads-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const controlled = (wasm: string, model: string, runs: number, seed: number, ...more: string[]): string[] => [
  'stress',
  '--harvester',
  wasm,
  '--mode',
  'controlled',
  '--memory-model',
  model,
  '--runs',
  String(runs),
  '--seed',
  String(seed),
  ...more,
];

describe.skipIf(NO_TOOLCHAIN !== null)(`C harvester threads${NO_TOOLCHAIN !== null ? ` (skipped: ${NO_TOOLCHAIN})` : ''}`, () => {
  const wasm: Record<string, string> = {};
  beforeAll(() => {
    for (const name of ['flag-handoff-reset', 'flag-handoff-reset-release', 'per-vcpu-threads', 'qemu-reaper']) wasm[name] = buildC(`examples/harvesters-c/${name}.c`, dir);
    for (const name of ['threads-out-of-range', 'thread-misbehaves', 'thread-hangs']) wasm[name] = buildC(`test/fixtures/harvesters-c/${name}.c`, dir);
  });

  it('run and migrate: the hand-offs run on 2 threads of their own and lose nothing', () => {
    for (const name of ['flag-handoff-reset', 'flag-handoff-reset-release']) {
      const r = dirtyring('run', '--harvester', wasm[name]!, '--iterations', '3', '--seed', '9', '--json');
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(lastJson(r.stdout)).toMatchObject({ ok: true, lostPages: 0, copyMismatches: 0, resetMismatches: 0, harvester: { name } });
    }
    const m = dirtyring('migrate', '--harvester', wasm['flag-handoff-reset-release']!, '--seed', '3', '--json');
    expect(m.status, m.stdout + m.stderr).toBe(0);
    const s = dirtyring('stress', '--harvester', wasm['flag-handoff-reset-release']!, '--mode', 'free', '--runs', '3', '--seed', '1');
    expect(s.stdout, s.stderr).toContain('OK: 3 runs, 0 forbidden, 0 errors (seed 1)');
  }, timeoutAbove(3 * CLI_MS));

  it('controlled: the plain flag store is clean under sc and x86', () => {
    for (const model of ['sc', 'x86']) {
      const r = dirtyring(...controlled(wasm['flag-handoff-reset']!, model, 20, 1));
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain('OK: 20 runs, 0 forbidden, 0 errors (seed 1)');
    }
  }, timeoutAbove(2 * CLI_MS));

  it('controlled, arm64: the plain flag store is caught, shrunk and replayed; the release fix is clean', () => {
    const traces = join(dir, 'traces');
    const bad = dirtyring(...controlled(wasm['flag-handoff-reset']!, 'arm64', 2, 17, '--trace-dir', traces));
    expect(bad.status, bad.stdout + bad.stderr).toBe(1);
    expect(bad.stdout).toMatch(/FORBIDDEN run 1 \(seed 18\): reset-mismatch/);
    expect(bad.stdout).toContain('user:flag-handoff-reset.wasm×2');
    const replay = /replay: npx dirtyring stress --replay (\S+)/.exec(bad.stdout);
    expect(replay, bad.stdout).not.toBeNull();
    const r = dirtyring('stress', '--replay', replay![1]!);
    expect(r.stdout + r.stderr).toContain('trace: identical to the recording');
    for (const name of ['flag-handoff-reset-release', 'per-vcpu-threads']) {
      const ok = dirtyring(...controlled(wasm[name]!, 'arm64', 20, 1));
      expect(ok.status, ok.stdout + ok.stderr).toBe(0);
      expect(ok.stdout).toContain('OK: 20 runs, 0 forbidden, 0 errors (seed 1)');
    }
  }, timeoutAbove(3 * CLI_MS));

  it('bad input: a thread count out of range exits 2; a module without threads refuses --harvester-threads 2', () => {
    const r = dirtyring('run', '--harvester', wasm['threads-out-of-range']!);
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe(`--harvester ${wasm['threads-out-of-range']}: EINVAL, dirtyring_threads() returned 9: the thread count (DIRTYRING_THREADS) must be in 1..8`);
    for (const command of ['run', 'stress']) {
      const t = dirtyring(command, '--harvester', wasm['qemu-reaper']!, '--harvester-threads', '2', '--seed', '3');
      expect(t.status, `${command}: ${t.stdout}${t.stderr}`).toBe(2);
      expect(t.stderr.trim()).toBe('--harvester-threads 2: EINVAL, qemu-reaper declares no threads: a C harvester says how many it runs on with DIRTYRING_THREADS(n) (include/dirtyring.h)');
    }
  }, timeoutAbove(2 * CLI_MS));

  it('a thread that traps fails the run naming it; one that hangs in a free campaign is a bounded harness-error', () => {
    const trap = dirtyring('run', '--harvester', wasm['thread-misbehaves']!, '--seed', '3');
    expect(trap.status).toBe(1);
    expect(trap.stdout + trap.stderr).toContain("run failed: harvester thread 1 of 2: harvester 'thread-misbehaves' threw in collection 2: RuntimeError: unreachable");
    expect(trap.stdout + trap.stderr).toContain('reproduce with --seed 3');
    const hang = dirtyring('stress', '--harvester', wasm['thread-hangs']!, '--mode', 'free', '--runs', '1', '--seed', '1');
    expect(hang.status).toBe(1);
    expect(hang.stdout).toContain("ERROR run 0 (seed 1): harness-error");
    expect(hang.stdout).toContain("harvester 'thread-hangs' did not finish collection 2 within 10000 ms: thread 1, last step collect() entered");
  }, timeoutAbove(2 * CLI_MS));
});
