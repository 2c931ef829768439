/**
 * Six-field NCRONTAB schedules, as Azure Functions timer triggers use them:
 * `{second} {minute} {hour} {day} {month} {day-of-week}`, each `*`, a value, a range `a-b`, a list `a,b`,
 * or a step `* /n` / `a-b/n`. Times are UTC (WEBSITE_TIME_ZONE is not emulated).
 */
export interface Schedule {
  readonly expression: string;
  /** The first occurrence strictly after `after`. */
  next(after: Date): Date;
}

const FIELDS = [
  { name: 'second', min: 0, max: 59 },
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12 },
  { name: 'day-of-week', min: 0, max: 6 },
] as const;

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

function parseValue(raw: string, field: (typeof FIELDS)[number]): number {
  const upper = raw.toUpperCase();
  if (field.name === 'month' && MONTHS.includes(upper)) return MONTHS.indexOf(upper) + 1;
  if (field.name === 'day-of-week' && DAYS.includes(upper)) return DAYS.indexOf(upper);
  if (!/^\d+$/.test(raw)) throw new Error(`"${raw}" is not a number`);
  const value = Number(raw);
  if (value < field.min || value > field.max) throw new Error(`${value} is outside ${field.min}-${field.max}`);
  return value;
}

function parseField(text: string, field: (typeof FIELDS)[number]): Set<number> {
  const values = new Set<number>();
  for (const part of text.split(',')) {
    const [rangeText, stepText] = part.split('/');
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1) throw new Error(`step "${stepText}" must be a positive whole number`);
    let from: number = field.min;
    let to: number = field.max;
    if (rangeText !== '*') {
      const [a, b] = (rangeText ?? '').split('-');
      from = parseValue(a ?? '', field);
      to = b === undefined ? (stepText === undefined ? from : field.max) : parseValue(b, field);
      if (to < from) throw new Error(`range ${rangeText} runs backwards`);
    }
    for (let v = from; v <= to; v += step) values.add(v);
  }
  return values;
}

export function parseSchedule(expression: string): Schedule {
  const parts = expression.trim().split(/\s+/);
  if (parts.length !== 6) {
    throw new Error(
      `Invalid NCRONTAB schedule "${expression}": expected 6 fields (second minute hour day month day-of-week), got ${parts.length}`
    );
  }
  const sets = parts.map((part, i) => {
    const field = FIELDS[i]!;
    try {
      return parseField(part, field);
    } catch (err) {
      throw new Error(`Invalid NCRONTAB schedule "${expression}": ${field.name} field: ${(err as Error).message}`);
    }
  });
  const [seconds, minutes, hours, days, months, weekdays] = sets as [
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
  ];
  // NCrontab (Azure Functions) requires both day fields to match, unlike Vixie cron, which ORs two restricted ones:
  // '0 0 12 13 * FRI' is noon on every Friday the 13th.
  const dayMatches = (d: Date): boolean => days.has(d.getUTCDate()) && weekdays.has(d.getUTCDay());

  return {
    expression,
    next(after: Date): Date {
      const t = new Date(Math.floor(after.getTime() / 1000) * 1000 + 1000);
      const limit = after.getTime() + 5 * 366 * 24 * 3600_000;
      while (t.getTime() <= limit) {
        if (!months.has(t.getUTCMonth() + 1)) {
          t.setUTCMonth(t.getUTCMonth() + 1, 1);
          t.setUTCHours(0, 0, 0);
        } else if (!dayMatches(t)) {
          t.setUTCDate(t.getUTCDate() + 1);
          t.setUTCHours(0, 0, 0);
        } else if (!hours.has(t.getUTCHours())) {
          t.setUTCHours(t.getUTCHours() + 1, 0, 0);
        } else if (!minutes.has(t.getUTCMinutes())) {
          t.setUTCMinutes(t.getUTCMinutes() + 1, 0);
        } else if (!seconds.has(t.getUTCSeconds())) {
          t.setUTCSeconds(t.getUTCSeconds() + 1);
        } else {
          return t;
        }
      }
      throw new Error(`NCRONTAB schedule "${expression}" has no occurrence in the next five years`);
    },
  };
}
