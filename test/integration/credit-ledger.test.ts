import { randomBytes } from 'node:crypto';
import { diffCounts, startTableCounter, type TableCounter } from '../../bench/table-counter';
import { startAzurite, type Azurite } from '../../local/stack/azurite';
import { bucketOf, CreditLedger, recordKey, type LedgerUpdate } from '../../shared/storage/credit-ledger';
import { deleteRows, listRows, TABLES, TableStore } from '../../shared/storage/tables';

/** The ledger's writes against Azurite, counted by the bench's proxy: what a bucket costs, replays, races, rollbacks. */
describe('credit ledger (Azurite)', () => {
  let azurite: Azurite;
  let counter: TableCounter;
  let tables: TableStore;
  let connectionString: string;

  beforeAll(async () => {
    azurite = await startAzurite();
    counter = await startTableCounter(azurite.accounts[0]!.connectionString);
    connectionString = counter.connectionString;
  });
  afterAll(async () => {
    await counter?.stop();
    await azurite?.stop();
  });
  beforeEach(async () => {
    // A table per test: the client's table name is fixed, so each test clears it instead.
    tables = new TableStore({ connectionString });
    await new CreditLedger(tables).clearFrom(0);
  });

  /** Subjects in bucket `bucket`; updates in chain order, `perBlock` logs a block, banks taking turns. */
  const subjects = (bucket: string, n: number): string[] =>
    Array.from({ length: n }, () => `0x${bucket}${randomBytes(31).toString('hex')}`);
  function updates(refs: string[], count: number, firstBlock = 10, perBlock = 7): LedgerUpdate[] {
    return Array.from({ length: count }, (_, i) => {
      const subjectRef = refs[i % refs.length]!;
      const bankId = ['BANK-A', 'BANK-B'][Math.floor(i / refs.length) % 2]!;
      const at = { blockNumber: firstBlock + Math.floor(i / perBlock), logIndex: i % perBlock };
      return {
        subjectRef,
        bankId,
        ...at,
        fields: { subjectRef, bankId, ...at, sequence: String(i + 1), eventId: `e${i}` },
      };
    });
  }
  /** The newest update per subject × bank: what the current rows must hold. */
  const newest = (list: LedgerUpdate[]): Map<string, string> =>
    new Map(list.map((u) => [recordKey(u.subjectRef, u.bankId), String(u.fields.eventId)]));
  async function rows(kind: string): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    const table = await tables.table(TABLES.creditLedger);
    for await (const row of table.listEntities<{ eventId: string }>({ queryOptions: { filter: `kind eq '${kind}'` } }))
      found.set(row.rowKey!, row.eventId);
    return found;
  }

  it('writes a bucket as few transactions, history and current rows together, and a replay writes nothing', async () => {
    const list = updates(subjects('ab', 5), 120);
    const before = await counter.snapshot();
    await new CreditLedger(tables).apply(list);
    const used = diffCounts(await counter.snapshot(), before);
    // One read of the missing watermark, then 120 updates in transactions of 49: 3 writes for 240 rows.
    expect(used.writesByTable[TABLES.creditLedger]).toBe(3);
    expect(used.requestsByTable[TABLES.creditLedger]).toBe(4);
    expect(await rows('record')).toEqual(newest(list));
    expect((await rows('history')).size).toBe(120);

    const replay = await counter.snapshot();
    await new CreditLedger(tables).apply(list);
    expect(diffCounts(await counter.snapshot(), replay).writesByTable[TABLES.creditLedger] ?? 0).toBe(0);
  });

  it('never lets a writer with a stale view overwrite a newer record: it re-reads the watermark and skips', async () => {
    const list = updates(subjects('cd', 3), 60);
    const slow = new CreditLedger(tables);
    await slow.apply(list.slice(0, 20)); // caches the watermark at update 20
    await new CreditLedger(tables).apply(list); // another writer takes the bucket to update 60
    await slow.apply(list.slice(0, 30)); // its cached watermark is stale: the transaction fails, it re-reads
    expect(await rows('record')).toEqual(newest(list));
    expect((await rows('history')).size).toBe(60);
    // A writer whose remembered watermark is ahead of the rows (another process cleared them) writes them again.
    await new CreditLedger(tables).clearFrom(0);
    await slow.apply(list);
    expect(await rows('record')).toEqual(newest(list));
    // Two writers racing over the same updates end in the same rows.
    const other = updates(subjects('ce', 4), 90, 100);
    await Promise.all([new CreditLedger(tables).apply(other), new CreditLedger(tables).apply(other)]);
    expect(await rows('record')).toEqual(newest([...list, ...other]));
    expect((await rows('history')).size).toBe(150);
  });

  it('rolls back above a block (history deleted, current rows to the newest left) and re-applies to the same rows', async () => {
    const refs = [...subjects('01', 3), ...subjects('02', 3)];
    const list = updates(refs, 84); // blocks 10–21
    const ledger = new CreditLedger(tables);
    await ledger.apply(list);
    const kept = list.filter((u) => u.blockNumber <= 15);
    await ledger.rollBack(
      list.filter((u) => u.blockNumber > 15).map((u) => [u.subjectRef, u.bankId]),
      15
    );
    expect(await rows('record')).toEqual(newest(kept));
    expect((await rows('history')).size).toBe(kept.length);
    await ledger.apply(list); // the replay after a reorg: the lowered watermark lets the rest in again
    expect(await rows('record')).toEqual(newest(list));
    expect((await rows('history')).size).toBe(84);

    // A subject × bank whose every update is rolled back loses its current row.
    const late = updates(subjects('03', 1), 1, 40);
    await ledger.apply(late);
    await ledger.clearFrom(40);
    expect(await ledger.subject(late[0]!.subjectRef, { history: true })).toEqual([]);
    expect(await rows('record')).toEqual(newest(list));
    await ledger.clearFrom(0);
    expect((await rows('record')).size + (await rows('history')).size + (await rows('watermark')).size).toBe(0);
  });

  it('reads a subject as one range query: its current rows by bank, and its history newest first', async () => {
    const [subject, neighbour] = subjects('7f', 2);
    const list = updates([subject!, neighbour!], 8);
    await new CreditLedger(tables).apply(list);
    const before = await counter.snapshot();
    const all = await new CreditLedger(tables).subject(subject!, { history: true });
    expect(diffCounts(await counter.snapshot(), before).requestsByTable[TABLES.creditLedger]).toBe(1);
    expect(all.filter((r) => r.kind === 'record').map((r) => r.bankId)).toEqual(['BANK-A', 'BANK-B']);
    const history = all.filter((r) => r.kind === 'history').map((r) => r.eventId);
    expect(history).toEqual(['e6', 'e4', 'e2', 'e0']);
    expect(all.every((r) => r.partitionKey === bucketOf(subject!) && r.subjectRef === subject)).toBe(true);
    expect((await new CreditLedger(tables).subject(subject!)).map((r) => r.kind)).toEqual(['record', 'record']);
  });

  it('drops only the rows of an older layout, and rows another process deleted meanwhile do not stop it', async () => {
    const list = updates(subjects('c4', 3), 12);
    await new CreditLedger(tables).apply(list);
    const table = await tables.table(TABLES.creditLedger);
    // Layout 2's rows: partitions of two hex digits.
    const old = Array.from({ length: 150 }, (_, i) => ({ partitionKey: 'c4', rowKey: `old-${i}`, kind: 'history' }));
    for (const row of old) await table.createEntity(row);
    // A row already gone makes a transaction fail (404): the rest of its group is deleted row by row.
    await table.deleteEntity('c4', 'old-7');
    await deleteRows(table, old.slice(0, 100));
    expect((await listRows(table, "PartitionKey eq 'c4'")).length).toBe(50);

    expect(await new CreditLedger(tables).dropOlderLayout()).toBe(50);
    expect((await listRows(table)).filter((r) => r.partitionKey.length !== 1)).toEqual([]);
    expect(await rows('record')).toEqual(newest(list));
    expect((await rows('history')).size).toBe(12);
  });
});
