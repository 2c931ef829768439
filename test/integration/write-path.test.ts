import { join } from 'node:path';
import { JsonRpcProvider } from 'ethers';
import { spawnFunctionHost, type RunningHost } from '../../local/host/spawn';
import { EventPublisher } from '../../local/publish-events';
import { bankSettings, startStack, type Stack } from '../../local/stack/stack';
import { registryInterface } from '../../shared/chain/registry';
import { bytes16ToEventId } from '../../shared/domain/event-id';
import { sampleCreditUpdates } from '../../local/sample-events';

/**
 * The whole write path on the local stack with 2 s blocks: events on the bank's queue, the real Function App in
 * the local host (ingest → outbox → submit with the Key Vault signer), and the chain.
 */
describe('write path, end to end', () => {
  let stack: Stack;
  let host: RunningHost;
  let provider: JsonRpcProvider;
  let publisher: EventPublisher;

  beforeAll(async () => {
    stack = await startStack({ banks: 1, blockTimeSeconds: 2 });
    const settings = bankSettings(stack.info, 'BANK-A');
    host = await spawnFunctionHost({ name: 'BANK-A app', appDir: join(__dirname, '../..'), settings });
    provider = new JsonRpcProvider(stack.info.chain.rpcUrl, undefined, { staticNetwork: true, cacheTimeout: -1 });
    publisher = new EventPublisher(stack.info.banks[0]!.serviceBusConnectionString);
  });
  afterAll(async () => {
    provider?.destroy();
    await publisher?.close();
    await host?.stop();
    await stack?.stop();
  });

  async function onChain(): Promise<{ applied: Map<string, number>; skipped: Set<string>; txs: Map<string, number> }> {
    const logs = await provider.getLogs({ address: stack.info.chain.registryAddress, fromBlock: 0, toBlock: 'latest' });
    const applied = new Map<string, number>();
    const skipped = new Set<string>();
    const txs = new Map<string, number>();
    for (const log of logs) {
      const parsed = registryInterface.parseLog(log);
      if (parsed?.name === 'CreditRecordUpdated') {
        const id = bytes16ToEventId(parsed.args.eventId as string);
        applied.set(id, (applied.get(id) ?? 0) + 1);
        txs.set(log.transactionHash, log.blockNumber);
      }
      if (parsed?.name === 'CreditRecordSkipped') skipped.add(bytes16ToEventId(parsed.args.eventId as string));
    }
    return { applied, skipped, txs };
  }

  it('puts 1,000 events on chain exactly once despite republishing and Key Vault throttling', async () => {
    const events = sampleCreditUpdates({ bankId: 'BANK-A', count: 1000 });
    const signsBefore = stack.keyVault.stats.signCalls;
    // Key Vault throttles (429 without Retry-After) and fails (503) for a while as the first batches are signed.
    stack.keyVault.faults.failNext({ status: 429, count: 4, operation: 'sign' });
    stack.keyVault.faults.failNext({ status: 503, count: 3, operation: 'sign' });
    const started = Date.now();
    await publisher.publish(events);
    // The bank's system republishes some events under new message ids (the same ids the queue would drop).
    await publisher.publish(events.slice(0, 200), undefined, (e) => `${e.eventId}/again`);

    const ids = events.map((e) => e.eventId);
    let view = await onChain();
    const deadline = Date.now() + 120_000;
    while (ids.some((id) => !view.applied.has(id)) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1_000));
      view = await onChain();
    }
    const seconds = (Date.now() - started) / 1000;
    expect(ids.filter((id) => view.applied.get(id) !== 1)).toEqual([]);
    expect(ids.filter((id) => view.skipped.has(id))).toEqual([]);
    expect(stack.keyVault.stats.faultsInjected).toBeGreaterThanOrEqual(7);

    const perBlock = new Map<number, number>();
    for (const block of view.txs.values()) perBlock.set(block, (perBlock.get(block) ?? 0) + 1);
    expect(Math.max(...perBlock.values())).toBeLessThanOrEqual(4);
    let gas = 0n;
    for (const hash of view.txs.keys()) gas += (await provider.getTransactionReceipt(hash))!.gasUsed;
    const signs = stack.keyVault.stats.signCalls - signsBefore;
    console.log(
      `write path: 1,000 events in ${view.txs.size} transactions over ${perBlock.size} blocks, ` +
        `${signs} Key Vault sign calls (${(signs / 1000).toFixed(4)} per record, incl. ${stack.keyVault.stats.faultsInjected} faulted), ` +
        `${Number(gas / 1000n)} gas per record, ${seconds.toFixed(1)} s from first publish to last record on chain`
    );
  }, 180_000);
});
