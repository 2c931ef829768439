import { keccak256, randomBytes, hexlify } from 'ethers';
import {
  entityBytes,
  fromEntity,
  MAX_ENTITY_BYTES,
  MAX_RECORDS_PER_BATCH,
  toEntity,
  WITHOUT_RAW_TX,
  type BatchRow,
} from '../../shared/storage/batches';
import { MAX_FEE_BUMPS_SETTING_MAX } from '../../shared/config';

/** A row as large as the submitter can make it: the most records, the most fee bumps, long error texts. */
function largestRow(records: number): BatchRow {
  // submitBatch calldata: 96 bytes per record plus the call and transaction around it.
  const rawTx = hexlify(randomBytes(96 * records + 400));
  return {
    signer: '0x' + 'ab'.repeat(20),
    nonce: 123_456,
    status: 'signed',
    eventIds: Array.from({ length: records }, () => crypto.randomUUID()),
    enqueuedAts: Array.from({ length: records }, () => new Date().toISOString()),
    rawTx,
    txHashes: Array.from({ length: 1 + MAX_FEE_BUMPS_SETTING_MAX }, () => keccak256(randomBytes(32))),
    claimed: true,
    createdAt: new Date().toISOString(),
    createdBlock: 1_000_000,
    broadcastAt: new Date().toISOString(),
    broadcastBlock: 1_000_100,
    broadcasts: 1_000,
    feeBumps: MAX_FEE_BUMPS_SETTING_MAX,
    lastError: 'x'.repeat(2_000),
    feeLimit: 'y'.repeat(300),
  };
}

describe('batch rows', () => {
  it('stay under the 1 MiB entity limit at the largest size the submitter makes', () => {
    const entity = toEntity(largestRow(MAX_RECORDS_PER_BATCH));
    const bytes = entityBytes(entity);
    expect(bytes).toBeLessThan(MAX_ENTITY_BYTES);
    // Every string property within the 32K-character limit of a table property.
    for (const value of Object.values(entity))
      if (typeof value === 'string') expect(value.length).toBeLessThanOrEqual(32_768);
    console.log(`largest batch row: ${MAX_RECORDS_PER_BATCH} records, ${(bytes / 1024).toFixed(0)} KiB`);
  });

  it('refuse to build an entity the table would refuse, naming the row', () => {
    expect(() => toEntity(largestRow(2 * MAX_RECORDS_PER_BATCH))).toThrow(
      /batch row 0xabab.*\/123456 would take \d+ bytes/
    );
  });

  it('read back what was written', () => {
    const row = largestRow(3);
    const back = fromEntity({ ...toEntity(row), etag: 'W/"1"' });
    expect(back).toEqual({
      ...row,
      etag: 'W/"1"',
      minedBlock: undefined,
      minedTxHash: undefined,
      confirmedAt: undefined,
    });
  });

  it('are read with every field but the raw transaction, at the largest size too', () => {
    const row = largestRow(MAX_RECORDS_PER_BATCH);
    const entity = toEntity(row);
    const selected = Object.fromEntries(WITHOUT_RAW_TX.filter((c) => c in entity).map((c) => [c, entity[c]]));
    const { rawTx: _rawTx, ...rest } = row;
    expect(fromEntity(selected)).toEqual({ ...rest, rawTx: undefined, minedBlock: undefined, minedTxHash: undefined });
    // What a read leaves out is the raw transaction's columns, and only those.
    expect(
      Object.keys(entity)
        .filter((c) => !WITHOUT_RAW_TX.includes(c))
        .sort()
    ).toEqual(['partitionKey', 'rowKey', 'rawTxChunks', ...Array.from({ length: 10 }, (_, i) => `rawTx${i}`)].sort());
  });

  it('write a row read without its raw transaction as every other column, with the fields it lost cleared', () => {
    const { rawTx: _rawTx, minedTxHash: _hash, ...lost } = { ...largestRow(3), minedTxHash: '0x' + '12'.repeat(32) };
    const entity = toEntity(lost);
    expect(Object.keys(entity).filter((c) => c.startsWith('rawTx'))).toEqual([]);
    // A Merge keeps what it does not name: a cleared field is written, and read back as absent.
    expect(entity).toMatchObject({ minedTxHash: '', minedBlock: -1, minedBlockHash: '', confirmedAt: '' });
    expect(fromEntity({ ...entity, etag: 'W/"2"' })).toEqual({ ...lost, rawTx: undefined, etag: 'W/"2"' });
  });
});
