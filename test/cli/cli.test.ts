/** The CLI contract: exit status, the JSON last line, one-line errors naming parameter and errno. */
import { describe, expect, it } from 'vitest';
import { badInputTests, cliWithin, lastJson } from '../helpers/cli.js';
import { timeoutAbove } from '../helpers/watchdog.js';

const CLI_MS = 60_000;
const dirtyring = cliWithin(CLI_MS);

describe('dirtyring run: bad input exits 2 with the parameter and the errno', () => {
  badInputTests(
    'run',
    [
      [['--ring-entries', '1000'], '--ring-entries 1000: EINVAL, ring size must be a power of two'],
      [['--ring-entries', '131072'], '--ring-entries 131072: E2BIG'],
      [['--ring-entries', '268435712', '--memory', '1MiB'], '--ring-entries 268435712: E2BIG, 268435712 entries are 4294971392 bytes, which the u32 size of KVM_ENABLE_CAP truncates to 4096 (a 256-entry ring'],
      [['--ring-entries', '2147483648'], '--ring-entries 2147483648: EINVAL, 2147483648 entries are 34359738368 bytes, which the u32 size of KVM_ENABLE_CAP truncates to 0, and the kernel refuses that'],
      [['--initially-set'], '--initially-set on: EINVAL'],
      [['--log', 'bitmap', '--ring-entries', '512'], '--ring-entries 512: EINVAL'],
      [['--log', 'clear', '--clear-chunk-pages', '100'], '--clear-chunk-pages 100: EINVAL'],
      [['--log', 'ring', '--clear-chunk-pages', '128'], '--clear-chunk-pages 128: EINVAL'],
      [['--log', 'bitmap', '--ring-with-bitmap', 'on'], '--ring-with-bitmap on: EINVAL'],
      [['--log', 'foo'], '--log foo: EINVAL'],
      [['--memory', '1000'], '--memory 1000: EINVAL'],
      // A mutant list that names no mutant would run a plain run that claims to test one.
      [['--mutant', ','], "--mutant ',': EINVAL, expected a mutant name"],
      [['--mutant', ''], "--mutant '': EINVAL, expected a mutant name"],
      // parseArgs' own refusals, in the same one-line form naming the option.
      [['--vcpus', '-1'], '--vcpus -1: EINVAL, vCPU count must be between 1 and 64'],
      [['--vcpus'], '--vcpus: EINVAL, expects a value'],
      [['--seed', '--json'], '--seed: EINVAL, expects a value, and the next argument is an option'],
      [['--json=1'], '--json: EINVAL, takes no value'],
      [['--vcpu', '2'], '--vcpu: EINVAL, unknown option'],
    ],
    CLI_MS,
  );
});

describe('dirtyring run --json', () => {
  it('exits 0 and prints one JSON object as the last stdout line, with the contract fields', () => {
    const r = dirtyring('run', '--vcpus', '2', '--ring-entries', '256', '--iterations', '3', '--memory', '8MiB', '--seed', '9', '--json');
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const s = JSON.parse(lines[0]!) as Record<string, unknown>;
    for (const field of [
      'ok', 'seed', 'log', 'vcpus', 'iterations', 'guestWrites', 'pagesHarvested', 'ringFullExits', 'resetCalls',
      'entriesReset', 'lostPages', 'falsePositives', 'elapsedMs', 'mmuLockMaxHoldUs', 'mmuLockTotalHoldUs', 'deviceWrites',
    ]) {
      expect(s, field).toHaveProperty(field);
    }
    // Ring logging's default design: each vCPU reaps its own ring on exit 31.
    expect(s).toMatchObject({ ok: true, seed: 9, log: 'ring', vcpus: 2, iterations: 3, lostPages: 0, selfReap: true });
    // Per-call figures: a mean never exceeds the maximum.
    const holds = s['mmuLockHoldUs'] as Record<string, { calls: number; mean: number; max: number }>;
    expect(holds['reset']!.calls).toBeGreaterThan(0);
    for (const [kind, h] of Object.entries(holds)) expect(h.mean, kind).toBeLessThanOrEqual(h.max);
  }, timeoutAbove(CLI_MS));

  it('exits 1 when the oracle finds lost pages, naming the seed', () => {
    const r = dirtyring('run', '--mutant', 'harvest-skips-entry', '--iterations', '3', '--memory', '8MiB', '--seed', '5', '--json');
    expect(r.status).toBe(1);
    const s = lastJson(r.stdout) as { ok: boolean; lostPages: number; copyMismatches: number };
    expect(s.ok).toBe(false);
    expect(s.lostPages).toBeGreaterThan(0);
    expect(r.stderr).toMatch(/(LOST PAGE|COPY MISMATCH): .* seed 5/);
  }, timeoutAbove(CLI_MS));

  it('--no-self-reap selects the hand-off design (the vCPU stalls until userspace collects)', () => {
    const r = dirtyring('run', '--no-self-reap', '--ring-entries', '256', '--iterations', '3', '--memory', '8MiB', '--seed', '9', '--json');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain('hand-off on exit 31');
    expect(lastJson(r.stdout)).toMatchObject({ ok: true, selfReap: false, lostPages: 0 });
    const both = dirtyring('run', '--self-reap', '--no-self-reap');
    expect(both.status).toBe(2);
    expect(both.stderr).toContain('--no-self-reap');
  }, timeoutAbove(CLI_MS));

  it('prints a human summary without --json', () => {
    const r = dirtyring('run', '--log', 'clear', '--iterations', '2', '--memory', '4MiB', '--seed', '3');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/iteration +1:/);
    expect(r.stdout).toContain('OK: 2 iterations, 0 lost pages (seed 3)');
  }, timeoutAbove(CLI_MS));
});
