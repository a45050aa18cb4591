/**
 * The ABI between a C harvester compiled to WebAssembly and the harness: what the module imports
 * and exports, the ioctl request numbers and the wasm32 layouts of the ioctl structs. The C side
 * is include/dirtyring.h; the two must agree name for name and byte for byte.
 */

/** The import module of every function the harness provides. */
export const WASM_IMPORT_MODULE = 'dirtyring';
/** The linear memory: imported, shared (the rings live in it and vCPU threads write them). */
export const WASM_MEMORY_IMPORT = { module: 'env', name: 'memory' } as const;

/** The functions the harness provides (a module imports those it uses). */
export const WASM_IMPORTS = [
  'ioctl',
  'vm_fd',
  'vcpu_count',
  'ring',
  'ring_entries',
  'ring_start',
  'memslot_count',
  'memslot',
  'ring_full_count',
  'ring_full',
  'report',
  'kick',
  'load32',
  'load64',
  'store32',
  'store64',
  'fence',
  // Threads (DIRTYRING_THREADS): which one, how many, their barrier.
  'thread_index',
  'thread_count',
  'barrier',
  // Plain loads and stores of an instrumented module (controlled runs, wasm-instrument.ts).
  'plain_load32',
  'plain_load64',
  'plain_store32',
  'plain_store64',
  'acquire_load32',
  'acquire_load64',
  'release_store32',
  'release_store64',
  'plain_load_narrow',
  'plain_store_narrow',
] as const;
export type WasmImportName = (typeof WASM_IMPORTS)[number];

/** Exports: the log mode (0 ring, 1 bitmap, 2 clear) and one collection; init is optional. */
export const WASM_EXPORT_LOG = 'dirtyring_log';
export const WASM_EXPORT_COLLECT = 'dirtyring_collect';
export const WASM_EXPORT_INIT = 'dirtyring_init';
/** Optional: the harvester's thread count (DIRTYRING_THREADS), 1..MAX_HARVESTER_THREADS. */
export const WASM_EXPORT_THREADS = 'dirtyring_threads';
/**
 * Each thread beyond the first runs on a stack of this many bytes the harness reserves above the
 * module's pages (the first keeps the linker's stack: wasm-ld's default size is the same).
 */
export const WASM_THREAD_STACK_BYTES = 65536;
/** The export the harness adds to a threaded module: its stack pointer global (wasm-threads.ts). */
export const WASM_STACK_POINTER_EXPORT = '__dirtyring_stack_pointer';
export const WASM_LOGS = ['ring', 'bitmap', 'clear'] as const;

/** The second argument of load32/load64/store32/store64: READ_ONCE/WRITE_ONCE, or acquire/release. */
export const WasmOrder = { ONCE: 0, ACQ_REL: 1 } as const;
/** fence's argument: smp_mb, smp_rmb, smp_wmb. */
export const WasmFence = { MB: 0, RMB: 1, WMB: 2 } as const;

/** The VM fd the module is given (dirtyring_vm_fd()): an fd number, as open() would return. */
export const WASM_VM_FD = 3;

// linux/kvm.h: _IO / _IOW / _IOWR with KVMIO = 0xAE. The struct sizes are the same on wasm32 as
// on x86-64 (the bitmap pointer shares a union with a u64), so the numbers are the real ones.
const KVMIO = 0xae;
const ioc = (dir: number, nr: number, size: number): number => ((dir << 30) | (size << 16) | (KVMIO << 8) | nr) >>> 0;
const IOC_WRITE = 1;
const IOC_READ = 2;

/** struct kvm_dirty_log: u32 slot @0, u32 padding1 @4, union { void *dirty_bitmap; u64 } @8. */
export const KvmDirtyLog = { SLOT: 0, BITMAP: 8, BYTES: 16 } as const;
/** struct kvm_clear_dirty_log: u32 slot @0, u32 num_pages @4, u64 first_page @8, union { void *dirty_bitmap; u64 } @16. */
export const KvmClearDirtyLog = { SLOT: 0, NUM_PAGES: 4, FIRST_PAGE: 8, BITMAP: 16, BYTES: 24 } as const;

export const KVM_GET_DIRTY_LOG = ioc(IOC_WRITE, 0x42, KvmDirtyLog.BYTES);
export const KVM_CLEAR_DIRTY_LOG = ioc(IOC_WRITE | IOC_READ, 0xc0, KvmClearDirtyLog.BYTES);
export const KVM_RESET_DIRTY_RINGS = ioc(0, 0xc7, 0);

/** struct dirtyring_memslot (dirtyring.h): u32 slot, u32 id, u32 as_id, u32 pad, u64 base_gfn, u64 npages. */
export const WasmMemslot = { SLOT: 0, ID: 4, AS_ID: 8, BASE_GFN: 16, NPAGES: 24, BYTES: 32 } as const;

export const WASM_PAGE_BYTES = 65536;
