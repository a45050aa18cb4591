/**
 * `dirtyring build-harvester my.c [-o my.wasm]`: compile a C harvester to the WebAssembly module
 * `--harvester` loads, with Debian's clang and lld (wasm-ld). Freestanding: no libc, so nothing
 * beyond include/dirtyring.h and the compiler's own headers; shared memory, because the rings the
 * C code reads are written by the vCPU threads.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import * as nodeUrl from 'node:url';
import { parseArgs } from 'node:util';
import { ConfigError } from '../base/config-error.js';

/** The linear memory's maximum: the module's data and stack plus every vCPU's ring must fit. */
export const DEFAULT_MAX_MEMORY_BYTES = 64 * 1024 * 1024;

export const BUILD_HARVESTER_USAGE = `usage: dirtyring build-harvester FILE.c [-o FILE.wasm] [options]

Compile a C harvester (written against include/dirtyring.h) to WebAssembly for --harvester.

  -o, --output FILE     the module (default: FILE.c with .wasm)
  --max-memory BYTES    the linear memory's maximum (default ${DEFAULT_MAX_MEMORY_BYTES}): the
                        module's data and stack plus every vCPU's ring
  --clang PATH          the compiler (default: clang, then clang-14 on PATH)
  -h, --help            this text

The same as:
  clang --target=wasm32 -O2 -nostdlib -ffreestanding -matomics -mbulk-memory \\
    -I <dirtyring>/include -Wl,--no-entry,--import-memory,--shared-memory,--max-memory=${DEFAULT_MAX_MEMORY_BYTES} \\
    -o FILE.wasm FILE.c`;

/** The include directory shipped with the package: the nearest include/dirtyring.h above this module (src/ or dist/src/). */
export function includeDir(): string {
  let dir = nodePath.dirname(nodeUrl.fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(nodePath.join(dir, 'include', 'dirtyring.h'))) return nodePath.join(dir, 'include');
    const up = nodePath.dirname(dir);
    if (up === dir) throw new ConfigError('build-harvester', 'include/dirtyring.h', 'ENOENT', 'the package has no include/dirtyring.h');
    dir = up;
  }
}

/** The clang arguments for `source` → `output`. */
export function clangArgs(source: string, output: string, maxMemoryBytes: number): string[] {
  return [
    '--target=wasm32',
    '-O2',
    '-nostdlib',
    '-ffreestanding',
    '-matomics',
    '-mbulk-memory',
    '-Wall',
    `-I${includeDir()}`,
    `-Wl,--no-entry,--import-memory,--shared-memory,--max-memory=${maxMemoryBytes}`,
    '-o',
    output,
    source,
  ];
}

function findTool(names: readonly string[]): string | null {
  for (const name of names) {
    const r = spawnSync(name, ['--version'], { stdio: 'ignore' });
    if (r.error === undefined && r.status === 0) return name;
  }
  return null;
}

export function buildHarvesterCommand(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { output: { type: 'string', short: 'o' }, 'max-memory': { type: 'string' }, clang: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log(BUILD_HARVESTER_USAGE);
    return 0;
  }
  if (positionals.length !== 1) throw new ConfigError('FILE.c', positionals.join(' '), 'EINVAL', 'give exactly one C source file');
  const source = positionals[0]!;
  if (!fs.existsSync(source)) throw new ConfigError('FILE.c', source, 'ENOENT', 'no such file');
  const maxMemory = Number(values['max-memory'] ?? DEFAULT_MAX_MEMORY_BYTES);
  if (!Number.isInteger(maxMemory) || maxMemory <= 0 || maxMemory % 65536 !== 0 || maxMemory > 2 ** 32) {
    throw new ConfigError('--max-memory', values['max-memory'], 'EINVAL', 'must be a positive multiple of 65536 bytes, at most 4 GiB');
  }
  const output = values.output ?? source.replace(/\.c$/, '') + '.wasm';
  const clang = findTool(values.clang !== undefined ? [values.clang] : ['clang', 'clang-14']);
  if (clang === null) throw new ConfigError('build-harvester', values.clang ?? 'clang', 'ENOENT', 'clang is not installed (Debian: apt-get install clang lld)');
  if (findTool(['wasm-ld', 'wasm-ld-14']) === null) throw new ConfigError('build-harvester', 'wasm-ld', 'ENOENT', 'wasm-ld is not installed (Debian: apt-get install lld)');
  const r = spawnSync(clang, clangArgs(source, output, maxMemory), { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`build-harvester: ${clang} failed on ${source} (exit ${r.status ?? r.signal})`);
    return 1;
  }
  console.error(`build-harvester: wrote ${output}`);
  return 0;
}
