/** Legends of the live view's canvases: a swatch and a name per state. */
import { el } from '../dom.js';
import { HEAT_CSS, LANE_COLORS, RING_COLORS } from '../draw/palette.js';

function legend(label: string, items: readonly (readonly [string, string])[]): HTMLElement {
  return el(
    'ul',
    { class: 'legend', 'aria-label': label },
    ...items.map(([color, name]) => el('li', {}, el('span', { class: 'swatch', style: `background:${color}` }), name)),
  );
}

/** `userspace`: with the harvester's and the reset's lanes (the live view). */
export const laneLegend = (userspace = true): HTMLElement =>
  legend('Lane states', [
    [LANE_COLORS.inGuest, 'in guest'],
    [LANE_COLORS.running, 'running (KVM_RUN, outside guest)'],
    [LANE_COLORS.stalled, 'stalled: ring full (exit 31)'],
    [LANE_COLORS.parked, 'parked'],
    [LANE_COLORS.throttled, 'throttled (dirty-limit)'],
    ...(userspace ? ([[LANE_COLORS.harvest, 'harvesting'], [LANE_COLORS.reset, 'KVM_RESET_DIRTY_RINGS']] as const) : []),
  ]);

export const ringLegend = (): HTMLElement =>
  legend('Ring entry states', [
    [RING_COLORS.empty, 'empty'],
    [RING_COLORS.dirty, 'dirty'],
    [RING_COLORS.harvested, 'harvested (RESET set)'],
    [RING_COLORS.reset, 'reset'],
    ['#f8fafc', 'dirty_index'],
    ['#eab308', 'fetch index'],
    ['#22c55e', 'reset_index'],
  ]);

export const heatLegend = (): HTMLElement =>
  legend('Page states', [
    [HEAT_CSS.written, 'written since last collection'],
    [HEAT_CSS.recorded, 'recorded'],
    [HEAT_CSS.writable, 'writable'],
    [HEAT_CSS.protected, 'write-protected'],
    [HEAT_CSS.lost, 'lost (flashes)'],
  ]);
