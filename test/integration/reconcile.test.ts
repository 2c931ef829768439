import { toQuantity } from 'ethers';
import { Chain } from '../../shared/chain/provider';
import { Outbox } from '../../shared/storage/outbox';
import { TABLES } from '../../shared/storage/tables';
import { runSubmit } from '../../shared/submit/submitter';
import { rebuildProjections } from '../../shared/watch/rebuild';
import { readWatcherStatus } from '../../shared/watch/state';
import { Watcher, WatcherHaltedError, type WatchSettings } from '../../shared/watch/watcher';
import { recordingTelemetry } from './support/read-path-fixtures';
import { startRpcProxy } from './support/rpc-proxy';
import { acceptEvents, chainView, drain, expectExactlyOnce, openRows, testBed, type Bed } from './support/submit-bed';

/**
 * The write side against the chain's truth (shared/submit/reconcile.ts): the cases issue 12 reproduced, each
 * of which lost records, or bookkeeping, before the reconciliation.
 */

function watchSettings(bed: Bed, reorgWindowBlocks = 32): WatchSettings {
  return {
    bankId: 'BANK-A',
    registryAddress: bed.registryAddress,
    fromBlock: bed.deployBlock,
    confirmations: bed.config.chain.confirmations,
    logChunkBlocks: 1000,
    reorgWindowBlocks,
  };
}

