/*
 * BUGGY in principle: the QEMU-style reaper with RESET stored plainly (WRITE_ONCE) where
 * KVM_CAP_DIRTY_LOG_RING_ACQ_REL asks for smp_store_release, as QEMU did before its 2022 fix:
 * without the release, the slot and offset reads may be ordered after the store, and a reset
 * running on another CPU may free the entry before they are done.
 *
 * Build: npx dirtyring build-harvester examples/harvesters-c/plain-reset.c
 * Measured: clean under sc, x86 and arm64 (1000 controlled runs each, seed 1): in these runs the
 * reset runs on the harvester's own thread, after its marks in program order, so the missing
 * release cannot show. It needs the reset on another thread (see docs/C-HARVESTERS.md, Limits).
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
		if (smp_load_acquire(&cur->flags) != KVM_DIRTY_GFN_F_DIRTY)
			break;
		if (pending == MAX_PENDING) {
			int rc = reset_and_report();
			if (rc)
				return rc;
		}
		pending_slot[pending] = cur->slot;
		pending_offset[pending] = cur->offset;
		pending++;
		WRITE_ONCE(cur->flags, KVM_DIRTY_GFN_F_RESET); /* BUG: needs smp_store_release */
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
