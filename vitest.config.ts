import { defineConfig } from 'vitest/config';

// Node-side tests. vCPU workers are real worker_threads; Vitest's transform does not reach
// them, so test/global-setup.ts compiles the project to dist/ first and the spawner loads
// the compiled worker (see compiledWorkerUrl in src/platform/node-worker.ts).
export default defineConfig({
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
