/*
 * kvm-runner: drives the real /dev/kvm through the dirty-logging interfaces for the dirtyring
 * fidelity feature. It knows nothing about JSON: src/fidelity/kvm-runner-protocol.ts compiles a
 * scenario into the line-based command script below and parses the answers, and
 * src/fidelity/kvm-engine.ts feeds the script on stdin and reads stdout.
 *
 * Protocol (version 1). Input: one command per line, tokens separated by single spaces, every
 * number in unsigned decimal (64-bit allowed), "-" for "absent". Output: exactly one line per
 * command, in order, on stdout:
 *     ok [values...]        the command ran (the ioctl, if any, returned >= 0)
 *     err <ENAME>           the ioctl failed with that errno (symbolic name)
 *     fatal <message>       the runner cannot go on (bad command, setup broken); it exits 2
 * Diagnostics go to stderr only.
 *
 *   init <maxVcpus> <queueCapacity>
 *       First command. Creates the VM and the runner's private guest memory (code, page tables,
 *       store queues). -> ok
 *   cap <capNumber> <args0> <capFlags>
 *       KVM_ENABLE_CAP on the VM. After success with cap 192/223 the ring size is (u32)args0,
 *       exactly as the kernel truncates it. -> ok | err
 *   check <capNumber>
 *       KVM_CHECK_EXTENSION on the VM fd. -> ok <value> | err
 *   slot <slotField> <gpa> <pages> <flags>
 *       KVM_SET_USER_MEMORY_REGION, slot = slotField = (asId << 16) | id. pages = 0 deletes the
 *       slot. Host memory for a slotField is an anonymous mapping made on first use and reused
 *       afterwards. The guest page tables are extended to cover the range. -> ok | err
 *   vcpu
 *       KVM_CREATE_VCPU with id = number of vCPUs created so far; mmaps its ring (MAP_SHARED,
 *       offset 64 pages) when a ring size is set. The first attempt also registers the runner's
 *       memory slot (RUNNER_SLOT at gpa 0). -> ok | err
 *   write <vcpu> <kind> <repeat> <n> <gpa_1> ... <gpa_n>
 *       Appends n * repeat guest accesses to the vCPU's queue: repeat accesses to gpa_1, then
 *       repeat to gpa_2, ... kind bit 0: exit to userspace (out to RUNNER_PORT) after each
 *       access; bit 1: loads instead of stores. No ioctl. -> ok
 *   run <vcpu> <stopOnIo 0|1>
 *       KVM_RUN until exit HLT (queue drained) or DIRTY_RING_FULL (31). Exits for RUNNER_PORT are
 *       re-entered at once unless stopOnIo is 1, in which case the first one ends the command.
 *       -> ok hlt | ok dirty_ring_full | ok io | ok other <exit_reason> | err
 *   harvest <vcpu> <max> <flagsValue>
 *       From the runner's free-running fetch index: while fewer than max were taken and
 *       load_acquire(flags) == 1 (DIRTY alone): read slot and offset, store_release(flags,
 *       flagsValue), fetch++. -> ok <n> <slot_1> <offset_1> ... <slot_n> <offset_n>
 *   wentry <vcpu> <index> <flags|-> <slot|-> <offset|->
 *       Writes a raw ring entry at index mod size as a misbehaving userspace would: slot and
 *       offset with plain stores, then flags with a release store. Does not move the fetch
 *       index. -> ok
 *   rentry <vcpu> <index>
 *       Reads the raw entry at index mod size (flags with acquire). -> ok <flags> <slot> <offset>
 *   mmap <vcpu> <shared 0|1> <prot>
 *       A second mmap of the vCPU's ring (ring size bytes at offset 64 pages), MAP_SHARED or
 *       MAP_PRIVATE, prot = PROT_READ 1 | PROT_WRITE 2 | PROT_EXEC 4; unmapped again at once.
 *       The runner's own mapping is not touched. -> ok | err
 *   reset
 *       KVM_RESET_DIRTY_RINGS. -> ok <count> | err
 *   get <slotField> <null 0|1>
 *       KVM_GET_DIRTY_LOG into a zeroed buffer (NULL pointer when null is 1).
 *       -> ok <n> <page_1> ... <page_n> (every set bit of the buffer, ascending) | err
 *   clear <slotField> <first> <num> <null 0|1> <k> <bit_1> ... <bit_k>
 *       KVM_CLEAR_DIRTY_LOG; bit i of the user bitmap stands for page first + i; the buffer has
 *       max(1, ceil(num / 64)) 64-bit words. -> ok | err
 *
 * The guest: 64-bit long mode, identity-mapped with 2 MiB pages whose A and D bits are preset
 * (the page tables are never written by the guest), started at GUEST_CODE with r8 = address of
 * the vCPU's queue length and r9 = its queue. It performs queued accesses in order, one byte
 * each at the start of the page, leaves with `out` after each access flagged so, and executes
 * `hlt` when the queue is drained; a later KVM_RUN continues with whatever was queued since.
 * The runner's memory (slot RUNNER_SLOT, gpa 0 .. < 1 GiB) is never dirty-logged.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef KVM_CAP_DIRTY_LOG_RING
#define KVM_CAP_DIRTY_LOG_RING 192
#endif
#ifndef KVM_EXIT_DIRTY_RING_FULL
#define KVM_EXIT_DIRTY_RING_FULL 31
#endif
#ifndef KVM_RESET_DIRTY_RINGS
#define KVM_RESET_DIRTY_RINGS _IO(KVMIO, 0xc7)
#endif
#ifndef KVM_CAP_DIRTY_LOG_RING_ACQ_REL
#define KVM_CAP_DIRTY_LOG_RING_ACQ_REL 223
#endif

#define RING_PAGE_OFFSET 64u /* KVM_DIRTY_LOG_PAGE_OFFSET on x86 */
#define RUNNER_SLOT 32763u
#define RUNNER_PORT 0x10u
#define PAGE 4096ull
#define HUGE (2ull << 20)
#define GUEST_CODE 0x1000ull
#define GUEST_PML4 0x2000ull
#define PT_POOL_START 0x3000ull
#define PT_POOL_END 0x100000ull
#define CTRL_BASE 0x100000ull /* one 4 KiB page per vCPU: u64 queue length */
#define QUEUE_BASE 0x200000ull
#define RUNNER_LIMIT (1ull << 30)
#define MAX_VCPUS 64
#define MAX_SLOTS 256

