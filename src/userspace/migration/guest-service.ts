/**
 * What the migration loop owes the running guest between two batches of pages: a vCPU stalled
 * on a full ring is released after a harvest + reset (QEMU's reaction to exit 31), dirty-limit
 * measures and adjusts, and a dead thread ends the migration.
 */
import { now } from '../../base/clock.js';
import type { LogMode } from '../log-collectors.js';
import type { VcpuControlPlane } from '../vcpu-control.js';
import type { DirtyLimitController } from './dirty-limit.js';

/** Longest wait without servicing the guest while the loop sleeps: a stalled vCPU is released within this. */
export const SERVICE_SLICE_MS = 5;

export class GuestService {
  constructor(
    private readonly control: VcpuControlPlane,
    private readonly log: LogMode,
    /** Ring mode: harvest + reset now, for the vCPUs stalled on a full ring. */
    private readonly collectForStall: () => void,
    private readonly limiter: DirtyLimitController | null,
  ) {}

  service(): void {
    const dead = this.control.anyDeadThread();
    if (dead !== null) throw new Error(`${dead} thread died during the migration`);
    if (this.log === 'ring') this.control.releaseRingFullStalls(this.collectForStall);
    this.limiter?.tick(now());
  }

  /** Service the guest, then wait `ms` (at most), waking early whenever a guest thread changes state. */
  async idle(ms: number): Promise<void> {
    const bell = this.control.doorbell();
    this.service();
    if (ms > 0) await this.control.waitDoorbell(bell, ms);
  }

  /** Let `ms` pass, servicing the guest all along. */
  async sleep(ms: number): Promise<void> {
    const end = now() + ms;
    for (let left = ms; left > 0; left = end - now()) await this.idle(Math.min(left, SERVICE_SLICE_MS));
  }
}
