/**
 * Fuzzing the parsers of everything a user hands the tool: the command options (run, migrate,
 * dirty-rate, stress), fidelity scenario files, and controlled schedule files. Every input is
 * either accepted, giving a configuration whose numbers are exact, or refused with the
 * documented error (a ConfigError naming the parameter and an errno; a scenario's `scenario:
 * <field>: ...`), never a TypeError, RangeError or stack overflow. Valid files are mutated at
 * random paths, so that most inputs are almost right.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { Errno } from '../../../src/abi/errno.js';
import { ConfigError } from '../../../src/base/config-error.js';
import { Prng } from '../../../src/base/prng.js';
import { GUEST_OPTIONS, PACE_OPTIONS, guestInput, paceInput, vmInput } from '../../../src/cli/cli-args.js';
import { parseStressOptions } from '../../../src/cli/stress-options.js';
import { ScenarioError, runScenarioOnEmulator } from '../../../src/fidelity/emulator-engine.js';
import { parseScenario } from '../../../src/fidelity/scenario.js';
import { validateRunConfig } from '../../../src/harness/run-config.js';
import { generateScenario, rosterOf } from '../../../src/stress/controlled/scenario.js';
import { type TraceEntry, formatTrace, traceHash } from '../../../src/stress/controlled/trace.js';
import { readTraceFile } from '../../../src/stress/schedule-file.js';
import { validateDirtyRateConfig } from '../../../src/userspace/migration/dirty-rate-config.js';
import { validateMigrationConfig } from '../../../src/userspace/migration/migration-config.js';
import { fuzzParams } from '../../helpers/fuzz.js';

const dir = mkdtempSync(join(tmpdir(), 'dirtyring-parser-fuzz-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The documented refusal of a command option or a file: a ConfigError with a real errno. */
function expectConfigError(e: unknown, input: unknown): void {
  if (!(e instanceof ConfigError)) throw new Error(`${fc.stringify(input)} threw ${String(e)}`);
  expect(Object.keys(Errno), e.message).toContain(e.errno);
  expect(e.param.length, e.message).toBeGreaterThan(0);
}

/** Every number of a configuration is exact: no NaN, Infinity or integer past 2^53 slipped in. */
function expectExactNumbers(config: object, where: string): void {
  for (const [k, v] of Object.entries(config)) {
    if (typeof v === 'number') expect(Number.isFinite(v) && (!Number.isInteger(v) || Number.isSafeInteger(v)), `${where}.${k} = ${v}`).toBe(true);
  }
}

// ------------------------------------------------------------------------------------------
// Command options

/** Option values as a user types them: numbers, sizes, near-misses and junk. */
const optionText = fc.oneof(
  // Integers at the edges of what each option means (sizes in entries or pages whose bytes pass 2^32, ...).
  { arbitrary: fc.constantFrom('0', '-1', '1', '64', '255', '256', '1000', '65536', '131072', '268435712', '2147483648', '4294967296', '99999999999999999999'), weight: 5 },
  { arbitrary: fc.constantFrom('1e3', '0x10', ' 8 ', '', '1MiB', '64MiB', '1GiB', '1.5KiB', '128GiB', '9PiB', 'ring', 'bitmap', 'clear', 'on', 'off', 'random', 'hotset', ',', 'no-tlb-flush', 'no-tlb-flush,legacy-get-no-protect', 'sc', 'x86', 'arm64'), weight: 1 },
  { arbitrary: fc.integer().map(String), weight: 1 },
  { arbitrary: fc.string({ maxLength: 6 }), weight: 1 },
);

/** A few options (most runs give two or three, so that one bad value is not hidden by another). */
function optionValues(specs: Record<string, { readonly type: string }>): fc.Arbitrary<Record<string, string | boolean | undefined>> {
  const names = Object.keys(specs);
  const one = fc.constantFrom(...names).chain((name) => (specs[name]!.type === 'boolean' ? fc.boolean() : optionText).map((v) => [name, v] as const));
  return fc.array(one, { maxLength: 3 }).map((pairs) => Object.fromEntries(pairs));
}

