import { randomUUID } from 'node:crypto';
import { JsonRpcProvider, NonceManager, Wallet, hexlify, randomBytes } from 'ethers';
import { startAnvil } from '../local/stack/anvil';
import { startAzurite } from '../local/stack/azurite';
import { deployConsortium } from '../local/stack/consortium';
import { Chain } from '../shared/chain/provider';
import { connectRegistry, type RegistryRecord } from '../shared/chain/registry';
import { eventIdToBytes16 } from '../shared/domain/event-id';
import { encodeRecord } from '../shared/domain/record-codec';
import { TableStore } from '../shared/storage/tables';
import { createTelemetry } from '../shared/telemetry';
import { rebuildProjections } from '../shared/watch/rebuild';

/**
 * Projection throughput: writes `records` new credit records on a local chain (`batch` per transaction, one
 * test wallet), then rebuilds the projections into Azurite from the deploy block and reports records/s.
 */
export interface BenchResult {
  records: number;
  blocks: number;
  writeSeconds: number;
  rebuildSeconds: number;
  recordsPerSecond: number;
}

export async function runProjectionRebuildBench(
  options: { records?: number; batch?: number; ownBank?: boolean } = {}
): Promise<BenchResult> {
  const total = options.records ?? 20_000;
  const batch = options.batch ?? 500;
  const anvil = await startAnvil({ blockTimeSeconds: 0 });
  const azurite = await startAzurite({ accountNames: ['bench'] });
  const provider = new JsonRpcProvider(anvil.rpcUrl, undefined, { pollingInterval: 50, cacheTimeout: -1 });
  const chain = new Chain({ rpcUrls: [anvil.rpcUrl], chainId: anvil.chainId, timeoutMs: 60_000 });
  try {
    const member = Wallet.createRandom().connect(provider);
    const { registryAddress, deployBlock } = await deployConsortium(anvil.rpcUrl, [
      { address: member.address, bankId: 'BANK-A' },
    ]);
    const registry = connectRegistry(registryAddress, new NonceManager(member));
    const writeStarted = Date.now();
    const sent = [];
    for (let done = 0; done < total; done += batch) {
      const records: RegistryRecord[] = Array.from({ length: Math.min(batch, total - done) }, (_, i) => ({
        subject: hexlify(randomBytes(32)),
        eventId: eventIdToBytes16(randomUUID()),
        data: encodeRecord({
          sequence: 1n,
          asOf: 1_767_225_600 + done + i,
          score: 300 + ((done + i) % 550),
          openAccounts: 2,
          delinquencies: { days30: 0, days60: 0, days90: 0 },
          defaulted: false,
          totalBalance: 1_000,
          creditLimit: 10_000,
        }),
      }));
      sent.push(await registry.submitBatch(records, { gasLimit: 29_000_000 }));
    }
    await Promise.all(sent.map((tx) => tx.wait()));
    await provider.send('anvil_mine', ['0x2']);
    const writeSeconds = (Date.now() - writeStarted) / 1000;

    const tables = new TableStore({ connectionString: azurite.accounts[0]!.connectionString });
    const result = await rebuildProjections(
      { tables, chain, telemetry: createTelemetry({ roleName: 'bench', logger: { warn: () => undefined } }) },
      {
        // Another bank's view by default; ownBank adds this bank's outbox/batch reconciliation per record.
        bankId: options.ownBank ? 'BANK-A' : 'BANK-B',
        registryAddress,
        fromBlock: deployBlock,
        confirmations: 2,
        logChunkBlocks: 2000,
        reorgWindowBlocks: 128,
      },
      {
        onProgress: (p) =>
          process.stderr.write(`\rrebuild ${p.doneBlocks}/${p.totalBlocks} blocks, ${p.records} records`),
      }
    );
    process.stderr.write('\n');
    const rebuildSeconds = result.elapsedMs / 1000;
    return {
      records: result.records,
      blocks: result.blocks,
      writeSeconds,
      rebuildSeconds,
      recordsPerSecond: Math.round(result.records / rebuildSeconds),
    };
  } finally {
    chain.destroy();
    provider.destroy();
    await azurite.stop();
    await anvil.stop();
  }
}

// `node dist/bench/projection-rebuild.js [records]` (npm run bench:rebuild): prints the result as JSON.
if (require.main === module) {
  const records = Number(process.argv[2] ?? 20_000);
  if (!Number.isInteger(records) || records < 1) {
    console.error(`usage: node dist/bench/projection-rebuild.js [records], got "${process.argv[2]}"`);
    process.exit(2);
  }
  runProjectionRebuildBench({ records }).then(
    (result) => {
      console.log(JSON.stringify(result));
      process.exit(0);
    },
    (err: Error) => {
      console.error(`projection rebuild bench failed: ${err.message}`);
      process.exit(1);
    }
  );
}
