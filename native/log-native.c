/*
 * log-native: the emulator's KVM_RESET_DIRTY_RINGS, KVM_GET_DIRTY_LOG and KVM_CLEAR_DIRTY_LOG
 * algorithms written in C over the emulator's own data layout, for `npm run bench` (section 3,
 * bench/suites/kernel.ts; compiled by bench/lib/native.ts into .build/native/). It needs gcc
 * only, not /dev/kvm: it is the native cost of the same work, next to the real kernel's.
 *
 * Data, as the emulator lays it out (src/abi/dirty-gfn.ts, src/kernel/memslot-layout.ts,
 * src/kernel/dirty-bitmap.ts):
 *   - one ring of 8192 struct kvm_dirty_gfn entries (u32 flags, u32 slot, u64 offset: 16 bytes)
 *     and a u32 reset_index;
 *   - one 1 GiB slot (262144 pages, slot id 1, address space 0) with one int32 SPTE per page
 *     (bit 0 = writable) and a dirty bitmap of u32 words (bit n = page n), a live half and a
 *     snapshot half;
 *   - mmu_lock: one int32 word taken by compare-and-swap and released by a store (the kernel's
 *     spinlock; the emulator's SharedMutex also releases with one atomic);
 *   - one vCPU's request word and mode word: the remote TLB flush posts a bit and reads the
 *     mode (the vCPU is outside guest mode, so nobody is waited for, as in the emulator bench).
 * No guest memory is needed: only the metadata is touched.
 *
 * Each operation does what the kernel does (virt/kvm/dirty_ring.c, kvm_main.c, the x86 MMU's
 * write-protect of a 64-page mask) with the C11 orderings the emulator's memory model needs:
 *   reset:  per entry, acquire-load flags (stop at the first without RESET), read slot and
 *           offset, store flags 0; coalesce runs of one slot into (offset, 64-bit mask) forward
 *           and backward; per batch check as_id, id and the offset range, take mmu_lock,
 *           clear the writable bit of each page with an atomic AND, release the lock; publish
 *           reset_index (release); one TLB flush request if anything was consumed.
 *   GET (legacy): under mmu_lock, zero the user's buffer, then for each non-zero 64-page word
 *           (plain read, the kernel's word), exchange its non-zero u32 halves with 0, store them
 *           into the buffer and write-protect their pages; TLB flush request if any bit was
 *           taken.
 *   GET (manual protect): copy the live bitmap to the user's buffer.
 *   CLEAR:  under mmu_lock, for each 64-page pair of mask words that is not zero, atomically
 *           AND-NOT each non-zero word, write-protect the pages whose bits were set; TLB flush
 *           request if any bit was cleared.
 *
 * Protocol: one command per line on stdin, one answer line on stdout (as native/kvm-bench.c).
 *   ring <stridePages> <count>
 *       Pushes `count` entries (page i at i * stridePages, SPTE made writable) and marks them
 *       RESET, as a harvest would (not timed); then the reset, timed.
 *       -> ok <resetNs> <resetReturn>
 *   legacy <count>
 *       Dirties `count` pages spread evenly (page i * 262144 / count: bitmap bit and writable
 *       SPTE, as the fault path; not timed); then the legacy GET, timed.
 *       -> ok <getNs> <dirtyBitsReturned>
 *   manual <count>
 *       Same dirtying; then the manual-protect GET (timed) and a CLEAR of the whole slot with
 *       the bitmap GET returned (timed separately).
 *       -> ok <getNs> <clearNs> <dirtyBitsReturned>
 *   quit
 * Errors: `fatal <message>` and exit status 2. Times are CLOCK_MONOTONIC around the operation.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SLOT_PAGES 262144u
#define BITMAP_WORDS (SLOT_PAGES / 32u)
#define RING_ENTRIES 8192u
#define SLOT_ENC 1u /* as_id 0, id 1 */
#define USER_MEM_SLOTS 32764u
#define ADDRESS_SPACES 1u
#define F_DIRTY 1u
#define F_RESET 2u
#define SPTE_WRITABLE 1
#define REQ_TLB_FLUSH 1
#define OUTSIDE_GUEST_MODE 0

struct dirty_gfn {
	uint32_t flags;
	uint32_t slot;
	uint64_t offset;
};

struct memslot {
	uint32_t as_id, id;
	uint64_t npages;
	int32_t *spte;
	uint32_t *live;
	uint32_t *snapshot;
};

static struct dirty_gfn ring[RING_ENTRIES];
static uint32_t reset_index, dirty_index;
static struct memslot slots[1];
static int32_t mmu_lock;
static int32_t vcpu_requests, vcpu_mode;
static uint32_t user_bitmap[BITMAP_WORDS];