/** An accepted ring size is one the kernel builds as asked: a power of two of 256..65536 entries. */
function expectRealRing(config: object): void {
  const c = config as { log?: string; ringEntries?: number };
  if (c.log !== 'ring' || c.ringEntries === undefined) return;
  expect(c.ringEntries >= 256 && c.ringEntries <= 65536 && (c.ringEntries & (c.ringEntries - 1)) === 0, `ringEntries ${c.ringEntries}`).toBe(true);
}

function acceptsOrRefuses(build: () => object, input: unknown, where: string): void {
  let config: object;
  try {
    config = build();
  } catch (e) {
    expectConfigError(e, input);
    return;
  }
  expectExactNumbers(config, where);
  expectRealRing(config);
}

describe('command options', () => {
  it('run: any option values give an exact configuration or a ConfigError', () => {
    fc.assert(
      fc.property(optionValues(GUEST_OPTIONS), (values) => acceptsOrRefuses(() => validateRunConfig(guestInput(values)), values, 'run')),
      fuzzParams(1800, 2000),
    );
  });
  it('migrate: any option values give an exact configuration or a ConfigError', () => {
    fc.assert(
      fc.property(optionValues({ ...GUEST_OPTIONS, ...PACE_OPTIONS }), (values) =>
        acceptsOrRefuses(() => validateMigrationConfig({ ...guestInput(values), ...paceInput(values) }), values, 'migrate'),
      ),
      fuzzParams(1801, 1000),
    );
  });
  it('dirty-rate: any option values give an exact configuration or a ConfigError', () => {
    fc.assert(
      fc.property(optionValues(PACE_OPTIONS), optionValues({ vcpus: { type: 'string' }, memory: { type: 'string' }, seed: { type: 'string' } }), (pace, vm) =>
        acceptsOrRefuses(() => validateDirtyRateConfig({ ...vmInput(vm), ...paceInput(pace) }), [pace, vm], 'dirty-rate'),
      ),
      fuzzParams(1802, 300),
    );
  });
  it('stress: any argument list parses, or is refused by a ConfigError or parseArgs (both exit 2)', () => {
    const flag = fc.constantFrom(
      '--runs', '--time-budget', '--mode', '--strategy', '--pct-depth', '--preemption-bound', '--mutant', '--log', '--shard', '--seed', '--replay',
      '--trace', '--no-shrink', '--check-determinism', '--coverage-guided', '--min-coverage', '--json', '--memory-model', '--wmm-history',
      '--stale-rate', '--stale-depth', '--stale-bound', '--ring-cap', '--resetter', '--self-reap', '--matrix', '--bogus', '-x',
    );
    const argv = fc.array(fc.oneof(flag, optionText, fc.constantFrom('controlled', 'free', 'both', 'dfs', 'pct', '1/2', '3/2', '0/0', '10s', '5m', 'on', 'off')), { maxLength: 8 });
    fc.assert(
      fc.property(argv, (args) => {
        try {
          const o = parseStressOptions(args);
          if (o !== 'help') expectExactNumbers(o, 'stress');
        } catch (e) {
          if (e instanceof TypeError && (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) return;
          expectConfigError(e, args);
        }
      }),
      fuzzParams(1803, 300),
    );
  });
});

// ------------------------------------------------------------------------------------------
// Files: mutations of valid ones

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every path inside a JSON value (array indexes and object keys), the root excluded. */
function paths(v: Json, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  const children: [string | number, Json][] = Array.isArray(v) ? v.map((x, i) => [i, x]) : v !== null && typeof v === 'object' ? Object.entries(v) : [];
  for (const [k, x] of children) {
    out.push([...at, k]);
    paths(x, [...at, k], out);
  }
  return out;
}

/** One mutation: which path, and candidate values (one of the same type as the original, or a wild one). */
type Mutation = readonly [pick: number, sameType: boolean, n: number, text: string, wild: Json | undefined];

/** `doc` with the value at the mutation's path replaced (or deleted, for a wild `undefined`). */
function mutate(doc: Json, [pick, sameType, n, text, wild]: Mutation): Json {
  const all = paths(doc);
  if (all.length === 0) return wild ?? null;
  const path = all[pick % all.length]!;
  const copy = structuredClone(doc) as Record<string | number, Json>;
  let parent = copy;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, Json>;
  const last = path[path.length - 1]!;
  const old = parent[last];
  let value: Json | undefined = wild;
  if (sameType) {
    if (typeof old === 'number') value = n;
    else if (typeof old === 'boolean') value = !old;
    else if (typeof old === 'string') value = text;
    else if (Array.isArray(old)) value = [...old, n];
  }
  if (value === undefined && !Array.isArray(parent)) delete parent[last];
  else parent[last] = value ?? null;
  return copy;
}

const nearNumber = fc.oneof(
  fc.constantFrom(-1, 0, 1, 2, 3, 31, 63, 64, 65, 100, 192, 223, 225, 255, 256, 4096, 32764, 65535, 65536, 2 ** 31, 2 ** 32, 2 ** 53, 1e300, 0.5),
  fc.integer({ min: -10, max: 300 }),
);
const wildJson: fc.Arbitrary<Json | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom<Json>('', 'x', '18446744073709551616', '4096', true, null, [], {}, [0], [-1, 70000]),
  fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>,
);
const mutations = fc.array(
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 3 }).map((k) => k > 0), nearNumber, fc.constantFrom('fault', 'emulated', 'write', 'run', 'reset', 'x', ''), wildJson),
  { minLength: 1, maxLength: 3 },
);

