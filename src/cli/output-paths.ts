/**
 * Output paths checked before any work starts: a campaign of an hour must not end in a stack
 * trace because its report cannot be written. Nothing is created here — a directory that does
 * not exist yet is created by the writer, only if some file goes into it.
 */
import { type Stats, accessSync, constants as fsConstants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '../base/config-error.js';

/** No write permission bit for anyone: refused even for root, who would get EIO from /proc and the like. */
const ANY_WRITE_BITS = 0o222;

/** The path's status; null when nothing is there; throws ENOTDIR when a parent is a file. */
function statOrNull(path: string): Stats | null {
  try {
    return statSync(path);
  } catch (e) {
    if (codeOf(e) === 'ENOENT') return null;
    throw e;
  }
}

/** The error's errno, when a filesystem call failed with one. */
function codeOf(e: unknown): string | null {
  return typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string' ? (e as { code: string }).code : null;
}

/**
 * A directory that exists, or can be created: its nearest existing ancestor must be a
 * directory this process may create entries in.
 */
export function checkOutputDir(param: string, path: string): void {
  let p = resolve(path);
  let existing = true;
  for (;;) {
    let st: Stats | null;
    try {
      st = statOrNull(p);
    } catch {
      throw new ConfigError(param, path, 'ENOTDIR', 'a component of the path is not a directory');
    }
    if (st !== null) {
      if (!st.isDirectory()) {
        throw new ConfigError(param, path, 'ENOTDIR', existing ? 'exists and is not a directory' : `${p} exists and is not a directory`);
      }
      writable(param, path, p, existing ? 'the directory is not writable' : `cannot create it: ${p} is not writable`);
      return;
    }
    existing = false;
    const parent = dirname(p);
    if (parent === p) return;
    p = parent;
  }
}

/** A file that exists and may be overwritten, or whose directory exists or can be created. */
export function checkOutputFile(param: string, path: string): void {
  let st: Stats | null;
  try {
    st = statOrNull(path);
  } catch {
    throw new ConfigError(param, path, 'ENOTDIR', 'a component of the path is not a directory');
  }
  if (st === null) {
    checkOutputDir(param, dirname(resolve(path)));
    return;
  }
  if (st.isDirectory()) throw new ConfigError(param, path, 'EISDIR', 'is a directory; give a file name');
  if (!st.isFile() && !st.isCharacterDevice()) throw new ConfigError(param, path, 'EINVAL', 'is not a regular file');
  if (st.isFile() && (Number(st.mode) & ANY_WRITE_BITS) === 0) throw new ConfigError(param, path, 'EACCES', 'the file is read-only');
  writable(param, path, path, 'the file is not writable');
}

function writable(param: string, path: string, p: string, reason: string): void {
  try {
    accessSync(p, fsConstants.W_OK);
  } catch (e) {
    const code = codeOf(e) === 'EROFS' ? 'EROFS' : 'EACCES';
    throw new ConfigError(param, path, code, codeOf(e) === 'EROFS' ? `${reason} (read-only file system)` : reason);
  }
}