struct ring_entry {
	uint32_t flags;
	uint32_t slot;
	uint64_t offset;
};

struct vcpu {
	int fd;
	struct kvm_run *run;
	struct ring_entry *ring;
	uint32_t fetch;
	uint64_t queued;
};

struct slot_mem {
	uint32_t field;
	uint64_t pages;
	void *mem;
};

static int kvm_fd = -1, vm_fd = -1;
static uint8_t *runner_mem;
static uint64_t runner_bytes, queue_cap, pt_next = PT_POOL_START, max_phys = 1ull << 36;
static unsigned max_vcpus, nvcpus;
static int runner_slot_set;
static uint32_t ring_bytes;
static struct vcpu vcpus[MAX_VCPUS];
static struct slot_mem slots[MAX_SLOTS];
static unsigned nslots;
static uint64_t largest_pages = 64;

/* The guest program: position-independent, assembled by gcc from this file. */
extern const unsigned char guest_code_start[], guest_code_end[];
__asm__(".pushsection .rodata\n"
	".globl guest_code_start\n"
	".globl guest_code_end\n"
	"guest_code_start:\n"
	".code64\n"
	"1:  movq (%r8), %rax\n"        /* queue length */
	"    cmpq %rax, %rsi\n"
	"    jae 4f\n"
	"    movq %rsi, %rbx\n"
	"    shlq $4, %rbx\n"
	"    addq %r9, %rbx\n"
	"    movq (%rbx), %rdi\n"       /* gpa */
	"    movq 8(%rbx), %rcx\n"      /* kind */
	"    incq %rsi\n"
	"    testb $2, %cl\n"
	"    jnz 2f\n"
	"    movb %sil, (%rdi)\n"       /* the store */
	"    jmp 3f\n"
	"2:  movb (%rdi), %al\n"        /* the load */
	"3:  testb $1, %cl\n"
	"    jz 1b\n"
	"    outb %al, $0x10\n"         /* RUNNER_PORT */
	"    jmp 1b\n"
	"4:  hlt\n"
	"    jmp 1b\n"
	"guest_code_end:\n"
	".popsection\n");

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

