/** What `dirtyring stress --matrix` prints: one row per cell, and what the model predicts. */
import { type MatrixCell, cellOutcome } from '../stress/memory-matrix.js';
import { table } from './format.js';

const CAP_NAMES = { ring: 'DIRTY_LOG_RING (pre-2022)', 'ring-acqrel': 'DIRTY_LOG_RING_ACQ_REL' } as const;
const HARVESTER_NAMES = { 'acq-rel': 'acquire/release', 'harvest-relaxed-reset': 'plain RESET store', 'harvest-relaxed-flags': 'plain flags load' } as const;

/**
 * Where a page can be lost: arm64 with any plain access on the chain vCPU → harvester → reset
 * (the kernel's pre-2022 walk, or a pre-2022 harvester). sc and x86 (TSO) never lose one.
 */
export function expectLoss(c: MatrixCell): boolean {
  return c.model === 'arm64' && (c.ringCap === 'ring' || c.harvester !== 'acq-rel');
}

export function matrixLines(cells: readonly MatrixCell[]): string[] {
  const rows = cells.map((c) => [
    c.model,
    CAP_NAMES[c.ringCap],
    HARVESTER_NAMES[c.harvester],
    c.firstForbidden === null ? 'no loss' : 'LOST PAGE',
    cellOutcome(c),
    (c.firstForbidden !== null) === expectLoss(c) ? 'as predicted' : 'UNEXPECTED',
  ]);
  return ['', table(['model', 'ring capability', 'harvester', 'outcome', 'detail', 'prediction'], rows, ['l', 'l', 'l', 'l', 'l', 'l'])];
}
