/**
 * Reading a fidelity scenario for `replay` and `conformance`, and running it on the emulator:
 * a file that cannot be read, parsed or run as written is bad input (exit 2), named.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../base/config-error.js';
import { ScenarioError, runScenarioOnEmulator } from '../fidelity/emulator-engine.js';
import { parseScenario } from '../fidelity/scenario.js';
import type { Scenario, StepResult } from '../fidelity/scenario.js';
import { type Comparison, compareEngines } from '../fidelity/suite.js';

export function readScenarioFile(file: string, param: string): Scenario {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(param, file, 'ENOENT', `cannot read the scenario: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text) as unknown;
  } catch (e) {
    throw new ConfigError(param, file, 'EINVAL', `not JSON: ${(e as Error).message}`);
  }
  try {
    return parseScenario(json);
  } catch (e) {
    throw new ConfigError(param, file, 'EINVAL', (e as Error).message);
  }
}

/** A scenario the emulator cannot run as written is bad input: EINVAL naming the file. */
function asConfigError(e: unknown, file: string): unknown {
  return e instanceof ScenarioError ? new ConfigError('scenario', file, 'EINVAL', e.message) : e;
}

/** The emulator's results. */
export function emulate(s: Scenario, file: string): StepResult[] {
  try {
    return runScenarioOnEmulator(s);
  } catch (e) {
    throw asConfigError(e, file);
  }
}

/** Both engines' results and where they differ. */
export async function compareOrConfigError(s: Scenario, file: string): Promise<Comparison> {
  try {
    return await compareEngines(s);
  } catch (e) {
    throw asConfigError(e, file);
  }
}
