/** The migrate and dirty-rate command lines: exit status, the JSON last line, one-line errors. */
import { describe, expect, it } from 'vitest';
import { badInputTests, cliWithin, lastJson } from '../helpers/cli.js';
import { timeoutAbove } from '../helpers/watchdog.js';

const CLI_MS = 120_000;
const dirtyring = cliWithin(CLI_MS);

describe('dirtyring migrate: bad input exits 2 with the parameter and the errno', () => {
  badInputTests(
    'migrate',
    [
      [['--log', 'bitmap', '--dirty-limit-mibs', '5'], '--dirty-limit-mibs 5: EINVAL, dirty-limit needs the dirty ring'],
      [['--ring-entries', '1000'], '--ring-entries 1000: EINVAL, ring size must be a power of two'],
      [['--ring-entries', '131072'], '--ring-entries 131072: E2BIG'],
      [['--bandwidth-mibs', '0'], '--bandwidth-mibs 0: EINVAL'],
      [['--bandwidth-mibs', '100', '--bandwidth-pages', '5000'], '--bandwidth-pages 5000: EINVAL, give the bandwidth in pages or in MiB/s'],
      [['--max-downtime-ms', 'soon'], '--max-downtime-ms soon: EINVAL'],
      [['--memory', '64MiB', '--working-set', '128MiB'], '--working-set 134217728: EINVAL'],
      [['--log', 'ring', '--initially-set'], '--initially-set on: EINVAL'],
      [['--mutant', 'nope'], '--mutant nope: EINVAL'],
    ],
    CLI_MS,
  );
});

describe('dirtyring migrate --json', () => {
  it('exits 0 with verified: true and the contract fields as the last stdout line', () => {
    const r = dirtyring('migrate', '--vcpus', '4', '--memory', '32MiB', '--seed', '11', '--json');
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const s = JSON.parse(lines[0]!) as Record<string, unknown>;
    for (const field of ['ok', 'verified', 'rounds', 'pagesSent', 'pagesResent', 'downtimeMs', 'totalMs', 'converged', 'ringFullExits', 'roundReports']) {
      expect(s, field).toHaveProperty(field);
    }
    expect(s).toMatchObject({ ok: true, verified: true, seed: 11, log: 'ring', vcpus: 4 });
    // Progress and the table went to stderr.
    expect(r.stderr).toMatch(/round +1 bulk/);
    expect(r.stderr).toContain('stop-and-copy');
  }, timeoutAbove(CLI_MS));

  it('exits 1 and lists the differing pages when the final stop is skipped', () => {
    const r = dirtyring('migrate', '--memory', '16MiB', '--dirty-rate-mibs', '50', '--mutant', 'no-final-stop', '--seed', '12', '--json');
    expect(r.status).toBe(1);
    const s = lastJson(r.stdout) as { ok: boolean; verified: boolean; mismatchedPages: number };
    expect(s.ok).toBe(false);
    expect(s.verified).toBe(false);
    expect(s.mismatchedPages).toBeGreaterThan(0);
    expect(r.stderr).toMatch(/MISMATCH: slot 1 offset \d+/);
    expect(r.stderr).toContain('reproduce with --seed 12');
  }, timeoutAbove(CLI_MS));

  it('prints plain round lines and a table without --json (not a terminal: no progress bar)', () => {
    // --working-set 0 means all memory, as in dirty-rate and the migration config.
    const r = dirtyring('migrate', '--log', 'clear', '--vcpus', '2', '--memory', '16MiB', '--working-set', '0', '--seed', '13');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).not.toContain('\r');
    expect(r.stdout).toMatch(/round +1 bulk +sent/);
    expect(r.stdout).toMatch(/round +kind +sent +resent/);
    expect(r.stdout).toContain('OK: verified after');
  }, timeoutAbove(CLI_MS));
});

describe('dirtyring dirty-rate', () => {
  it('prints the rate by each requested mode, and --json as the last line', () => {
    const r = dirtyring('dirty-rate', '--mode', 'ring,sampling', '--vcpus', '2', '--memory', '32MiB', '--period-ms', '300', '--seed', '14', '--json');
    expect(r.status, r.stderr).toBe(0);
    const res = lastJson(r.stdout) as { ok: boolean; ring: { dirtyRateMiBs: number; perVcpuMiBs: number[] }; sampling: { dirtyRateMiBs: number } };
    expect(res.ok).toBe(true);
    expect(res.ring.perVcpuMiBs).toHaveLength(2);
    expect(res.ring.dirtyRateMiBs).toBeGreaterThan(0);
    expect(r.stderr).toMatch(/^ring +[\d.]+/m);
    expect(r.stderr).toMatch(/^sampling +[\d.]+/m);
  }, timeoutAbove(CLI_MS));
});

describe('dirtyring dirty-rate: bad input exits 2 with the parameter and the errno', () => {
  badInputTests(
    'dirty-rate',
    [
      [['--mode', 'ring,bitmap'], '--mode ring,bitmap: ENXIO'],
      [['--mode', 'fast'], '--mode fast: EINVAL'],
      [['--period-ms', '10'], '--period-ms 10: EINVAL'],
    ],
    CLI_MS,
  );
});
