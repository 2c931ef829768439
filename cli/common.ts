/** A mistake in the command line: exits 2 and repeats the usage. */
export class UsageError extends Error {}

export type Values = Record<string, string | boolean | undefined>;

export function wholeNumber(
  name: string,
  raw: string | boolean | undefined,
  fallback: number,
  min: number,
  max: number
): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (typeof raw !== 'string' || !/^\d+$/.test(raw) || value < min || value > max) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got "${String(raw)}"`);
  }
  return value;
}

export const stringOption = (values: Values, name: string): string | undefined =>
  typeof values[name] === 'string' ? values[name] : undefined;

export const print = (line: string): void => void process.stdout.write(`${line}\n`);
