/**
 * One progress line that redraws itself on a terminal (carriage return, no newline) and
 * becomes plain, complete lines when the output is not a terminal (a pipe, a CI log).
 */
interface LineWriter {
  write(s: string): unknown;
  readonly isTTY?: boolean;
}

const BAR_WIDTH = 28;

export function bar(done: number, total: number, width = BAR_WIDTH): string {
  const frac = total > 0 ? Math.min(1, done / total) : 1;
  const full = Math.round(frac * width);
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${(frac * 100).toFixed(0).padStart(3)}%`;
}

export class ProgressLine {
  private drawn = 0;

  constructor(private readonly out: LineWriter) {}

  get interactive(): boolean {
    return this.out.isTTY === true;
  }

  /** Redraw the transient line (terminals only; elsewhere nothing is printed). */
  update(text: string): void {
    if (!this.interactive) return;
    const pad = this.drawn > text.length ? ' '.repeat(this.drawn - text.length) : '';
    this.out.write(`\r${text}${pad}`);
    this.drawn = text.length;
  }

  /** Replace the transient line by a permanent one. */
  line(text: string): void {
    if (this.interactive && this.drawn > 0) {
      this.out.write(`\r${' '.repeat(this.drawn)}\r`);
      this.drawn = 0;
    }
    this.out.write(`${text}\n`);
  }
}
