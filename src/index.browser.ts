/**
 * The library entry for browser bundles: the harvester contract (a harvester module imports it
 * wherever it is bundled). run, stress and migrate start Node worker threads and load modules
 * from files: they are in the Node entry only.
 */
export {
  type Collection,
  type DirtyRingMapping,
  type HarvesterDefinition,
  type HarvesterInstance,
  type HarvesterKvm,
  type HarvesterLog,
  type MemslotInfo,
  type SharedWords,
  KVM_DIRTY_GFN_BYTES,
  KVM_DIRTY_GFN_F_DIRTY,
  KVM_DIRTY_GFN_F_RESET,
  defineHarvester,
  isHarvesterDefinition,
} from './harvester/contract.js';
export { Errno, type ErrnoName, KvmError, isKvmError } from './abi/errno.js';
export { ConfigError } from './base/config-error.js';
