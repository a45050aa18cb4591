/*
 * kvm-bench: times the real kernel's dirty-logging ioctls on this machine, for `npm run bench`
 * (bench/suites/kernel.ts compiles it with gcc into .build/native/ at first use).
 *
 * Two VMs, each with one vCPU and one 1 GiB memslot with KVM_MEM_LOG_DIRTY_PAGES at guest
 * physical 1 GiB (slot 1); the guest's code lives in an unlogged 64 KiB slot at 0 (slot 0):
 *   - the ring VM: KVM_CAP_DIRTY_LOG_RING_ACQ_REL with 8192 entries (so 4096 pushes never reach
 *     the soft limit of 8192 - 64), its ring mmapped MAP_SHARED;
 *   - the bitmap VM: no ring; KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 is switched between 0 (legacy
 *     GET) and 1 (manual GET + CLEAR) per command.
 * Pages are dirtied by the guest itself: a 32-bit protected-mode loop (no paging) that stores
 * one byte at `edi`, adds `edx` and repeats `ecx` times, then halts. On this host (PVM) every
 * guest store goes through KVM's instruction emulator and kvm_vcpu_write_guest, which marks the
 * page dirty (ring push or bitmap bit) on every store; each page is stored to once per round.
 *
 * Protocol: one command per line on stdin, one answer line on stdout.
 *   ring <stridePages> <count>
 *       The guest stores to `count` pages, page i at i * stridePages (not timed); userspace
 *       harvests the ring in order (acquire-load flags == DIRTY, release-store RESET) (not
 *       timed); then KVM_RESET_DIRTY_RINGS, timed.
 *       -> ok <resetNs> <entriesHarvested> <resetReturn>
 *   legacy <count>
 *       Manual protect off. The guest stores to `count` pages spread evenly over the slot (not
 *       timed; count 0 stores nothing); then KVM_GET_DIRTY_LOG, timed.
 *       -> ok <getNs> <dirtyBitsReturned>
 *   manual <count>
 *       Manual protect on. Same dirtying; then KVM_GET_DIRTY_LOG (timed) and
 *       KVM_CLEAR_DIRTY_LOG of the whole slot with the bitmap GET returned (timed separately).
 *       -> ok <getNs> <clearNs> <dirtyBitsReturned>
 *   quit
 * Errors: `fatal <message>` and exit status 2. Times are CLOCK_MONOTONIC around the ioctl
 * system call alone, in nanoseconds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <linux/kvm.h>

#define PAGE_BYTES 4096ull
#define SLOT_GPA (1ull << 30)
#define SLOT_BYTES (1ull << 30)
#define SLOT_PAGES (SLOT_BYTES / PAGE_BYTES)
#define CODE_BYTES (64ull << 10)
#define CODE_GPA 0x1000u
#define RING_ENTRIES 8192u
#define RING_MMAP_PAGE 64u /* KVM_DIRTY_LOG_PAGE_OFFSET (x86) */

#ifndef KVM_CAP_DIRTY_LOG_RING_ACQ_REL
#define KVM_CAP_DIRTY_LOG_RING_ACQ_REL 223
#endif

struct gfn_entry {
	uint32_t flags;
	uint32_t slot;
	uint64_t offset;
};

struct bench_vm {
	int vm;
	int vcpu;
	struct kvm_run *run;
	uint8_t *code;
	uint8_t *mem;
	struct gfn_entry *ring;
	uint32_t fetch;
};

static int kvm;
static struct bench_vm ring_vm, bitmap_vm;
static uint64_t *bitmap_buf;

/* The guest: `1: jecxz 2f; mov %al,(%edi); add %edx,%edi; dec %ecx; jmp 1b; 2: hlt`. */
static const uint8_t guest_loop[] = {
	0xe3, 0x08,       /* jecxz +8 (to hlt) */
	0x88, 0x07,       /* mov %al, (%edi) */
	0x01, 0xd7,       /* add %edx, %edi */
	0x49,             /* dec %ecx */
	0xeb, 0xf7,       /* jmp -9 (to jecxz) */
	0x90,             /* nop (padding so that jecxz lands on hlt) */
	0xf4,             /* hlt */
};

/* `fatal <message>` on stdout (the driver reads it as the answer), then exit status 2. */
static void fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("fatal ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
	exit(2);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *anon(uint64_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		fatal("mmap: %s", strerror(errno));
	return p;
}

static void set_region(int vm, uint32_t slot, uint32_t flags, uint64_t gpa, uint64_t bytes, void *host)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot, .flags = flags, .guest_phys_addr = gpa, .memory_size = bytes,
		.userspace_addr = (uint64_t)(uintptr_t)host,
	};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		fatal("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
}