static const char *errno_name(int e)
{
	switch (e) {
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case ESRCH: return "ESRCH";
	case EINTR: return "EINTR";
	case EIO: return "EIO";
	case ENXIO: return "ENXIO";
	case E2BIG: return "E2BIG";
	case EBADF: return "EBADF";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case EACCES: return "EACCES";
	case EFAULT: return "EFAULT";
	case EBUSY: return "EBUSY";
	case EEXIST: return "EEXIST";
	case ENODEV: return "ENODEV";
	case EINVAL: return "EINVAL";
	case ENOSPC: return "ENOSPC";
	case ERANGE: return "ERANGE";
	case ENOTTY: return "ENOTTY";
	case ENOSYS: return "ENOSYS";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	default: {
		static char buf[32];
		snprintf(buf, sizeof buf, "E%d", e);
		return buf;
	}
	}
}

static void print_err(int e)
{
	printf("err %s\n", errno_name(e));
}

/* ---- tokenizer ---- */

static char *tokens[1 << 22];
static unsigned ntokens;

static uint64_t num(unsigned i)
{
	if (i >= ntokens)
		fatal("missing argument %u", i);
	char *end;
	errno = 0;
	uint64_t v = strtoull(tokens[i], &end, 10);
	if (errno || *end || tokens[i][0] == '\0' || tokens[i][0] == '-')
		fatal("bad number '%s'", tokens[i]);
	return v;
}

static int absent(unsigned i)
{
	if (i >= ntokens)
		fatal("missing argument %u", i);
	return strcmp(tokens[i], "-") == 0;
}

/* ---- guest memory ---- */

static uint64_t *pt_at(uint64_t gpa)
{
	return (uint64_t *)(runner_mem + gpa);
}

static uint64_t pt_alloc(void)
{
	if (pt_next >= PT_POOL_END)
		fatal("page-table pool exhausted");
	uint64_t gpa = pt_next;
	pt_next += PAGE;
	memset(runner_mem + gpa, 0, PAGE);
	return gpa;
}

#define PTE_P 0x1ull
#define PTE_RW 0x2ull
#define PTE_A 0x20ull
#define PTE_D 0x40ull
#define PTE_PS 0x80ull
#define PTE_ADDR 0x000ffffffffff000ull

/* Identity-map [gpa, gpa + bytes) with 2 MiB pages. */
static void map_range(uint64_t gpa, uint64_t bytes)
{
	if (bytes == 0)
		return;
	uint64_t end = gpa + bytes;
	if (end < gpa || end > max_phys)
		fatal("gpa range 0x%" PRIx64 "+0x%" PRIx64 " beyond the guest's physical address width", gpa, bytes);
	for (uint64_t a = gpa & ~(HUGE - 1); a < end; a += HUGE) {
		uint64_t *pml4 = pt_at(GUEST_PML4);
		uint64_t *e4 = &pml4[(a >> 39) & 511];
		if (!(*e4 & PTE_P))
			*e4 = pt_alloc() | PTE_P | PTE_RW | PTE_A;
		uint64_t *pdpt = pt_at(*e4 & PTE_ADDR);
		uint64_t *e3 = &pdpt[(a >> 30) & 511];
		if (!(*e3 & PTE_P))
			*e3 = pt_alloc() | PTE_P | PTE_RW | PTE_A;
		uint64_t *pd = pt_at(*e3 & PTE_ADDR);
		pd[(a >> 21) & 511] = a | PTE_P | PTE_RW | PTE_A | PTE_D | PTE_PS;
	}
}

