import { hexlify, keccak256, randomBytes } from 'ethers';
import { startAzurite, type Azurite } from '../../local/stack/azurite';
import { backInFlight, BatchConflictError, Batches, type BatchRow } from '../../shared/storage/batches';
import { TableClient } from '@azure/data-tables';
import { TableStore } from '../../shared/storage/tables';

describe('batch rows (Azurite)', () => {
  let azurite: Azurite;
  let batches: Batches;
  const signer = '0x' + 'cd'.repeat(20);
  const row = (nonce: number): BatchRow => {
    const rawTx = hexlify(randomBytes(96 * 550 + 400)); // the size of a 550-record batch's transaction
    return {
      signer,
      nonce,
      status: 'signed',
      eventIds: Array.from({ length: 550 }, () => crypto.randomUUID()),
      enqueuedAts: Array.from({ length: 550 }, () => new Date().toISOString()),
      rawTx,
      txHashes: [keccak256(rawTx)],
      claimed: true,
      createdAt: new Date().toISOString(),
      createdBlock: 10,
      broadcasts: 1,
      feeBumps: 0,
    };
  };

  beforeAll(async () => {
    azurite = await startAzurite();
    batches = new Batches(new TableStore({ connectionString: azurite.accounts[0]!.connectionString }));
  });
  afterAll(async () => azurite?.stop());

  it('are read without their raw transaction, which an update keeps and rawTxOf reads', async () => {
    const written = row(1);
    const rawTx = written.rawTx!;
    expect(await batches.create(written)).toBe(true);
    expect(written.rawTx).toBeUndefined(); // stored: the row's later writes keep it
    const { rows } = await batches.recent(signer, 0, 10);
    const { etag, ...rest } = written;
    expect(rows).toEqual([{ ...rest, etag }]);

    // Changes to the row as read are written without the raw transaction, and the stored one stays.
    const read = rows[0]!;
    Object.assign(read, { status: 'mined', minedTxHash: read.txHashes[0], minedBlock: 12, minedBlockHash: '0x12' });
    await batches.update(read);
    const mined = (await batches.get(signer, 1))!;
    expect(mined).toMatchObject({ status: 'mined', minedBlock: 12, minedBlockHash: '0x12', rawTx: undefined });
    // A reorg takes the block away: what the row no longer has is cleared, not kept.
    backInFlight(mined);
    await batches.update(mined);
    const again = (await batches.get(signer, 1))!;
    expect(again).toEqual({ ...rest, etag: again.etag, rawTx: undefined });
    expect(await batches.rawTxOf(again)).toBe(rawTx);
    expect(again.rawTx).toBeUndefined();
  });

  it('write a raw transaction once: an update keeps it, a new one (a fee bump) replaces it', async () => {
    const updates = jest.spyOn(TableClient.prototype, 'updateEntity');
    /** The mode of the latest update, and whether it named the raw transaction's columns. */
    const latestUpdate = (): [unknown, boolean] => {
      const [entity, mode] = updates.mock.calls.at(-1)!;
      return [mode, Object.keys(entity).some((key) => key.startsWith('rawTx'))];
    };
    try {
      const written = row(3);
      const first = written.rawTx!;
      expect(await batches.create(written)).toBe(true);
      written.broadcasts++; // what the submitter writes after sending it
      await batches.update(written);
      expect(latestUpdate()).toEqual(['Merge', false]);
      expect(await batches.rawTxOf(written)).toBe(first);

      const bumped = hexlify(randomBytes(first.length / 2 - 1));
      Object.assign(written, { rawTx: bumped, feeBumps: 1 });
      await batches.update(written);
      expect(latestUpdate()).toEqual(['Replace', true]);
      expect(written.rawTx).toBeUndefined();
      expect(await batches.rawTxOf((await batches.get(signer, 3))!)).toBe(bumped);
    } finally {
      updates.mockRestore();
    }
  });

  it('refuse the raw transaction of a row another writer changed since it was read', async () => {
    expect(await batches.create(row(2))).toBe(true);
    const [stale, fresh] = [(await batches.get(signer, 2))!, (await batches.get(signer, 2))!];
    fresh.broadcasts++;
    await batches.update(fresh);
    await expect(batches.rawTxOf(stale)).rejects.toBeInstanceOf(BatchConflictError);
    await expect(batches.update(stale)).rejects.toBeInstanceOf(BatchConflictError);
  });
});
