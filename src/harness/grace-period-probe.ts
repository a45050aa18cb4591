/**
 * The run's check of unregister's grace period: each iteration, while the vCPUs run, a probe
 * notifier (whose callbacks linger) is registered in every thread and unregistered again. When
 * unregister returns no probe callback may still be running, and none may be delivered
 * afterwards (kvm_page_track_unregister_notifier waits with synchronize_srcu).
 */
import { ProbeNotifier } from '../pagetrack/probe-notifier.js';
import type { PageTrackControl } from '../userspace/page-track-control.js';

/** Busy time of each probe callback on a tracked write: unregister sometimes has to wait for one. */
const PROBE_HOLD_US = 50;

export class GracePeriodProbe {
  private readonly probe = new ProbeNotifier(ProbeNotifier.allocate({ holdUs: PROBE_HOLD_US }));
  private probeId = -1;
  /** Probe deliveries when its last unregister returned, or -1. */
  private deliveredAtUnregister = -1;
  registrations = 0;

  constructor(
    private readonly control: PageTrackControl,
    /** Called with a description of each violation of the rule. */
    private readonly onViolation: (text: string) => void,
  ) {}

  /** Callbacks the probe has received, over every registration. */
  get deliveries(): number {
    return this.probe.delivered;
  }

  async register(iteration: number): Promise<void> {
    this.checkQuiet(iteration);
    const { id } = await this.control.register(this.probe.spec());
    this.probeId = id;
    this.deliveredAtUnregister = -1;
    this.registrations++;
  }

  async unregister(iteration: number): Promise<void> {
    const id = this.probeId;
    this.probeId = -1;
    await this.control.unregister(id);
    // When unregister returns no callback may be running, and none may start afterwards.
    const inFlight = this.probe.inFlight;
    this.deliveredAtUnregister = this.probe.delivered;
    if (inFlight !== 0) this.onViolation(`iteration ${iteration}: unregister returned with ${inFlight} probe callback(s) in flight`);
  }

  /** Nothing may have been delivered to the probe since its last unregister returned. */
  checkQuiet(iteration: number): void {
    if (this.deliveredAtUnregister < 0) return;
    const delivered = this.probe.delivered;
    if (delivered !== this.deliveredAtUnregister) {
      this.onViolation(`iteration ${iteration}: ${delivered - this.deliveredAtUnregister} probe notification(s) delivered after unregister returned`);
      this.deliveredAtUnregister = delivered;
    }
  }
}
