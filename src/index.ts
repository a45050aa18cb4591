/**
 * The library entry (`import ... from 'dirtyring'`): the harvester contract and the commands
 * as functions — run, stress, migrate — on Node worker threads.
 */
export {
  type Collection,
  type DirtyRingMapping,
  type HarvesterDefinition,
  type HarvesterInstance,
  type HarvesterKvm,
  type HarvesterLog,
  type MemslotInfo,
  KVM_DIRTY_GFN_BYTES,
  KVM_DIRTY_GFN_F_DIRTY,
  KVM_DIRTY_GFN_F_RESET,
  defineHarvester,
  isHarvesterDefinition,
} from './harvester/contract.js';
export { Errno, type ErrnoName, KvmError, isKvmError } from './abi/errno.js';
export { HarvesterLoadError, loadHarvester } from './harvester/load-harvester.js';
export { HarvesterRunError } from './harvester/user-collector.js';
