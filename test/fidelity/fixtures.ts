/**
 * The scenario the fidelity tests start from, as JSON before parsing: one logged 512-page slot
 * above the runner's memory, a 256-entry ring, one vCPU that stores to three pages (exiting
 * after each), runs, harvests and resets. Tests derive their cases from it with `variant`.
 */
export const BASE_SCENARIO = {
  name: 'base',
  path: 'emulated',
  vm: { ring: { bytes: 4096, acqRel: false }, manualProtect: 0 },
  memslots: [{ slot: 1, asId: 0, gpa: 1073741824, pages: 512, logDirty: true }],
  vcpus: 1,
  steps: [
    { op: 'write', vcpu: 0, slot: 1, pages: [0, 1, 2], storesPerPage: 1, exitEach: true },
    { op: 'run', vcpu: 0 },
    { op: 'harvest', vcpu: 0, max: 10 },
    { op: 'reset' },
  ],
};

/** BASE_SCENARIO's shape, open to the fields a malformed variant adds. */
export type BaseScenario = typeof BASE_SCENARIO & Record<string, unknown>;

/** BASE_SCENARIO with `edit` applied to a deep copy. */
export function variant(edit: (s: BaseScenario) => void): unknown {
  const s = structuredClone(BASE_SCENARIO) as BaseScenario;
  edit(s);
  return s;
}

/** BASE_SCENARIO with `steps` appended (they become steps[4], steps[5], ...). */
export function withSteps(...steps: unknown[]): unknown {
  return variant((s) => {
    s.steps.push(...(steps as typeof s.steps));
  });
}

/** Step `i` of a scenario, open for editing. */
export function stepOf(s: { steps: unknown[] }, i: number): Record<string, unknown> {
  return s.steps[i] as Record<string, unknown>;
}

/** As an `edited` value: remove the field. */
export const DELETE = Symbol('delete');

/**
 * BASE_SCENARIO with each `[path, value]` applied to a deep copy: `path` is dot-separated
 * (`memslots.0.gpa`; an index one past the end appends), `value` may be of any type, as a
 * malformed scenario needs, or DELETE.
 */
export function edited(...edits: [string, unknown][]): unknown {
  const s = structuredClone(BASE_SCENARIO) as unknown as Record<string, unknown>;
  for (const [path, value] of edits) {
    const keys = path.split('.');
    const last = keys.pop()!;
    const parent = keys.reduce((o, k) => o[k] as Record<string, unknown>, s);
    if (value === DELETE) delete parent[last];
    else parent[last] = value;
  }
  return s;
}
