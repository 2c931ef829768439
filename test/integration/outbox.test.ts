import { randomUUID } from 'node:crypto';
import { startAzurite, type Azurite } from '../../local/stack/azurite';
import { contentHash, Outbox, shardOf } from '../../shared/storage/outbox';
import { listRows, TABLES, TableStore } from '../../shared/storage/tables';
import { groupBy } from '../../shared/util';

describe('outbox (Azurite)', () => {
  let azurite: Azurite;
  let store: TableStore;
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
    store = new TableStore({ connectionString: azurite.accounts[0]!.connectionString });
    outbox = new Outbox(store);
  });
  afterAll(async () => azurite?.stop());

  it('accepts a batch in one transaction per shard, and falls back to one by one where an event exists', async () => {
    const at = '2026-01-02T00:00:00.000Z';
    // 60 events of one shard (two transactions there: at most 50 events each) and 40 spread over the others.
    const sameShard: string[] = [];
    while (sameShard.length < 60) {
      const id = randomUUID();
      if (shardOf(id) === 's00') sameShard.push(id);
    }
    const ids = [...sameShard, ...Array.from({ length: 40 }, () => randomUUID())];
    const first = await outbox.acceptMany(ids.map((id) => event(id, at)));
    expect(first).toEqual(ids.map(() => ({ outcome: 'accepted' })));
    // A redelivered batch mixing accepted events (one with changed content) and new ones.
    const fresh = Array.from({ length: 5 }, () => randomUUID());
    const changed = { ...event(ids[1]!, at), subjectRef: '0x' + 'cd'.repeat(32) };
    const again = await outbox.acceptMany([event(ids[0]!, at), changed, ...fresh.map((id) => event(id, at))]);
    expect(again).toEqual([
      { outcome: 'duplicate' },
      { outcome: 'conflict', acceptedHash: contentHash(event(ids[1]!, at)), receivedHash: contentHash(changed) },
      ...fresh.map(() => ({ outcome: 'accepted' })),
    ]);
    for (const id of [...ids, ...fresh]) expect(await outbox.get(id)).toMatchObject({ eventId: id, status: 'pending' });
    expect((await outbox.get(ids[1]!))!.subjectRef).toBe('0x' + 'ab'.repeat(32));
  });

  it('accepts an event once; a republished event id changes nothing: a duplicate, or a conflict if its content differs', async () => {
    const id = randomUUID();
    expect(await outbox.accept(event(id, '2026-01-01T00:00:00.000Z'))).toEqual({ outcome: 'accepted' });
    // The same content, enqueued again later: a redelivery or republish.
    expect(await outbox.accept(event(id, '2026-01-01T00:00:09.000Z'))).toEqual({ outcome: 'duplicate' });
    const other = { ...event(id, '2026-01-01T00:00:09.000Z'), subjectRef: '0x' + 'cd'.repeat(32) };
    expect(await outbox.accept(other)).toEqual({
      outcome: 'conflict',
      acceptedHash: contentHash(event(id, '')),
      receivedHash: contentHash(other),
    });
    expect(contentHash(other)).not.toBe(contentHash(event(id, '')));
    const row = await outbox.get(id);
    expect(row).toMatchObject({
      status: 'pending',
      subjectRef: '0x' + 'ab'.repeat(32),
      enqueuedAt: '2026-01-01T00:00:00.000Z',
    });
    expect((await outbox.readPending(1000)).filter((p) => p.eventId === id)).toHaveLength(1);
  });

  it('reads pending records oldest first across shards, then takes claimed ones out of the index', async () => {
    const ids: string[] = Array.from({ length: 40 }, () => randomUUID());
    expect(new Set(ids.map(shardOf)).size).toBeGreaterThan(4);
    await Promise.all(
      ids.map((id, i) => outbox.accept(event(id, new Date(Date.UTC(2026, 1, 1, 0, 0, i)).toISOString())))
    );
    const pending = (await outbox.readPending(1000)).filter((p) => ids.includes(p.eventId));
    expect(pending.map((p) => p.eventId)).toEqual(ids);
    expect(await outbox.claim(pending.slice(0, 30), '0xsigner', 7)).toHaveLength(30);
    // Claiming the same rows again claims nothing more: they are gone from the index, and nothing else changes.
    expect(await outbox.claim(pending.slice(0, 30), '0xsigner', 7)).toEqual([]);
    const left = (await outbox.readPending(1000)).filter((p) => ids.includes(p.eventId));
    expect(left.map((p) => p.eventId)).toEqual(ids.slice(30));
    expect(await outbox.get(ids[0]!)).toMatchObject({ status: 'batched', signer: '0xsigner', nonce: 7 });
  });

  it('lets only one of two submitters claim each event, whatever the interleaving', async () => {
    const ids: string[] = Array.from({ length: 60 }, () => randomUUID());
    await Promise.all(
      ids.map((id, i) => outbox.accept(event(id, new Date(Date.UTC(2026, 2, 1, 0, 0, i)).toISOString())))
    );
    const [first, second] = await Promise.all([outbox.readPending(1000), outbox.readPending(1000)]);
    const mine = (list: typeof first) => list.filter((p) => ids.includes(p.eventId));
    // Both read the same rows; they claim overlapping halves at the same time.
    const [a, b] = await Promise.all([
      outbox.claim(mine(first).slice(0, 40), '0xa', 1),
      outbox.claim(mine(second).slice(20), '0xb', 2),
    ]);
    const claimedA = new Set(a.map((r) => r.eventId));
    expect(b.filter((r) => claimedA.has(r.eventId))).toEqual([]);
    expect(a.length + b.length).toBe(60);
    for (const r of a)
      expect(await outbox.get(r.eventId)).toMatchObject({ status: 'batched', signer: '0xa', nonce: 1 });
    for (const r of b)
      expect(await outbox.get(r.eventId)).toMatchObject({ status: 'batched', signer: '0xb', nonce: 2 });
    expect(mine(await outbox.readPending(1000))).toEqual([]);
  });

  it('finishes a claim cut short by a crash, keeping what another batch took meanwhile', async () => {
    const ids: string[] = Array.from({ length: 6 }, () => randomUUID());
    const times = ids.map((_, i) => new Date(Date.UTC(2026, 3, 1, 0, 0, i)).toISOString());
    await Promise.all(ids.map((id, i) => outbox.accept(event(id, times[i]!))));
    const pending = (await outbox.readPending(1000)).filter((p) => ids.includes(p.eventId));
    await outbox.claim(pending.slice(0, 2), '0xs', 3); // the crashed run got this far
    await outbox.claim(pending.slice(4), '0xother', 9); // another batch took these meanwhile
    const claimed = await outbox.reclaim(ids, times, '0xs', 3);
    expect(claimed.map((r) => r.eventId)).toEqual(ids.slice(0, 4));
    expect(await outbox.get(ids[3]!)).toMatchObject({ status: 'batched', signer: '0xs', nonce: 3 });
    expect(await outbox.get(ids[5]!)).toMatchObject({ status: 'batched', signer: '0xother', nonce: 9 });
  });

  it("finishes a claim an earlier version cut short: its marked pending row is the batch's, and readers skip it", async () => {
    // Before claims deleted pending rows in the claiming transaction, a claim marked them (claimedBy) and deleted
    // them after; a crash in between left the mark. Such rows are written here as that version wrote them.
    const ids: string[] = Array.from({ length: 3 }, () => randomUUID());
    const times = ids.map((_, i) => new Date(Date.UTC(2026, 4, 1, 0, 0, i)).toISOString());
    await Promise.all(ids.map((id, i) => outbox.accept(event(id, times[i]!))));
    const table = await store.table(TABLES.outbox);
    const pendingRows = await listRows(table, `RowKey ge 'p_' and RowKey lt 'p\`'`, []);
    const pendingRowOf = (id: string) => pendingRows.find((r) => r.rowKey.endsWith(id))!;
    const marked = (id: string, claimedBy: string) => table.updateEntity({ ...pendingRowOf(id), claimedBy }, 'Merge');
    await marked(ids[0]!, '0xs/3');
    const eventRow = { partitionKey: shardOf(ids[0]!), rowKey: `e_${ids[0]}` };
    await table.updateEntity({ ...eventRow, status: 'batched', signer: '0xs', nonce: 3 }, 'Merge');
    await marked(ids[1]!, '0xother/9');
    expect((await outbox.readPending(1000)).filter((p) => ids.includes(p.eventId)).map((p) => p.eventId)).toEqual([
      ids[2],
    ]);
    const claimed = await outbox.reclaim(ids, times, '0xs', 3);
    expect(claimed.map((r) => r.eventId)).toEqual([ids[0], ids[2]]);
    const left = await listRows(table, `RowKey ge 'p_' and RowKey lt 'p\`'`, []);
    expect(left.filter((r) => ids.some((id) => r.rowKey.endsWith(id))).map((r) => r.rowKey)).toEqual([
      pendingRowOf(ids[1]!).rowKey,
    ]);
    await table.deleteEntity(shardOf(ids[1]!), pendingRowOf(ids[1]!).rowKey); // as batch 0xother/9's recovery would
  });

  it('records on-chain outcomes and undoes them after a reorg', async () => {
    const id = randomUUID();
    await outbox.accept(event(id, '2026-03-01T00:00:00.000Z'));
    const confirmed = { status: 'confirmed', txHash: '0xabc', blockNumber: 12, logIndex: 3 } as const;
    await outbox.markOnChainMany([{ eventId: id, outcome: confirmed }]);
    expect(await outbox.get(id)).toMatchObject(confirmed);
    // The same record applied and then sent again (its batch given up too early): the later skip does not downgrade.
    const skipped = {
      status: 'skipped',
      txHash: '0xdef',
      blockNumber: 14,
      logIndex: 0,
      skipReason: 'duplicate',
    } as const;
    await outbox.markOnChainMany([{ eventId: id, outcome: skipped }]);
    expect(await outbox.get(id)).toMatchObject(confirmed);
    await outbox.markOrphaned([id]);
    expect(await outbox.get(id)).toMatchObject({ status: 'batched', blockNumber: -1 });
    await expect(
      outbox.markOnChainMany([
        {
          eventId: randomUUID(),
          outcome: { status: 'skipped', txHash: '0x1', blockNumber: 1, logIndex: 0, skipReason: 'Stale' },
        },
      ])
    ).resolves.toBeUndefined();
  });

  it('reports backlog depth and the oldest pending enqueue time, counting a bounded number of rows', async () => {
    const pending = await outbox.readPending(10_000);
    const backlog = await outbox.backlog();
    expect(backlog).toEqual({ depth: pending.length, capped: false, oldestEnqueuedAt: '2026-01-01T00:00:00.000Z' });
    // Counting at most 2 rows a shard: shards holding more count as 2, and the depth says it is a lower bound.
    const perShard = [...groupBy(pending, (p) => shardOf(p.eventId)).values()].map((rows) => rows.length);
    expect(Math.max(...perShard)).toBeGreaterThan(2);
    const bounded = await outbox.backlog(2);
    const expected = perShard.reduce((sum, n) => sum + Math.min(n, 2), 0);
    expect(bounded).toEqual({ depth: expected, capped: true, oldestEnqueuedAt: '2026-01-01T00:00:00.000Z' });
  });
});
