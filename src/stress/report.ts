/**
 * Campaign reports for machines: a JSON report with every run (seed, configuration, outcome,
 * trace file of failures) and a JUnit XML file for CI, where each run is a test case (a
 * forbidden outcome a failure, an error outcome an error) and, in mutant campaigns, each
 * mutant is a test case that fails when the mutant was not caught.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { CampaignResult } from './campaign.js';
import type { StressMode } from './stress-mode.js';
import { OUTCOMES } from './outcome.js';
import { writeJsonFile } from './schedule-file.js';

export interface MutantVerdict {
  readonly mutant: string;
  readonly mode: StressMode;
  readonly caught: boolean;
  readonly caughtAtRun: number | null;
  readonly bound: number;
  readonly runs: number;
  readonly outcome: string | null;
  readonly traceFile: string | null;
  /** Set when the mode does not model the mutated code: why (never counted as caught). */
  readonly notApplicable?: string;
  /** Set when a signal stopped the campaign before it caught the mutant or reached its bound. */
  readonly interrupted?: true;
}

export interface MutationScore {
  readonly caught: number;
  readonly total: number;
}

export interface StressReport {
  readonly format: 'dirtyring-stress-report/1';
  readonly startedAt: string;
  readonly command: string[];
  readonly ok: boolean;
  readonly campaigns: CampaignResult[];
  readonly mutants: MutantVerdict[];
  readonly mutationScore: Partial<Record<StressMode, MutationScore>>;
  /** The signal that stopped the command before it made every run (the report is partial), or null. */
  readonly interrupted: 'SIGINT' | 'SIGTERM' | null;
}

/** The CLI's name for writing the report: the same writer as trace files. */
export const writeJsonReport: (path: string, report: StressReport) => void = writeJsonFile;

/** XML 1.0 allows tab, newline and carriage return, and no other control character. */
function xmlChar(c: string): boolean {
  const code = c.charCodeAt(0);
  return code >= 0x20 || code === 0x09 || code === 0x0a || code === 0x0d;
}

function xml(s: string): string {
  return [...s]
    .filter(xmlChar)
    .join('')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

/** JUnit's times: seconds, to the millisecond. */
function seconds(ms: number): string {
  const MS_PER_S = 1000;
  return (ms / MS_PER_S).toFixed(3);
}

function junitXml(report: StressReport): string {
  const suites: string[] = [];
  let tests = 0;
  let failures = 0;
  let errors = 0;
  for (const c of report.campaigns) {
    if (c.mutant !== null) continue; // mutant campaigns are reported per mutant below
    const cases: string[] = [];
    let f = 0;
    let e = 0;
    for (const r of c.records) {
      const name = `run ${r.index} seed ${r.seed}: ${r.config}`;
      const body =
        r.cls === 'forbidden'
          ? `<failure type="${r.outcome}" message="${xml(OUTCOMES[r.outcome].what)}">${xml([r.detail, r.schedule && `schedule: ${r.schedule}`, r.traceFile && `trace: ${r.traceFile}`].filter(Boolean).join('\n'))}</failure>`
          : r.cls === 'error'
            ? `<error type="${r.outcome}" message="${xml(OUTCOMES[r.outcome].what)}">${xml(r.detail ?? '')}</error>`
            : '';
      if (r.cls === 'forbidden') f++;
      if (r.cls === 'error') e++;
      cases.push(
        `    <testcase classname="dirtyring.stress.${c.mode}${c.strategy ? `.${c.strategy}` : ''}" name="${xml(name)}" time="${seconds(r.elapsedMs)}">${body}</testcase>`,
      );
    }
    tests += cases.length;
    failures += f;
    errors += e;
    suites.push(
      `  <testsuite name="dirtyring stress ${c.mode}${c.strategy ? ` ${c.strategy}` : ''} seed ${c.seed}" tests="${cases.length}" failures="${f}" errors="${e}" time="${seconds(c.elapsedMs)}">\n${cases.join('\n')}\n  </testsuite>`,
    );
  }
  if (report.mutants.length > 0) {
    const cases = report.mutants.map((m) => {
      const body = m.notApplicable
        ? `<skipped message="${xml(m.notApplicable)}"/>`
        : m.caught
          ? ''
          : `<failure type="not-caught" message="mutant not caught within ${m.bound} runs">${xml(`${m.runs} runs without a forbidden outcome`)}</failure>`;
      return `    <testcase classname="dirtyring.stress.mutants.${m.mode}" name="${xml(m.mutant)}" time="0">${body}</testcase>`;
    });
    const f = report.mutants.filter((m) => !m.caught && !m.notApplicable).length;
    tests += cases.length;
    failures += f;
    suites.push(`  <testsuite name="dirtyring stress mutants" tests="${cases.length}" failures="${f}" errors="0">\n${cases.join('\n')}\n  </testsuite>`);
  }
  if (report.interrupted !== null) {
    // A CI reading only the XML must see that the campaign did not finish: one error case.
    const runs = report.campaigns.reduce((n, c) => n + c.runs, 0);
    tests += 1;
    errors += 1;
    suites.push(
      `  <testsuite name="dirtyring stress interrupted" tests="1" failures="0" errors="1">\n    <testcase classname="dirtyring.stress" name="campaign completed"><error type="interrupted" message="${report.interrupted} stopped the campaign after ${runs} runs: the results are partial"/></testcase>\n  </testsuite>`,
    );
  }
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="dirtyring stress" tests="${tests}" failures="${failures}" errors="${errors}">\n${suites.join('\n')}\n</testsuites>\n`;
}

export function writeJunit(path: string, report: StressReport): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, junitXml(report));
}
