/*
 * BUGGY: the QEMU-style reaper with the flags check a plain load (READ_ONCE) instead of
 * smp_load_acquire, as the selftest's collector was written before its 2022 ordering fix. On a
 * weakly ordered CPU the slot and offset read after seeing DIRTY may be the entry's previous
 * contents: a wrong page is reported and the real one is lost.
 *
 * Build: npx dirtyring build-harvester examples/harvesters-c/relaxed-flags.c
 * Expected: clean under --memory-model sc and x86; caught under arm64 (controlled runs), where
 * the plain `cur->slot` / `cur->offset` loads may read an older store.
 */
#include "dirtyring.h"

#define MAX_VCPUS 256
#define MAX_PENDING (1 << 16)

static int vm_fd;
static int nr_vcpus;
static u32 ring_mask;
static struct kvm_dirty_gfn *rings[MAX_VCPUS];
static u32 fetch_index[MAX_VCPUS];

/* Harvested and marked RESET, not reported yet: held until the reset returns. */
static u32 pending_slot[MAX_PENDING];
static u64 pending_offset[MAX_PENDING];
static int pending;

DIRTYRING_HARVESTER(DIRTYRING_LOG_RING);

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

/* Reset what was marked, check the count, then report it. */
static int reset_and_report(void)
{
	if (pending == 0)
		return 0;
	int reset = ioctl(vm_fd, KVM_RESET_DIRTY_RINGS);
	if (reset < 0)
		return -errno;
	if (reset != pending)
		return 1000 + reset; /* the kernel reset something else than what was harvested */
	for (int i = 0; i < pending; i++)
		dirtyring_report(pending_slot[i], pending_offset[i]);
	pending = 0;
	return 0;
}

static int reap_one(int vcpu)
{
	struct kvm_dirty_gfn *ring = rings[vcpu];
	u32 index = fetch_index[vcpu];

	for (;;) {
		struct kvm_dirty_gfn *cur = &ring[index & ring_mask];
		if (READ_ONCE(cur->flags) != KVM_DIRTY_GFN_F_DIRTY) /* BUG: needs smp_load_acquire */
			break;
		if (pending == MAX_PENDING) {
			int rc = reset_and_report();
			if (rc)
				return rc;
		}
		pending_slot[pending] = cur->slot;
		pending_offset[pending] = cur->offset;
		pending++;
		smp_store_release(&cur->flags, KVM_DIRTY_GFN_F_RESET);
		index++;
	}
	fetch_index[vcpu] = index;
	return 0;
}

int dirtyring_collect(int final)
{
	(void)final;
	for (int i = 0; i < nr_vcpus; i++) {
		int rc = reap_one(i);
		if (rc)
			return rc;
	}
	return reset_and_report();
}
