/** Small helpers of the benchmark's phases and report. */

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const round = (v: number, digits = 2): number => Math.round(v * 10 ** digits) / 10 ** digits;

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** Index of the first element > v in an ascending array (how many are <= v). */
export function upperBound(sorted: number[], v: number): number {
  let [lo, hi] = [0, sorted.length];
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class Progress {
  private last = 0;
  private readonly tty = process.stderr.isTTY === true;
  update(label: string, done: number, total: number, extra: string): void {
    const now = Date.now();
    if (!this.tty && now - this.last < 10_000 && done < total) return;
    this.last = now;
    const width = 30;
    const filled = Math.round((Math.min(done, total) / Math.max(1, total)) * width);
    const pct = Math.floor((Math.min(done, total) / Math.max(1, total)) * 100);
    const line = `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(pct).padStart(3)}% ${done}/${total} ${extra}`;
    process.stderr.write(this.tty ? `\r${line.padEnd(110)}` : `${line}\n`);
  }
  done(): void {
    if (this.tty) process.stderr.write('\n');
  }
}

export const log = (line: string): void => void process.stderr.write(`bench: ${line}\n`);