/* `name` is the capability's name, for the error message. */
static void enable_cap(int vm, uint32_t cap, const char *name, uint64_t arg)
{
	struct kvm_enable_cap c;
	memset(&c, 0, sizeof c);
	c.cap = cap;
	c.args[0] = arg;
	if (ioctl(vm, KVM_ENABLE_CAP, &c) < 0)
		fatal("KVM_ENABLE_CAP %s (arg %llu): %s", name, (unsigned long long)arg, strerror(errno));
}

/* Flat 32-bit protected mode, paging off: guest virtual = guest physical below 4 GiB. */
static void flat_protected_mode(int vcpu)
{
	struct kvm_sregs s;
	if (ioctl(vcpu, KVM_GET_SREGS, &s) < 0)
		fatal("KVM_GET_SREGS: %s", strerror(errno));
	struct kvm_segment seg;
	memset(&seg, 0, sizeof seg);
	seg.base = 0;
	seg.limit = 0xffffffffu;
	seg.present = 1;
	seg.s = 1;
	seg.db = 1;
	seg.g = 1;
	seg.selector = 0x10;
	seg.type = 3; /* data, read/write, accessed */
	s.ds = s.es = s.fs = s.gs = s.ss = seg;
	seg.selector = 0x08;
	seg.type = 11; /* code, execute/read, accessed */
	s.cs = seg;
	s.cr0 |= 1; /* PE */
	s.cr0 &= ~0x80000000ull; /* no paging */
	if (ioctl(vcpu, KVM_SET_SREGS, &s) < 0)
		fatal("KVM_SET_SREGS: %s", strerror(errno));
}

static void make_vm(struct bench_vm *b, int with_ring)
{
	memset(b, 0, sizeof *b);
	b->vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (b->vm < 0)
		fatal("KVM_CREATE_VM: %s", strerror(errno));
	if (with_ring)
		enable_cap(b->vm, KVM_CAP_DIRTY_LOG_RING_ACQ_REL, "KVM_CAP_DIRTY_LOG_RING_ACQ_REL", RING_ENTRIES * sizeof(struct gfn_entry));
	b->code = anon(CODE_BYTES);
	memcpy(b->code + CODE_GPA, guest_loop, sizeof guest_loop);
	set_region(b->vm, 0, 0, 0, CODE_BYTES, b->code);
	b->mem = anon(SLOT_BYTES);
	set_region(b->vm, 1, KVM_MEM_LOG_DIRTY_PAGES, SLOT_GPA, SLOT_BYTES, b->mem);
	b->vcpu = ioctl(b->vm, KVM_CREATE_VCPU, 0);
	if (b->vcpu < 0)
		fatal("KVM_CREATE_VCPU: %s", strerror(errno));
	int size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size <= 0)
		fatal("KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
	b->run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, b->vcpu, 0);
	if (b->run == MAP_FAILED)
		fatal("mmap kvm_run: %s", strerror(errno));
	if (with_ring) {
		void *p = mmap(NULL, RING_ENTRIES * sizeof(struct gfn_entry), PROT_READ | PROT_WRITE, MAP_SHARED,
			       b->vcpu, (off_t)RING_MMAP_PAGE * (off_t)PAGE_BYTES);
		if (p == MAP_FAILED)
			fatal("mmap dirty ring: %s", strerror(errno));
		b->ring = p;
	}
	flat_protected_mode(b->vcpu);
}

/* Run the guest loop: `count` one-byte stores, the first at gpa, then every strideBytes. */
static void guest_stores(struct bench_vm *b, uint64_t gpa, uint64_t count, uint64_t stride_bytes)
{
	if (count == 0)
		return;
	struct kvm_regs r;
	memset(&r, 0, sizeof r);
	r.rip = CODE_GPA;
	r.rflags = 0x2;
	r.rdi = gpa;
	r.rcx = count;
	r.rdx = stride_bytes;
	r.rax = 0x5a;
	if (ioctl(b->vcpu, KVM_SET_REGS, &r) < 0)
		fatal("KVM_SET_REGS: %s", strerror(errno));
	for (;;) {
		if (ioctl(b->vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR)
				continue;
			fatal("KVM_RUN: %s", strerror(errno));
		}
		if (b->run->exit_reason == KVM_EXIT_HLT)
			return;
		fatal("unexpected exit reason %u while dirtying pages", b->run->exit_reason);
	}
}

