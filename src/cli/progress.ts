/**
 * Campaign progress on stderr: a bar redrawn in place on a terminal, plain lines (every tenth
 * of the campaign, or every few seconds) when stderr is a file or a pipe. The drawing itself is
 * progress-bar.ts's, shared with `migrate`, so both commands redraw and clear lines alike.
 */
import { msAsSeconds } from './format.js';
import { ProgressLine, bar } from './progress-bar.js';

export interface ProgressCounts {
  readonly forbidden: number;
  readonly error: number;
  readonly interesting: number;
}

/** On a terminal, the bar is redrawn at most this often: short runs come faster than a redraw is worth. */
const REDRAW_MS = 100;
/** Off a terminal, a line at least this often, so that a campaign without a run count shows it is alive. */
const PLAIN_EVERY_MS = 5000;
/** Off a terminal, a line at every tenth of the campaign. */
const PLAIN_STEPS = 10;

export class Progress {
  private readonly line: ProgressLine;
  private lastDraw = 0;
  private lastPlainStep = -1;
  /** The last bar drawn on a terminal, kept as a permanent line by finish(). */
  private lastBar: string | null = null;

  constructor(
    stream: { write(s: string): unknown; readonly isTTY?: boolean },
    private readonly label: string,
    private readonly total: number | null,
    private readonly startedAt = performance.now(),
  ) {
    this.line = new ProgressLine(stream);
  }

  update(done: number, c: ProgressCounts): void {
    const t = performance.now();
    const counts = `forbidden ${c.forbidden}, error ${c.error}, interesting ${c.interesting}`;
    const secs = msAsSeconds(t - this.startedAt, 1);
    if (this.line.interactive) {
      // Redrawing on every run would cost more than short runs themselves.
      if (t - this.lastDraw < REDRAW_MS && done !== this.total) return;
      this.lastDraw = t;
      const where = this.total ? `${bar(done, this.total)} ${done}/${this.total}` : `${done} runs`;
      this.lastBar = `${this.label} ${where}  ${counts}  ${secs}s`;
      this.line.update(this.lastBar);
      return;
    }
    const step = this.total ? Math.floor((done * PLAIN_STEPS) / this.total) : -1;
    if (step !== this.lastPlainStep || t - this.lastDraw >= PLAIN_EVERY_MS) {
      this.lastPlainStep = step;
      this.lastDraw = t;
      this.line.line(`${this.label}: ${done}${this.total ? `/${this.total}` : ''} runs, ${counts} (${secs}s)`);
    }
  }

  finish(): void {
    if (this.lastBar !== null) this.line.line(this.lastBar);
  }
}
