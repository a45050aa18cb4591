/** Output paths are judged before any work: a file that can be written, a directory that can be made. */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkOutputDir, checkOutputFile } from '../../../src/cli/output-paths.js';

const dir = mkdtempSync(join(tmpdir(), 'dirtyring-outpaths-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function refusal(f: () => void): string {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  return 'accepted';
}

describe('checkOutputFile', () => {
  it('accepts a new file in an existing or creatable directory, and an existing writable file', () => {
    expect(refusal(() => checkOutputFile('--report', join(dir, 'r.json')))).toBe('accepted');
    expect(refusal(() => checkOutputFile('--report', join(dir, 'a', 'b', 'r.json')))).toBe('accepted');
    writeFileSync(join(dir, 'old.json'), '{}');
    expect(refusal(() => checkOutputFile('--report', join(dir, 'old.json')))).toBe('accepted');
    expect(refusal(() => checkOutputFile('--junit', '/dev/null'))).toBe('accepted');
  });

  it('refuses a directory, a read-only file, a path under a file, naming the parameter and the errno', () => {
    expect(refusal(() => checkOutputFile('--report', dir))).toBe(`--report ${dir}: EISDIR, is a directory; give a file name`);
    const ro = join(dir, 'ro.xml');
    writeFileSync(ro, '');
    chmodSync(ro, 0o444);
    expect(refusal(() => checkOutputFile('--junit', ro))).toBe(`--junit ${ro}: EACCES, the file is read-only`);
    expect(refusal(() => checkOutputFile('--junit', '/proc/version'))).toContain('EACCES');
    expect(refusal(() => checkOutputFile('--report', join(ro, 'x.json')))).toContain('ENOTDIR');
    expect(refusal(() => checkOutputFile('--report', join(ro, 'deeper', 'x.json')))).toContain('ENOTDIR');
  });
});

describe('checkOutputDir', () => {
  it('accepts an existing directory and one that can be created, without creating it', () => {
    expect(refusal(() => checkOutputDir('--trace-dir', dir))).toBe('accepted');
    const fresh = join(dir, 'traces', 'deep');
    expect(refusal(() => checkOutputDir('--trace-dir', fresh))).toBe('accepted');
    mkdirSync(join(dir, 'x'));
    expect(refusal(() => checkOutputDir('--trace-dir', join(dir, 'x', 'y')))).toBe('accepted');
  });

  it('refuses a file, and a path under a file', () => {
    const file = join(dir, 'f');
    writeFileSync(file, '');
    expect(refusal(() => checkOutputDir('--trace-dir', file))).toBe(`--trace-dir ${file}: ENOTDIR, exists and is not a directory`);
    expect(refusal(() => checkOutputDir('--trace-dir', '/dev/null/x'))).toBe('--trace-dir /dev/null/x: ENOTDIR, a component of the path is not a directory');
  });
});
