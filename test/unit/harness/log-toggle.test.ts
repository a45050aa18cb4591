/** The run's log-toggle hook: logging off at a third of the iteration, on again at two thirds, the slot not judged. */
import { describe, expect, it } from 'vitest';
import { encodeSlot } from '../../../src/abi/constants.js';
import { DirtyLogOracle } from '../../../src/checker/oracle.js';
import { LogToggle } from '../../../src/harness/log-toggle.js';
import { ringVm } from '../../helpers/vm-fixtures.js';

describe('LogToggle', () => {
  it('turns logging off, then on again, and excludes the slot from the checks', () => {
    const { vm, slot } = ringVm({ pages: 64 });
    const oracle = new DirtyLogOracle([slot], 1);
    const logging = (): boolean => vm.memslots.findById(0, 1)!.logDirty;
    const toggle = new LogToggle(vm, oracle, 1);
    toggle.step(0.2);
    expect(logging()).toBe(true);
    expect(toggle.excluded.size).toBe(0);
    toggle.step(0.4);
    expect(logging()).toBe(false);
    expect([...toggle.excluded]).toEqual([encodeSlot(0, 1)]);
    expect(toggle.done).toBe(false);
    toggle.step(0.5);
    expect(logging()).toBe(false);
    toggle.step(0.7);
    expect(logging()).toBe(true);
    expect(toggle.done).toBe(true);
  });

  it('takes both steps in order even when the loop looks late', () => {
    const { vm, slot } = ringVm({ pages: 64 });
    const toggle = new LogToggle(vm, new DirtyLogOracle([slot], 1), 1);
    toggle.step(5);
    expect(toggle.done).toBe(false);
    toggle.step(5);
    expect(toggle.done).toBe(true);
  });
});
