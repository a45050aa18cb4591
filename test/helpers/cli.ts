/** `node bin/dirtyring.js …` in a child process, bounded, as a user runs it. */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { timeoutAbove } from './watchdog.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = fileURLToPath(new URL('../../bin/dirtyring.js', import.meta.url));

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
export function runCli(args: readonly string[], { timeoutMs, env }: { timeoutMs: number; env?: NodeJS.ProcessEnv }): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: timeoutMs, ...(env && { env: { ...process.env, ...env } }) });
  if (r.error) {
    throw new Error(`dirtyring ${args.join(' ')}: ${r.error.message} (bound ${timeoutMs} ms)\nstderr:\n${r.stderr ?? ''}`, { cause: r.error });
  }
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `dirtyring …args` with one bound for every call of a test file. */
export function cliWithin(timeoutMs: number): (...args: string[]) => CliResult {
  return (...args) => runCli(args, { timeoutMs });
}

/** The JSON object on the last line of stdout. */
export function lastJson(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
}

/** One bad command line: its arguments, and what its error line must say (parameter, value, errno, why). */
export type BadInput = [args: string[], message: string];

/**
 * The bad-input contract of `dirtyring <command>`, one test per case: exit status 2 and a
 * single stderr line that names the parameter and the errno the kernel would give.
 */
export function badInputTests(command: string, cases: BadInput[], timeoutMs: number): void {
  it.each(cases)('%j', (args, message) => {
    const r = runCli([command, ...args], { timeoutMs });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(message);
  }, timeoutAbove(timeoutMs));
}
