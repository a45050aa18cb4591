/*
 * Per-vCPU reaper threads with a coordinator, in C (correct): two threads of the harvester's
 * own; thread t harvests the rings of the vCPUs v with v % 2 == t and marks their entries RESET;
 * both meet at dirtyring_barrier(); thread 0 calls KVM_RESET_DIRTY_RINGS once every thread's
 * marks are in; both meet again; then each reports the pages it harvested, now safe to read.
 * Each thread's harvest is kept in its own half of the static arrays, indexed by its thread.
 *
 * Build: npx dirtyring build-harvester examples/harvesters-c/per-vcpu-threads.c
 * Expected: 0 forbidden in free and controlled runs, under every --memory-model.
 */
#include "dirtyring.h"

#define THREADS 2
#define MAX_VCPUS 64
#define MAX_HELD (1 << 15)

static struct kvm_dirty_gfn *rings[MAX_VCPUS];
static u32 fetch_index[MAX_VCPUS];
static int nr_vcpus, vm_fd;
static u32 ring_mask;
static u32 held_slot[THREADS][MAX_HELD];
static u64 held_offset[THREADS][MAX_HELD];

DIRTYRING_HARVESTER(DIRTYRING_LOG_RING);
DIRTYRING_THREADS(THREADS);

int dirtyring_init(void)
{
	vm_fd = dirtyring_vm_fd();
	nr_vcpus = dirtyring_vcpu_count();
	if (nr_vcpus > MAX_VCPUS)
		return -E2BIG;
	ring_mask = dirtyring_ring_entries() - 1;
	for (int v = 0; v < nr_vcpus; v++) {
		rings[v] = dirtyring_ring(v);
		if (!rings[v])
			return -errno;
		fetch_index[v] = dirtyring_ring_start(v);
	}
	return 0;
}

int dirtyring_collect(int final)
{
	(void)final;
	int t = dirtyring_thread_index();
	int n = dirtyring_thread_count();
	if (t >= THREADS)
		return -EINVAL; /* run with --harvester-threads 1 or 2 */
	int held = 0;
	for (int v = t; v < nr_vcpus; v += n) {
		u32 i = fetch_index[v];
		for (;;) {
			struct kvm_dirty_gfn *cur = &rings[v][i & ring_mask];
			if (held == MAX_HELD || smp_load_acquire(&cur->flags) != KVM_DIRTY_GFN_F_DIRTY)
				break;
			held_slot[t][held] = cur->slot;
			held_offset[t][held] = cur->offset;
			held++;
			smp_store_release(&cur->flags, KVM_DIRTY_GFN_F_RESET);
			i++;
		}
		fetch_index[v] = i;
	}
	dirtyring_barrier(); /* every thread's RESET marks are in */
	if (t == 0 && ioctl(vm_fd, KVM_RESET_DIRTY_RINGS) < 0)
		return -errno;
	dirtyring_barrier(); /* the reset has returned */
	for (int k = 0; k < held; k++)
		dirtyring_report(held_slot[t][k], held_offset[t][k]);
	return 0;
}
