/*
 * dirtyring.h - the one header a C dirty-page harvester needs to run under dirtyring.
 *
 * Compile the harvester to WebAssembly (`npx dirtyring build-harvester my.c -o my.wasm`, or the
 * clang line in docs/C-HARVESTERS.md) and run it with `--harvester my.wasm`. It sees what
 * userspace sees on real KVM: each vCPU's ring as `struct kvm_dirty_gfn` entries in its own
 * memory (dirtyring_ring() is the mmap), the dirty-logging ioctls with their real request
 * numbers and structs, returning -1 and setting errno on failure.
 *
 * READ_ONCE, WRITE_ONCE, smp_load_acquire and smp_store_release compile to WebAssembly accesses
 * (volatile, atomic); the smp_*mb() fences call the harness. In free-running runs the code runs
 * as built. In controlled runs the harness runs it with every load and store of 8 to 64 bits —
 * plain C ones included — rewritten into a call: each access to a ring entry is a step point the
 * scheduler sees and, under --memory-model x86|arm64, an access with exactly its ordering. With
 * DIRTYRING_THREADS(n) the harvester runs on n threads of its own, sharing its static variables:
 * in controlled runs their accesses to those are step points and modelled accesses too.
 */
#ifndef DIRTYRING_H
#define DIRTYRING_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint8_t __u8;
typedef uint16_t __u16;
typedef uint32_t __u32;
typedef uint64_t __u64;
typedef int32_t __s32;
typedef int64_t __s64;
typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;

/* ---- linux/kvm.h ---------------------------------------------------------------------- */

struct kvm_dirty_gfn {
	__u32 flags;
	__u32 slot; /* (as_id << 16) | id */
	__u64 offset;
};

#define KVM_DIRTY_GFN_F_DIRTY (1U << 0)
#define KVM_DIRTY_GFN_F_RESET (1U << 1)
#define KVM_DIRTY_GFN_F_MASK 0x3U

struct kvm_dirty_log {
	__u32 slot;
	__u32 padding1;
	union {
		void *dirty_bitmap; /* one bit per page */
		__u64 padding2;
	};
};

struct kvm_clear_dirty_log {
	__u32 slot;
	__u32 num_pages;
	__u64 first_page;
	union {
		void *dirty_bitmap; /* one bit per page */
		__u64 padding2;
	};
};

#define _IOC(dir, type, nr, size) (((dir) << 30) | ((size) << 16) | ((type) << 8) | (nr))
#define _IO(type, nr) _IOC(0U, (type), (nr), 0U)
#define _IOW(type, nr, t) _IOC(1U, (type), (nr), sizeof(t))
#define _IOWR(type, nr, t) _IOC(3U, (type), (nr), sizeof(t))
#define KVMIO 0xAE
#define KVM_GET_DIRTY_LOG _IOW(KVMIO, 0x42, struct kvm_dirty_log)
#define KVM_CLEAR_DIRTY_LOG _IOWR(KVMIO, 0xc0, struct kvm_clear_dirty_log)
#define KVM_RESET_DIRTY_RINGS _IO(KVMIO, 0xc7)

/* errno values the harness returns (asm-generic/errno-base.h). */
#define EPERM 1
#define ENOENT 2
#define EBADF 9
#define ENOMEM 12
#define EFAULT 14
#define EBUSY 16
#define EINVAL 22
#define ENOTTY 25
#define E2BIG 7

/* ---- the harness's imports ------------------------------------------------------------ */

#define __DR_IMPORT(n) __attribute__((import_module("dirtyring"), import_name(#n)))

