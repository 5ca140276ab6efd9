// CPU time of the processes that share this machine's cores during a benchmark window, from
// /proc/<pid>/stat (utime + stime), to tell which one limits a figure.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

let ticksPerSecond: number | undefined;
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** CPU seconds used so far by a process; NaN when it cannot be read. */
export function cpuSeconds(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    // After "pid (comm) ", field 3 (state) is index 0: utime is field 14, stime field 15.
    return (Number(fields[11]) + Number(fields[12])) / clockTicks();
  } catch {
    return NaN;
  }
}

/** The pids of the local cluster's components, from hack/cluster.sh's state directory. */
export function clusterPids(stateDir: string): Record<string, number | undefined> {
  const pid = (name: string) => {
    try {
      return Number(readFileSync(path.join(stateDir, 'pids', name), 'utf8').trim()) || undefined;
    } catch {
      return undefined;
    }
  };
  return {
    'kube-apiserver': pid('kube-apiserver'),
    etcd: pid('etcd'),
    'kube-controller-manager': pid('kube-controller-manager'),
    kwok: pid('kwok'),
  };
}

export type CpuSnapshot = { at: number; seconds: Record<string, number> };

export function cpuSnapshot(pids: Record<string, number | undefined>): CpuSnapshot {
  const seconds: Record<string, number> = {};
  for (const [name, pid] of Object.entries(pids)) seconds[name] = cpuSeconds(pid);
  const own = process.cpuUsage();
  seconds.bench = (own.user + own.system) / 1e6;
  return { at: Date.now(), seconds };
}

/** Share of one core each process used between two snapshots (1 = one full core). */
export function cpuShares(before: CpuSnapshot, after: CpuSnapshot): Record<string, number> {
  const wall = (after.at - before.at) / 1000;
  const shares: Record<string, number> = {};
  for (const [name, seconds] of Object.entries(after.seconds))
    shares[name] = (seconds - (before.seconds[name] ?? NaN)) / wall;
  return shares;
}
