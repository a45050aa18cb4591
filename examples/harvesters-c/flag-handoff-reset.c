/*
 * BUGGY under a weak memory model, correct under sequential consistency and on x86: the reset
 * comes from a second thread, which waits for the first thread's flag. Thread 0 harvests every
 * ring and marks the entries RESET, then raises `marked` to the collection's number with a plain
 * store (WRITE_ONCE) where the hand-off needs a release; thread 1 spins until it sees the flag,
 * calls KVM_RESET_DIRTY_RINGS and raises `reset_done` (a release); thread 0 acquires that and
 * only then reports what it harvested.
 *
 * Nothing orders the RESET marks before the flag: an arm64 CPU may make the flag visible first,
 * and the reset then walks entries still flagged DIRTY, stops there and re-protects nothing,
 * while thread 0 reports those pages as safe to read.
 *
 * Build: npx dirtyring build-harvester examples/harvesters-c/flag-handoff-reset.c
 * Expected: 0 forbidden under --memory-model sc and x86; caught under arm64 in controlled runs.
 * The fix is flag-handoff-reset-release.c (smp_store_release / smp_load_acquire).
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
	while (READ_ONCE(marked) != c)
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
	WRITE_ONCE(marked, c); /* too weak: the RESET marks may be seen after it */
	while (smp_load_acquire(&reset_done) != c)
		;
	for (int k = 0; k < held; k++)
		dirtyring_report(held_slot[k], held_offset[k]);
	return 0;
}
