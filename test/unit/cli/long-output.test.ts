/** The text formatters take outputs of any length: no spread of a whole column into arguments. */
import { describe, expect, it } from 'vitest';
import { stepLines } from '../../../src/cli/fidelity-format.js';
import { table, widest } from '../../../src/cli/format.js';
import type { Scenario, StepResult } from '../../../src/fidelity/scenario.js';

const STEPS = 150_000;

describe('long outputs', () => {
  it('stepLines formats a 150 000-step scenario, one line per step', () => {
    const scenario = {
      name: 'long',
      path: 'emulated',
      steps: Array.from({ length: STEPS }, () => ({ op: 'reset' })),
    } as unknown as Scenario;
    const results: StepResult[] = Array.from({ length: STEPS }, (_, i) => ({ rc: 0, count: i }));
    const lines = stepLines(scenario, results);
    expect(lines).toHaveLength(STEPS);
    expect(lines[STEPS - 1]).toBe(`  ${STEPS - 1}  reset  count ${STEPS - 1}`);
  });
  it('table pads a column of 300 000 rows to its widest cell', () => {
    const rows = Array.from({ length: 300_000 }, (_, i) => [String(i), 'x']);
    const lines = table(['n', 'v'], rows).split('\n');
    expect(lines).toHaveLength(300_002);
    expect(lines[2]).toBe('0       x');
    expect(widest(['a', 'abc'], 2)).toBe(3);
  });
});
