/**
 * The WebAssembly harvester ABI and loader: the ioctl numbers and struct layouts are linux/kvm.h's
 * (what the header computes with _IOW and sizeof must match), a module that cannot be a
 * harvester is refused with its reason, the rings are placed in the module's shared memory above
 * its own pages, and the controlled-mode instrumentation yields a valid module that routes every
 * plain 32/64-bit load and 32-bit store through the host.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KVM_CLEAR_DIRTY_LOG, KVM_GET_DIRTY_LOG, KVM_RESET_DIRTY_RINGS, WASM_PAGE_BYTES } from '../../../../src/harvester/wasm/wasm-abi.js';
import { wasmHarvester } from '../../../../src/harvester/wasm/wasm-harvester.js';
import { instrumentPlainAccesses } from '../../../../src/harvester/wasm/wasm-instrument.js';
import { WasmModuleError, checkWasmModule } from '../../../../src/harvester/wasm/wasm-module.js';
import { Vm } from '../../../../src/kernel/vm.js';
import { NO_TOOLCHAIN, buildC } from '../../../helpers/c-harvester.js';

describe('the ioctl ABI', () => {
  it('request numbers are the kernel headers\' (x86-64 values; the structs have the same size on wasm32)', () => {
    expect(KVM_GET_DIRTY_LOG).toBe(0x4010ae42);
    expect(KVM_CLEAR_DIRTY_LOG).toBe(0xc018aec0);
    expect(KVM_RESET_DIRTY_RINGS).toBe(0xaec7);
  });
});

describe('modules that cannot be harvesters', () => {
  it('bytes that are not WebAssembly', () => {
    expect(() => checkWasmModule(new TextEncoder().encode('#include <stdio.h>\n') as Uint8Array<ArrayBuffer>)).toThrow(/not a WebAssembly module/);
  });
  it('a truncated module', () => {
    expect(() => checkWasmModule(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 9]))).toThrow(/not a valid WebAssembly module/);
  });
  it('a valid module with nothing in it: no exports', () => {
    expect(() => checkWasmModule(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]))).toThrow(WasmModuleError);
    expect(() => checkWasmModule(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]))).toThrow(/exports no function dirtyring_log/);
  });
});

describe.skipIf(NO_TOOLCHAIN !== null)(`compiled C harvesters${NO_TOOLCHAIN !== null ? ` (skipped: ${NO_TOOLCHAIN})` : ''}`, () => {
  let dir = '';
  let reaper: Uint8Array<ArrayBuffer>;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'dirtyring-wasm-unit-'));
    reaper = new Uint8Array(readFileSync(buildC('examples/harvesters-c/qemu-reaper.c', dir)));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('an unshared memory, an unknown import: refused with the reason', () => {
    const unshared = buildC('examples/harvesters-c/qemu-reaper.c', dir, '-Wl,--no-entry,--import-memory');
    expect(() => checkWasmModule(new Uint8Array(readFileSync(unshared)))).toThrow(/imports env.memory unshared/);
    const foreign = buildC('test/fixtures/harvesters-c/foreign-import.c', dir);
    expect(() => checkWasmModule(new Uint8Array(readFileSync(foreign)))).toThrow(/imports function dirtyring\.getpid, which dirtyring does not provide/);
  });

  it('its log mode comes from dirtyring_log(); the rings go above its own pages, in one shared memory', () => {
    const def = wasmHarvester('qemu-reaper', reaper);
    expect(def.log).toBe('ring');
    const limits = checkWasmModule(reaper).memory;
    const space = def.ringSpace!(4, 4096 * 16);
    expect(space.byteOffset).toBe(limits.minPages * WASM_PAGE_BYTES);
    expect(space.memory.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(space.memory.buffer.byteLength).toBe(limits.minPages * WASM_PAGE_BYTES + 4 * 4096 * 16);
    const vm = Vm.create({ ringSpace: space });
    vm.enableCap(192, 4096 * 16);
    for (let i = 0; i < 4; i++) vm.createVcpu();
    expect(vm.mmapRing(3).i32.byteOffset).toBe(space.byteOffset + 3 * 4096 * 16);
    expect(vm.mmapRing(3).i32.buffer).toBe(space.memory.buffer);
  });

  it('rings that do not fit the module\'s maximum memory: ENOMEM naming the pages needed', () => {
    const def = wasmHarvester('qemu-reaper', reaper);
    expect(() => def.ringSpace!(256, 65536 * 16)).toThrow(/ENOMEM, 256 rings of 1048576 B need \d+ pages/);
  });

  it('the instrumented module is valid and imports the same functions', () => {
    const out = instrumentPlainAccesses(reaper);
    expect(out).not.toBeNull();
    const m = new WebAssembly.Module(out!);
    expect(WebAssembly.Module.imports(m)).toEqual(WebAssembly.Module.imports(new WebAssembly.Module(reaper)));
    expect(WebAssembly.Module.exports(m)).toEqual(WebAssembly.Module.exports(new WebAssembly.Module(reaper)));
  });
});
