/**
 * A DMA device thread's shared block (userspace/device-thread.ts): it writes guest memory with no
 * running vCPU. Its control words mirror a vCPU thread's so that userspace drives both alike.
 */
import { defineBlock } from '../abi/layout.js';

export const DeviceLayout = defineBlock(
  'device',
  ['DEVICE_ID', 'CONTROL', 'WAKE', 'STATE'],
  [
    'WRITES',
    /** Writes that reached a dirty bitmap. */
    'LOGGED',
    /** Writes nothing could log (a ring VM without ring-with-bitmap): the kernel WARNs. */
    'LOST',
  ],
);

