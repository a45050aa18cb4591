/*
 * The dirty_log_test selftest's ring collector, written in C from its description (correct).
 * For each vCPU it walks the ring from its fetch index while entries are dirtied (an acquire
 * load of the flags), checks that the entry names a memslot of the VM and an offset inside it,
 * sets the page's bit in a bitmap and marks the entry collected (a release store of RESET).
 * After the walk it resets the rings and checks the kernel reset exactly as many entries as were
 * collected; then it hands on every page whose bit is set and clears the bitmap. Unlike the
 * QEMU-style reaper it keeps a bitmap, not a list: a page pushed twice is handed on once.
 *
 * Build: npx dirtyring build-harvester examples/harvesters-c/selftest-collector.c
 * Expected: 0 forbidden outcomes in free and controlled campaigns, under every memory model.
 */
#include "dirtyring.h"

#define MAX_VCPUS 256
#define MAX_SLOTS 16
#define MAX_PAGES (1 << 23)

static int vm_fd;
static int nr_vcpus;
static int nr_slots;
static u32 ring_size;
static struct kvm_dirty_gfn *rings[MAX_VCPUS];
static u32 fetch_index[MAX_VCPUS];
static struct dirtyring_memslot slots[MAX_SLOTS];
static u64 first_bit[MAX_SLOTS]; /* where each slot's pages start in `bitmap` */
static u64 bitmap[MAX_PAGES / 64];

DIRTYRING_HARVESTER(DIRTYRING_LOG_RING);

int dirtyring_init(void)
{
	u64 bits = 0;

	vm_fd = dirtyring_vm_fd();
	nr_vcpus = dirtyring_vcpu_count();
	nr_slots = dirtyring_memslot_count();
	if (nr_vcpus > MAX_VCPUS || nr_slots > MAX_SLOTS)
		return -E2BIG;
	for (int i = 0; i < nr_slots; i++) {
		if (dirtyring_memslot(i, &slots[i]) < 0)
			return -errno;
		first_bit[i] = bits;
		bits += slots[i].npages;
	}
	if (bits > MAX_PAGES)
		return -E2BIG;
	ring_size = dirtyring_ring_entries();
	for (int i = 0; i < nr_vcpus; i++) {
		rings[i] = dirtyring_ring(i);
		if (!rings[i])
			return -errno;
		fetch_index[i] = dirtyring_ring_start(i);
	}
	return 0;
}

static int slot_index(u32 slot)
{
	for (int i = 0; i < nr_slots; i++)
		if (slots[i].slot == slot)
			return i;
	return -1;
}

/* Collect one vCPU's dirtied entries; returns how many, or -1 for an entry naming no page. */
static int collect_one(int vcpu)
{
	u32 count = 0;

	for (;;) {
		struct kvm_dirty_gfn *cur = &rings[vcpu][fetch_index[vcpu] % ring_size];
		if (smp_load_acquire(&cur->flags) != KVM_DIRTY_GFN_F_DIRTY)
			break;
		int s = slot_index(cur->slot);
		if (s < 0 || cur->offset >= slots[s].npages)
			return -1;
		u64 bit = first_bit[s] + cur->offset;
		bitmap[bit / 64] |= 1ULL << (bit % 64);
		smp_store_release(&cur->flags, KVM_DIRTY_GFN_F_RESET);
		fetch_index[vcpu]++;
		count++;
	}
	return (int)count;
}

static void report_bitmap(void)
{
	for (int s = 0; s < nr_slots; s++) {
		for (u64 page = 0; page < slots[s].npages; page++) {
			u64 bit = first_bit[s] + page;
			if (bitmap[bit / 64] & (1ULL << (bit % 64))) {
				bitmap[bit / 64] &= ~(1ULL << (bit % 64));
				dirtyring_report(slots[s].slot, page);
			}
		}
	}
}

int dirtyring_collect(int final)
{
	int collected = 0;

	(void)final;
	for (int i = 0; i < nr_vcpus; i++) {
		int n = collect_one(i);
		if (n < 0)
			return 2; /* TEST_ASSERT: the entry names no page of the VM */
		collected += n;
	}
	if (collected == 0)
		return 0;
	int cleared = ioctl(vm_fd, KVM_RESET_DIRTY_RINGS);
	if (cleared != collected)
		return 3; /* TEST_ASSERT: reset count differs from the collected count */
	report_bitmap();
	return 0;
}
