/** `dirtyring run --track-pages`: bad input, the README's command, the summary rows. */
import { describe, expect, it } from 'vitest';
import { badInputTests, cliWithin, lastJson } from '../helpers/cli.js';
import { timeoutAbove } from '../helpers/watchdog.js';

const CLI_MS = 90_000;
const dirtyring = cliWithin(CLI_MS);

describe('dirtyring run --track-pages: bad input exits 2 with the parameter and the errno', () => {
  badInputTests(
    'run',
    [
      [['--track-pages', '99999'], '--track-pages 99999: EINVAL, tracked pages must be an integer between 0 and 16384'],
      [['--track-pages', 'abc'], '--track-pages abc: EINVAL, expected a page count or a percentage like 1%'],
      [['--track-pages', '150%'], '--track-pages 150%: EINVAL'],
      [['--track-pages', '4', '--device-writers', '1'], '--track-pages 4: EINVAL, cannot be combined with --device-writers'],
      [['--track-pages', '4', '--track-ring-entries', '1000'], '--track-ring-entries 1000: EINVAL, notification ring size 1000 is not a power of two'],
      [['--track-pages', '4', '--track-ring-entries', '256'], '--track-ring-entries 256: EINVAL'],
      [['--track-ring-entries', '512'], '--track-ring-entries 512: EINVAL, a notification ring size needs --track-pages'],
    ],
    CLI_MS,
  );
});

describe('dirtyring run --track-pages', () => {
  it('the README command: --track-pages 64 --vcpus 4 --json exits 0, no lost page, tracked writes = notifications', () => {
    const r = dirtyring('run', '--track-pages', '64', '--vcpus', '4', '--json', '--seed', '4');
    expect(r.status, r.stderr).toBe(0);
    const s = lastJson(r.stdout) as {
      ok: boolean;
      lostPages: number;
      pageTrack: { trackedWrites: number; notifications: number; shadowMismatches: number; trackPages: number; ok: boolean };
    };
    expect(s.ok).toBe(true);
    expect(s.lostPages).toBe(0);
    expect(s.pageTrack.trackPages).toBe(64);
    expect(s.pageTrack.trackedWrites).toBeGreaterThan(0);
    expect(s.pageTrack.notifications).toBe(s.pageTrack.trackedWrites);
    expect(s.pageTrack.shadowMismatches).toBe(0);
    expect(s.pageTrack.ok).toBe(true);
  }, timeoutAbove(CLI_MS));

  it('prints the page-tracking rows in the human summary; pageTrack is null without tracking', () => {
    const r = dirtyring('run', '--track-pages', '2%', '--memory', '4MiB', '--iterations', '2', '--seed', '3');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/tracked pages \(candidates\) \/ gfns tracked at end +20 \(22\) \/ 20/);
    expect(r.stdout).toMatch(/tracked writes \/ notifications received +(\d+) \/ \1\n/);
    const plain = dirtyring('run', '--memory', '4MiB', '--iterations', '1', '--seed', '3', '--json');
    expect(lastJson(plain.stdout).pageTrack).toBeNull();
  }, timeoutAbove(CLI_MS, CLI_MS));

  it('exits 1 and explains when the shadow drifts (mutant track-fault-fixes-tracked)', () => {
    const r = dirtyring('run', '--track-pages', '32', '--memory', '4MiB', '--iterations', '2', '--seed', '5', '--mutant', 'track-fault-fixes-tracked');
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/PAGE TRACK: iteration \d+: shadow of gfn 0x[0-9a-f]+ differs from the guest page/);
    expect(r.stdout).toMatch(/iteration +\d+: .*page-track mismatches \d+/);
  }, timeoutAbove(CLI_MS));
});
