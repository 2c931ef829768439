import { decodeRecord, encodeRecord, FIELD_MAX, type CreditRecordFields } from '../../shared/domain/record-codec';
import { sequenceOf } from '../../shared/chain/registry';

const record: CreditRecordFields = {
  sequence: 42n,
  asOf: 1_767_225_600,
  score: 712,
  openAccounts: 5,
  delinquencies: { days30: 1, days60: 0, days90: 2 },
  defaulted: false,
  totalBalance: 125_000,
  creditLimit: 300_000,
};

describe('credit record codec', () => {
  it('round-trips every field, and the contract sees the sequence in the low 64 bits', () => {
    const word = encodeRecord(record);
    expect(decodeRecord(word)).toEqual(record);
    expect(sequenceOf(word)).toBe(42n);
    expect(word >> 248n).toBe(1n);
  });

  it('round-trips the extremes of each field', () => {
    const max: CreditRecordFields = {
      sequence: FIELD_MAX.sequence,
      asOf: Number(FIELD_MAX.asOf),
      score: Number(FIELD_MAX.score),
      openAccounts: Number(FIELD_MAX.openAccounts),
      delinquencies: { days30: 255, days60: 255, days90: 255 },
      defaulted: true,
      totalBalance: Number(FIELD_MAX.totalBalance),
      creditLimit: Number(FIELD_MAX.creditLimit),
    };
    expect(decodeRecord(encodeRecord(max))).toEqual(max);
  });

  it('refuses a value that does not fit, naming the field', () => {
    expect(() => encodeRecord({ ...record, openAccounts: 256 })).toThrow(
      'openAccounts 256 does not fit the record layout (0-255)'
    );
    expect(() => encodeRecord({ ...record, sequence: -1n })).toThrow('sequence -1 does not fit');
  });

  it('refuses a word of an unknown layout version', () => {
    expect(() => decodeRecord(encodeRecord(record) & ((1n << 248n) - 1n))).toThrow(
      'unknown credit record layout version 0'
    );
  });
});