static uint64_t queue_gpa(unsigned v)
{
	return QUEUE_BASE + (uint64_t)v * queue_cap * 16;
}

static uint64_t ctrl_gpa(unsigned v)
{
	return CTRL_BASE + (uint64_t)v * PAGE;
}

static void cmd_init(void)
{
	if (vm_fd >= 0)
		fatal("init given twice");
	max_vcpus = (unsigned)num(1);
	queue_cap = num(2);
	if (max_vcpus > MAX_VCPUS)
		fatal("at most %d vCPUs", MAX_VCPUS);
	if (queue_cap == 0)
		queue_cap = 1;
	if (queue_cap > RUNNER_LIMIT / 16)
		fatal("store queues too large for the runner's 1 GiB");
	runner_bytes = QUEUE_BASE + (uint64_t)(max_vcpus ? max_vcpus : 1) * queue_cap * 16;
	runner_bytes = (runner_bytes + HUGE - 1) & ~(HUGE - 1);
	if (runner_bytes > RUNNER_LIMIT)
		fatal("store queues too large for the runner's 1 GiB");

	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0)
		fatal("open /dev/kvm: %s", strerror(errno));
	int api = ioctl(kvm_fd, KVM_GET_API_VERSION, 0);
	if (api != KVM_API_VERSION)
		fatal("KVM API version %d", api);
	vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (vm_fd < 0)
		fatal("KVM_CREATE_VM: %s", strerror(errno));

	runner_mem = mmap(NULL, runner_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (runner_mem == MAP_FAILED)
		fatal("mmap runner memory: %s", strerror(errno));
	size_t code_len = (size_t)(guest_code_end - guest_code_start);
	memcpy(runner_mem + GUEST_CODE, guest_code_start, code_len);
	memset(runner_mem + GUEST_PML4, 0, PAGE);

	/* The guest's physical address width, for the page tables' sake. */
	struct {
		struct kvm_cpuid2 h;
		struct kvm_cpuid_entry2 e[256];
	} cpuid = { .h.nent = 256 };
	if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, &cpuid) == 0) {
		for (unsigned i = 0; i < cpuid.h.nent; i++)
			if (cpuid.e[i].function == 0x80000008 && (cpuid.e[i].eax & 0xff) >= 32)
				max_phys = 1ull << (cpuid.e[i].eax & 0xff);
	}
	map_range(0, runner_bytes);
	printf("ok\n");
}

static void need_vm(void)
{
	if (vm_fd < 0)
		fatal("init must come first");
}

static void cmd_cap(void)
{
	need_vm();
	struct kvm_enable_cap cap;
	memset(&cap, 0, sizeof cap);
	cap.cap = (uint32_t)num(1);
	cap.args[0] = num(2);
	cap.flags = (uint32_t)num(3);
	if (ioctl(vm_fd, KVM_ENABLE_CAP, &cap) < 0) {
		print_err(errno);
		return;
	}
	if (cap.cap == KVM_CAP_DIRTY_LOG_RING || cap.cap == KVM_CAP_DIRTY_LOG_RING_ACQ_REL)
		ring_bytes = (uint32_t)cap.args[0];
	printf("ok\n");
}

static void cmd_check(void)
{
	need_vm();
	int r = ioctl(vm_fd, KVM_CHECK_EXTENSION, (unsigned long)num(1));
	if (r < 0)
		print_err(errno);
	else
		printf("ok %d\n", r);
}

