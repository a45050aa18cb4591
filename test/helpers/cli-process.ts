/** The CLI as a live child process: wait for a line, send it a signal, wait for its exit — every wait bounded. */
import { type ChildProcess, spawn } from 'node:child_process';
import { BIN, ROOT } from './cli.js';

export interface CliExit {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export class CliProcess {
  private readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  private readonly exited: Promise<CliExit>;

  constructor(args: readonly string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d: Buffer) => (this.stdout += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => {
      this.child.on('close', (status, signal) => resolve({ status, signal, stdout: this.stdout, stderr: this.stderr }));
    });
  }

  /** Resolves once stdout or stderr matches `pattern`; rejects (and kills the child) after `timeoutMs`. */
  async waitFor(pattern: RegExp, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.stdout) && !pattern.test(this.stderr)) {
      if (this.child.exitCode !== null) throw new Error(`the CLI exited (${this.child.exitCode}) before printing ${pattern}\nstderr:\n${this.stderr}`);
      if (Date.now() > deadline) {
        this.child.kill('SIGKILL');
        throw new Error(`the CLI did not print ${pattern} within ${timeoutMs} ms\nstderr:\n${this.stderr}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig);
  }

  /** The exit, within `timeoutMs` (then the child is killed and this rejects). */
  async exit(timeoutMs: number): Promise<CliExit> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.child.kill('SIGKILL');
        reject(new Error(`the CLI did not exit within ${timeoutMs} ms\nstderr:\n${this.stderr}`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.exited, late]);
    } finally {
      clearTimeout(timer);
    }
  }
}
