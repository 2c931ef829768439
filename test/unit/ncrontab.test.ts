import { parseSchedule } from '../../local/host/ncrontab';

const at = (iso: string): Date => new Date(iso);

describe('NCRONTAB schedules', () => {
  it.each([
    ['*/2 * * * * *', '2026-01-01T00:00:00.500Z', '2026-01-01T00:00:02.000Z'],
    ['*/30 * * * * *', '2026-01-01T00:00:30.000Z', '2026-01-01T00:01:00.000Z'],
    ['0 */5 * * * *', '2026-01-01T10:03:00.000Z', '2026-01-01T10:05:00.000Z'],
    ['0 30 9 * * 1-5', '2026-01-03T12:00:00.000Z', '2026-01-05T09:30:00.000Z'], // Saturday → Monday
    ['0 0 0 1 JAN *', '2026-06-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z'],
    ['5,10 * * * * *', '2026-01-01T00:00:05.000Z', '2026-01-01T00:00:10.000Z'],
    ['0 0 12 29 2 *', '2026-03-01T00:00:00.000Z', '2028-02-29T12:00:00.000Z'],
    // Both day fields must match, as in Azure's NCrontab (cron would take Friday 2 January).
    ['0 0 12 13 * FRI', '2026-01-01T00:00:00.000Z', '2026-02-13T12:00:00.000Z'],
  ])('%s after %s is %s', (expression, after, next) => {
    expect(parseSchedule(expression).next(at(after)).toISOString()).toBe(next);
  });

  it.each([
    ['* * * * *', 'expected 6 fields'],
    ['60 * * * * *', 'second field: 60 is outside 0-59'],
    ['* * * * * MON-', 'day-of-week field'],
    ['*/0 * * * * *', 'step "0" must be a positive whole number'],
    ['0 0 0 31 2 *', 'no occurrence in the next five years'],
  ])('rejects %s clearly', (expression, message) => {
    expect(() => parseSchedule(expression).next(at('2026-01-01T00:00:00Z'))).toThrow(message);
  });
});
