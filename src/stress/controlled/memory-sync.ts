/**
 * Synchronization the weak memory model must not miss. Only the protocol's locations are
 * modelled; the control words around them — a vCPU's CONTROL, WAKE, STATE, REQUESTS and MODE,
 * the VM's DOORBELL, the guest's ITERATION, the userspace threads' shared words — stay plain
 * Atomics, sequentially consistent. Every hand-off through them is a real synchronization in
 * the systems the emulator models (a pthread condition, an IPI, kvm_make_request), so a
 * participant that waited for one of them must see what the other side did before it:
 *  - a participant that changed a control word in its move releases its clock into that word's
 *    sync object (checked at its next park: a word changed and changed back within one move is
 *    missed, which these monotone counters and state machines never do);
 *  - a participant granted out of a step that reads control words (a wait, guest entry's
 *    request check, userspace deciding on the vCPUs' states) acquires their sync objects.
 * Locks release and acquire themselves (SharedMutex). Waits and re-polls are also the yield
 * points of the model's progress rule.
 */
import { GuestGlobalsLayout } from '../../guest/guest-memory.js';
import { Step } from '../../kernel/step-hook.js';
import { VcpuLayout } from '../../kernel/vcpu-layout.js';
import type { Vm } from '../../kernel/vm.js';
import { VmLayout } from '../../kernel/vm-layout.js';
import type { WmmLocations } from '../../kernel/wmm/locations.js';
import type { WeakModel } from '../../kernel/wmm/model.js';
import { ControlStep, type Roster } from './control-steps.js';
import { UserspaceSharedLayout } from './userspace-shared-layout.js';

const V = VcpuLayout.words;
const S = UserspaceSharedLayout.words;

interface Watched {
  readonly i32: Int32Array;
  readonly word: number;
  readonly id: number;
}

/** The control words of a run as sync objects (registered in the same order in every thread). */
export class ControlWords {
  readonly all: Watched[] = [];
  readonly control: number[] = [];
  readonly wake: number[] = [];
  readonly state: number[] = [];
  readonly requests: number[] = [];
  readonly requestPosts: number[] = [];
  readonly mode: number[] = [];
  readonly doorbell: number;
  readonly resetRequest: number;
  readonly resetDone: number;
  readonly harvestRequest: number;
  readonly harvestsDone: number;
  readonly barrier: readonly number[];

  constructor(locs: WmmLocations, vm: Vm, roster: Roster, globals: Int32Array, shared: Int32Array) {
    const add = (i32: Int32Array, word: number): number => {
      const id = locs.addSyncWord(i32, word);
      this.all.push({ i32, word, id });
      return id;
    };
    for (let i = 0; i < roster.vcpus; i++) {
      const w = vm.vcpuBlock(i).i32;
      this.control.push(add(w, V.CONTROL));
      this.wake.push(add(w, V.WAKE));
      this.state.push(add(w, V.STATE));
      this.requests.push(add(w, V.REQUESTS));
      this.requestPosts.push(add(w, V.REQUEST_POSTS));
      this.mode.push(add(w, V.MODE));
    }
    this.doorbell = add(vm.block.i32, VmLayout.words.DOORBELL);
    add(globals, GuestGlobalsLayout.words.ITERATION);
    this.resetRequest = add(shared, S.RESET_REQUEST);
    this.resetDone = add(shared, S.RESET_DONE);
    add(shared, S.TERMINATE);
    this.harvestRequest = add(shared, S.HARVEST_REQUEST);
    this.harvestsDone = add(shared, S.HARVESTS_DONE);
    // Every arrival changes ARRIVED (released at the arriving thread's park), the last one GEN:
    // a thread leaving the barrier acquires both, so each sees what every other did before it.
    this.barrier = [add(shared, S.HARVEST_BARRIER_ARRIVED), add(shared, S.HARVEST_BARRIER_GEN)];
  }

  /** The sync objects participant `p` acquires when granted out of `step`, and whether that is a yield point. */
  readsOf(p: number, roster: Roster, step: number): { readonly objects: readonly number[]; readonly yields: boolean } {
    const v = p - 1;
    const isVcpu = p >= 1 && p <= roster.vcpus;
    switch (step) {
      case ControlStep.VCPU_WAIT_RUN:
        return { objects: isVcpu ? [this.control[v]!] : [], yields: true };
      case ControlStep.VCPU_WAIT_WAKE:
        return { objects: isVcpu ? [this.wake[v]!, this.control[v]!] : [], yields: true };
      case Step.GUEST_ENTRY:
        // kvm_check_request: what the requester did before posting is visible, also when its
        // bit was already set by an earlier post (then only REQUEST_POSTS changed).
        return { objects: isVcpu ? [this.requests[v]!, this.requestPosts[v]!] : [], yields: true };
      case Step.TLB_FLUSH_WAIT:
        return { objects: [...this.mode, ...this.requests], yields: true };
      case Step.LOCK_WAIT:
        return { objects: [], yields: true };
      case ControlStep.USER_COLLECT:
      case ControlStep.USER_WAIT_PROGRESS:
      case ControlStep.USER_WAIT_PARKED:
        return { objects: [this.doorbell, ...this.state], yields: true };
      case ControlStep.USER_WAIT_RESET_DONE:
        return { objects: [this.resetDone], yields: true };
      case ControlStep.RESETTER_WAIT_REQUEST:
        return { objects: [this.resetRequest], yields: true };
      case ControlStep.USER_WAIT_HARVESTERS:
        return { objects: [this.harvestsDone], yields: true };
      case ControlStep.HARVESTER_WAIT_REQUEST:
        return { objects: [this.harvestRequest], yields: true };
      case ControlStep.HARVESTER_BARRIER:
        return { objects: this.barrier, yields: true };
      default:
        return { objects: [], yields: false };
    }
  }
}

/** One participant's side: releases at each park, acquires at each grant. */
export class ParticipantMemorySync {
  private readonly snapshot: Int32Array;
  private readonly reads = new Map<number, { readonly objects: readonly number[]; readonly yields: boolean }>();

  constructor(
    private readonly model: WeakModel,
    private readonly participant: number,
    private readonly roster: Roster,
    private readonly words: ControlWords,
  ) {
    this.snapshot = new Int32Array(words.all.length);
    this.takeSnapshot();
  }

  /** Before parking (or finishing): release into every control word this move changed. */
  beforePark(): void {
    const all = this.words.all;
    for (let k = 0; k < all.length; k++) {
      const w = all[k]!;
      const v = Atomics.load(w.i32, w.word);
      if (v !== this.snapshot[k]) {
        this.model.syncRelease(this.participant, w.id);
        this.snapshot[k] = v;
      }
    }
  }

  /** Granted out of `step`: acquire what that step read, and mark a yield point. */
  afterGrant(step: number): void {
    this.takeSnapshot();
    let r = this.reads.get(step);
    if (r === undefined) {
      r = this.words.readsOf(this.participant, this.roster, step);
      this.reads.set(step, r);
    }
    for (const obj of r.objects) this.model.syncAcquire(this.participant, obj);
    if (r.yields) this.model.yieldPoint(this.participant);
  }

  private takeSnapshot(): void {
    const all = this.words.all;
    for (let k = 0; k < all.length; k++) this.snapshot[k] = Atomics.load(all[k]!.i32, all[k]!.word);
  }
}
