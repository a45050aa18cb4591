/**
 * C harvesters from the command line: `build-harvester` compiles them (or says in one line that
 * the compiler is missing), `--harvester FILE.wasm` runs them in `run`, `migrate` and free and
 * controlled `stress`, the examples give their stated results (the relaxed-flags reaper is caught
 * under arm64 only, with a shrunk schedule and its replay), a module that cannot be a harvester
 * exits 2 with the reason, and a trap during a run exits 1 with the trap and the seed.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliWithin, lastJson } from '../helpers/cli.js';
import { NO_TOOLCHAIN, buildC } from '../helpers/c-harvester.js';
import { timeoutAbove } from '../helpers/watchdog.js';

const CLI_MS = 120_000;
const dirtyring = cliWithin(CLI_MS);
const RUN = ['--iterations', '3', '--seed', '9'];
const dir = mkdtempSync(join(tmpdir(), 'dirtyring-wasm-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('build-harvester', () => {
  it('a compiler that is not there: exit 2, one line naming it', () => {
    const r = dirtyring('build-harvester', 'examples/harvesters-c/qemu-reaper.c', '--clang', '/nonexistent/clang');
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe('build-harvester /nonexistent/clang: ENOENT, clang is not installed (Debian: apt-get install clang lld)');
  }, timeoutAbove(CLI_MS));

  it('a source that is not there: exit 2', () => {
    const r = dirtyring('build-harvester', 'missing.c');
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe('FILE.c missing.c: ENOENT, no such file');
  }, timeoutAbove(CLI_MS));

  it.skipIf(NO_TOOLCHAIN !== null)('compiles an example into a module --harvester loads', () => {
    const out = join(dir, 'built.wasm');
    const r = dirtyring('build-harvester', 'examples/harvesters-c/qemu-reaper.c', '-o', out);
    expect(r.status, r.stderr).toBe(0);
    expect(existsSync(out)).toBe(true);
  }, timeoutAbove(CLI_MS));
});

describe.skipIf(NO_TOOLCHAIN !== null)(`--harvester FILE.wasm${NO_TOOLCHAIN !== null ? ` (skipped: ${NO_TOOLCHAIN})` : ''}`, () => {
  const wasm: Record<string, string> = {};
  beforeAll(() => {
    for (const name of ['qemu-reaper', 'selftest-collector', 'relaxed-flags']) wasm[name] = buildC(`examples/harvesters-c/${name}.c`, dir);
    for (const name of ['traps', 'no-collect', 'bad-ioctls']) wasm[name] = buildC(`test/fixtures/harvesters-c/${name}.c`, dir);
    wasm['unshared'] = buildC('examples/harvesters-c/qemu-reaper.c', dir, '-Wl,--no-entry,--import-memory');
    wasm['not-wasm'] = join(dir, 'not-wasm.wasm');
    writeFileSync(wasm['not-wasm'], 'int main(void) { return 0; }\n');
  });

  it('modules that cannot be harvesters: exit 2, one line with the reason', () => {
    const cases: [string, string][] = [
      ['not-wasm', 'EINVAL, not a WebAssembly module (no \\0asm header)'],
      ['no-collect', 'EINVAL, exports no function dirtyring_collect'],
      ['unshared', 'EINVAL, imports env.memory unshared'],
    ];
    for (const [name, message] of cases) {
      for (const command of ['run', 'stress']) {
        const r = dirtyring(command, '--harvester', wasm[name]!);
        expect(r.status, `${command} ${name}: ${r.stderr}`).toBe(2);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr).toContain(`--harvester ${wasm[name]}: ${message}`);
      }
    }
  }, timeoutAbove(6 * CLI_MS));

  it('run: the QEMU-style reaper and the selftest collector lose nothing', () => {
    for (const name of ['qemu-reaper', 'selftest-collector']) {
      const r = dirtyring('run', '--harvester', wasm[name]!, ...RUN, '--json');
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(lastJson(r.stdout)).toMatchObject({ ok: true, lostPages: 0, copyMismatches: 0, resetMismatches: 0, harvester: { name, ioctlErrors: 0 } });
    }
  }, timeoutAbove(2 * CLI_MS));

  it('ioctls answer as libc does: -1 and errno (ENOTTY, EBADF, EFAULT, EINVAL), then the reaper runs clean', () => {
    const r = dirtyring('run', '--harvester', wasm['bad-ioctls']!, '--vcpus', '1', ...RUN);
    expect(r.status, r.stdout + r.stderr).toBe(0);
  }, timeoutAbove(CLI_MS));

  it('a trap in a collection: exit 1, the trap and the seed', () => {
    const r = dirtyring('run', '--harvester', wasm['traps']!, ...RUN);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain("run failed: harvester 'traps' threw in collection 3: RuntimeError: memory access out of bounds");
    expect(r.stdout).toContain('reproduce with --seed 9');
  }, timeoutAbove(CLI_MS));

  it('migrate and a free stress campaign with the reaper: verified, 0 forbidden', () => {
    const m = dirtyring('migrate', '--harvester', wasm['qemu-reaper']!, '--seed', '3', '--json');
    expect(m.status, m.stdout + m.stderr).toBe(0);
    expect(lastJson(m.stdout)).toMatchObject({ harvester: { name: 'qemu-reaper' } });
    const s = dirtyring('stress', '--harvester', wasm['qemu-reaper']!, '--mode', 'free', '--runs', '5', '--seed', '1');
    expect(s.status, s.stdout + s.stderr).toBe(0);
    expect(s.stdout).toContain('OK: 5 runs, 0 forbidden, 0 errors (seed 1)');
  }, timeoutAbove(2 * CLI_MS));

  it('controlled, arm64: the reaper is clean; the relaxed-flags reaper is caught, shrunk and replayed', () => {
    const ok = dirtyring('stress', '--harvester', wasm['qemu-reaper']!, '--mode', 'controlled', '--memory-model', 'arm64', '--runs', '100', '--seed', '1');
    expect(ok.status, ok.stdout + ok.stderr).toBe(0);
    const sc = dirtyring('stress', '--harvester', wasm['relaxed-flags']!, '--mode', 'controlled', '--memory-model', 'sc', '--runs', '100', '--seed', '1');
    expect(sc.status, sc.stdout + sc.stderr).toBe(0);
    const traces = join(dir, 'traces');
    const bad = dirtyring('stress', '--harvester', wasm['relaxed-flags']!, '--mode', 'controlled', '--memory-model', 'arm64', '--runs', '10', '--seed', '1', '--trace-dir', traces);
    expect(bad.status, bad.stdout + bad.stderr).toBe(1);
    expect(bad.stdout).toContain('FORBIDDEN run 6 (seed 7): lost-page');
    const replay = /replay: npx dirtyring stress --replay (\S+)/.exec(bad.stdout);
    expect(replay, bad.stdout).not.toBeNull();
    const r = dirtyring('stress', '--replay', replay![1]!);
    expect(r.stdout + r.stderr).toContain('trace: identical to the recording');
  }, timeoutAbove(4 * CLI_MS));
});
