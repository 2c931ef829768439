import { readFileSync } from 'node:fs';

/** Memory and CPU of one process from /proc (Linux): VmRSS, VmHWM (peak RSS) and user+system CPU seconds. */
export interface ProcStats {
  rssMiB: number;
  peakRssMiB: number;
  cpuSeconds: number;
}

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

export function procStats(pid: number | undefined): ProcStats | undefined {
  if (!pid) return undefined;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th of them.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(rest[11]) + Number(rest[12]);
    return { rssMiB: kib('VmRSS') / 1024, peakRssMiB: kib('VmHWM') / 1024, cpuSeconds: ticks / TICKS_PER_SECOND };
  } catch {
    return undefined;
  }
}

/** The CPU each named process used between two readings, as a share of one core over `seconds`. */
export function cpuShare(
  before: Record<string, ProcStats | undefined>,
  after: Record<string, ProcStats | undefined>,
  seconds: number
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, a] of Object.entries(after)) {
    const b = before[name];
    if (a && b && seconds > 0) out[name] = Math.round(((a.cpuSeconds - b.cpuSeconds) / seconds) * 100);
  }
  return out;
}
