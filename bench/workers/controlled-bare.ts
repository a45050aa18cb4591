/**
 * A controlled participant worker that can also make a bare token hand-off: the controlled
 * worker API of the stress harness (runs of the real engine), plus `handOff`, which parks on
 * the same token with the same ParticipantToken code `moves` times and does nothing else.
 * The controlled-ceiling suite runs both on the same threads, so that the bare hand-offs are
 * the ceiling of the engine's steps on exactly these threads.
 */
import { exposeToParent } from '../../src/platform/expose-worker.js';
import type { ControlledWorkerApi } from '../../src/stress/controlled/participant-api.js';
import { createControlledWorkerApi } from '../../src/stress/controlled/participant-main.js';
import { ParticipantToken } from '../../src/stress/controlled/token.js';

export interface BareControlledWorkerApi extends ControlledWorkerApi {
  /** Park `moves` times on participant `participant`'s block of `token` (a START-like first park included), then finish. */
  handOff(token: SharedArrayBuffer, participant: number, moves: number): Promise<number>;
}

const api: BareControlledWorkerApi = {
  ...createControlledWorkerApi(),
  async handOff(token: SharedArrayBuffer, participant: number, moves: number): Promise<number> {
    const t = new ParticipantToken(token, participant);
    try {
      for (let i = 0; i < moves; i++) t.park(0, i, 0);
    } finally {
      t.finish();
    }
    return moves;
  },
};

await exposeToParent(api, 'bench controlled-bare worker');