static struct slot_mem *find_slot(uint32_t field)
{
	for (unsigned i = 0; i < nslots; i++)
		if (slots[i].field == field)
			return &slots[i];
	return NULL;
}

static void cmd_slot(void)
{
	need_vm();
	uint32_t field = (uint32_t)num(1);
	uint64_t gpa = num(2), pages = num(3), flags = num(4);
	if (field == RUNNER_SLOT)
		fatal("slot %u is the runner's", RUNNER_SLOT);
	if (pages && gpa < RUNNER_LIMIT)
		fatal("gpa below 1 GiB is the runner's");
	struct slot_mem *s = find_slot(field);
	if (pages) {
		if (s && s->pages != pages) {
			munmap(s->mem, s->pages * PAGE);
			s->mem = NULL;
		}
		if (!s) {
			if (nslots == MAX_SLOTS)
				fatal("too many slots");
			s = &slots[nslots++];
			s->field = field;
			s->mem = NULL;
		}
		if (!s->mem) {
			s->pages = pages;
			s->mem = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
			if (s->mem == MAP_FAILED)
				fatal("mmap slot memory: %s", strerror(errno));
		}
		if (pages > largest_pages)
			largest_pages = pages;
		map_range(gpa, pages * PAGE);
	}
	struct kvm_userspace_memory_region r = {
		.slot = field,
		.flags = (uint32_t)flags,
		.guest_phys_addr = gpa,
		.memory_size = pages * PAGE,
		.userspace_addr = pages ? (uint64_t)(uintptr_t)s->mem : 0,
	};
	if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		print_err(errno);
	else
		printf("ok\n");
}

static void set_runner_slot(void)
{
	if (runner_slot_set)
		return;
	struct kvm_userspace_memory_region r = {
		.slot = RUNNER_SLOT,
		.flags = 0,
		.guest_phys_addr = 0,
		.memory_size = runner_bytes,
		.userspace_addr = (uint64_t)(uintptr_t)runner_mem,
	};
	if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		fatal("runner memslot: %s", strerror(errno));
	runner_slot_set = 1;
}

static void setup_long_mode(int fd, unsigned id)
{
	struct {
		struct kvm_cpuid2 h;
		struct kvm_cpuid_entry2 e[256];
	} cpuid = { .h.nent = 256 };
	if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, &cpuid) < 0)
		fatal("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
	if (ioctl(fd, KVM_SET_CPUID2, &cpuid) < 0)
		fatal("KVM_SET_CPUID2: %s", strerror(errno));

	struct kvm_sregs s;
	if (ioctl(fd, KVM_GET_SREGS, &s) < 0)
		fatal("KVM_GET_SREGS: %s", strerror(errno));
	struct kvm_segment code = {
		.base = 0, .limit = 0xffffffff, .selector = 0x8, .type = 11, .present = 1,
		.dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1,
	};
	struct kvm_segment data = {
		.base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 3, .present = 1,
		.dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
	};
	struct kvm_segment tss = {
		.base = 0, .limit = 0x67, .selector = 0x18, .type = 11, .present = 1, .s = 0,
	};
	s.cs = code;
	s.ds = s.es = s.fs = s.gs = s.ss = data;
	s.tr = tss;
	s.ldt.unusable = 1;
	s.cr0 = 0x80000001ull | 0x20ull | 0x10ull; /* PG | PE | NE | ET */
	s.cr3 = GUEST_PML4;
	s.cr4 = 0x20ull; /* PAE */
	s.efer = 0x500ull; /* LME | LMA */
	if (ioctl(fd, KVM_SET_SREGS, &s) < 0)
		fatal("KVM_SET_SREGS: %s", strerror(errno));

	struct kvm_regs r;
	memset(&r, 0, sizeof r);
	r.rip = GUEST_CODE;
	r.rflags = 0x2;
	r.rsp = GUEST_CODE; /* unused: the guest has no stack operations */
	r.r8 = ctrl_gpa(id);
	r.r9 = queue_gpa(id);
	r.rsi = 0;
	if (ioctl(fd, KVM_SET_REGS, &r) < 0)
		fatal("KVM_SET_REGS: %s", strerror(errno));
}

