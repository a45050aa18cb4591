/** `node bin/dirtyring.js …` in a child process, bounded, as a user runs it. */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/dirtyring.js', import.meta.url));

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI with `args`. A spawn failure (ETIMEDOUT when it outlives `timeoutMs`, ENOENT…)
 * is thrown naming the command, rather than surfacing later as a null exit status.
 * spawnSync blocks the test's thread, so a test with N runs needs a Vitest timeout above
 * N × timeoutMs (timeoutAbove in watchdog.ts) for this bound to be the one that fails.
 */
export function runCli(args: readonly string[], { timeoutMs }: { timeoutMs: number }): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: timeoutMs });
  if (r.error) {
    throw new Error(`dirtyring ${args.join(' ')}: ${r.error.message} (bound ${timeoutMs} ms)\nstderr:\n${r.stderr ?? ''}`, { cause: r.error });
  }
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The JSON object on the last line of stdout. */
export function lastJson(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
}
