/*
 * CORRECT: flag-handoff-reset.c with the hand-off it needs. Thread 0 harvests and marks RESET,
 * then raises `marked` with smp_store_release, so every mark is visible before the flag; thread 1
 * reads it with smp_load_acquire, so its KVM_RESET_DIRTY_RINGS sees every mark; thread 0
 * acquires `reset_done` before it reports.
 *
 * Build: npx dirtyring build-harvester examples/harvesters-c/flag-handoff-reset-release.c
 * Expected: 0 forbidden under every --memory-model, in free and controlled runs.
 */
#include "dirtyring.h"

#define MAX_VCPUS 64
#define MAX_HELD (1 << 16)

/* Shared by the two threads: the hand-off flags. */
static u32 marked;
static u32 reset_done;

/* Thread 0's own state (only it touches these). */
static struct kvm_dirty_gfn *rings[MAX_VCPUS];
static u32 fetch_index[MAX_VCPUS];
static u32 held_slot[MAX_HELD];
static u64 held_offset[MAX_HELD];
static int nr_vcpus, vm_fd;
static u32 ring_mask, collection;

DIRTYRING_HARVESTER(DIRTYRING_LOG_RING);
DIRTYRING_THREADS(2);

int dirtyring_init(void)
{
	vm_fd = dirtyring_vm_fd();
	nr_vcpus = dirtyring_vcpu_count();
	if (nr_vcpus > MAX_VCPUS)
		return -E2BIG;
	ring_mask = dirtyring_ring_entries() - 1;
	for (int i = 0; i < nr_vcpus; i++) {
		rings[i] = dirtyring_ring(i);
		if (!rings[i])
			return -errno;
		fetch_index[i] = dirtyring_ring_start(i);
	}
	return 0;
}

/* Thread 1: wait for the marks, reset, say so. */
static int resetter(u32 c)
{
	while (smp_load_acquire(&marked) != c)
		;
	if (ioctl(vm_fd, KVM_RESET_DIRTY_RINGS) < 0)
		return -errno;
	smp_store_release(&reset_done, c);
	return 0;
}

int dirtyring_collect(int final)
{
	(void)final;
	/* Each thread counts collections itself: `collection` is thread 0's, the flags carry it. */
	static u32 seen_by_resetter;
	if (dirtyring_thread_index() == 1)
		return resetter(++seen_by_resetter);

	u32 c = ++collection;
	int held = 0;
	for (int v = 0; v < nr_vcpus; v++) {
		u32 i = fetch_index[v];
		for (;;) {
			struct kvm_dirty_gfn *cur = &rings[v][i & ring_mask];
			if (smp_load_acquire(&cur->flags) != KVM_DIRTY_GFN_F_DIRTY || held == MAX_HELD)
				break;
			held_slot[held] = cur->slot;
			held_offset[held] = cur->offset;
			held++;
			smp_store_release(&cur->flags, KVM_DIRTY_GFN_F_RESET);
			i++;
		}
		fetch_index[v] = i;
	}
	smp_store_release(&marked, c); /* the RESET marks are visible before the flag */
	while (smp_load_acquire(&reset_done) != c)
		;
	for (int k = 0; k < held; k++)
		dirtyring_report(held_slot[k], held_offset[k]);
	return 0;
}