static void cmd_vcpu(void)
{
	need_vm();
	if (nvcpus >= max_vcpus)
		fatal("more vCPUs than init declared");
	set_runner_slot();
	int fd = ioctl(vm_fd, KVM_CREATE_VCPU, (unsigned long)nvcpus);
	if (fd < 0) {
		print_err(errno);
		return;
	}
	struct vcpu *v = &vcpus[nvcpus];
	v->fd = fd;
	int run_size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size <= 0)
		fatal("KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
	v->run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (v->run == MAP_FAILED)
		fatal("mmap kvm_run: %s", strerror(errno));
	v->ring = NULL;
	if (ring_bytes) {
		void *p = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)(RING_PAGE_OFFSET * PAGE));
		if (p == MAP_FAILED)
			fatal("mmap dirty ring: %s", strerror(errno));
		v->ring = p;
	}
	v->fetch = 0;
	v->queued = 0;
	*(uint64_t *)(runner_mem + ctrl_gpa(nvcpus)) = 0;
	setup_long_mode(fd, nvcpus);
	nvcpus++;
	printf("ok\n");
}

static struct vcpu *vcpu_arg(unsigned i)
{
	uint64_t id = num(i);
	if (id >= nvcpus)
		fatal("vCPU %" PRIu64 " does not exist", id);
	return &vcpus[id];
}

static struct vcpu *ring_vcpu_arg(unsigned i)
{
	struct vcpu *v = vcpu_arg(i);
	if (!v->ring)
		fatal("vCPU %" PRIu64 " has no dirty ring", num(i));
	return v;
}

static void cmd_write(void)
{
	struct vcpu *v = vcpu_arg(1);
	unsigned id = (unsigned)(v - vcpus);
	uint64_t kind = num(2), repeat = num(3), n = num(4);
	if (ntokens != 5 + n)
		fatal("write: %" PRIu64 " addresses announced, %u given", n, ntokens - 5);
	if (repeat != 0 && n > (queue_cap - v->queued) / repeat)
		fatal("store queue of vCPU %u overflows (capacity %" PRIu64 ")", id, queue_cap);
	uint64_t *q = (uint64_t *)(runner_mem + queue_gpa(id));
	for (uint64_t i = 0; i < n; i++) {
		uint64_t gpa = num(5 + (unsigned)i);
		if (gpa >= max_phys)
			fatal("gpa 0x%" PRIx64 " beyond the guest's physical address width", gpa);
		for (uint64_t r = 0; r < repeat; r++) {
			q[2 * v->queued] = gpa;
			q[2 * v->queued + 1] = kind;
			v->queued++;
		}
	}
	*(volatile uint64_t *)(runner_mem + ctrl_gpa(id)) = v->queued;
	printf("ok\n");
}

static void cmd_run(void)
{
	struct vcpu *v = vcpu_arg(1);
	int stop_on_io = num(2) != 0;
	for (;;) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			print_err(errno);
			return;
		}
		struct kvm_run *r = v->run;
		switch (r->exit_reason) {
		case KVM_EXIT_HLT:
			printf("ok hlt\n");
			return;
		case KVM_EXIT_DIRTY_RING_FULL:
			printf("ok dirty_ring_full\n");
			return;
		case KVM_EXIT_IO:
			if (r->io.port == RUNNER_PORT && r->io.direction == KVM_EXIT_IO_OUT) {
				if (stop_on_io) {
					printf("ok io\n");
					return;
				}
				continue;
			}
			break;
		default:
			break;
		}
		fprintf(stderr, "kvm-runner: unexpected exit %u", r->exit_reason);
		if (r->exit_reason == KVM_EXIT_IO)
			fprintf(stderr, " (port 0x%x)", r->io.port);
		if (r->exit_reason == KVM_EXIT_MMIO)
			fprintf(stderr, " (gpa 0x%llx)", (unsigned long long)r->mmio.phys_addr);
		if (r->exit_reason == KVM_EXIT_INTERNAL_ERROR)
			fprintf(stderr, " (suberror %u)", r->internal.suberror);
		struct kvm_regs regs;
		if (ioctl(v->fd, KVM_GET_REGS, &regs) == 0)
			fprintf(stderr, " rip=0x%llx", (unsigned long long)regs.rip);
		fprintf(stderr, "\n");
		printf("ok other %u\n", r->exit_reason);
		return;
	}
}

