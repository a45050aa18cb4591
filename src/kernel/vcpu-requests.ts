/**
 * Requests to vCPUs from outside them (kvm_main.c): kvm_make_all_cpus_request with its wait,
 * kvm_flush_remote_tlbs built on it, and kvm_vcpu_kick. They run in the caller's thread and
 * talk to each vCPU through its REQUESTS and MODE words; the vCPU side is `Vcpu.enterGuest`.
 */
import { NS_PER_MS, now } from '../base/clock.js';
import { KernelMutant } from './mutants.js';
import { Step, stepHook } from './step-hook.js';
import { KERNEL_WAIT_TIMEOUT_MS, WaitTimeoutError, waitWhileEqual } from './sync.js';
import { VcpuLayout, VcpuMode, VcpuRequest } from './vcpu-layout.js';
import type { VmCore } from './vm-core.js';
import { VmLayout } from './vm-layout.js';

const V = VcpuLayout.words;
const VM_FLOATS = VmLayout.floats;

/**
 * How long one wait for a vCPU's acknowledgement sleeps before it looks again (ms). Short: a
 * vCPU acknowledges at its next instruction-boundary check, usually within microseconds, and
 * a lost wake-up must only cost this much.
 */
const ACK_WAIT_SLICE_MS = 2;

/**
 * kvm_flush_remote_tlbs. Post TLB_FLUSH to every vCPU, then wait until none of them can still
 * be executing guest code with its old TLB: each vCPU is either outside guest mode (it
 * processes the request before it next enters) or has acknowledged by clearing the bit at an
 * instruction boundary. Because a guest store and the acknowledgement are ordered in the
 * vCPU's thread (store, then Atomics clear of the bit), a store made through a stale entry
 * lands before the acknowledgement — before this returns, so before userspace copies the
 * page — and any later store misses the flushed TLB, reads the protected SPTE and faults.
 * Without this wait, a vCPU that read "writable" just before the re-protect could store
 * after the copy, and that page would be lost.
 */
export function flushRemoteTlbs(vm: VmCore): void {
  requestAllAndWait(vm, VcpuRequest.TLB_FLUSH);
  vm.block.f64[VM_FLOATS.TLB_FLUSHES]! += 1;
}

/** kvm_make_all_cpus_request(..., wait): post `bits`, then wait for every vCPU in guest mode. */
export function requestAllAndWait(vm: VmCore, bits: number): void {
  const words = vm.vcpuWords;
  postToAll(words, words.length, bits);
  awaitAcks(vm, words, bits);
}

/**
 * The wait of kvm_make_all_cpus_request, after `bits` were posted to `words` (the VM's
 * vcpuWords): until every vCPU is outside guest mode or has cleared them.
 */
export function awaitAcks(vm: VmCore, words: readonly (Int32Array | undefined)[], bits: number): void {
  const n = words.length;
  // The common case first: no vCPU to wait for (every one outside guest mode, as a harvester's
  // between runs), so neither the mutant word nor the clock is read. A controlled run takes
  // the step point below whatever the modes, as its schedules were recorded.
  let i = 0;
  if (!stepHook.active) {
    while (i < n && !mustWaitForAck(words[i], bits)) i++;
    if (i === n) return;
  }
  // Mutant flush-no-wait (stress harness): return without waiting — and without the wait's
  // step point, so that a controlled scheduler does not hold the caller back either.
  if (vm.hasMutant(KernelMutant.FLUSH_NO_WAIT)) return;
  if (stepHook.active) stepHook.at(Step.TLB_FLUSH_WAIT, bits, 0);
  // The clock is read only once a vCPU has to be waited for: the two reads cost about as much
  // as the rest of the request.
  while (i < n && !mustWaitForAck(words[i], bits)) i++;
  if (i === n) return;
  const t0 = now();
  for (; i < n; i++) waitForAck(vm, i, bits, t0 + KERNEL_WAIT_TIMEOUT_MS);
  vm.block.f64[VM_FLOATS.TLB_FLUSH_WAIT_NS]! += (now() - t0) * NS_PER_MS;
}

/** Whether a vCPU (its words, undefined if not attached here) is in guest mode with `bits` still pending. */
function mustWaitForAck(w: Int32Array | undefined, bits: number): boolean {
  return w !== undefined && Atomics.load(w, V.MODE) === VcpuMode.IN_GUEST && (Atomics.load(w, V.REQUESTS) & bits) !== 0;
}

/** kvm_vcpu_kick: make the vCPU leave guest mode at its next instruction boundary (-EINTR). */
export function kickVcpu(vm: VmCore, index: number): void {
  const w = vm.vcpuBlock(index).i32;
  Atomics.or(w, V.REQUESTS, VcpuRequest.KICK);
  // kvm_vcpu_kick also wakes a vCPU halted in the kernel (Vcpu.haltInKernel waits on REQUESTS).
  Atomics.notify(w, V.REQUESTS);
}

/** Post `bits` to the first `n` of `words` (holes are vCPUs this thread has not attached). */
export function postToAll(words: readonly (Int32Array | undefined)[], n: number, bits: number): void {
  for (let i = 0; i < n; i++) {
    const w = words[i];
    if (w === undefined) continue;
    Atomics.or(w, V.REQUESTS, bits);
    Atomics.add(w, V.REQUEST_POSTS, 1);
  }
}

/**
 * Wait until vCPU `index` is outside guest mode or has cleared `bits` (bounded by `deadline`).
 * The order of the two reads pairs with the vCPU's "set mode, then read requests" on entry.
 */
function waitForAck(vm: VmCore, index: number, bits: number, deadline: number): void {
  const b = vm.attachedVcpuBlock(index);
  if (!b) return;
  const w = b.i32;
  while (Atomics.load(w, V.MODE) === VcpuMode.IN_GUEST && (Atomics.load(w, V.REQUESTS) & bits) !== 0) {
    if (now() >= deadline) throw new WaitTimeoutError(`TLB flush: vCPU ${index} never acknowledged`, KERNEL_WAIT_TIMEOUT_MS);
    waitWhileEqual(w, V.MODE, VcpuMode.IN_GUEST, ACK_WAIT_SLICE_MS);
  }
}