const SCENARIO_DIR = join(import.meta.dirname, '../../scenarios');
const scenarios: Json[] = readdirSync(SCENARIO_DIR)
  .filter((f) => f.endsWith('.json') && !f.endsWith('.expected.json'))
  .map((f) => JSON.parse(readFileSync(join(SCENARIO_DIR, f), 'utf8')) as Json);

describe('fidelity scenario files', () => {
  it('a mutated scenario parses and runs on the emulator, or is refused with the field named', () => {
    fc.assert(
      fc.property(fc.nat(scenarios.length - 1), mutations, (which, muts) => {
        let doc: Json = scenarios[which] ?? null;
        for (const m of muts) doc = mutate(doc, m);
        let parsed;
        try {
          parsed = parseScenario(doc);
        } catch (e) {
          if (!(e instanceof Error) || e.constructor !== Error || !e.message.startsWith('scenario: ')) throw new Error(`parseScenario(${fc.stringify(doc)}) threw ${String(e)}`);
          return;
        }
        try {
          runScenarioOnEmulator(parsed);
        } catch (e) {
          if (!(e instanceof ScenarioError)) throw new Error(`the emulator crashed on ${fc.stringify(doc)}: ${String(e)}`);
        }
      }),
      fuzzParams(1810, 500),
    );
  });
});

describe('controlled schedule files', () => {
  const scenario = generateScenario(new Prng(5), { shape: 'micro', log: 'ring', vcpus: 2 });
  const trace: TraceEntry[] = [[0, 100, 0, 0], [1, 100, 0, 0], [2, 100, 0, 0], [1, 2, 262144, 1]];
  const valid = JSON.parse(
    JSON.stringify({
      format: 'dirtyring-schedule/1', mode: 'controlled', seed: 9, strategy: 'random', mutants: ['no-tlb-flush'], memoryModel: 'sc', wmmHistory: 8,
      scenario, choices: trace.map((e) => e[0]), steps: trace.length, outcome: 'clean', outcomes: [], traceHash: traceHash(trace), schedule: '',
      trace: formatTrace(trace, rosterOf(scenario)),
    }),
  ) as { [k: string]: Json };

  it('the unmutated file reads back', () => {
    const path = join(dir, 'valid.json');
    writeFileSync(path, JSON.stringify(valid));
    expect(readTraceFile(path).mode).toBe('controlled');
  });
  it('a mutated schedule file is read, or refused with a ConfigError naming the field', () => {
    fc.assert(
      fc.property(mutations, fc.boolean(), (muts, garble) => {
        let doc: Json = valid;
        for (const m of muts) doc = mutate(doc, m);
        const path = join(dir, 'mutated.json');
        const text = JSON.stringify(doc);
        writeFileSync(path, garble ? text.slice(0, Math.floor(text.length / 2)) : text);
        try {
          readTraceFile(path);
        } catch (e) {
          expectConfigError(e, doc);
        }
      }),
      fuzzParams(1811, 300),
    );
  });
});