/** Runs the watcher until every one of `ids` is settled in the outbox (confirmed or skipped). */
async function settleAll(bed: Bed, watcher: Watcher, ids: string[], timeoutMs = 60_000): Promise<void> {
  const outbox = new Outbox(bed.tables);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await watcher.run();
    const rows = await Promise.all(ids.map((id) => outbox.get(id)));
    const open = rows.filter((r) => r?.status !== 'confirmed' && r?.status !== 'skipped');
    if (open.length === 0) return;
    if (Date.now() > deadline) throw new Error(`${open.length} of ${ids.length} events not settled`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function outboxStatuses(bed: Bed, ids: string[]): Promise<Record<string, number>> {
  const outbox = new Outbox(bed.tables);
  const counts: Record<string, number> = {};
  for (const id of ids) {
    const status = (await outbox.get(id))?.status ?? 'missing';
    counts[status] = (counts[status] ?? 0) + 1;
  }
  return counts;
}

describe('the write side follows the chain', () => {
  it('sends a batch again when a reorg takes away the block that held its receipt', async () => {
    const bed = await testBed({ blockTimeSeconds: 0 });
    try {
      await bed.provider.send('evm_setAutomine', [false]);
      const ids = await acceptEvents(bed, 3);
      const deps = bed.deps();
      await runSubmit(deps); // broadcast
      await bed.provider.send('evm_mine', []);
      expect((await runSubmit(deps)).mined).toBe(1); // the receipt is seen: the row says mined
      // The block is replaced by an empty one: the transaction is gone from the chain and from the pool.
      await bed.provider.send('anvil_reorg', [1, []]);
      expect(await bed.provider.getTransactionCount(bed.signer.wallet.address, 'latest')).toBe(0);
      const report = await runSubmit(deps);
      expect(report).toMatchObject({ orphaned: 1, broadcasts: 1, newBatches: 0 });
      await bed.provider.send('evm_setAutomine', [true]);
      await bed.provider.send('evm_mine', []);
      await drain(bed, deps);
      expectExactlyOnce(await chainView(bed), ids);
    } finally {
      await bed.stop();
    }
  });

  it('checks a mined batch by the header of its block while that block stands, and its receipt once it does not', async () => {
    const bed = await testBed({ blockTimeSeconds: 0 });
    const proxy = await startRpcProxy(bed.anvil.rpcUrl);
    const chain = new Chain({ rpcUrls: [proxy.url], chainId: bed.config.chain.chainId, timeoutMs: 2_000 });
    try {
      await bed.provider.send('evm_setAutomine', [false]);
      const ids = await acceptEvents(bed, 3);
      const deps = bed.deps({ chain });
      await runSubmit(deps); // broadcast
      await bed.provider.send('evm_mine', []);
      expect((await runSubmit(deps)).mined).toBe(1);
      const [row] = await openRows(deps);
      expect(row!.minedBlockHash).toBe((await bed.provider.getBlock(row!.minedBlock!))!.hash);
      // Blocks go on; until the watcher confirms the row, every run checks it, by a header (~1 KB), not by the
      // receipt (a log per record: hundreds of kilobytes for a full batch).
      const receipts = (): number => proxy.methods.get('eth_getTransactionReceipt') ?? 0;
      const [receiptsBefore, headersBefore] = [receipts(), proxy.methods.get('eth_getBlockByNumber') ?? 0];
      for (let i = 0; i < 3; i++) {
        await bed.provider.send('evm_mine', []);
        expect(await runSubmit(deps)).toMatchObject({ mined: 0, orphaned: 0, broadcasts: 0, inFlight: 0 });
      }
      expect(receipts()).toBe(receiptsBefore);
      expect((proxy.methods.get('eth_getBlockByNumber') ?? 0) - headersBefore).toBeGreaterThanOrEqual(3);
      // A reorg replaces the block: its hash changed, so the receipt is read again, and it is gone.
      await bed.provider.send('anvil_reorg', [4, []]);
      expect(await runSubmit(deps)).toMatchObject({ orphaned: 1, broadcasts: 1 });
      expect(receipts()).toBeGreaterThan(receiptsBefore);
      await bed.provider.send('evm_setAutomine', [true]);
      await bed.provider.send('evm_mine', []);
      await drain(bed, deps);
      expectExactlyOnce(await chainView(bed), ids);
    } finally {
      chain.destroy();
      await proxy.stop();
      await bed.stop();
    }
  });

  it('refills a nonce gap left by reorgs after receipts, in order, before anything newer', async () => {
    const bed = await testBed({ blockTimeSeconds: 1 }, { CONFIRMATIONS: '1', SUBMIT_MAX_RECORDS_PER_TX: '50' });
    const watcher = new Watcher(
      { tables: bed.tables, chain: bed.deps().chain, telemetry: recordingTelemetry() },
      watchSettings(bed)
    );
    try {
      const deps = bed.deps();
      const first = await acceptEvents(bed, 300);
      await drain(bed, deps);
      await bed.provider.send('anvil_reorg', [4, []]);
      const second = await acceptEvents(bed, 300);
      await runSubmit(deps);
      await new Promise((r) => setTimeout(r, 3_000));
      await bed.provider.send('anvil_reorg', [3, []]);
      await drain(bed, deps);
      const ids = [...first, ...second];
      expectExactlyOnce(await chainView(bed), ids);
      await settleAll(bed, watcher, ids);
      expect(await outboxStatuses(bed, ids)).toEqual({ confirmed: 600 });
    } finally {
      await bed.stop();
    }
  });

  it('after a reorg deeper than the watcher can undo, holds new batches, and rebuild-projections resets the write side', async () => {
    const bed = await testBed({ blockTimeSeconds: 1 }, { CONFIRMATIONS: '1' });
    const chain = bed.deps().chain;
    const settings = watchSettings(bed, 8);
    const watcher = new Watcher({ tables: bed.tables, chain, telemetry: recordingTelemetry() }, settings);
    try {
      const deps = bed.deps();
      const first = await acceptEvents(bed, 200);
      await drain(bed, deps);
      await settleAll(bed, watcher, first);
      // Blocks replaced by empty ones down to below the watcher's window of 8 (however far it lags), and below
      // our batches.
      const before = await bed.provider.getTransactionCount(bed.signer.wallet.address, 'latest');
      const checkpoint = (await readWatcherStatus(bed.tables))!.checkpointBlock;
      const depth = (await bed.provider.getBlockNumber()) - checkpoint + settings.reorgWindowBlocks + 2;
      await bed.provider.send('anvil_reorg', [depth, []]);
      expect(await bed.provider.getTransactionCount(bed.signer.wallet.address, 'latest')).toBeLessThan(before);
      await expect(watcher.run()).rejects.toBeInstanceOf(WatcherHaltedError);
      const second = await acceptEvents(bed, 50);
      const held = await runSubmit(deps);
      expect(held.held).toMatch(/watcher confirmed .* run rebuild-projections/);
      expect(held.newBatches).toBe(0);

      const rebuilt = await rebuildProjections(
        { tables: bed.tables, chain, telemetry: recordingTelemetry() },
        settings
      );
      expect(rebuilt.writeSide.reset).toBeGreaterThan(0);
      expect(rebuilt.writeSide.events).toBe(200);
      const ids = [...first, ...second];
      await drain(bed, deps);
      expectExactlyOnce(await chainView(bed), ids);
      await settleAll(bed, watcher, ids);
      expect(await outboxStatuses(bed, ids)).toEqual({ confirmed: 250 });
      const ledger = await bed.tables.table(TABLES.creditLedger);
      let rows = 0;
      for await (const _ of ledger.listEntities({ queryOptions: { filter: "kind eq 'record'" } })) rows++;
      expect(rows).toBe(250); // every subject once, as on chain
    } finally {
      await bed.stop();
    }
  });

  it('keeps the books right with two submitters at once: no event sent twice, none marked skipped', async () => {
    const bed = await testBed({ blockTimeSeconds: 1 }, { CONFIRMATIONS: '1', SUBMIT_MAX_RECORDS_PER_TX: '40' });
    const watcher = new Watcher(
      { tables: bed.tables, chain: bed.deps().chain, telemetry: recordingTelemetry() },
      watchSettings(bed)
    );
    try {
      const ids = await acceptEvents(bed, 400);
      const [a, b] = [bed.deps(), bed.deps()];
      for (let i = 0; i < 12; i++) {
        await Promise.all([runSubmit(a), runSubmit(b)]);
        await new Promise((r) => setTimeout(r, 250));
      }
      await drain(bed, a);
      const view = await chainView(bed);
      expectExactlyOnce(view, ids); // applied once, and no skip log: no event went out in two transactions
      await settleAll(bed, watcher, ids);
      expect(await outboxStatuses(bed, ids)).toEqual({ confirmed: 400 });
      expect(await openRows(a)).toEqual([]);
    } finally {
      await bed.stop();
    }
  });

  it('fills a nonce that a reorg freed after its batch was given up, so the batches above it are mined', async () => {
    const bed = await testBed({ blockTimeSeconds: 0 });
    try {
      await bed.provider.send('evm_setAutomine', [false]);
      const deps = bed.deps();
      const address = bed.signer.wallet.address;
      // Nonce 0 goes to a transaction outside the log: our batch at 0 is given up, its events go out at 1.
      const ids = await acceptEvents(bed, 5);
      await runSubmit({
        ...deps,
        crashPoints: {
          afterWriteAhead: () => {
            throw new Error('crash');
          },
        },
      }).catch(() => undefined);
      const foreign = await bed.signer.wallet.connect(bed.provider).signTransaction({
        to: address,
        value: 0n,
        nonce: 0,
        gasLimit: 21_000n,
        chainId: bed.config.chain.chainId,
        maxFeePerGas: 10n ** 10n,
        maxPriorityFeePerGas: 10n ** 9n,
      });
      await bed.provider.send('eth_sendRawTransaction', [foreign]);
      // Mined, then buried at confirmation depth: only then is our batch at 0 given up.
      const depth = bed.config.chain.confirmations;
      await bed.provider.send('anvil_mine', [toQuantity(depth + 1)]);
      const abandoned = await runSubmit(deps);
      expect(abandoned).toMatchObject({ abandoned: 1, newBatches: 1 });
      // A reorg deeper than that takes the foreign transaction away: nonce 0 is open again, and our batch at 1
      // waits on it.
      await bed.provider.send('anvil_reorg', [depth + 1, []]);
      const filled = await runSubmit(deps);
      expect(filled.gapsFilled).toBe(1);
      // Blocks go on (a pool may have dropped what waited behind the gap: the rebroadcast timer sends it again).
      await bed.provider.send('anvil_setNextBlockBaseFeePerGas', [toQuantity(1n)]);
      await bed.provider.send('evm_setIntervalMining', [1]);
      await drain(bed, deps);
      expectExactlyOnce(await chainView(bed), ids);
      expect(await bed.provider.getTransactionCount(address, 'latest')).toBe(2);
    } finally {
      await bed.stop();
    }
  });
});
