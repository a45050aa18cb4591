/** The `dirtyring` command line: dispatch to subcommands, map errors to exit status. */
import { ConfigError } from '../base/config-error.js';
import { joinNegativeValues, parseArgsMessage } from './cli-args.js';
import { isKvmError } from '../abi/errno.js';
import { RUN_USAGE, runCommand } from './run-command.js';
import { conformanceCommand } from './conformance-command.js';
import { replayCommand } from './replay-command.js';
import { dirtyRateCommand } from './dirty-rate-command.js';
import { migrateCommand } from './migrate-command.js';
import { stressCommand } from './stress-command.js';
import { reportCommand } from './report-command.js';
import { HarvesterLoadError } from '../harvester/load-harvester.js';
import { buildHarvesterCommand } from './build-harvester-command.js';

const USAGE = `usage: dirtyring <command> [options]

commands:
  run      run vCPU threads that dirty memory, collect it through the dirty ring, the bitmap
           or manual-protect CLEAR, and verify no dirty page is lost
  replay   run one fidelity scenario on the emulator or the real /dev/kvm, or compare both
  conformance
           run every fidelity scenario on both engines and tabulate the differences
  migrate  live-migrate a running guest (pre-copy) and verify the copy byte for byte
  dirty-rate
           measure the guest's dirty rate (by ring, by bitmap, or by page sampling)
  stress   many seeded runs (real threads or a controlled scheduler), known-bug mutants,
           outcome tables, replay and shrinking of failing schedules
  report merge
           merge the JSON and JUnit reports of a campaign's shards into one outcome table
  build-harvester
           compile a C harvester (include/dirtyring.h) to WebAssembly for --harvester

Run \`dirtyring <command> --help\` for a command's options.

${RUN_USAGE}`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...given] = argv;
  const rest = joinNegativeValues(given);
  try {
    switch (command) {
      case 'run':
        return await runCommand(rest);
      case 'replay':
        return await replayCommand(rest);
      case 'conformance':
        return await conformanceCommand(rest);
      case 'migrate':
        return await migrateCommand(rest);
      case 'dirty-rate':
        return await dirtyRateCommand(rest);
      case 'stress':
        return await stressCommand(rest);
      case 'report':
        return await reportCommand(rest);
      case 'build-harvester':
        return buildHarvesterCommand(rest);
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        console.log(USAGE);
        return command === undefined ? 2 : 0;
      default:
        console.error(`dirtyring: unknown command '${command}'\n\n${USAGE}`);
        return 2;
    }
  } catch (e) {
    if (e instanceof ConfigError || e instanceof HarvesterLoadError) {
      console.error(e.message);
      return 2;
    }
    if (isKvmError(e)) {
      console.error(`${e.param ? `${e.param}: ` : ''}${e.message}`);
      return 2;
    }
    const parseError = parseArgsMessage(e);
    if (parseError !== null) {
      console.error(parseError);
      return 2;
    }
    throw e;
  }
}

/** 128 + SIGINT / SIGTERM: the command was interrupted and has printed and written what it made. */
const INTERRUPTED_STATUSES = [130, 143];

const exitCode = await main(process.argv.slice(2));
process.exitCode = exitCode;
// An abandoned run's timers would keep the process up for nothing: its results are written
// (synchronously) already.
if (INTERRUPTED_STATUSES.includes(exitCode)) process.exit(exitCode);
