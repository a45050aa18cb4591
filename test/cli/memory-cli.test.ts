/** A guest that cannot fit is refused before it is built: exit 2, ENOMEM, the estimate and the limit. */
import { totalmem } from 'node:os';
import { describe, expect, it } from 'vitest';
import { estimateGuestBytes } from '../../src/cli/memory-budget.js';
import { runCli } from '../helpers/cli.js';
import { timeoutAbove } from '../helpers/watchdog.js';

const CLI_MS = 60_000;
const GiB = 1024 ** 3;

function refused(args: string[], limit?: string): { status: number | null; stderr: string } {
  return runCli(args, { timeoutMs: CLI_MS, ...(limit !== undefined && { env: { DIRTYRING_MEMORY_LIMIT: limit } }) });
}

describe('memory is checked up front', () => {
  it('the estimate covers the measured peak (run --memory 1GiB, every page touched: 2.20 GB)', () => {
    expect(estimateGuestBytes(GiB)).toBeGreaterThan(2.2e9);
    expect(estimateGuestBytes(GiB)).toBeLessThan(2.8e9);
  });

  it('run and migrate refuse a guest above the limit, naming --memory, ENOMEM, the estimate and the limit', () => {
    const run = refused(['run', '--memory', '128GiB', '--memslots', '64'], '20GiB');
    expect(run.status, run.stderr).toBe(2);
    expect(run.stderr.trim()).toBe(
      '--memory 128GiB: ENOMEM, run would need about 269.1 GiB (the guest\'s memory twice — the guest and the copy verified against it — plus 256 MiB), more than the limit of 20.0 GiB (DIRTYRING_MEMORY_LIMIT=20GiB)',
    );
    const mig = refused(['migrate', '--memory', '32GiB', '--memslots', '16'], '20GiB');
    expect(mig.status, mig.stderr).toBe(2);
    expect(mig.stderr).toContain('--memory 32GiB: ENOMEM, migrate would need about 67.5 GiB (the guest\'s memory twice — the source and the destination');
    // A stress campaign counts two runs' guests: a finished run's buffers go with the collector.
    const stress = refused(['stress', '--mode', 'free', '--memory', '64MiB,1GiB'], '3GiB');
    expect(stress.status, stress.stderr).toBe(2);
    expect(stress.stderr.trim()).toBe(
      "--memory 1024MiB: ENOMEM, stress would need about 4.5 GiB (the guest's memory four times — the guest and the copy of a run, and of the run before it until it is collected — plus 256 MiB), more than the limit of 3.0 GiB (DIRTYRING_MEMORY_LIMIT=3GiB)",
    );
    const small = refused(['run', '--memory', '512MiB'], '1GiB');
    expect(small.status).toBe(2);
    expect(small.stderr).toContain('--memory 512MiB: ENOMEM, run would need about 1.3 GiB');
  }, timeoutAbove(CLI_MS * 4));

  it('a guest within the limit runs', () => {
    const r = refused(['run', '--memory', '256MiB', '--iterations', '1', '--seed', '1'], '1GiB');
    expect(r.status, r.stderr).toBe(0);
  }, timeoutAbove(CLI_MS));

  it.runIf(totalmem() < estimateGuestBytes(128 * GiB))('without an override, the limit is the machine\'s', () => {
    const r = refused(['run', '--memory', '128GiB', '--memslots', '64']);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/ENOMEM, run would need about 269\.1 GiB .* more than the limit of [\d.]+ GiB \(90% of the [\d.]+ GiB available now of [\d.]+ GiB; DIRTYRING_MEMORY_LIMIT overrides it\)/);
  }, timeoutAbove(CLI_MS));

  it('a bad override is refused naming the variable', () => {
    const r = refused(['run'], 'lots');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('DIRTYRING_MEMORY_LIMIT lots: EINVAL');
  }, timeoutAbove(CLI_MS));
});