__DR_IMPORT(ioctl) int __dirtyring_ioctl(int fd, unsigned long request, void *arg);
__DR_IMPORT(vm_fd) int dirtyring_vm_fd(void);
__DR_IMPORT(vcpu_count) int dirtyring_vcpu_count(void);
__DR_IMPORT(ring) int __dirtyring_ring(int vcpu);
__DR_IMPORT(ring_entries) __u32 dirtyring_ring_entries(void);
__DR_IMPORT(ring_start) __u32 dirtyring_ring_start(int vcpu);
__DR_IMPORT(memslot_count) int dirtyring_memslot_count(void);
__DR_IMPORT(memslot) int __dirtyring_memslot(int index, void *out);
__DR_IMPORT(ring_full_count) int dirtyring_ring_full_count(void);
__DR_IMPORT(ring_full) int dirtyring_ring_full(int index);
__DR_IMPORT(report) void __dirtyring_report(__u32 slot, __u32 offset_lo, __u32 offset_hi);
__DR_IMPORT(kick) int __dirtyring_kick(int vcpu);
__DR_IMPORT(fence) void __dirtyring_fence(int kind);
__DR_IMPORT(thread_index) int dirtyring_thread_index(void);
__DR_IMPORT(thread_count) int dirtyring_thread_count(void);
__DR_IMPORT(barrier) void dirtyring_barrier(void);

/*
 * Controlled runs rewrite the module's loads and stores — plain and atomic — into
 * calls of these (src/harvester/wasm/wasm-instrument.ts), so that `cur->slot` is a step point
 * and, under a weak memory model, may read an older store. The weak function below only keeps
 * them imported; nothing calls it.
 */
__DR_IMPORT(plain_load32) __u32 __dirtyring_plain_load32(__u32 addr, __u32 offset);
__DR_IMPORT(plain_load64) __u64 __dirtyring_plain_load64(__u32 addr, __u32 offset);
__DR_IMPORT(plain_store32) void __dirtyring_plain_store32(__u32 addr, __u32 value, __u32 offset);
__DR_IMPORT(plain_store64) void __dirtyring_plain_store64(__u32 addr, __u64 value, __u32 offset);
__DR_IMPORT(acquire_load32) __u32 __dirtyring_acquire_load32(__u32 addr, __u32 offset);
__DR_IMPORT(acquire_load64) __u64 __dirtyring_acquire_load64(__u32 addr, __u32 offset);
__DR_IMPORT(release_store32) void __dirtyring_release_store32(__u32 addr, __u32 value, __u32 offset);
__DR_IMPORT(release_store64) void __dirtyring_release_store64(__u32 addr, __u64 value, __u32 offset);
/* 8- and 16-bit accesses (and i64 loads and stores of 32 bits): `op` is the instruction's opcode. */
__DR_IMPORT(plain_load_narrow) __u32 __dirtyring_plain_load_narrow(__u32 addr, __u32 offset, __u32 op);
__DR_IMPORT(plain_store_narrow) void __dirtyring_plain_store_narrow(__u32 addr, __u32 value, __u32 offset, __u32 op);
__attribute__((weak, export_name("__dirtyring_hooks"))) __u64 __dirtyring_hooks(void)
{
	__dirtyring_plain_store32(0, 0, 0);
	__dirtyring_plain_store64(0, 0, 0);
	__dirtyring_release_store32(0, 0, 0);
	__dirtyring_release_store64(0, 0, 0);
	__dirtyring_plain_store_narrow(0, 0, 0, 0);
	return __dirtyring_plain_load_narrow(0, 0, 0) + __dirtyring_plain_load32(0, 0) + __dirtyring_plain_load64(0, 0) + __dirtyring_acquire_load32(0, 0) +
	       __dirtyring_acquire_load64(0, 0);
}

/* One errno per thread (at most DIRTYRING_MAX_THREADS): the threads share every other static. */
#define DIRTYRING_MAX_THREADS 8
__attribute__((weak)) int __dirtyring_errnos[DIRTYRING_MAX_THREADS];
#define errno (__dirtyring_errnos[dirtyring_thread_index()])

