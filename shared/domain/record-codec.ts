import type { CreditData } from './credit-update';

/**
 * The packed on-chain word of one credit record (uint256). The contract reads only the low 64 bits (the
 * sequence); the rest is this codec's. One word per record keeps storage at one slot and log data at 32 bytes.
 *
 *   bits    0-63   sequence       uint64
 *          64-103  asOf           uint40 (unix seconds)
 *         104-119  score          uint16
 *         120-127  openAccounts   uint8
 *         128-135  days30         uint8
 *         136-143  days60         uint8
 *         144-151  days90         uint8
 *         152-159  flags          uint8  (bit 0: defaulted)
 *         160-199  totalBalance   uint40
 *         200-239  creditLimit    uint40
 *         240-247  (reserved, 0)
 *         248-255  layout version uint8 (1)
 */
export interface CreditRecordFields extends CreditData {
  sequence: bigint;
  /** Unix seconds. */
  asOf: number;
}

export const RECORD_LAYOUT_VERSION = 1;

const FIELDS = [
  ['sequence', 0, 64],
  ['asOf', 64, 40],
  ['score', 104, 16],
  ['openAccounts', 120, 8],
  ['days30', 128, 8],
  ['days60', 136, 8],
  ['days90', 144, 8],
  ['flags', 152, 8],
  ['totalBalance', 160, 40],
  ['creditLimit', 200, 40],
  ['version', 248, 8],
] as const;

type FieldName = (typeof FIELDS)[number][0];

/** The largest value each field holds; the event schema's ranges stay within these. */
export const FIELD_MAX: Record<FieldName, bigint> = Object.fromEntries(
  FIELDS.map(([name, , bits]) => [name, (1n << BigInt(bits)) - 1n])
) as Record<FieldName, bigint>;

export function encodeRecord(record: CreditRecordFields): bigint {
  const values: Record<FieldName, bigint> = {
    sequence: record.sequence,
    asOf: BigInt(record.asOf),
    score: BigInt(record.score),
    openAccounts: BigInt(record.openAccounts),
    days30: BigInt(record.delinquencies.days30),
    days60: BigInt(record.delinquencies.days60),
    days90: BigInt(record.delinquencies.days90),
    flags: record.defaulted ? 1n : 0n,
    totalBalance: BigInt(record.totalBalance),
    creditLimit: BigInt(record.creditLimit),
    version: BigInt(RECORD_LAYOUT_VERSION),
  };
  let word = 0n;
  for (const [name, offset] of FIELDS) {
    const value = values[name];
    if (value < 0n || value > FIELD_MAX[name])
      throw new RangeError(`${name} ${value} does not fit the record layout (0-${FIELD_MAX[name]})`);
    word |= value << BigInt(offset);
  }
  return word;
}

export function decodeRecord(word: bigint): CreditRecordFields {
  const get = (name: FieldName): bigint => {
    const [, offset, bits] = FIELDS.find(([n]) => n === name)!;
    return (word >> BigInt(offset)) & ((1n << BigInt(bits)) - 1n);
  };
  const version = Number(get('version'));
  if (version !== RECORD_LAYOUT_VERSION) throw new Error(`unknown credit record layout version ${version}`);
  return {
    sequence: get('sequence'),
    asOf: Number(get('asOf')),
    score: Number(get('score')),
    openAccounts: Number(get('openAccounts')),
    delinquencies: { days30: Number(get('days30')), days60: Number(get('days60')), days90: Number(get('days90')) },
    defaulted: (get('flags') & 1n) === 1n,
    totalBalance: Number(get('totalBalance')),
    creditLimit: Number(get('creditLimit')),
  };
}
