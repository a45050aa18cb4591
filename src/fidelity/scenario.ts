/**
 * Scenario format and result format of the fidelity feature. This is a contract between the
 * emulator engine and the real-kernel engine (`kvm-engine.ts`): both take a `Scenario` from
 * `parseScenario` and return one `StepResult` per step, compared with deep equality after
 * `canonicalResults`. No Node imports here: the module also runs in a browser.
 * The checked-in suite is test/scenarios (NAME.json, its expected results in NAME.expected.json).
 * This module is the format's public face; the parts are in ./scenario/ (types and limits, the
 * JSON field readers, one validator per op, the results).
 *
 * ## Order of setup
 * 1. `vm.ring` (KVM_ENABLE_CAP 192, or 223 with `acqRel`), then `vm.manualProtect` (cap 168 with
 *    args[0] = the value) when non-zero. `vm` may be omitted and the caps enabled by steps.
 * 2. `memslots`, in order (KVM_SET_USER_MEMORY_REGION, flag LOG_DIRTY_PAGES if `logDirty`).
 * 3. `vcpus` vCPUs, ids 0..vcpus-1; each gets a ring when a ring size is set.
 * A failure during setup is not a result: the engine throws. Then the steps, one result each.
 *
 * ## The guest, `write` and `read`
 * Every vCPU owns a FIFO queue of guest accesses. `write` appends, for each page of `pages` in
 * the given order, `storesPerPage` one-byte stores to the start of that page of memslot `slot`
 * (address space `asId`); `read` appends one load per page. `exitEach: true` makes the guest
 * leave to userspace (an I/O exit) right after each access of that step. Queueing does not run
 * anything; its result is `{ "rc": 0 }`.
 *
 * ## How `run` treats exits (both engines must do exactly this)
 * `run { vcpu, stopOnIo? }` enters the vCPU (KVM_RUN) and ends with the first of:
 * - `exit: "dirty_ring_full"` — KVM_EXIT_DIRTY_RING_FULL. The kernel checks its soft-full request
 *   on every entry: entering a vCPU whose ring has `used = dirty_index - reset_index >= size - 64`
 *   exits at once without performing any access (so a re-run without a reset exits again, with
 *   no new entries). After an access made with `exitEach`, the guest has left to userspace, so
 *   the re-entry that follows checks the request: the run ends exactly after the push that made
 *   `used` reach `size - 64`; that access is complete, its I/O exit already taken, and the next
 *   `run` (after a reset) continues with the following access.
 * - `exit: "io"` — only with `stopOnIo: true`: the first I/O exit (after an `exitEach` access).
 *   Without `stopOnIo`, I/O exits are NOT step boundaries: the runner re-enters at once (but the
 *   re-entry is where the soft-full check above happens).
 * - `exit: "hlt"` — the queue is drained: every access queued so far has been performed.
 * Accesses queued without `exitEach` are performed with no return to userspace in between.
 * On hardware KVM the soft-full check still happens before the next guest entry after the
 * faulting store; on an instruction-emulating host (this machine's PVM) it can come 0–56 pushes
 * late. So a scenario meant to be compared must not let `used` reach `size - 64` during a run
 * of accesses without `exitEach`.
 * Other exits (`"other:<n>"`, e.g. a store to a deleted memslot) are outside the contract.
 *
 * ## Harvest and raw ring access
 * `harvest { vcpu, max?, flagsValue? }`: from this vCPU's userspace fetch index (free-running,
 * starts at 0, moved only by harvest): while fewer than `max` (default: no limit) were taken and
 * the entry's flags are exactly 1 (DIRTY alone; loaded with acquire), record `{slot, offset}`,
 * store `flagsValue` (default 2) with release, advance. `writeEntry { vcpu, index, flags?, slot?,
 * offset? }` writes the given fields of the entry at `index mod ring entries` as a misbehaving
 * userspace would (slot/offset plain, flags last with release), without moving the fetch index.
 * `readEntry { vcpu, index }` returns `entry: {flags, slot, offset}` at `index mod entries`.
 * These three act on userspace memory only; using them on a vCPU without a ring is a scenario
 * error (the engine throws).
 * `mmapRing { vcpu, shared?, write?, exec? }` maps the vCPU's ring once more (defaults: shared,
 * read/write, not executable) and unmaps it; the result is the mmap's `rc` or `errno`. Also a
 * scenario error on a vCPU without a ring.
 *
 * ## Results
 * `{ "rc": 0 }` or `{ "errno": "EINVAL" }`, plus per op: `run` → `exit`; `harvest` →
 * `entries: [{slot, offset}]` (slot = (as_id << 16) | id, as stored in the ring); `reset` →
 * `count`; `getDirtyLog` → `pages` (every set bit of the returned bitmap, ascending, padding bits
 * included); `readEntry` → `entry`; `checkExtension` → `value`. An offset above 2^53 − 1 is given
 * as a decimal string. `getDirtyLog`/`clearDirtyLog`: `slot` is the id, `asId` the address space
 * (the ioctl gets `(asId << 16) | slot`); `clearDirtyLog.pages` are slot page numbers, bit i of
 * the user bitmap standing for page `first + i`; the bitmap has max(1, ceil(num/64)) words.
 * `nullBitmap: true` passes a NULL pointer (EFAULT cases).
 *
 * ## Path
 * `path` ("fault" | "emulated", default "fault") picks the write path for the whole scenario:
 * "fault" = hardware KVM (a store pushes only when the page is write-protected, once per page
 * until reset/CLEAR), "emulated" = every store is logged (kvm_vcpu_write_guest). A real kernel
 * whose guest is instruction-emulated can only check "emulated" scenarios.
 *
 * ## Free text
 * `description` (top level) and `note` (on any step) are optional strings that no engine reads.
 * Every other unknown field is an error, so a misspelt name never passes silently.
 *
 * ## Reserved by the kvm runner
 * Memslot id 32763 and guest-physical addresses below 1 GiB hold the runner's guest code, page
 * tables and queues (never dirty-logged); scenarios' memslots must avoid them.
 */

export * from './scenario/types.js';
export { parseScenario } from './scenario/parse.js';
export { canonicalResults, diffResults, parseResults, serializeResults } from './scenario/results.js';