static uint64_t harvest(struct bench_vm *b)
{
	uint64_t n = 0;
	for (;;) {
		struct gfn_entry *e = &b->ring[b->fetch & (RING_ENTRIES - 1)];
		if (__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) != KVM_DIRTY_GFN_F_DIRTY)
			return n;
		__atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
		b->fetch++;
		n++;
	}
}

static void cmd_ring(uint64_t stride_pages, uint64_t count)
{
	if (count == 0 || count > RING_ENTRIES - 64 || stride_pages == 0 || (count - 1) * stride_pages >= SLOT_PAGES)
		fatal("ring: count must be 1..8128 and the pages must fit the slot");
	guest_stores(&ring_vm, SLOT_GPA, count, stride_pages * PAGE_BYTES);
	uint64_t harvested = harvest(&ring_vm);
	uint64_t t0 = now_ns();
	int r = ioctl(ring_vm.vm, KVM_RESET_DIRTY_RINGS, 0);
	uint64_t t1 = now_ns();
	if (r < 0)
		fatal("KVM_RESET_DIRTY_RINGS: %s", strerror(errno));
	printf("ok %llu %llu %d\n", (unsigned long long)(t1 - t0), (unsigned long long)harvested, r);
}

static void dirty_spread(uint64_t count)
{
	if (count > SLOT_PAGES)
		fatal("more dirty pages than the slot has");
	if (count == 0)
		return;
	guest_stores(&bitmap_vm, SLOT_GPA, count, (SLOT_PAGES / count) * PAGE_BYTES);
}

static uint64_t popcount_bitmap(void)
{
	uint64_t n = 0;
	for (uint64_t i = 0; i < SLOT_PAGES / 64; i++)
		n += (uint64_t)__builtin_popcountll(bitmap_buf[i]);
	return n;
}

static uint64_t get_log(void)
{
	struct kvm_dirty_log log;
	memset(&log, 0, sizeof log);
	log.slot = 1;
	log.dirty_bitmap = bitmap_buf;
	uint64_t t0 = now_ns();
	int r = ioctl(bitmap_vm.vm, KVM_GET_DIRTY_LOG, &log);
	uint64_t t1 = now_ns();
	if (r < 0)
		fatal("KVM_GET_DIRTY_LOG: %s", strerror(errno));
	return t1 - t0;
}

static uint64_t clear_log(void)
{
	struct kvm_clear_dirty_log c;
	memset(&c, 0, sizeof c);
	c.slot = 1;
	c.first_page = 0;
	c.num_pages = (uint32_t)SLOT_PAGES;
	c.dirty_bitmap = bitmap_buf;
	uint64_t t0 = now_ns();
	int r = ioctl(bitmap_vm.vm, KVM_CLEAR_DIRTY_LOG, &c);
	uint64_t t1 = now_ns();
	if (r < 0)
		fatal("KVM_CLEAR_DIRTY_LOG: %s", strerror(errno));
	return t1 - t0;
}

static int manual_on = -1;

static void set_manual(int on)
{
	if (manual_on == on)
		return;
	enable_cap(bitmap_vm.vm, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, "KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2", on ? KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE : 0);
	manual_on = on;
	/* Start from an empty log in either mode. */
	memset(bitmap_buf, 0, SLOT_PAGES / 8);
	get_log();
	if (on)
		clear_log();
}

static void cmd_legacy(uint64_t count)
{
	set_manual(0);
	dirty_spread(count);
	/* No memset of bitmap_buf first: GET writes every byte, and the emulator side's buffer is not warmed either. */
	uint64_t ns = get_log();
	printf("ok %llu %llu\n", (unsigned long long)ns, (unsigned long long)popcount_bitmap());
}

static void cmd_manual(uint64_t count)
{
	set_manual(1);
	dirty_spread(count);
	uint64_t get_ns = get_log(); /* overwrites all of bitmap_buf, see cmd_legacy */
	uint64_t bits = popcount_bitmap();
	uint64_t clear_ns = clear_log();
	printf("ok %llu %llu %llu\n", (unsigned long long)get_ns, (unsigned long long)clear_ns, (unsigned long long)bits);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		fatal("open /dev/kvm: %s", strerror(errno));
	if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
		fatal("unexpected KVM API version");
	bitmap_buf = anon(SLOT_PAGES / 8);
	make_vm(&ring_vm, 1);
	make_vm(&bitmap_vm, 0);
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
