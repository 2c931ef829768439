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

/** The CPU seconds each named process used between two readings. */
export function cpuSecondsUsed(
  before: Record<string, ProcStats | undefined>,
  after: Record<string, ProcStats | undefined>
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, a] of Object.entries(after)) {
    const b = before[name];
    if (a && b) out[name] = a.cpuSeconds - b.cpuSeconds;
  }
  return out;
}

/** Whole-machine CPU time from /proc/stat, in seconds: busy (everything but idle and iowait) and total. */
export function machineCpu(): { busySeconds: number; totalSeconds: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((sum, v) => sum + v, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busySeconds: (total - idle) / TICKS_PER_SECOND, totalSeconds: total / TICKS_PER_SECOND };
}

/** How busy all the machine's cores were between two `machineCpu` readings, in percent. */
export function busyPercent(before: ReturnType<typeof machineCpu>, after: ReturnType<typeof machineCpu>): number {
  return Math.round(
    (100 * (after.busySeconds - before.busySeconds)) / Math.max(1e-9, after.totalSeconds - before.totalSeconds)
  );
}