static struct ring_entry *entry_at(struct vcpu *v, uint64_t index)
{
	uint32_t n = ring_bytes / sizeof(struct ring_entry);
	return &v->ring[index & (n - 1)];
}

static void cmd_harvest(void)
{
	struct vcpu *v = ring_vcpu_arg(1);
	uint64_t max = num(2);
	uint32_t value = (uint32_t)num(3);
	uint64_t n = 0;
	static char line[1 << 22];
	size_t used = 0;
	line[0] = '\0';
	while (n < max) {
		struct ring_entry *e = entry_at(v, v->fetch);
		if (__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) != KVM_DIRTY_GFN_F_DIRTY)
			break;
		uint32_t slot = e->slot;
		uint64_t offset = e->offset;
		__atomic_store_n(&e->flags, value, __ATOMIC_RELEASE);
		v->fetch++;
		n++;
		if (used + 64 >= sizeof line)
			fatal("harvest output too long");
		used += (size_t)snprintf(line + used, sizeof line - used, " %" PRIu32 " %" PRIu64, slot, offset);
	}
	printf("ok %" PRIu64 "%s\n", n, line);
}

static void cmd_wentry(void)
{
	struct vcpu *v = ring_vcpu_arg(1);
	struct ring_entry *e = entry_at(v, num(2));
	if (!absent(4))
		e->slot = (uint32_t)num(4);
	if (!absent(5))
		e->offset = num(5);
	if (!absent(3))
		__atomic_store_n(&e->flags, (uint32_t)num(3), __ATOMIC_RELEASE);
	printf("ok\n");
}

static void cmd_rentry(void)
{
	struct vcpu *v = ring_vcpu_arg(1);
	struct ring_entry *e = entry_at(v, num(2));
	uint32_t flags = __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE);
	printf("ok %" PRIu32 " %" PRIu32 " %" PRIu64 "\n", flags, e->slot, e->offset);
}

static void cmd_mmap(void)
{
	struct vcpu *v = ring_vcpu_arg(1);
	int shared = num(2) != 0;
	uint64_t prot = num(3);
	if (prot & ~(uint64_t)(PROT_READ | PROT_WRITE | PROT_EXEC))
		fatal("mmap: bad prot %" PRIu64, prot);
	void *p = mmap(NULL, ring_bytes, (int)prot, shared ? MAP_SHARED : MAP_PRIVATE, v->fd,
		       (off_t)(RING_PAGE_OFFSET * PAGE));
	if (p == MAP_FAILED) {
		print_err(errno);
		return;
	}
	munmap(p, ring_bytes);
	printf("ok\n");
}

static void cmd_reset(void)
{
	need_vm();
	int r = ioctl(vm_fd, KVM_RESET_DIRTY_RINGS, 0);
	if (r < 0)
		print_err(errno);
	else
		printf("ok %d\n", r);
}

static uint64_t *bitmap_buffer(uint64_t words)
{
	static uint64_t *buf;
	static uint64_t have;
	if (words > have) {
		free(buf);
		buf = calloc(words, 8);
		if (!buf)
			fatal("out of memory");
		have = words;
	}
	memset(buf, 0, words * 8);
	return buf;
}