static void fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("fatal ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	exit(2);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void lock_mmu(void)
{
	int32_t expected = 0;
	while (!__atomic_compare_exchange_n(&mmu_lock, &expected, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		expected = 0;
}

static void unlock_mmu(void)
{
	__atomic_store_n(&mmu_lock, 0, __ATOMIC_RELEASE);
}

/* kvm_make_all_cpus_request(KVM_REQ_TLB_FLUSH) with one vCPU outside guest mode: post, then
 * read its mode after a full barrier; a vCPU in guest mode would be waited for. */
static void flush_remote_tlbs(void)
{
	__atomic_fetch_or(&vcpu_requests, REQ_TLB_FLUSH, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&vcpu_mode, __ATOMIC_SEQ_CST) != OUTSIDE_GUEST_MODE)
		fatal("the vCPU is in guest mode");
}

/* Clear the writable bit of each page of a 32- or 64-bit mask; pages known to be in the slot. */
static inline void protect_mask(int32_t *spte, uint64_t first, uint64_t mask)
{
	while (mask) {
		unsigned b = (unsigned)__builtin_ctzll(mask);
		mask &= mask - 1;
		__atomic_fetch_and(&spte[first + b], ~SPTE_WRITABLE, __ATOMIC_RELAXED);
	}
}

static struct memslot *find_slot(uint32_t as_id, uint32_t id)
{
	for (unsigned i = 0; i < sizeof slots / sizeof slots[0]; i++)
		if (slots[i].as_id == as_id && slots[i].id == id)
			return &slots[i];
	return NULL;
}

/* One coalesced batch: skipped silently unless it names pages of an existing slot. */
static void reset_gfn(struct memslot **cache, uint32_t *cached_enc, uint32_t enc, uint64_t offset, uint64_t mask)
{
	uint32_t as_id = enc >> 16, id = enc & 0xffffu;
	if (as_id >= ADDRESS_SPACES || id >= USER_MEM_SLOTS)
		return;
	if (enc != *cached_enc) {
		*cached_enc = enc;
		*cache = find_slot(as_id, id);
	}
	struct memslot *s = *cache;
	if (!s || offset >= s->npages || offset + (63 - __builtin_clzll(mask)) >= s->npages)
		return;
	lock_mmu();
	protect_mask(s->spte, offset, mask);
	unlock_mmu();
}

static uint32_t reset_rings(void)
{
	uint32_t idx = reset_index, count = 0, cur_slot = 0, cached_enc = UINT32_MAX;
	uint64_t cur_off = 0, mask = 0;
	struct memslot *cache = NULL;
	for (;;) {
		struct dirty_gfn *e = &ring[idx & (RING_ENTRIES - 1)];
		if (!(__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) & F_RESET))
			break;
		uint32_t slot = __atomic_load_n(&e->slot, __ATOMIC_RELAXED);
		uint64_t off = __atomic_load_n(&e->offset, __ATOMIC_RELAXED);
		__atomic_store_n(&e->flags, 0, __ATOMIC_RELAXED);
		idx++;
		count++;
		if (mask && slot == cur_slot) {
			int64_t delta = (int64_t)(off - cur_off);
			if (delta >= 0 && delta < 64) {
				mask |= 1ull << delta;
				continue;
			}
			if (delta < 0 && delta > -64 && (63 - __builtin_clzll(mask)) + (-delta) < 64) {
				mask = (mask << -delta) | 1;
				cur_off = off;
				continue;
			}
		}
		if (mask)
			reset_gfn(&cache, &cached_enc, cur_slot, cur_off, mask);
		cur_slot = slot;
		cur_off = off;
		mask = 1;
	}
	__atomic_store_n(&reset_index, idx, __ATOMIC_RELEASE);
	if (mask)
		reset_gfn(&cache, &cached_enc, cur_slot, cur_off, mask);
	if (count)
		flush_remote_tlbs();
	return count;
}

static void get_legacy(struct memslot *s, uint32_t *out)
{
	int taken = 0;
	lock_mmu();
	memset(out, 0, BITMAP_WORDS * sizeof *out);
	/* Plain reads of the kernel's 64-page words find the non-zero ones; only the exchange has
	 * to be atomic, and the layout's atomic unit is the u32 half. */
	const uint64_t *live64 = (const uint64_t *)s->live;
	for (uint32_t j = 0; j < BITMAP_WORDS / 2; j++) {
		if (live64[j] == 0)
			continue;
		for (uint32_t i = 2 * j; i < 2 * j + 2; i++) {
			uint32_t bits = __atomic_exchange_n(&s->live[i], 0, __ATOMIC_SEQ_CST);
			if (!bits)
				continue;
			out[i] = bits;
			taken = 1;
			protect_mask(s->spte, (uint64_t)i * 32, bits);
		}
	}
	unlock_mmu();
	if (taken)
		flush_remote_tlbs();
}

static void get_manual(struct memslot *s, uint32_t *out)
{
	memcpy(out, s->live, BITMAP_WORDS * sizeof *out);
}

static uint64_t clear_log(struct memslot *s, uint64_t first_page, const uint32_t *mask, uint32_t words)
{
	uint64_t cleared = 0;
	uint32_t start = (uint32_t)(first_page / 64) * 2;
	lock_mmu();
	for (uint32_t pair = 0; pair < words; pair += 2) {
		if ((mask[pair] | mask[pair + 1]) == 0)
			continue;
		for (uint32_t w = pair; w < pair + 2; w++) {
			uint32_t m = mask[w];
			if (!m)
				continue;
			uint32_t got = __atomic_fetch_and(&s->live[start + w], ~m, __ATOMIC_SEQ_CST) & m;
			if (!got)
				continue;
			cleared += (uint64_t)__builtin_popcount(got);
			protect_mask(s->spte, (uint64_t)(start + w) * 32, got);
		}
	}
	unlock_mmu();
	if (cleared)
		flush_remote_tlbs();
	return cleared;
}

/* The fault path's effect on the metadata: the SPTE made writable, and (bitmap VM) the bit. */
static void dirty_spread(struct memslot *s, uint64_t count)
{
	if (!count)
		return;
	uint64_t stride = SLOT_PAGES / count;
	for (uint64_t i = 0; i < count; i++) {
		uint64_t p = i * stride;
		__atomic_fetch_or(&s->spte[p], SPTE_WRITABLE, __ATOMIC_RELAXED);
		__atomic_fetch_or(&s->live[p / 32], 1u << (p % 32), __ATOMIC_RELAXED);
	}
}

static uint64_t bits_set(const uint32_t *w)
{
	uint64_t n = 0;
	for (uint32_t i = 0; i < BITMAP_WORDS; i++)
		n += (uint64_t)__builtin_popcount(w[i]);
	return n;
}

static void cmd_ring(uint64_t stride, uint64_t count)
{
	if (count == 0 || count > RING_ENTRIES - 64 || (count - 1) * stride >= SLOT_PAGES)
		fatal("ring %llu %llu: out of range", (unsigned long long)stride, (unsigned long long)count);
	struct memslot *s = &slots[0];
	for (uint64_t i = 0; i < count; i++) {
		struct dirty_gfn *e = &ring[dirty_index++ & (RING_ENTRIES - 1)];
		e->slot = SLOT_ENC;
		e->offset = i * stride;
		__atomic_fetch_or(&s->spte[i * stride], SPTE_WRITABLE, __ATOMIC_RELAXED);
		__atomic_store_n(&e->flags, F_DIRTY, __ATOMIC_RELEASE);
	}
	/* The harvest: acquire DIRTY, release RESET, in index order. */
	for (uint32_t i = reset_index; i != dirty_index; i++) {
		struct dirty_gfn *e = &ring[i & (RING_ENTRIES - 1)];
		if (__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) != F_DIRTY)
			fatal("ring entry %u is not dirty", i);
		__atomic_store_n(&e->flags, F_RESET, __ATOMIC_RELEASE);
	}
	uint64_t t0 = now_ns();
	uint32_t n = reset_rings();
	uint64_t t1 = now_ns();
	printf("ok %llu %u\n", (unsigned long long)(t1 - t0), n);
}

