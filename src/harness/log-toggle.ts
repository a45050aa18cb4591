/**
 * A test hook of the run (`RunHooks.toggleLog`): during one iteration, LOG_DIRTY_PAGES goes off
 * on one memslot a third of the way through and on again at two thirds, while the vCPUs write.
 * Writes made while logging is off are legitimately unlogged, so the slot is not judged in that
 * iteration (by the oracle nor by the copy check); the run must survive the flag changes.
 */
import { encodeSlot } from '../abi/constants.js';
import type { DirtyLogOracle } from '../checker/oracle.js';
import type { Vm } from '../kernel/vm.js';

/** Fractions of the iteration's interval at which logging goes off, then on again. */
const LOG_OFF_AT = 1 / 3;
const LOG_ON_AT = 2 / 3;

export class LogToggle {
  private stage: 'logging' | 'off' | 'back-on' = 'logging';
  /** Encoded memslots not judged this iteration. */
  readonly excluded = new Set<number>();

  constructor(
    private readonly vm: Vm,
    private readonly oracle: DirtyLogOracle,
    private readonly slotId: number,
  ) {}

  /** Whether logging is on again (the iteration may end). */
  get done(): boolean {
    return this.stage === 'back-on';
  }

  /** Act at `fraction` of the iteration's interval. */
  step(fraction: number): void {
    if (this.stage === 'logging' && fraction >= LOG_OFF_AT) {
      this.vm.setLogDirty(this.slotId, false);
      const encoded = encodeSlot(0, this.slotId);
      this.oracle.excludeSlot(encoded);
      this.excluded.add(encoded);
      this.stage = 'off';
    } else if (this.stage === 'off' && fraction >= LOG_ON_AT) {
      this.vm.setLogDirty(this.slotId, true);
      this.stage = 'back-on';
    }
  }
}
