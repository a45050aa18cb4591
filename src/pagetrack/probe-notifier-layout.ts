/**
 * The probe notifier (pagetrack/probe-notifier.ts): counts deliveries and callbacks in flight,
 * optionally holding each callback, to check unregister's grace period.
 */
import type { SharedBlock} from '../abi/layout.js';
import { defineBlock } from '../abi/layout.js';

export const ProbeNotifierLayout = defineBlock(
  'track-probe',
  [
    /** Callbacks currently executing (any thread). */
    'IN_FLIGHT',
    /** Write notifications received (wraps at 2^31; a probe is short-lived). */
    'DELIVERED',
    'REMOVE_REGIONS',
    /** 1 = closed: callbacks block until userspace opens it (bounded). */
    'GATE',
    /** Busy-wait inside each callback, in microseconds. */
    'HOLD_US',
    /** Callbacks that gave up waiting on a closed gate. */
    'GATE_TIMEOUTS',
  ],
  [],
);
export type ProbeNotifierBlock = SharedBlock<keyof typeof ProbeNotifierLayout.words, never>;
