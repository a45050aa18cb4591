/** Stress campaigns in tests: a campaign's failing runs, in a form an assertion can show. */
import type { CampaignResult } from '../../src/stress/campaign.js';

/** The forbidden or error runs of `r` as [seed, outcome, detail]: enough to reproduce and read one. */
export function failingRuns(r: CampaignResult): [seed: number, outcome: string, detail: string | null][] {
  return r.records.filter((x) => x.cls === 'forbidden' || x.cls === 'error').map((x) => [x.seed, x.outcome, x.detail]);
}
