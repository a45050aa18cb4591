/**
 * JUnit files of shards into one: the test suites of the same name (one campaign's shards)
 * become one suite with every test case, their counts summed, the totals recomputed. It reads
 * the JUnit that `stress --junit` writes (report.ts), not JUnit of any origin.
 */

interface Suite {
  readonly name: string;
  tests: number;
  failures: number;
  errors: number;
  timeS: number | null;
  cases: string[];
}

const SUITE = /<testsuite\b([^>]*)>([\s\S]*?)<\/testsuite>/g;
const CASE = /<testcase\b[\s\S]*?<\/testcase>/g;

function attr(attrs: string, name: string): string | null {
  return new RegExp(`\\b${name}="([^"]*)"`).exec(attrs)?.[1] ?? null;
}

function count(attrs: string, name: string, file: string): number {
  const v = attr(attrs, name);
  if (v === null || !/^\d+$/.test(v)) throw new Error(`${file}: a testsuite without a ${name} count: not a dirtyring JUnit file`);
  return Number(v);
}

/** The merged document of `files` (name → XML text). */
export function mergeJunit(files: ReadonlyMap<string, string>): string {
  const suites = new Map<string, Suite>();
  for (const [file, xml] of files) {
    if (!xml.includes('<testsuites')) throw new Error(`${file}: no <testsuites> element: not a JUnit file`);
    for (const m of xml.matchAll(SUITE)) {
      const attrs = m[1]!;
      const name = attr(attrs, 'name') ?? '';
      const s = suites.get(name) ?? { name, tests: 0, failures: 0, errors: 0, timeS: null, cases: [] };
      s.tests += count(attrs, 'tests', file);
      s.failures += count(attrs, 'failures', file);
      s.errors += count(attrs, 'errors', file);
      const time = attr(attrs, 'time');
      // Shards run side by side: a suite took as long as its slowest part.
      if (time !== null) s.timeS = Math.max(s.timeS ?? 0, Number(time));
      s.cases.push(...[...m[2]!.matchAll(CASE)].map((c) => `    ${c[0]}`));
      suites.set(name, s);
    }
  }
  const all = [...suites.values()];
  const sum = (f: (s: Suite) => number): number => all.reduce((n, s) => n + f(s), 0);
  const body = all.map(
    (s) =>
      `  <testsuite name="${s.name}" tests="${s.tests}" failures="${s.failures}" errors="${s.errors}"${s.timeS !== null ? ` time="${s.timeS.toFixed(3)}"` : ''}>\n${s.cases.join('\n')}\n  </testsuite>`,
  );
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="dirtyring stress" tests="${sum((s) => s.tests)}" failures="${sum((s) => s.failures)}" errors="${sum((s) => s.errors)}">\n${body.join('\n')}\n</testsuites>\n`;
}
