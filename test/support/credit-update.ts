import { randomUUID } from 'node:crypto';

/** The credit data of the tests' events: valid, with a distinctive packed record. */
export const TEST_CREDIT = {
  score: 655,
  openAccounts: 4,
  delinquencies: { days30: 2, days60: 1, days90: 0 },
  defaulted: false,
  totalBalance: 98_765,
  creditLimit: 150_000,
};

/** A valid credit-update v1 event of BANK-A about `subject`, with a new event id; `overrides` replace fields. */
export function creditUpdateEvent<Subject extends object>(
  subject: Subject,
  overrides: Record<string, unknown> = {}
): Record<string, unknown> & { eventId: string; subject: Subject } {
  return {
    specVersion: 'credit-update/v1',
    eventId: randomUUID(),
    bankId: 'BANK-A',
    subject,
    sequence: 7,
    asOf: '2026-01-15T08:30:00Z',
    credit: TEST_CREDIT,
    ...overrides,
  };
}
