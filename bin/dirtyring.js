#!/usr/bin/env node
// Entry point of the `dirtyring` command. It runs the compiled CLI from dist/, building it
// first when dist/ is missing or older than the TypeScript sources (a fresh clone builds in
// `npm install` through the `prepare` script; this covers edits made since).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(root, 'dist', 'src', 'cli', 'main.js');

function newestMtime(dir) {
  let newest = 0;
  for (const name of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, name.name);
    if (name.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (name.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

function needsBuild() {
  if (!existsSync(entry)) return true;
  const src = join(root, 'src');
  if (!existsSync(src)) return false; // installed from a package: dist/ is all there is
  const built = statSync(entry).mtimeMs;
  return newestMtime(src) > built || newestMtime(join(root, 'workers')) > built;
}

if (needsBuild()) {
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  if (!existsSync(tsc)) {
    console.error('dirtyring: dist/ is missing and TypeScript is not installed; run `npm install` first');
    process.exit(2);
  }
  process.stderr.write('dirtyring: building (tsc -p tsconfig.build.json)...\n');
  execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit', cwd: root });
}

await import(pathToFileURL(entry).href);
