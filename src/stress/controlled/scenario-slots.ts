/**
 * Where a controlled scenario's pages live and where its rings start. By default: one memslot
 * of `pages` pages and rings from index 0. A scenario may instead spread its pages over several
 * memslots of the sizes in `slotPages` (odd sizes, slots of several 64-page bitmap words), put
 * `smmPages` more in an SMRAM memslot of address space 1 (a VM with SMM), and start every ring
 * at `ringStart` (a ring that has lapped already, so a handful of pushes crosses its end).
 *
 * Page p of the scenario is page p of the slots laid end to end — the RAM slots in order, SMRAM
 * last — and its gfn is the first slot's base + p: the slots are contiguous in guest memory.
 */
import { MEMSLOT_TABLE_ENTRIES } from '../../kernel/memslot-layout.js';

/** The optional placement fields of a scenario (ControlledScenario extends this). */
export interface ScenarioPlacement {
  /** Page counts of the address-space-0 memslots, in page order (absent: one slot of all pages). */
  readonly slotPages?: readonly number[];
  /** Pages of an SMRAM memslot in address space 1, after the others (absent or 0: no SMM). */
  readonly smmPages?: number;
  /** --log ring: every ring's free-running indices start here (absent: 0). */
  readonly ringStart?: number;
}

/** The placement a scenario of `pages` pages resolves to. */
export interface SlotLayout {
  /** Page counts of the address-space-0 memslots. */
  readonly ram: readonly number[];
  /** Pages of the SMRAM memslot (0: none). */
  readonly smm: number;
  /** The first scenario page in SMRAM (`pages` when there is none). */
  readonly smmFrom: number;
  readonly ringStart: number;
}

export function slotLayout(s: ScenarioPlacement & { readonly pages: number }): SlotLayout {
  const smm = s.smmPages ?? 0;
  const ram = s.slotPages ?? [s.pages - smm];
  return { ram, smm, smmFrom: s.pages - smm, ringStart: s.ringStart ?? 0 };
}

const U32_MAX = 0xffffffff;
/** The emulator's memslot table holds this many slots; SMRAM takes one of them. */
const MAX_RAM_SLOTS = MEMSLOT_TABLE_ENTRIES - 1;

type Bad = (field: string, value: unknown, reason: string) => never;

/**
 * Check the placement fields of a scenario read from a file (`o`, whose `pages` and `log` are
 * already checked); returns them, with only the fields the file has.
 */
export function validatePlacement(o: Readonly<Record<string, unknown>>, pages: number, log: string, bad: Bad): ScenarioPlacement {
  const out: { slotPages?: number[]; smmPages?: number; ringStart?: number } = {};
  const smm = o['smmPages'];
  if (smm !== undefined) {
    if (typeof smm !== 'number' || !Number.isInteger(smm) || smm < 0 || smm >= pages) bad('smmPages', smm, `must be an integer in 0..${pages - 1}`);
    out.smmPages = smm as number;
  }
  const slots = o['slotPages'];
  if (slots !== undefined) {
    if (!Array.isArray(slots) || slots.length < 1 || slots.length > MAX_RAM_SLOTS) bad('slotPages', slots, `must list 1..${MAX_RAM_SLOTS} slot sizes`);
    (slots as unknown[]).forEach((n, i) => {
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) bad(`slotPages[${i}]`, n, 'must be a page count of at least 1');
    });
    const sum = (slots as number[]).reduce((a, b) => a + b, 0);
    if (sum + (out.smmPages ?? 0) !== pages) bad('slotPages', slots, `with smmPages must add up to pages (${pages})`);
    out.slotPages = slots as number[];
  }
  const start = o['ringStart'];
  if (start !== undefined) {
    if (typeof start !== 'number' || !Number.isInteger(start) || start < 0 || start > U32_MAX) bad('ringStart', start, `must be an integer in 0..${U32_MAX}`);
    if (log !== 'ring' && start !== 0) bad('ringStart', start, 'only a ring has indices to start');
    out.ringStart = start as number;
  }
  return out;
}
