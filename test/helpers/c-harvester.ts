/**
 * Building C harvesters for tests: with Debian's clang and wasm-ld, the same line
 * `dirtyring build-harvester` runs. Where they are missing the tests that need them skip,
 * saying why (CI and the development machine have them: there they run).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { clangArgs, DEFAULT_MAX_MEMORY_BYTES } from '../../src/cli/build-harvester-command.js';
import { ROOT } from './cli.js';

function has(tool: string): boolean {
  const r = spawnSync(tool, ['--version'], { stdio: 'ignore' });
  return r.error === undefined && r.status === 0;
}

/** Why C harvesters cannot be built here, or null when they can. */
export const NO_TOOLCHAIN: string | null = !has('clang') ? 'clang is not installed (apt-get install clang lld)' : !has('wasm-ld') ? 'wasm-ld is not installed (apt-get install lld)' : null;

/**
 * Compile `source` (relative to the repository) into `dir` with build-harvester's line, or with
 * `link` in place of its linker flags; returns the module's path.
 */
export function buildC(source: string, dir: string, link?: string): string {
  const out = join(dir, source.replace(/^.*\//, '').replace(/\.c$/, link === undefined ? '.wasm' : '-relinked.wasm'));
  const args = clangArgs(join(ROOT, source), out, DEFAULT_MAX_MEMORY_BYTES).map((a) => (link !== undefined && a.startsWith('-Wl,') ? link : a));
  const r = spawnSync('clang', args, { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`clang ${source}: ${r.stderr}`);
  return out;
}
