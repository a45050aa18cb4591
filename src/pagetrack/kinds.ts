/**
 * The page-track notifier kinds every thread knows. Importing this module registers them; the
 * vCPU worker imports it, so a spec posted to any worker — in Node or in a browser — can be
 * instantiated there.
 */
import type { PageTrackNotifier, TrackNotifierSpec } from '../kernel/page-track-notifier.js';
import { defineTrackNotifierKind, instantiateTrackNotifier } from '../kernel/page-track-notifier.js';
import type { Vm } from '../kernel/vm.js';
import { NOTIFICATION_RING_KIND, NotificationRingNotifier } from './notification-ring.js';
import { PROBE_KIND, ProbeNotifier } from './probe-notifier.js';
import { SHADOW_PAGE_TABLE_KIND, ShadowPageTable } from './shadow-page-table.js';

defineTrackNotifierKind(NOTIFICATION_RING_KIND, (spec, vm) => new NotificationRingNotifier(spec, vm));
defineTrackNotifierKind(SHADOW_PAGE_TABLE_KIND, (spec, vm) => new ShadowPageTable(spec.buffer, vm));
defineTrackNotifierKind(PROBE_KIND, (spec) => new ProbeNotifier(spec.buffer));

/** This thread's instance of a notifier spec (any built-in or defined kind). */
export function createTrackNotifier(spec: TrackNotifierSpec, vm: Vm): PageTrackNotifier {
  return instantiateTrackNotifier(spec, vm);
}
