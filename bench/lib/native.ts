/**
 * The native sides of the bench, compiled with the machine's gcc into the gitignored
 * .build/native/ when missing or older than their source, and driven over stdin/stdout one
 * command per line (protocol at the top of each C file):
 *  - native/kvm-bench.c: the real kernel's ioctls (needs /dev/kvm);
 *  - native/log-native.c: the emulator's reset / GET / CLEAR written in C over the emulator's
 *    data layout (needs gcc only).
 * Every answer is awaited with a timeout; the process is killed if it stops answering.
 */
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, renameSync, statSync, constants as fsConstants } from 'node:fs';
import { arch, platform } from 'node:os';
import { dirname, join } from 'node:path';
import { BenchTimeoutError } from './timing.js';

/** The programs under native/ that the bench compiles. */
export type NativeProgram = 'kvm-bench' | 'log-native';

/** null when gcc can build the native baseline here, else why not. */
export function gccUnavailableReason(): string | null {
  const gcc = spawnSync('gcc', ['--version'], { encoding: 'utf8' });
  if (gcc.error || gcc.status !== 0) return `gcc is not available (${gcc.error?.message ?? `exit ${gcc.status}`})`;
  return null;
}

/** null when the kernel side can run here, else why not. */
export function kernelUnavailableReason(): string | null {
  if (platform() !== 'linux') return `not Linux (${platform()})`;
  if (arch() !== 'x64') return `the bench guest is x86 code; this machine is ${arch()}`;
  try {
    closeSync(openSync('/dev/kvm', fsConstants.O_RDWR));
  } catch (e) {
    return `/dev/kvm cannot be opened read-write (${(e as Error).message})`;
  }
  return gccUnavailableReason();
}

/** Build .build/native/<program> unless it is newer than its source; returns its path. */
export function buildNative(root: string, program: NativeProgram): string {
  const src = join(root, 'native', `${program}.c`);
  const bin = join(root, '.build', 'native', program);
  if (existsSync(bin) && statSync(bin).mtimeMs >= statSync(src).mtimeMs) return bin;
  mkdirSync(dirname(bin), { recursive: true });
  const tmp = `${bin}.${process.pid}.tmp`;
  const r = spawnSync('gcc', ['-O2', '-std=gnu11', '-Wall', '-Wextra', '-o', tmp, src], { encoding: 'utf8' });
  if (r.error) throw new Error(`${program}: cannot run gcc: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${program}: gcc failed on ${src}:\n${r.stderr}`);
  renameSync(tmp, bin);
  return bin;
}

/** Build .build/native/kvm-bench (see buildNative). */
export function buildKvmBench(root: string): string {
  return buildNative(root, 'kvm-bench');
}

export class KvmBenchProcess {
  private readonly child: ChildProcessWithoutNullStreams;
  private buffered = '';
  private readonly lines: string[] = [];
  private waiter: (() => void) | null = null;
  private stderr = '';
  private exited = false;

  constructor(
    binary: string,
    private readonly label = 'kvm-bench',
  ) {
    this.child = spawn(binary, [], { stdio: ['pipe', 'pipe', 'pipe'] });
    // Writing to a child that died raises EPIPE on stdin; readLine reports the exit instead.
    this.child.stdin.on('error', () => {});
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (chunk: string) => {
      this.buffered += chunk;
      let nl: number;
      while ((nl = this.buffered.indexOf('\n')) >= 0) {
        this.lines.push(this.buffered.slice(0, nl));
        this.buffered = this.buffered.slice(nl + 1);
      }
      this.waiter?.();
    });
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.child.on('exit', () => {
      this.exited = true;
      this.waiter?.();
    });
  }

  /** The next line of output, at most `timeoutMs` away. */
  async readLine(timeoutMs: number, what: string): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length === 0) {
      if (this.exited) throw new Error(`${this.label} exited while ${what}${this.stderr ? `: ${this.stderr.trim()}` : ''}`);
      const left = deadline - Date.now();
      if (left <= 0) {
        this.child.kill('SIGKILL');
        throw new BenchTimeoutError(`${this.label}: ${what}`, timeoutMs);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = null;
    }
    const line = this.lines.shift()!;
    if (line.startsWith('fatal')) throw new Error(`${this.label}: ${line}`);
    return line;
  }

  /** Send one command; returns the numbers of its `ok ...` answer. */
  async command(cmd: string, timeoutMs = 60_000): Promise<number[]> {
    this.child.stdin.write(`${cmd}\n`);
    const line = await this.readLine(timeoutMs, `answering "${cmd}"`);
    const parts = line.split(' ');
    if (parts[0] !== 'ok') throw new Error(`${this.label}: "${cmd}" answered "${line}"`);
    return parts.slice(1).map(Number);
  }

  async close(): Promise<void> {
    if (this.exited) return;
    this.child.stdin.end('quit\n');
    const deadline = Date.now() + 5000;
    while (!this.exited && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    if (!this.exited) this.child.kill('SIGKILL');
  }
}
