/** The page-track notifier list: registration, unregistration, the table's limits. */
import { describe, expect, it } from 'vitest';
import { gfns, ringVm } from '../../helpers/vm-fixtures.js';
import { Recorder, gfn } from './page-track-recorder.js';

describe('notifiers', () => {
  it('receive writes only while registered', () => {
    const fx = ringVm();
    const [a, b] = [new Recorder(), new Recorder()];
    const pt = fx.vm.pageTrack;
    const ida = pt.registerNotifier(a);
    pt.addGfn(gfn(3));
    fx.programs[0]!.enqueue(gfns([3]));
    fx.vcpus[0]!.run(fx.programs[0]!);
    const idb = pt.registerNotifier(b);
    fx.programs[0]!.enqueue(gfns([3]));
    fx.vcpus[0]!.run(fx.programs[0]!);
    pt.unregisterNotifier(ida);
    fx.programs[0]!.enqueue(gfns([3]));
    fx.vcpus[0]!.run(fx.programs[0]!);
    expect(a.writes).toHaveLength(2);
    expect(b.writes).toHaveLength(2);
    pt.unregisterNotifier(idb);
    fx.programs[0]!.enqueue(gfns([3]));
    fx.vcpus[0]!.run(fx.programs[0]!);
    expect(b.writes).toHaveLength(2);
    expect(pt.stats()).toMatchObject({ notifiersRegistered: 2, notifiersUnregistered: 2, gracePeriods: 2, activeNotifiers: 0, trackedWrites: 4 });
    expect(() => pt.unregisterNotifier(idb)).toThrowError(expect.objectContaining({ errno: 'EINVAL', param: 'notifier' }));
    expect(fx.vm.warnings).toBe(0);
  });

  it('the table is finite: ENOMEM when full, and an entry is reusable after unregister', () => {
    const { vm } = ringVm();
    const ids: number[] = [];
    expect(() => {
      for (;;) ids.push(vm.pageTrack.registerNotifier(new Recorder()));
    }).toThrowError(expect.objectContaining({ errno: 'ENOMEM', param: 'notifier' }));
    expect(ids).toHaveLength(16);
    vm.pageTrack.unregisterNotifier(ids[3]!);
    expect(vm.pageTrack.registerNotifier(new Recorder())).toBe(ids[3]);
  });

  it('an ACTIVE notifier this thread has no instance of is a kernel WARN, never a silent skip', () => {
    const fx = ringVm();
    const pt = fx.vm.pageTrack;
    const { id, generation } = pt.reserveNotifier();
    pt.activateNotifier(id, generation); // nobody attached an instance
    pt.addGfn(gfn(3));
    fx.programs[0]!.enqueue(gfns([3]));
    fx.vcpus[0]!.run(fx.programs[0]!);
    expect(fx.vm.warnings).toBe(1);
  });
});
