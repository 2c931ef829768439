import { randomInt, randomUUID } from 'node:crypto';
import { CREDIT_UPDATE_SPEC, type CreditUpdate } from '../shared/domain/credit-update';

/**
 * Realistic, valid credit-update v1 events for testing an integration: synthetic Swedish-style personal numbers
 * (never real people's), plausible bureau data, and per-subject sequences that grow. `subjects` below `count`
 * makes some events updates of earlier subjects.
 */
export interface SampleOptions {
  bankId: string;
  count: number;
  /** Distinct subjects to spread the events over (default: one per event). */
  subjects?: number;
  /** Sequence numbers start after this (so a second file of updates supersedes the first). */
  sequenceBase?: number;
  now?: Date;
}

function syntheticPersonalNumber(index: number): string {
  // Year 1940-2005, a valid month/day, and a serial from the index: unique per index, obviously synthetic.
  const year = 1940 + (index % 66);
  const month = String(1 + (index % 12)).padStart(2, '0');
  const day = String(1 + (index % 28)).padStart(2, '0');
  return `${year}${month}${day}-${String(index % 10_000).padStart(4, '0')}`;
}

export function sampleCreditUpdates(options: SampleOptions): CreditUpdate[] {
  const subjects = Math.max(1, options.subjects ?? options.count);
  const sequences = new Map<number, number>();
  const asOf = (options.now ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z');
  return Array.from({ length: options.count }, (_, i) => {
    const subject = i % subjects;
    const sequence = (sequences.get(subject) ?? options.sequenceBase ?? 0) + 1;
    sequences.set(subject, sequence);
    const openAccounts = randomInt(0, 12);
    const days90 = randomInt(0, 100) < 4 ? randomInt(1, 3) : 0;
    const creditLimit = randomInt(1, 80) * 1000;
    return {
      specVersion: CREDIT_UPDATE_SPEC,
      eventId: randomUUID(),
      bankId: options.bankId,
      subject: {
        country: 'SE',
        idType: 'national-id',
        value: syntheticPersonalNumber(subject + 100_000 * (options.bankId.charCodeAt(options.bankId.length - 1) % 7)),
      },
      sequence,
      asOf,
      credit: {
        score: Math.min(
          850,
          Math.max(300, Math.round(680 + 70 * (randomInt(0, 1000) / 1000 - 0.5) * 3 - days90 * 120))
        ),
        openAccounts,
        delinquencies: { days30: randomInt(0, 100) < 10 ? 1 : 0, days60: randomInt(0, 100) < 5 ? 1 : 0, days90 },
        defaulted: days90 > 1,
        totalBalance: Math.round(creditLimit * (randomInt(0, 90) / 100)),
        creditLimit,
      },
    };
  });
}
