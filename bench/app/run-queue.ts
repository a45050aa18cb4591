/**
 * For `npm run bench:app` (Linux): how long the page's main thread waited for a core. The
 * kernel's per-thread schedstat (/proc/PID/task/TID/schedstat: CPU time, time runnable but
 * waiting on a run queue, timeslices) tells a thread that was starved of a core from one that was
 * blocked or working: wall time that is run-queue wait is starvation. The page's renderer is
 * found among this process's descendants as the renderer process with worker threads.
 */
import * as fs from 'node:fs';

export interface SchedSample {
  readonly cpuMs: number;
  readonly runQueueMs: number;
}

function readOr(path: string): string | null {
  try {
    return fs.readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** Descendants of `root`, from every process's parent pid. */
function descendants(root: number): number[] {
  const parent = new Map<number, number>();
  for (const d of fs.readdirSync('/proc')) {
    const stat = /^\d+$/.test(d) ? readOr(`/proc/${d}/stat`) : null;
    // The command may hold spaces and parentheses: the fields after its last ')' are fixed.
    if (stat) parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const [child, pp] of parent) {
      if (pp !== p) continue;
      out.push(child);
      walk(child);
    }
  };
  walk(root);
  return out;
}

/** The renderer process running dedicated workers (the page with a run), or null. */
export function findRenderer(): number | null {
  for (const pid of descendants(process.pid)) {
    if (!(readOr(`/proc/${pid}/cmdline`) ?? '').includes('--type=renderer')) continue;
    const tasks = fs.readdirSync(`/proc/${pid}/task`);
    if (tasks.some((t) => (readOr(`/proc/${pid}/task/${t}/comm`) ?? '').startsWith('DedicatedWorker'))) return pid;
  }
  return null;
}

/** The main thread's (tid = pid) CPU and run-queue time so far, or null off Linux. */
export function sampleMainThread(pid: number): SchedSample | null {
  const s = readOr(`/proc/${pid}/task/${pid}/schedstat`);
  if (!s) return null;
  const [cpuNs, waitNs] = s.trim().split(' ').map(Number);
  return { cpuMs: cpuNs! / 1e6, runQueueMs: waitNs! / 1e6 };
}
