import { randomUUID } from 'node:crypto';
import { startAzurite, type Azurite } from '../../local/stack/azurite';
import { Outbox, shardOf } from '../../shared/storage/outbox';
import { TableStore } from '../../shared/storage/tables';

describe('outbox (Azurite)', () => {
  let azurite: Azurite;
  let outbox: Outbox;
  const event = (eventId: string, enqueuedAt: string) => ({
    eventId,
    subjectRef: '0x' + 'ab'.repeat(32),
    data: '0x01',
    enqueuedAt,
    sequence: '1',
    messageId: `m-${eventId}`,
    acceptedAt: new Date().toISOString(),
  });

  beforeAll(async () => {
    azurite = await startAzurite();
    outbox = new Outbox(new TableStore({ connectionString: azurite.accounts[0]!.connectionString }));
  });
  afterAll(async () => azurite?.stop());

  it('accepts an event once; a republished event id is a duplicate that changes nothing', async () => {
    const id = randomUUID();
    expect(await outbox.accept(event(id, '2026-01-01T00:00:00.000Z'))).toBe('accepted');
    expect(await outbox.accept({ ...event(id, '2026-01-01T00:00:09.000Z'), subjectRef: '0xother' })).toBe('duplicate');
    const row = await outbox.get(id);
    expect(row).toMatchObject({
      status: 'pending',
      subjectRef: '0x' + 'ab'.repeat(32),
      enqueuedAt: '2026-01-01T00:00:00.000Z',
    });
    expect((await outbox.readPending(1000)).filter((p) => p.eventId === id)).toHaveLength(1);
  });

  it('reads pending records oldest first across shards, then takes batched ones out of the index', async () => {
    const ids: string[] = Array.from({ length: 40 }, () => randomUUID());
    expect(new Set(ids.map(shardOf)).size).toBeGreaterThan(4);
    await Promise.all(
      ids.map((id, i) => outbox.accept(event(id, new Date(Date.UTC(2026, 1, 1, 0, 0, i)).toISOString())))
    );
    const pending = (await outbox.readPending(1000)).filter((p) => ids.includes(p.eventId));
    expect(pending.map((p) => p.eventId)).toEqual(ids);
    await outbox.markBatched(pending.slice(0, 30), '0xsigner', 7);
    await outbox.markBatched(pending.slice(0, 30), '0xsigner', 7); // a retry after a crash changes nothing
    const left = (await outbox.readPending(1000)).filter((p) => ids.includes(p.eventId));
    expect(left.map((p) => p.eventId)).toEqual(ids.slice(30));
    expect(await outbox.get(ids[0]!)).toMatchObject({ status: 'batched', signer: '0xsigner', nonce: 7 });
  });

  it('records on-chain outcomes and undoes them after a reorg', async () => {
    const id = randomUUID();
    await outbox.accept(event(id, '2026-03-01T00:00:00.000Z'));
    await outbox.markOnChain(id, { status: 'confirmed', txHash: '0xabc', blockNumber: 12, logIndex: 3 });
    expect(await outbox.get(id)).toMatchObject({ status: 'confirmed', txHash: '0xabc', blockNumber: 12, logIndex: 3 });
    await outbox.markOrphaned([id]);
    expect(await outbox.get(id)).toMatchObject({ status: 'batched', blockNumber: -1 });
    await expect(
      outbox.markOnChain(randomUUID(), {
        status: 'skipped',
        txHash: '0x1',
        blockNumber: 1,
        logIndex: 0,
        skipReason: 'Stale',
      })
    ).resolves.toBeUndefined();
  });

  it('reports backlog depth and the oldest pending enqueue time', async () => {
    const backlog = await outbox.backlog();
    expect(backlog.depth).toBe((await outbox.readPending(10_000)).length);
    expect(backlog.oldestEnqueuedAt).toBe('2026-01-01T00:00:00.000Z');
  });
});