static inline long __dirtyring_errno(long r)
{
	if (r < 0 && r > -4096) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

/* ioctl(2) on the VM fd: KVM_GET_DIRTY_LOG, KVM_CLEAR_DIRTY_LOG, KVM_RESET_DIRTY_RINGS. */
static inline int ioctl(int fd, unsigned long request, ...)
{
	void *arg = NULL;
	if (request != KVM_RESET_DIRTY_RINGS) {
		va_list ap;
		va_start(ap, request);
		arg = va_arg(ap, void *);
		va_end(ap);
	}
	return (int)__dirtyring_errno(__dirtyring_ioctl(fd, request, arg));
}

/* The mmap of vCPU `vcpu`'s ring (KVM_DIRTY_LOG_PAGE_OFFSET of its fd): NULL and errno on failure. */
static inline struct kvm_dirty_gfn *dirtyring_ring(int vcpu)
{
	int r = __dirtyring_ring(vcpu);
	if (__dirtyring_errno(r) < 0)
		return NULL;
	return (struct kvm_dirty_gfn *)(uintptr_t)(__u32)r;
}

struct dirtyring_memslot {
	__u32 slot; /* as the ioctls and ring entries name it: (as_id << 16) | id */
	__u32 id;
	__u32 as_id;
	__u32 pad;
	__u64 base_gfn;
	__u64 npages;
};

static inline int dirtyring_memslot(int index, struct dirtyring_memslot *out)
{
	return (int)__dirtyring_errno(__dirtyring_memslot(index, out));
}

/* Hand one collected page to the harness (it copies it at once): safe to read only. */
static inline void dirtyring_report(__u32 slot, __u64 offset)
{
	__dirtyring_report(slot, (__u32)offset, (__u32)(offset >> 32));
}

static inline int dirtyring_kick(int vcpu)
{
	return (int)__dirtyring_errno(__dirtyring_kick(vcpu));
}

/* ---- ordered accesses and barriers (include/asm-generic/barrier.h, rwonce.h) --------- */

/*
 * What the kernel's macros compile to on a CPU: a volatile access for READ_ONCE / WRITE_ONCE,
 * WebAssembly's atomic load and store for the acquire and the release. Controlled runs rewrite
 * each into a call of the harness with its ordering (plain, acquire, release); the fences are
 * calls in every run, so that smp_rmb and smp_wmb stay what they are under the memory model.
 */
#define READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))
#define smp_load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define smp_store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define smp_mb() __dirtyring_fence(0)
#define smp_rmb() __dirtyring_fence(1)
#define smp_wmb() __dirtyring_fence(2)

/* ---- defining the harvester ----------------------------------------------------------- */

#define DIRTYRING_LOG_RING 0
#define DIRTYRING_LOG_BITMAP 1
#define DIRTYRING_LOG_CLEAR 2

/*
 * DIRTYRING_HARVESTER(DIRTYRING_LOG_RING); then define
 *   int dirtyring_collect(int final)   one collection; return 0 (anything else fails the run).
 *   int dirtyring_init(void)           optional: once per run, before the first collection.
 * dirtyring_ring_full_count() / dirtyring_ring_full(i) name the vCPUs stalled on a full ring
 * that this collection must free; `final` is 1 when every vCPU is paused (the iteration's last).
 */
#define DIRTYRING_HARVESTER(log)                                                                   \
	__attribute__((export_name("dirtyring_log"))) int dirtyring_log(void)                     \
	{                                                                                          \
		return (log);                                                                      \
	}

/*
 * DIRTYRING_THREADS(n): run the harvester on n threads of its own (1..DIRTYRING_MAX_THREADS),
 * racing the vCPU threads (`--harvester-threads N` overrides n; ring logging only). Every thread
 * runs dirtyring_collect() in each collection, and the collection ends when all have returned.
 * Thread 0 runs dirtyring_init() once, before the threads' first collection; the threads share
 * the module's static variables (that is how they hand work to each other) and each has a stack
 * of its own (64 KiB). dirtyring_thread_index() is 0 .. dirtyring_thread_count() - 1;
 * dirtyring_barrier() waits until every thread has reached it (a full fence among them).
 * Without DIRTYRING_THREADS the harvester runs on the harness's thread as index 0 of 1.
 */
#define DIRTYRING_THREADS(n)                                                                       \
	__attribute__((export_name("dirtyring_threads"))) int dirtyring_threads(void)             \
	{                                                                                          \
		return (n);                                                                        \
	}

__attribute__((export_name("dirtyring_collect"))) int dirtyring_collect(int final);
__attribute__((export_name("dirtyring_init"))) int dirtyring_init(void);

#endif /* DIRTYRING_H */
