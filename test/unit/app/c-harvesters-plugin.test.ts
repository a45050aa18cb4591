/**
 * The Vite plugin that offers the shipped C harvesters to the browser app: with clang it compiles
 * every example into a module the loader accepts; without clang (PATH emptied) it offers none and
 * says why; a source that does not compile is named, the others still offered.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { wasmHarvester } from '../../../src/harvester/wasm/wasm-harvester.js';
import { compileCExamples } from '../../../vite-c-harvesters.js';
import { NO_TOOLCHAIN } from '../../helpers/c-harvester.js';

const EXAMPLES = fileURLToPath(new URL('../../../examples/harvesters-c', import.meta.url));
const savedPath = process.env['PATH'];

afterEach(() => {
  process.env['PATH'] = savedPath;
});

describe('compileCExamples', () => {
  it('without clang on PATH: no examples, and a note saying why', () => {
    process.env['PATH'] = '';
    const r = compileCExamples(EXAMPLES);
    expect(r.examples).toEqual([]);
    expect(r.note).toMatch(/without clang and wasm-ld.*apt-get install clang lld/);
  });

  it.skipIf(NO_TOOLCHAIN !== null)('with clang: every shipped example, each a module the loader accepts with its log mode and threads', () => {
    const r = compileCExamples(EXAMPLES);
    expect(r.note).toBeNull();
    expect(r.examples.map((e) => e.name)).toEqual(['flag-handoff-reset-release', 'flag-handoff-reset', 'per-vcpu-threads', 'plain-reset', 'qemu-reaper', 'relaxed-flags', 'selftest-collector']);
    for (const e of r.examples) {
      const definition = wasmHarvester(e.name, new Uint8Array(Buffer.from(e.base64, 'base64')));
      expect(definition.log, e.name).toBe('ring');
      expect(definition.ringSpace, e.name).toBeTypeOf('function');
      // The lists show the threads of the examples with DIRTYRING_THREADS.
      expect(e.threads, e.name).toBe(definition.threads ?? null);
    }
    expect(r.examples.filter((e) => e.threads !== null).map((e) => [e.name, e.threads])).toEqual([
      ['flag-handoff-reset-release', 2],
      ['flag-handoff-reset', 2],
      ['per-vcpu-threads', 2],
    ]);
  });

  it.skipIf(NO_TOOLCHAIN !== null)('a source that does not compile is named; the others are still offered', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dirtyring-c-plugin-'));
    try {
      writeFileSync(join(dir, 'broken.c'), 'this is not C\n');
      writeFileSync(join(dir, 'empty.c'), '#include "dirtyring.h"\nDIRTYRING_HARVESTER(DIRTYRING_LOG_RING)\nint dirtyring_collect(int final) { (void)final; return 0; }\n');
      const r = compileCExamples(dir);
      expect(r.examples.map((e) => e.name)).toEqual(['empty']);
      expect(r.note).toMatch(/did not compile with clang[^:]*: broken\.c/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
