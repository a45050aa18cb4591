/** The colours every view shares, so that a state looks the same in the lanes, strips and legends. */
export const LANE_COLORS = {
  parked: '#5b6270',
  running: '#3b82f6',
  inGuest: '#22c55e',
  stalled: '#ef4444',
  throttled: '#eab308',
  halted: '#94a3b8',
  dead: '#111827',
  harvest: '#a855f7',
  reset: '#f97316',
  idle: '#1f2430',
} as const;

export const RING_COLORS = {
  empty: '#1f2430',
  dirty: '#ef4444',
  harvested: '#eab308',
  reset: '#2f6f4f',
} as const;

/** Heatmap cells as RGBA words (little-endian: 0xAABBGGRR). */
export const HEAT_RGBA = {
  protected: 0xff3a3029,
  writable: 0xff8a7a5a,
  written: 0xff2f8ff5,
  recorded: 0xff5ec522,
  lost: 0xff4444ff,
  lostFlash: 0xffffffff,
} as const;

export const HEAT_CSS = {
  protected: '#29303a',
  writable: '#5a7a8a',
  written: '#f58f2f',
  recorded: '#22c55e',
  lost: '#ff4444',
} as const;
