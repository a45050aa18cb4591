/**
 * What the page publishes for its tests and its benchmark on `window.__dirtyringApp`: the live
 * run's state and figures, the trace debugger's, and the frame times. Plain data, updated in
 * place; nothing reads it on a hot path.
 */
export interface AppProbe {
  live: {
    state: string;
    iteration: number;
    lostMessage: string | null;
    summary: { ok: boolean; lostPages: number; iterations: number; error: string | null; guestWrites: number; elapsedMs: number } | null;
    heat: { written: number; recorded: number; writable: number; protected: number; lost: number };
    frames: number;
    /** Pages (64 KiB) of the WebAssembly memory the rings the page draws live in (a C harvester's), 0 for plain buffers. */
    ringMemoryPages: number;
    /** Each ring strip's indices as last drawn; fetchFromFlags: the harvester keeps its fetch index, the page shows the position its flags give. */
    rings: readonly { dirty: number; reset: number; fetch: number; fetchFromFlags: boolean }[];
    /** The run's harvester's threads of its own (Web Workers), 0 when it runs in the run's worker. */
    harvesterThreads: number;
  };
  trace: { loaded: string | null; error: string | null; traceHash: string | null; recordedHash: string | null; steps: number; position: number };
  /** harvesterThreadWorkers: the Web Workers the last campaign's free runs started for its harvester's threads. */
  stress: { runs: number; done: boolean; histogram: Record<string, number>; error: string | null; harvester: string | null; firstForbiddenSeed: number | null; harvesterThreadWorkers: number };
  migration: { done: boolean; rounds: number; error: string | null; throttledSamples: number; harvester: string | null; mismatchedPages: number | null };
  /** Frame durations (ms) of the last frames drawn, oldest first. */
  frameMs: number[];
  /** Wall-clock gaps between consecutive animation frames (ms). */
  frameGapMs: number[];
}

export const probe: AppProbe = {
  live: { state: 'idle', iteration: 0, lostMessage: null, summary: null, heat: { written: 0, recorded: 0, writable: 0, protected: 0, lost: 0 }, frames: 0, ringMemoryPages: 0, rings: [], harvesterThreads: 0 },
  trace: { loaded: null, error: null, traceHash: null, recordedHash: null, steps: 0, position: 0 },
  stress: { runs: 0, done: false, histogram: {}, error: null, harvester: null, firstForbiddenSeed: null, harvesterThreadWorkers: 0 },
  migration: { done: false, rounds: 0, error: null, throttledSamples: 0, harvester: null, mismatchedPages: null },
  frameMs: [],
  frameGapMs: [],
};

const FRAMES_KEPT = 600;

export function recordFrame(durationMs: number, gapMs: number): void {
  probe.frameMs.push(durationMs);
  probe.frameGapMs.push(gapMs);
  if (probe.frameMs.length > FRAMES_KEPT) {
    probe.frameMs.shift();
    probe.frameGapMs.shift();
  }
}

(globalThis as unknown as Record<string, AppProbe>)['__dirtyringApp'] = probe;
