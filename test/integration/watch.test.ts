import { Batches } from '../../shared/storage/batches';
import { Outbox } from '../../shared/storage/outbox';
import { listRows, TABLES } from '../../shared/storage/tables';
import { bucketOf, CreditLedger, recordKey } from '../../shared/storage/credit-ledger';
import { rebuildProjections } from '../../shared/watch/rebuild';
import { PROJECTION_LAYOUT, readWatcherStatus, WatcherStateStore } from '../../shared/watch/state';
import { WATCH_EVENTS, WATCH_METRICS } from '../../shared/watch/telemetry-names';
import { WatcherHaltedError, type WatchRunResult } from '../../shared/watch/watcher';
import {
  creditRecord,
  dumpProjections,
  freshProjection,
  mine,
  rawSubmit,
  recordingTelemetry,
  startReadPathChain,
  startRpcProxy,
  storeFor,
  submit,
  subject,
  watcherFor,
  watchSettings,
  type ReadPathChain,
} from './support/read-path-fixtures';

/** The watcher against a real chain (anvil) and real Table Storage (Azurite), one storage account per bank. */
describe('watch', () => {
  let chain: ReadPathChain;
  let freshAccounts = 0;
  const fresh = (): string => `fresh${++freshAccounts}`;

  beforeAll(async () => {
    chain = await startReadPathChain(['banka', 'bankb', ...Array.from({ length: 15 }, (_, i) => `fresh${i + 1}`)]);
  });
  afterAll(async () => chain?.stop());

  it("projects every bank's records into every bank's tables with provenance, and settles its own outbox", async () => {
    const shared = subject();
    const onlyA = subject();
    const a1 = creditRecord(shared, 1n, 640);
    const a2 = creditRecord(onlyA, 1n, 700);
    const b1 = creditRecord(shared, 3n, 720);
    const tablesA = storeFor(chain, 'banka');
    const outboxA = new Outbox(tablesA);
    const enqueuedAt = new Date(Date.now() - 5_000).toISOString();
    for (const r of [a1, a2]) {
      await outboxA.accept({
        eventId: r.uuid,
        subjectRef: r.subject,
        data: `0x${r.data.toString(16)}`,
        enqueuedAt,
        sequence: '1',
        messageId: `m-${r.uuid}`,
        acceptedAt: enqueuedAt,
      });
    }
    const receiptA = await submit(chain, 'BANK-A', [a1, a2]);
    const duplicate = { ...creditRecord(shared, 1n, 640), data: a1.data };
    await outboxA.accept({
      eventId: duplicate.uuid,
      subjectRef: shared,
      data: '0x1',
      enqueuedAt,
      sequence: '1',
      messageId: 'm-dup',
      acceptedAt: enqueuedAt,
    });
    const receiptDup = await submit(chain, 'BANK-A', [duplicate]);
    const receiptB = await submit(chain, 'BANK-B', [b1]);
    await mine(chain.provider, 2);

    const telemetryA = recordingTelemetry();
    const a = watcherFor(tablesA, chain.anvil.rpcUrl, watchSettings(chain, 'BANK-A'), telemetryA);
    const b = watcherFor(storeFor(chain, 'bankb'), chain.anvil.rpcUrl, watchSettings(chain, 'BANK-B'));
    try {
      const resultA = await a.watcher.run();
      await b.watcher.run();
      expect(resultA).toMatchObject({ outcome: 'projected', records: 3, reorgDepth: 0 });

      for (const tables of [tablesA, storeFor(chain, 'bankb')]) {
        const records = await tables.table(TABLES.creditLedger);
        const fromA = await records.getEntity<Record<string, unknown>>(bucketOf(shared), recordKey(shared, 'BANK-A'));
        expect(fromA).toMatchObject({
          subjectRef: shared,
          bankId: 'BANK-A',
          sequence: '1',
          score: 640,
          openAccounts: 3,
          days30: 1,
          defaulted: false,
          eventId: a1.uuid,
          txHash: receiptA.hash,
          blockNumber: receiptA.blockNumber,
          blockHash: receiptA.blockHash,
          logIndex: 0,
          data: `0x${a1.data.toString(16).padStart(64, '0')}`,
          asOf: new Date((1_767_225_600 + 1) * 1000).toISOString(),
        });
        expect(await records.getEntity(bucketOf(shared), recordKey(shared, 'BANK-B'))).toMatchObject({
          bankId: 'BANK-B',
          sequence: '3',
          score: 720,
          txHash: receiptB.hash,
          eventId: b1.uuid,
        });
        expect(await records.getEntity(bucketOf(onlyA), recordKey(onlyA, 'BANK-A'))).toMatchObject({
          logIndex: 1,
          txHash: receiptA.hash,
        });
        const members = await tables.table(TABLES.members);
        expect(await members.getEntity('members', chain.wallets['BANK-B'].address.toLowerCase())).toMatchObject({
          bankId: 'BANK-B',
          active: true,
          address: chain.wallets['BANK-B'].address,
        });
      }
      // Bank A's own events: applied, and the duplicate skipped with the contract's reason.
      expect(await outboxA.get(a1.uuid)).toMatchObject({
        status: 'confirmed',
        txHash: receiptA.hash,
        blockNumber: receiptA.blockNumber,
        logIndex: 0,
      });
      expect(await outboxA.get(duplicate.uuid)).toMatchObject({
        status: 'skipped',
        txHash: receiptDup.hash,
        skipReason: expect.stringMatching(/^duplicate/) as unknown,
      });
      const latency = telemetryA.metrics.filter((m) => m.name === WATCH_METRICS.endToEndLatencyMs);
      expect(latency).toHaveLength(3);
      expect(latency.every((m) => m.value >= 5_000)).toBe(true);
      expect(telemetryA.metrics.find((m) => m.name === WATCH_METRICS.recordsProjected)?.value).toBe(3);
      expect(telemetryA.metrics.find((m) => m.name === WATCH_METRICS.projectionLagBlocks)?.value).toBe(2);

      const status = await readWatcherStatus(tablesA);
      const head = await chain.provider.getBlockNumber();
      expect(status).toMatchObject({ checkpointBlock: head - 2, headBlock: head, lagBlocks: 2 });
      expect(status?.halted).toBeUndefined();
      expect(await dumpProjections(tablesA)).toEqual(await freshProjection(chain, fresh(), 'BANK-A'));
    } finally {
      a.chain.destroy();
      b.chain.destroy();
    }
  });

  it('marks its own batch row confirmed from the transaction signer and nonce', async () => {
    const tables = storeFor(chain, 'banka');
    const wallet = chain.wallets['BANK-A'];
    const nonce = await chain.provider.getTransactionCount(wallet.address);
    const created = await new Batches(tables).create({
      signer: wallet.address.toLowerCase(),
      nonce,
      status: 'signed',
      eventIds: [],
      enqueuedAts: [],
      rawTx: '0x',
      txHashes: [],
      claimed: true,
      createdAt: new Date().toISOString(),
      createdBlock: 0,
      broadcasts: 1,
      feeBumps: 0,
    });
    expect(created).toBe(true);
    const receipt = await submit(chain, 'BANK-A', [creditRecord(subject(), 1n)]);
    await mine(chain.provider, 2);
    const a = watcherFor(tables, chain.anvil.rpcUrl, watchSettings(chain, 'BANK-A'));
    try {
      await a.watcher.run();
    } finally {
      a.chain.destroy();
    }
    expect(await new Batches(tables).get(wallet.address, nonce)).toMatchObject({
      status: 'confirmed',
      minedTxHash: receipt.hash,
      minedBlock: receipt.blockNumber,
    });
  });

  it('projects a block confirmed while it follows the head, within the same call', async () => {
    const tables = storeFor(chain, fresh());
    const settings = watchSettings(chain, 'BANK-A');
    const a = watcherFor(tables, chain.anvil.rpcUrl, settings);
    try {
      await a.watcher.run(); // caught up: what follows is only what arrives while it follows
      const runs: WatchRunResult[] = [];
      const following = a.watcher.follow(4_000, (result) => runs.push(result));
      await new Promise((resolve) => setTimeout(resolve, 500));
      const receipt = await submit(chain, 'BANK-B', [creditRecord(subject(), 1n)]);
      await mine(chain.provider, settings.confirmations);
      await following;
      // The block arrived after the first run: a later run within the same call projected it.
      expect(runs.slice(1).find((r) => r.records > 0)).toMatchObject({ outcome: 'projected', records: 1 });
      const checkpoint = await new WatcherStateStore(tables).readCheckpoint(settings.fromBlock);
      expect(checkpoint.block).toBeGreaterThanOrEqual(receipt.blockNumber);
    } finally {
      a.chain.destroy();
    }
  });

  it('undoes a reorg deeper than the confirmations that happens in the middle of a run, and reprocesses', async () => {
    const tables = storeFor(chain, 'banka');
    const telemetry = recordingTelemetry();
    const proxy = await startRpcProxy(chain.anvil.rpcUrl);
    const a = watcherFor(tables, proxy.url, watchSettings(chain, 'BANK-A'), telemetry);
    const outbox = new Outbox(tables);
    try {
      const s = subject();
      const forkBase = await chain.provider.getBlockNumber();
      const nonceB = await chain.provider.getTransactionCount(chain.wallets['BANK-B'].address);
      const orphanedA = creditRecord(s, 5n, 500);
      await outbox.accept({
        eventId: orphanedA.uuid,
        subjectRef: s,
        data: '0x1',
        enqueuedAt: new Date().toISOString(),
        sequence: '5',
        messageId: 'm-orphan',
        acceptedAt: new Date().toISOString(),
      });
      await submit(chain, 'BANK-A', [orphanedA]);
      await submit(chain, 'BANK-B', [creditRecord(s, 1n, 610)]);
      await mine(chain.provider, 3);
      await a.watcher.run(); // projects both records: they are 3+ blocks deep
      expect(
        await (await tables.table(TABLES.creditLedger)).getEntity(bucketOf(s), recordKey(s, 'BANK-A'))
      ).toMatchObject({
        score: 500,
      });
      expect(await outbox.get(orphanedA.uuid)).toMatchObject({ status: 'confirmed' });
      await mine(chain.provider, 1);

      // During the next run, the chain drops its last 5 blocks (deeper than the 2 confirmations): bank A's record
      // is gone and bank B's has another value.
      const replacement = creditRecord(s, 2n, 655);
      const depth = (await chain.provider.getBlockNumber()) - forkBase;
      const raw = await rawSubmit(chain, 'BANK-B', [replacement], nonceB);
      proxy.beforeNextGetLogs = async () => {
        await chain.provider.send('anvil_reorg', [depth, [[raw, 0]]]);
      };
      const result = await a.watcher.run();
      expect(proxy.beforeNextGetLogs).toBeUndefined();
      expect(result.reorgDepth).toBeGreaterThan(2);

      const records = await tables.table(TABLES.creditLedger);
      await expect(records.getEntity(bucketOf(s), recordKey(s, 'BANK-A'))).rejects.toMatchObject({ statusCode: 404 });
      expect(await records.getEntity(bucketOf(s), recordKey(s, 'BANK-B'))).toMatchObject({
        score: 655,
        eventId: replacement.uuid,
      });
      expect(await outbox.get(orphanedA.uuid)).toMatchObject({ status: 'batched', blockNumber: -1 });
      const reorg = telemetry.events.find((e) => e.name === WATCH_EVENTS.reorgDetected);
      expect(reorg?.measurements?.depth).toBe(result.reorgDepth);
      expect(telemetry.metrics.find((m) => m.name === WATCH_METRICS.reorgDepth)?.value).toBe(result.reorgDepth);
      expect(await dumpProjections(tables)).toEqual(await freshProjection(chain, fresh(), 'BANK-A'));
    } finally {
      a.chain.destroy();
      await proxy.close();
    }
  });

  it('changes nothing when it re-runs over a processed range or rebuilds from block 0', async () => {
    const tables = storeFor(chain, 'bankb');
    const a = watcherFor(tables, chain.anvil.rpcUrl, watchSettings(chain, 'BANK-B'));
    try {
      await submit(chain, 'BANK-A', [creditRecord(subject(), 1n), creditRecord(subject(), 2n)]);
      await mine(chain.provider, 2);
      await a.watcher.run();
      const before = await dumpProjections(tables);
      expect(before).toEqual(await freshProjection(chain, fresh(), 'BANK-B'));

      // Move the checkpoint back without touching the tables: the replay must not regress any record.
      const state = new WatcherStateStore(tables);
      const current = await state.readCheckpoint(chain.deployBlock);
      const back = await chain.provider.getBlock(chain.deployBlock + 1);
      await state.deleteBlocks({});
      await state.writeCheckpoint(current, {
        ...current,
        block: back!.number,
        hash: back!.hash!,
        blockTime: back!.timestamp,
      });
      expect((await a.watcher.run()).blocks).toBeGreaterThan(5);
      expect(await dumpProjections(tables)).toEqual(before);

      const deps = { tables, chain: a.chain, telemetry: recordingTelemetry() };
      const full = await rebuildProjections(
        deps,
        { ...watchSettings(chain, 'BANK-B'), fromBlock: 0 },
        { fromBlock: 0 }
      );
      expect(full.fromBlock).toBe(0);
      expect(await dumpProjections(tables)).toEqual(before);
      const progress: number[] = [];
      const partial = await rebuildProjections(deps, watchSettings(chain, 'BANK-B'), {
        fromBlock: chain.deployBlock + 4,
        onProgress: (p) => progress.push(p.doneBlocks),
      });
      expect(partial.blocks).toBe(partial.checkpointBlock - chain.deployBlock - 3);
      expect(progress.at(-1)).toBe(partial.blocks);
      expect(await dumpProjections(tables)).toEqual(before);
    } finally {
      a.chain.destroy();
    }
  });

  /**
   * A bank's watcher that has projected `records` of BANK-B's, and the checkpoint rewritten as a version of table
   * layout `layout` leaves it (no layout field: a version before CreditLedger).
   */
  async function projectedInLayout(records: number, layout: number | undefined) {
    const tables = storeFor(chain, fresh());
    const telemetry = recordingTelemetry();
    const a = watcherFor(tables, chain.anvil.rpcUrl, watchSettings(chain, 'BANK-A'), telemetry);
    await submit(
      chain,
      'BANK-B',
      Array.from({ length: records }, (_, i) => creditRecord(subject(), BigInt(i + 1)))
    );
    await mine(chain.provider, 2);
    await a.watcher.run();
    const projected = await dumpProjections(tables);
    const state = await tables.table(TABLES.watcher);
    const {
      etag: _e,
      timestamp: _t,
      layout: _l,
      ...row
    } = await state.getEntity<Record<string, unknown>>('watcher', 'checkpoint');
    await state.updateEntity(
      { ...(row as { partitionKey: string; rowKey: string }), ...(layout && { layout }) },
      'Replace'
    );
    return { tables, telemetry, a, projected };
  }
  const layoutChanged = (telemetry: ReturnType<typeof recordingTelemetry>) =>
    telemetry.events.find((e) => e.name === WATCH_EVENTS.projectionLayoutChanged)?.properties;

  it('replays from the deploy block into the current table layout when the checkpoint is of an older one', async () => {
    const { tables, telemetry, a, projected } = await projectedInLayout(2, undefined);
    try {
      // A version before CreditLedger left no CreditLedger rows (its records are in the old tables).
      await new CreditLedger(tables).clearFrom(0);
      const result = await a.watcher.run();
      expect(layoutChanged(telemetry)).toEqual({
        from: '1',
        to: String(PROJECTION_LAYOUT),
        replayFromBlock: String(chain.deployBlock),
        droppedRows: '0',
      });
      expect(result.blocks).toBe(result.checkpointBlock - chain.deployBlock + 1);
      expect(await dumpProjections(tables)).toEqual(projected);
      expect((await new WatcherStateStore(tables).readCheckpoint(0)).layout).toBe(PROJECTION_LAYOUT);
    } finally {
      a.chain.destroy();
    }
  });

  it('drops the rows of layout 2 (256 buckets) and replays into 16 buckets when the checkpoint is of layout 2', async () => {
    const { tables, telemetry, a, projected } = await projectedInLayout(3, 2);
    try {
      // What layout 2 leaves behind: the same rows in partitions of the subject ref's first two hex digits.
      const ledger = await tables.table(TABLES.creditLedger);
      const rows = await listRows(ledger);
      for (const { etag: _e, timestamp: _t, ...row } of rows) {
        const oldBucket = row.kind === 'watermark' ? `${row.partitionKey}0` : String(row.subjectRef).slice(2, 4);
        await ledger.createEntity({ ...row, partitionKey: oldBucket });
        await ledger.deleteEntity(row.partitionKey, row.rowKey);
      }
      await a.watcher.run();
      expect(layoutChanged(telemetry)).toEqual({
        from: '2',
        to: String(PROJECTION_LAYOUT),
        replayFromBlock: String(chain.deployBlock),
        droppedRows: String(rows.length),
      });
      expect(await dumpProjections(tables)).toEqual(projected);
      expect((await listRows(ledger)).map((r) => r.partitionKey).filter((pk) => pk.length !== 1)).toEqual([]);
    } finally {
      a.chain.destroy();
    }
  });

  it('refuses a checkpoint of a newer table layout, and leaves the projections as they are', async () => {
    const newer = PROJECTION_LAYOUT + 1;
    const { tables, telemetry, a, projected } = await projectedInLayout(1, newer);
    try {
      await expect(a.watcher.run()).rejects.toThrow(
        `the projections are in table layout ${newer}, newer than this version's ${PROJECTION_LAYOUT}`
      );
      expect(telemetry.events.map((e) => e.name)).toContain(WATCH_EVENTS.watcherHalted);
      expect(layoutChanged(telemetry)).toBeUndefined();
      expect(await dumpProjections(tables)).toEqual(projected);
      expect((await new WatcherStateStore(tables).readCheckpoint(0)).layout).toBe(newer);
    } finally {
      a.chain.destroy();
    }
  });

  it('shrinks its log range when the node refuses wide eth_getLogs ranges, and grows it back', async () => {
    await submit(chain, 'BANK-B', [creditRecord(subject(), 1n)]);
    await mine(chain.provider, 80);
    const proxy = await startRpcProxy(chain.anvil.rpcUrl, 3);
    const account = fresh();
    const tables = storeFor(chain, account);
    const a = watcherFor(tables, proxy.url, watchSettings(chain, 'BANK-A', { logChunkBlocks: 64 }));
    try {
      await a.watcher.run();
      const refused = proxy.getLogsCalls.filter((c) => c.refused);
      const served = proxy.getLogsCalls.filter((c) => !c.refused);
      const blocks = (c: { fromBlock: number; toBlock: number }): number => c.toBlock - c.fromBlock + 1;
      expect(refused.slice(0, 5).map(blocks)).toEqual([64, 32, 16, 8, 4]);
      expect(served.map(blocks).every((n) => n <= 3)).toBe(true);
      // After a few successes it probes a wider range again (refused here, so it halves back).
      expect(refused.length).toBeGreaterThan(5);
      expect(a.watcher.logRangeBlocks).toBeLessThanOrEqual(4);
      expect(await dumpProjections(tables)).toEqual(await freshProjection(chain, fresh(), 'BANK-A'));
    } finally {
      a.chain.destroy();
      await proxy.close();
    }
  });

  it('bounds a chunk by its logs: a backlog is projected in several checkpointed chunks, none over the bound', async () => {
    for (let i = 0; i < 3; i++)
      await submit(
        chain,
        'BANK-B',
        [1, 2, 3].map(() => creditRecord(subject(), 1n))
      );
    await mine(chain.provider, 3);
    const tables = storeFor(chain, fresh());
    const a = watcherFor(tables, chain.anvil.rpcUrl, watchSettings(chain, 'BANK-A', { maxChunkLogs: 4 }));
    try {
      const progress: { blocks: number; records: number }[] = [{ blocks: 0, records: 0 }];
      await a.watcher.run({ onProgress: (p) => progress.push({ blocks: p.doneBlocks, records: p.records }) });
      const chunks = progress.slice(1).map((p, i) => ({
        blocks: p.blocks - progress[i]!.blocks,
        records: p.records - progress[i]!.records,
      }));
      expect(chunks.length).toBeGreaterThan(3);
      // Over the bound only where one block alone holds more logs (a chunk cannot be smaller than a block).
      for (const chunk of chunks) expect(chunk.records <= 4 || chunk.blocks === 1).toBe(true);
      expect(await dumpProjections(tables)).toEqual(await freshProjection(chain, fresh(), 'BANK-A'));
    } finally {
      a.chain.destroy();
    }
  });

  it('halts loudly on a reorg deeper than its window, on every run, until rebuilt', async () => {
    const account = fresh();
    const tables = storeFor(chain, account);
    const telemetry = recordingTelemetry();
    const settings = watchSettings(chain, 'BANK-A', { reorgWindowBlocks: 8 });
    const a = watcherFor(tables, chain.anvil.rpcUrl, settings, telemetry);
    try {
      await submit(chain, 'BANK-A', [creditRecord(subject(), 1n)]);
      await mine(chain.provider, 14);
      await a.watcher.run();
      await chain.provider.send('anvil_reorg', [12, []]);

      const first = await a.watcher.run().catch((err: unknown) => err);
      expect(first).toBeInstanceOf(WatcherHaltedError);
      expect((first as Error).message).toMatch(
        /watcher halted: reorg deeper than the watcher can undo: block \d+ was 0x[0-9a-f]{64} and is now 0x[0-9a-f]{64}; .*WATCH_REORG_WINDOW_BLOCKS=8.*ledger-bridge rebuild-projections/
      );
      const status = await readWatcherStatus(tables);
      expect(status?.halted?.reason).toBe((first as WatcherHaltedError).reason);
      await expect(a.watcher.run()).rejects.toThrow(WatcherHaltedError);
      expect(telemetry.events.filter((e) => e.name === WATCH_EVENTS.watcherHalted)).toHaveLength(2);

      await rebuildProjections({ tables, chain: a.chain, telemetry }, settings);
      expect((await readWatcherStatus(tables))?.halted).toBeUndefined();
      expect(await dumpProjections(tables)).toEqual(await freshProjection(chain, fresh(), 'BANK-A'));
      await expect(a.watcher.run()).resolves.toMatchObject({ outcome: 'up-to-date' });
    } finally {
      a.chain.destroy();
    }
  });
});
