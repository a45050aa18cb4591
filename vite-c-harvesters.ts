/**
 * A Vite plugin that offers the shipped C harvesters (examples/harvesters-c/*.c) to the browser
 * app: at dev and build time it compiles each with the same clang line as
 * `dirtyring build-harvester`, and serves the modules as the virtual module
 * `virtual:c-harvesters` (their bytes inlined, a few KiB each). The .wasm files are never
 * committed: a machine without clang and wasm-ld gets an empty list and a note the page shows.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import type { Plugin } from 'vite';
import { DEFAULT_MAX_MEMORY_BYTES, clangArgs } from './src/cli/build-harvester-command.js';
import { wasmHarvester } from './src/harvester/wasm/wasm-harvester.js';

const VIRTUAL_ID = 'virtual:c-harvesters';
const RESOLVED_ID = '\0' + VIRTUAL_ID;

export interface CompiledCHarvester {
  /** The file's base name (qemu-reaper for qemu-reaper.c). */
  readonly name: string;
  readonly base64: string;
  /** DIRTYRING_THREADS(n): the threads it runs on (null: the run's thread); the lists show it. */
  readonly threads: number | null;
}

function firstTool(names: readonly string[]): string | null {
  for (const name of names) {
    const r = spawnSync(name, ['--version'], { stdio: 'ignore' });
    if (r.error === undefined && r.status === 0) return name;
  }
  return null;
}

/** Compile every example; `note` says why some or all are missing. */
export function compileCExamples(dir: string): { examples: CompiledCHarvester[]; note: string | null } {
  // Examples with threads of their own (DIRTYRING_THREADS) run on the page's harvester-thread workers.
  const sources = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.c')).sort() : [];
  if (sources.length === 0) return { examples: [], note: null };
  const clang = firstTool(['clang', 'clang-14']);
  if (clang === null || firstTool(['wasm-ld', 'wasm-ld-14']) === null) {
    return { examples: [], note: 'The C examples are not offered: this page was built without clang and wasm-ld (Debian: apt-get install clang lld). A .wasm built elsewhere with `dirtyring build-harvester` can still be chosen.' };
  }
  const out = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'dirtyring-c-'));
  const examples: CompiledCHarvester[] = [];
  const failed: string[] = [];
  try {
    for (const file of sources) {
      const source = nodePath.join(dir, file);
      const wasm = nodePath.join(out, file.replace(/\.c$/, '.wasm'));
      const r = spawnSync(clang, clangArgs(source, wasm, DEFAULT_MAX_MEMORY_BYTES), { encoding: 'utf8' });
      if (r.status !== 0) {
        failed.push(file);
        continue;
      }
      const name = file.replace(/\.c$/, '');
      const bytes = fs.readFileSync(wasm);
      // The loader `--harvester` uses reads the module's dirtyring_threads(), as the page will.
      const threads = wasmHarvester(name, new Uint8Array(bytes)).threads ?? null;
      examples.push({ name, base64: bytes.toString('base64'), threads });
    }
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
  return { examples, note: failed.length > 0 ? `Some C examples did not compile with ${clang}: ${failed.join(', ')}.` : null };
}

/** The page and each worker bundle load the list: compile once per set of source versions. */
const cache = new Map<string, ReturnType<typeof compileCExamples>>();

function cachedCompile(dir: string): ReturnType<typeof compileCExamples> {
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.c')).sort() : [];
  const key = dir + '|' + files.map((f) => `${f}@${fs.statSync(nodePath.join(dir, f)).mtimeMs}`).join(',');
  let compiled = cache.get(key);
  if (compiled === undefined) {
    compiled = compileCExamples(dir);
    cache.clear();
    cache.set(key, compiled);
  }
  return compiled;
}

export function cHarvesters(dir: string): Plugin {
  return {
    name: 'dirtyring-c-harvesters',
    resolveId: (id) => (id === VIRTUAL_ID ? RESOLVED_ID : null),
    load(id) {
      if (id !== RESOLVED_ID) return null;
      // Dev: an edited example recompiles on the next load.
      for (const f of fs.existsSync(dir) ? fs.readdirSync(dir) : []) if (f.endsWith('.c')) this.addWatchFile(nodePath.join(dir, f));
      const compiled = cachedCompile(dir);
      return `export const C_EXAMPLES = ${JSON.stringify(compiled.examples)};\nexport const C_EXAMPLES_NOTE = ${JSON.stringify(compiled.note)};\n`;
    },
  };
}
