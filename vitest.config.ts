import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { cHarvesters } from './vite-c-harvesters.js';

// Node-side tests. vCPU workers are real worker_threads; Vitest's transform does not reach
// them, so test/global-setup.ts compiles the project to dist/ first and the spawner loads
// the compiled worker (see compiledWorkerUrl in src/platform/node-worker.ts).
export default defineConfig({
  // The app's modules (test/unit/app) import the C examples' list the page is built with.
  plugins: [cHarvesters(fileURLToPath(new URL('./examples/harvesters-c', import.meta.url)))],
  // Harvester modules (examples/, test fixtures) import the package by name, as users do; in
  // tests that name is the sources.
  resolve: {
    alias: [
      { find: /^dirtyring$/, replacement: fileURLToPath(new URL('./src/index.ts', import.meta.url)) },
      { find: /^dirtyring\/vitest$/, replacement: fileURLToPath(new URL('./src/testing/vitest.ts', import.meta.url)) },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/browser/**', 'node_modules/**', 'dist/**'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: false,
    // Costly invariant checks on (src/base/assert.ts); worker threads and CLI children inherit it.
    env: { DIRTYRING_DEBUG: '1' },
  },
});