static void cmd_get(void)
{
	need_vm();
	uint32_t field = (uint32_t)num(1);
	int null = num(2) != 0;
	struct slot_mem *s = find_slot(field);
	uint64_t pages = s ? s->pages : largest_pages;
	uint64_t words = (pages + 63) / 64;
	uint64_t *buf = bitmap_buffer(words ? words : 1);
	struct kvm_dirty_log log;
	memset(&log, 0, sizeof log);
	log.slot = field;
	log.dirty_bitmap = null ? NULL : buf;
	if (ioctl(vm_fd, KVM_GET_DIRTY_LOG, &log) < 0) {
		print_err(errno);
		return;
	}
	uint64_t n = 0;
	for (uint64_t w = 0; w < words; w++)
		n += (uint64_t)__builtin_popcountll(buf[w]);
	printf("ok %" PRIu64, n);
	for (uint64_t w = 0; w < words; w++)
		for (unsigned b = 0; b < 64; b++)
			if (buf[w] >> b & 1)
				printf(" %" PRIu64, w * 64 + b);
	printf("\n");
}

static void cmd_clear(void)
{
	need_vm();
	uint32_t field = (uint32_t)num(1);
	uint64_t first = num(2);
	uint32_t npages = (uint32_t)num(3);
	int null = num(4) != 0;
	uint64_t k = num(5);
	if (ntokens != 6 + k)
		fatal("clear: %" PRIu64 " bits announced, %u given", k, ntokens - 6);
	uint64_t words = ((uint64_t)npages + 63) / 64;
	if (words == 0)
		words = 1;
	uint64_t *buf = bitmap_buffer(words);
	for (uint64_t i = 0; i < k; i++) {
		uint64_t bit = num(6 + (unsigned)i);
		if (bit >= words * 64)
			fatal("clear: bit %" PRIu64 " outside the bitmap", bit);
		buf[bit / 64] |= 1ull << (bit % 64);
	}
	struct kvm_clear_dirty_log c;
	memset(&c, 0, sizeof c);
	c.slot = field;
	c.num_pages = npages;
	c.first_page = first;
	c.dirty_bitmap = null ? NULL : buf;
	if (ioctl(vm_fd, KVM_CLEAR_DIRTY_LOG, &c) < 0)
		print_err(errno);
	else
		printf("ok\n");
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	while ((len = getline(&line, &cap, stdin)) >= 0) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		ntokens = 0;
		for (char *save = NULL, *t = strtok_r(line, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
			if (ntokens == sizeof tokens / sizeof tokens[0])
				fatal("line too long");
			tokens[ntokens++] = t;
		}
		if (ntokens == 0)
			continue;
		const char *c = tokens[0];
		if (strcmp(c, "init") == 0)
			cmd_init();
		else if (strcmp(c, "cap") == 0)
			cmd_cap();
		else if (strcmp(c, "check") == 0)
			cmd_check();
		else if (strcmp(c, "slot") == 0)
			cmd_slot();
		else if (strcmp(c, "vcpu") == 0)
			cmd_vcpu();
		else if (strcmp(c, "write") == 0)
			cmd_write();
		else if (strcmp(c, "run") == 0)
			cmd_run();
		else if (strcmp(c, "harvest") == 0)
			cmd_harvest();
		else if (strcmp(c, "wentry") == 0)
			cmd_wentry();
		else if (strcmp(c, "rentry") == 0)
			cmd_rentry();
		else if (strcmp(c, "mmap") == 0)
			cmd_mmap();
		else if (strcmp(c, "reset") == 0)
			cmd_reset();
		else if (strcmp(c, "get") == 0)
			cmd_get();
		else if (strcmp(c, "clear") == 0)
			cmd_clear();
		else
			fatal("unknown command '%s'", c);
	}
	free(line);
	return 0;
}
