import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// Workers run compiled JavaScript (Vitest cannot load .ts worker entries), so build once per
// test run. tsc is incremental enough here; a failure aborts the run with the compiler output.
export default function setup(): void {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const tsc = fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url));
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
}