static void cmd_legacy(uint64_t count)
{
	struct memslot *s = &slots[0];
	dirty_spread(s, count);
	uint64_t t0 = now_ns();
	get_legacy(s, user_bitmap);
	uint64_t t1 = now_ns();
	printf("ok %llu %llu\n", (unsigned long long)(t1 - t0), (unsigned long long)bits_set(user_bitmap));
}

static void cmd_manual(uint64_t count)
{
	struct memslot *s = &slots[0];
	dirty_spread(s, count);
	uint64_t t0 = now_ns();
	get_manual(s, user_bitmap);
	uint64_t t1 = now_ns();
	clear_log(s, 0, user_bitmap, BITMAP_WORDS);
	uint64_t t2 = now_ns();
	printf("ok %llu %llu %llu\n", (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t1),
	       (unsigned long long)bits_set(user_bitmap));
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct memslot *s = &slots[0];
	s->as_id = 0;
	s->id = 1;
	s->npages = SLOT_PAGES;
	s->spte = calloc(SLOT_PAGES, sizeof *s->spte);
	s->live = aligned_alloc(64, 2 * BITMAP_WORDS * sizeof *s->live);
	if (s->live)
		memset(s->live, 0, 2 * BITMAP_WORDS * sizeof *s->live);
	if (!s->spte || !s->live)
		fatal("out of memory");
	s->snapshot = s->live + BITMAP_WORDS;
	printf("ready\n");
	char line[256];
	while (fgets(line, sizeof line, stdin)) {
		char cmd[16];
		unsigned long long a = 0, b = 0;
		int n = sscanf(line, "%15s %llu %llu", cmd, &a, &b);
		if (n < 1)
			continue;
		if (strcmp(cmd, "ring") == 0 && n == 3)
			cmd_ring(a, b);
		else if (strcmp(cmd, "legacy") == 0 && n == 2)
			cmd_legacy(a);
		else if (strcmp(cmd, "manual") == 0 && n == 2)
			cmd_manual(a);
		else if (strcmp(cmd, "quit") == 0)
			break;
		else
			fatal("unknown command");
	}
	return 0;
}
