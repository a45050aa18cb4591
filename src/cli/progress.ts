/**
 * Campaign progress on stderr: a bar redrawn in place on a terminal, plain lines (every tenth
 * of the campaign, or every few seconds) when stderr is a file or a pipe.
 */
export interface ProgressCounts {
  readonly forbidden: number;
  readonly error: number;
  readonly interesting: number;
}

const BAR = 24;
const REDRAW_MS = 100;
const PLAIN_EVERY_MS = 5000;

export class Progress {
  private lastDraw = 0;
  private lastPlainStep = -1;
  private drawn = false;

  constructor(
    private readonly stream: { write(s: string): unknown; isTTY?: boolean },
    private readonly label: string,
    private readonly total: number | null,
    private readonly startedAt = performance.now(),
  ) {}

  private get tty(): boolean {
    return this.stream.isTTY === true;
  }

  update(done: number, c: ProgressCounts): void {
    const t = performance.now();
    const counts = `forbidden ${c.forbidden}, error ${c.error}, interesting ${c.interesting}`;
    const secs = ((t - this.startedAt) / 1000).toFixed(1);
    if (this.tty) {
      if (t - this.lastDraw < REDRAW_MS && done !== this.total) return;
      this.lastDraw = t;
      const frac = this.total ? Math.min(1, done / this.total) : 0;
      const bar = this.total ? `[${'#'.repeat(Math.round(frac * BAR)).padEnd(BAR, '.')}] ${done}/${this.total}` : `${done} runs`;
      this.stream.write(`\r${this.label} ${bar}  ${counts}  ${secs}s \x1b[K`);
      this.drawn = true;
      return;
    }
    const step = this.total ? Math.floor((done * 10) / this.total) : -1;
    if (step !== this.lastPlainStep || t - this.lastDraw >= PLAIN_EVERY_MS) {
      this.lastPlainStep = step;
      this.lastDraw = t;
      this.stream.write(`${this.label}: ${done}${this.total ? `/${this.total}` : ''} runs, ${counts} (${secs}s)\n`);
    }
  }

  finish(): void {
    if (this.tty && this.drawn) this.stream.write('\n');
  }
}
