/** The outcomes of a controlled run (see ../outcome.ts). */
import type { OutcomeKind } from '../outcome.js';
import { type ControlledRunResult, harnessLost } from './engine.js';

export function classifyControlled(r: ControlledRunResult): OutcomeKind[] {
  const k: OutcomeKind[] = [];
  const u = r.userspace;
  if (u) {
    if (u.lostPages > 0) k.push('lost-page');
    if (u.copyMismatches > 0) k.push('copy-mismatch');
    if (u.wrongValues > 0) k.push('wrong-value');
    if (u.resetMismatches > 0) k.push('reset-mismatch');
    if (u.badEntries > 0) k.push('bad-entry');
    if (u.wedged !== null) k.push('wedged-vcpu');
    if (u.duplicateRecords > 0) k.push('duplicates');
    if (u.variant.hostileRewrites > 0) k.push('hostile-userspace');
    if (u.variant.unalignedRefused > 0) k.push('unaligned-clear-refused');
    if ((u.variant.harvesterErrnos ?? 0) > 0) k.push('harvester-errno');
  }
  if (r.invariant !== null) k.push('unlogged-write');
  if (r.kernelBugs > 0) k.push('kernel-bug');
  if (r.kernelWarnings > 0) k.push('kernel-warning');
  if (r.abort === 'deadlock') k.push('deadlock');
  else if (r.abort === 'step-limit') k.push('step-limit');
  else if (r.abort === 'divergence') k.push('nondeterministic');
  else if (harnessLost(r)) k.push('harness-error');
  if (r.errors.length > 0 || (u === null && r.abort === null)) k.push('harness-error');
  if (r.ringFullExits > 0 && !r.scenario.emulated) k.push('ring-full-page');
  return k;
}
