/** What every suite receives. */
import type { Reporter } from './report.js';

export interface SuiteContext {
  /** `--quick`: fewer repeats and smaller sizes, the whole run under two minutes. */
  readonly quick: boolean;
  readonly reporter: Reporter;
  /** The repository root (for native/ and .build/). */
  readonly root: string;
  /** Progress to stderr (stdout carries only the table). */
  log(message: string): void;
}

export interface Suite {
  readonly id: string;
  readonly title: string;
  run(ctx: SuiteContext): Promise<void>;
}
