/**
 * `dirtyring replay`: one fidelity scenario, run deterministically by the emulator, or by the
 * native runner on the real /dev/kvm, or by both and compared (the kernel is right).
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '../base/config-error.js';
import type { Scenario, StepResult } from '../fidelity/scenario.js';
import { type Comparison, runOnKernel } from '../fidelity/suite.js';
import { header, kernelVerdict, stepLines } from './fidelity-format.js';
import { compareOrConfigError, emulate, readScenarioFile } from './fidelity-input.js';

export const REPLAY_USAGE = `usage: dirtyring replay SCENARIO.json [--engine emulator|kvm] [--compare] [--json]

Run one fidelity scenario and print the result of every step.

  --engine emulator|kvm   the emulator, deterministically in one thread (default), or the real
                          /dev/kvm through native/kvm-runner.c (built with gcc at first use)
  --compare               run both engines and print where they differ (the kernel is right)
  --json                  print one JSON object instead of text
  -h, --help              this help

"Not comparable here": the real kernel can only check scenarios whose write path ("path") is
the one this host's KVM really uses. On a host that emulates every guest instruction (every
store logged), a "fault" scenario — the hardware fault path, one entry per page until reset —
is not run on the kernel, and is never reported as a match.

Exit status: 0 ran (with --compare: the engines agree), 1 the engines differ or the kernel run
failed, 2 bad input (unreadable or invalid scenario, bad option), 3 not comparable here or
/dev/kvm unavailable.`;

/** Exit status when the kernel cannot judge the scenario here. */
const EXIT_NOT_COMPARED = 3;

type Engine = 'emulator' | 'kvm';

interface ReplayArgs {
  readonly file: string;
  readonly engine: Engine;
  readonly compare: boolean;
  readonly json: boolean;
}

export async function replayCommand(argv: string[]): Promise<number> {
  const args = parseReplayArgs(argv);
  if (args === 'help') {
    console.log(REPLAY_USAGE);
    return 0;
  }
  const s = readScenarioFile(args.file, 'scenario');
  return args.compare ? compareBoth(s, args) : runOne(s, args);
}

function parseReplayArgs(argv: string[]): ReplayArgs | 'help' {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      engine: { type: 'string' },
      compare: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: true,
  });
  if (values.help) return 'help';
  if (positionals.length !== 1) {
    throw new ConfigError('scenario', positionals.join(' ') || '(none)', 'EINVAL', 'give exactly one scenario file');
  }
  const engine = values.engine ?? 'emulator';
  if (engine !== 'emulator' && engine !== 'kvm') {
    throw new ConfigError('--engine', engine, 'EINVAL', 'the engine must be emulator or kvm');
  }
  if (values.compare && values.engine !== undefined) {
    throw new ConfigError('--engine', engine, 'EINVAL', '--compare runs both engines; leave --engine out');
  }
  return { file: positionals[0]!, engine, compare: values.compare === true, json: values.json === true };
}

/** --compare: both engines, and where they differ. */
async function compareBoth(s: Scenario, args: ReplayArgs): Promise<number> {
  const c = await compareOrConfigError(s, args.file);
  const { kernel, differences } = c;
  const status = kernel.kind === 'results' ? (differences.length === 0 ? 0 : 1) : kernel.kind === 'failed' ? 1 : EXIT_NOT_COMPARED;
  if (args.json) console.log(JSON.stringify(comparisonJson(s, args.file, c, status)));
  else printComparison(s, args.file, c);
  return status;
}

function comparisonJson(s: Scenario, file: string, { emulator, kernel, differences }: Comparison, status: number): object {
  return {
    scenario: s.name,
    file,
    path: s.path,
    match: status === 0,
    kernel: kernel.kind === 'results' ? (differences.length === 0 ? 'match' : 'differ') : kernel.kind,
    ...(kernel.kind !== 'results' ? { reason: kernel.reason } : {}),
    differences,
    ...(kernel.kind === 'results' ? { kernelAttempts: kernel.attempts ?? 1 } : {}),
    emulator,
    kvm: kernel.kind === 'results' ? kernel.results : null,
  };
}

function printComparison(s: Scenario, file: string, { kernel, differences }: Comparison): void {
  console.log(header(s, file));
  if (kernel.kind === 'results') {
    if (differences.length === 0) {
      const reruns = (kernel.attempts ?? 1) > 1 ? `; the kernel needed ${kernel.attempts} runs: host timing moved an exit` : '';
      console.log(`emulator vs kernel: match (${s.steps.length} steps agree${reruns})`);
    } else {
      console.log(`emulator vs kernel: DIFFER in ${differences.length} of ${s.steps.length} steps (expected = the real kernel, got = the emulator)`);
      for (const d of differences) console.log(`  ${d}`);
    }
  } else if (kernel.kind === 'notComparable') {
    console.log(`emulator vs kernel: ${kernel.reason}`);
  } else {
    console.log(`emulator vs kernel: ${kernelVerdict(kernel, differences)}`);
    if (kernel.kind === 'failed' && kernel.reason.includes('\n')) console.error(kernel.reason);
  }
}

/** One engine: every step's result. */
async function runOne(s: Scenario, { file, engine, json }: ReplayArgs): Promise<number> {
  let results: StepResult[];
  if (engine === 'emulator') {
    results = emulate(s, file);
  } else {
    const kernel = await runOnKernel(s);
    if (kernel.kind !== 'results') {
      const reason = kernel.kind === 'unavailable' ? `kvm unavailable: ${kernel.reason}` : kernel.reason;
      if (json) console.log(JSON.stringify({ scenario: s.name, file, path: s.path, engine, results: null, [kernel.kind]: kernel.reason }));
      else {
        console.log(header(s, file));
        console.log(kernel.kind === 'failed' ? `kvm run FAILED: ${reason}` : reason);
      }
      return kernel.kind === 'failed' ? 1 : EXIT_NOT_COMPARED;
    }
    results = kernel.results;
  }
  if (json) {
    console.log(JSON.stringify({ scenario: s.name, file, path: s.path, engine, results }));
    return 0;
  }
  console.log(`${header(s, file)}, engine ${engine}`);
  console.log(stepLines(s, results).join('\n'));
  return 0;
}
