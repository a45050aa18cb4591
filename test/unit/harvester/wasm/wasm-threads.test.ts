/**
 * What C harvester threads need of the loader: the thread count from DIRTYRING_THREADS, a stack
 * per extra thread reserved above the module's pages (and counted for ENOMEM), the stack pointer
 * exported for the harness to set; and the controlled-run rewrite of 8- and 16-bit accesses,
 * which must compute exactly what the module computes as built.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HarvesterKvm } from '../../../../src/harvester/contract.js';
import { WASM_PAGE_BYTES, WASM_STACK_POINTER_EXPORT, WASM_THREAD_STACK_BYTES } from '../../../../src/harvester/wasm/wasm-abi.js';
import { wasmHarvester } from '../../../../src/harvester/wasm/wasm-harvester.js';
import { WasmHost } from '../../../../src/harvester/wasm/wasm-host.js';
import { instrumentPlainAccesses } from '../../../../src/harvester/wasm/wasm-instrument.js';
import { checkWasmModule } from '../../../../src/harvester/wasm/wasm-module.js';
import { exportStackPointer, findStackPointer } from '../../../../src/harvester/wasm/wasm-threads.js';
import { NO_TOOLCHAIN, buildC } from '../../../helpers/c-harvester.js';

describe.skipIf(NO_TOOLCHAIN !== null)(`C harvester threads: the loader${NO_TOOLCHAIN !== null ? ` (skipped: ${NO_TOOLCHAIN})` : ''}`, () => {
  let dir = '';
  const bytes: Record<string, Uint8Array<ArrayBuffer>> = {};
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'dirtyring-wasm-threads-'));
    for (const f of ['examples/harvesters-c/flag-handoff-reset.c', 'examples/harvesters-c/qemu-reaper.c', 'test/fixtures/harvesters-c/narrow.c']) {
      bytes[f.replace(/^.*\//, '').replace(/\.c$/, '')] = new Uint8Array(readFileSync(buildC(f, dir)));
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('DIRTYRING_THREADS(2) is the definition\'s threads; 7 stacks go between its pages and the rings', () => {
    const def = wasmHarvester('flag-handoff-reset', bytes['flag-handoff-reset']!);
    expect(def.threads).toBe(2);
    const { minPages } = checkWasmModule(bytes['flag-handoff-reset']!).memory;
    const space = def.ringSpace!(2, 4096 * 16);
    expect(space.byteOffset).toBe(minPages * WASM_PAGE_BYTES + 7 * WASM_THREAD_STACK_BYTES);
    expect(() => def.ringSpace!(256, 65536 * 16)).toThrow(/ENOMEM, 256 rings of 1048576 B and 7 thread stacks of 65536 B need \d+ pages/);
    // A module without threads reserves none, as before.
    const reaper = wasmHarvester('qemu-reaper', bytes['qemu-reaper']!);
    expect(reaper.threads).toBeUndefined();
    expect(reaper.ringSpace!(2, 4096 * 16).byteOffset).toBe(checkWasmModule(bytes['qemu-reaper']!).memory.minPages * WASM_PAGE_BYTES);
  });

  it('the stack pointer is found and exported, its initial value the top of the linker\'s stack', () => {
    const sp = findStackPointer(bytes['qemu-reaper']!);
    expect(sp).not.toBeNull();
    expect(sp!.top % 16).toBe(0);
    expect(sp!.top).toBeLessThanOrEqual(checkWasmModule(bytes['qemu-reaper']!).memory.minPages * WASM_PAGE_BYTES);
    const m = new WebAssembly.Module(exportStackPointer(bytes['qemu-reaper']!, sp!.index));
    expect(WebAssembly.Module.exports(m)).toContainEqual({ name: WASM_STACK_POINTER_EXPORT, kind: 'global' });
  });

  it('8- and 16-bit loads and stores, rewritten into host calls, compute what the module computes as built', () => {
    const native = bytes['narrow']!;
    const instrumented = instrumentPlainAccesses(native);
    expect(instrumented).not.toBeNull();
    const probe = (module: WebAssembly.Module, count: { narrow: number }): bigint => {
      const { minPages, maxPages } = checkWasmModule(native).memory;
      const memory = new WebAssembly.Memory({ initial: minPages, maximum: maxPages, shared: true });
      const kvm = { threads: 1, thread: 0 } as unknown as HarvesterKvm;
      const host = new WasmHost(kvm, memory, null).imports();
      const counted = {
        ...host,
        plain_load_narrow: (...a: never[]) => (count.narrow++, (host['plain_load_narrow'] as (...x: never[]) => number)(...a)),
        plain_store_narrow: (...a: never[]) => (count.narrow++, (host['plain_store_narrow'] as (...x: never[]) => void)(...a)),
      };
      const instance = new WebAssembly.Instance(module, { env: { memory }, dirtyring: counted });
      return (instance.exports['narrow_probe'] as () => bigint)();
    };
    const asBuilt = { narrow: 0 };
    const rewritten = { narrow: 0 };
    const expected = probe(new WebAssembly.Module(native), asBuilt);
    expect(probe(new WebAssembly.Module(instrumented!), rewritten)).toBe(expected);
    expect(asBuilt.narrow).toBe(0);
    expect(rewritten.narrow).toBeGreaterThanOrEqual(12 + 4 + 2);
  });
});
