/** A controlled run's participants as the token describes them, for liveness reports. */
import { ParticipantStatus } from './token-layout.js';
import { type Roster, participantName, stepName } from './control-steps.js';
import type { SchedulerToken } from './token.js';

/** One participant's state from shared memory, in words. */
export function describeParticipant(token: SchedulerToken, p: number): string {
  const at = `${stepName(token.step(p))}(${token.argA(p)}, ${token.argB(p)})`;
  switch (token.status(p)) {
    case ParticipantStatus.IDLE:
      return 'never started (its worker did not take the run)';
    case ParticipantStatus.PARKED:
      return `parked at ${at}`;
    case ParticipantStatus.RUNNING:
      return `running, granted at ${at}`;
    case ParticipantStatus.FINISHED:
      return 'finished';
    default:
      return `status ${token.status(p)}`;
  }
}

/** Every participant's state, for a liveness report. */
export function describeTokens(token: SchedulerToken, roster: Roster, parts: number): string {
  const out: string[] = [];
  for (let p = 0; p < parts; p++) out.push(`${participantName(p, roster)} ${describeParticipant(token, p)}`);
  return `participants: ${out.join('; ')}`;
}
