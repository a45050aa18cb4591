import { defineConfig } from 'vitest/config';

// Browser tests: a Node-side test serves pages with Vite and drives Debian's Chromium with
// playwright-core (no browser download). The page itself runs the real workers.
export default defineConfig({
  test: {
    include: ['test/browser/**/*.browser.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
