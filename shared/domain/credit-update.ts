/**
 * credit-update v1: the event a bank's systems publish (JSON, one per Service Bus message). The JSON Schema
 * `credit-update.v1.schema.json` beside this file is the published contract; this type mirrors it.
 */
export const CREDIT_UPDATE_SPEC = 'credit-update/v1';

/** The Service Bus queue bank systems publish to (dead letters go to its dead-letter sub-queue). */
export const CREDIT_UPDATES_QUEUE = 'credit-updates';
/** How long the queue remembers a message id (infra/modules/servicebus.bicep, duplicateDetectionHistoryTimeWindow). */
export const CREDIT_UPDATES_DUPLICATE_WINDOW_MS = 10 * 60 * 1000;

/** A raw identifier: pseudonymized by ledger-bridge (keyed HMAC); never stored, logged or put on chain. */
export interface RawSubject {
  /** ISO 3166-1 alpha-2 country that issued the identifier. */
  country: string;
  idType: 'national-id' | 'tax-id' | 'passport' | 'company-registration';
  value: string;
}

/** An already pseudonymous reference: the bytes32 hex ledger-bridge derives from a raw subject. */
export interface PseudonymousSubject {
  ref: string;
}

export interface CreditData {
  /** Bureau-style score, 300-850. */
  score: number;
  openAccounts: number;
  /** Number of accounts currently 30, 60 and 90+ days past due. */
  delinquencies: { days30: number; days60: number; days90: number };
  defaulted: boolean;
  /** Whole units of the consortium's reporting currency. */
  totalBalance: number;
  creditLimit: number;
}

export interface CreditUpdate {
  specVersion: typeof CREDIT_UPDATE_SPEC;
  /** Idempotency key (UUID): the same event published twice is recorded once. */
  eventId: string;
  /** The reporting bank; must be the bank running this ledger-bridge. */
  bankId: string;
  subject: RawSubject | PseudonymousSubject;
  /** Per (subject, bank), strictly increasing; an older sequence never overwrites a newer one. */
  sequence: number;
  /** When the data was true at the bank (ISO 8601 date-time). */
  asOf: string;
  credit: CreditData;
}

export const isPseudonymous = (subject: CreditUpdate['subject']): subject is PseudonymousSubject => 'ref' in subject;
