import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { cHarvesters } from './vite-c-harvesters.js';

const C_EXAMPLES_DIR = fileURLToPath(new URL('./examples/harvesters-c', import.meta.url));

// SharedArrayBuffer needs a cross-origin isolated page: COOP same-origin + COEP require-corp,
// on the dev server and on preview. A host that cannot send them gets them from the app's
// service worker (public/coi-sw.js, registered by src/app/isolation.ts). Workers use ES format (the vCPU worker has top-level await).
const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  // Relative asset URLs: the static build works from any directory of any host.
  base: './',
  // The shipped C harvesters, compiled with clang when it is installed (vite-c-harvesters.ts).
  plugins: [cHarvesters(C_EXAMPLES_DIR)],
  server: { headers: isolation },
  preview: { headers: isolation },
  worker: { format: 'es', plugins: () => [cHarvesters(C_EXAMPLES_DIR)] },
  // The SDK examples the app offers import the package by name: its browser entry, from source.
  resolve: { alias: [{ find: /^dirtyring$/, replacement: fileURLToPath(new URL('./src/index.browser.ts', import.meta.url)) }] },
  build: {
    outDir: 'dist-app',
    target: 'es2022',
  },
});
