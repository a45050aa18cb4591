/**
 * Ctrl-C and SIGTERM during a command: the first one asks the work to stop (a campaign ends
 * its run under way, a run its iteration, a migration its round) so that what was done is
 * still printed and reported; a second one exits at once. The exit status is the shell's for
 * a death by that signal, 128 + its number, so scripts see the interruption.
 */

export type StopSignal = 'SIGINT' | 'SIGTERM';

const EXIT_STATUS: Readonly<Record<StopSignal, number>> = { SIGINT: 130, SIGTERM: 143 };

export class Interrupt {
  private readonly controller = new AbortController();
  private received: StopSignal | null = null;
  private readonly handlers: [StopSignal, () => void][];

  constructor(private readonly onFirst: (signal: StopSignal) => void) {
    this.handlers = (['SIGINT', 'SIGTERM'] as const).map((sig) => [sig, () => this.receive(sig)]);
    for (const [sig, h] of this.handlers) process.on(sig, h);
  }

  /** Aborted at the first signal. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The signal received, or null. */
  get stopSignal(): StopSignal | null {
    return this.received;
  }

  get requested(): boolean {
    return this.received !== null;
  }

  /** 130 after SIGINT, 143 after SIGTERM. */
  exitStatus(): number {
    return this.received === null ? 0 : EXIT_STATUS[this.received];
  }

  dispose(): void {
    for (const [sig, h] of this.handlers) process.off(sig, h);
  }

  private receive(sig: StopSignal): void {
    if (this.received !== null) {
      process.stderr.write(`\n${sig} again: exiting now, nothing more is written\n`);
      process.exit(EXIT_STATUS[sig]);
    }
    this.received = sig;
    this.onFirst(sig);
    this.controller.abort();
  }
}

/** Runs `work` with an Interrupt installed (a note on stderr at the first signal), removed after. */
export async function withInterrupt<T>(what: string, work: (interrupt: Interrupt) => Promise<T>): Promise<T> {
  const interrupt = new Interrupt((sig) => process.stderr.write(`\n${sig}: stopping after the ${what} under way (again to exit at once)\n`));
  try {
    return await work(interrupt);
  } finally {
    interrupt.dispose();
  }
}
