/**
 * The SIMD bitmap scan in Chromium: a 1 GiB slot's bitmap is a shared WebAssembly.Memory on
 * the page, GET and CLEAR give the same pages with it as without it, and runs whose vCPU
 * Web Workers receive the Memory with the slot's buffers lose no page.
 */
import { expect, it } from 'vitest';
import { describeInBrowser } from './browser-env.js';

interface Side {
  scan: boolean;
  got: number[];
  left: number[];
}
interface SimdSummary {
  simd: Side;
  js: Side;
  runs: Record<'bitmap' | 'clear', { lostPages: number; iterations: number; error: string | null }>;
  error: string | null;
}

describeInBrowser('the bitmap SIMD scan in headless Chromium', (pages) => {
  it('scans a 1 GiB slot in SIMD with the JavaScript scan\'s results, and bitmap and clear runs of 1 GiB lose no page', async () => {
    const { summary: s, context } = await pages.run<SimdSummary>('bitmap-simd', { iterations: 3, seed: 3 });
    expect(s.simd.scan, context).toBe(true);
    expect(s.simd.got, context).toEqual([0, 63, 64, 511, 512, 100000, 262143]);
    expect(s.simd.left, context).toEqual([63, 511, 100000]);
    expect({ got: s.js.got, left: s.js.left }, context).toEqual({ got: s.simd.got, left: s.simd.left });
    for (const log of ['bitmap', 'clear'] as const) {
      expect(s.runs[log], `${log}: ${context}`).toEqual({ lostPages: 0, iterations: 3, error: null });
    }
  });
});
