/** Spawning the threads of a threaded user harvester in Node: workers/harvester.worker.js. */
import { Worker } from 'node:worker_threads';
import type { HarvesterThreadApi, SpawnHarvesterThread } from '../harvester/thread-layout.js';
import { compiledWorkerUrl, watchNodeWorker } from './node-worker.js';

export const spawnNodeHarvesterThread: SpawnHarvesterThread = (thread: number) =>
  watchNodeWorker<HarvesterThreadApi>(
    new Worker(compiledWorkerUrl('harvester.worker.js', 'DIRTYRING_HARVESTER_WORKER', 'harvester worker'), { name: `harvester${thread}` }),
    `harvester thread ${thread} worker`,
  );
