import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import {
  JsonRpcProvider,
  Wallet,
  hexlify,
  randomBytes,
  toQuantity,
  type HDNodeWallet,
  type TransactionReceipt,
} from 'ethers';
import { startAnvil, type Anvil } from '../../../local/stack/anvil';
import { startAzurite, type Azurite } from '../../../local/stack/azurite';
import { deployConsortium } from '../../../local/stack/consortium';
import { Chain } from '../../../shared/chain/provider';
import { connectRegistry, registryInterface, type RegistryRecord } from '../../../shared/chain/registry';
import { eventIdToBytes16 } from '../../../shared/domain/event-id';
import { encodeRecord } from '../../../shared/domain/record-codec';
import { TABLES, TableStore } from '../../../shared/storage/tables';
import type { Telemetry } from '../../../shared/telemetry';
import { Watcher, type WatchSettings } from '../../../shared/watch/watcher';

/**
 * A two-bank consortium for read-path tests: anvil (automine), Azurite with one storage account per bank plus
 * spare ones for fresh projections, and a CreditRegistry whose members are throwaway test wallets (the stack's
 * own bank keys live in Key Vault, so tests that write on chain directly use their own).
 */
export interface ReadPathChain {
  anvil: Anvil;
  azurite: Azurite;
  provider: JsonRpcProvider;
  registryAddress: string;
  deployBlock: number;
  wallets: Record<'BANK-A' | 'BANK-B', HDNodeWallet>;
  stop(): Promise<void>;
}

export async function startReadPathChain(accountNames: string[]): Promise<ReadPathChain> {
  const anvil = await startAnvil({ blockTimeSeconds: 0 });
  const azurite = await startAzurite({ accountNames });
  return deployTestConsortium(anvil, azurite, async () => {
    await azurite.stop();
    await anvil.stop();
  });
}

/** Deploys a CreditRegistry on `anvil` whose members BANK-A and BANK-B are fresh test wallets. */
export async function deployTestConsortium(
  anvil: Anvil,
  azurite: Azurite,
  stopParts: () => Promise<void> = async () => undefined
): Promise<ReadPathChain> {
  const provider = new JsonRpcProvider(anvil.rpcUrl, undefined, { pollingInterval: 50, cacheTimeout: -1 });
  const wallets = {
    'BANK-A': Wallet.createRandom().connect(provider),
    'BANK-B': Wallet.createRandom().connect(provider),
  };
  const { registryAddress, deployBlock } = await deployConsortium(anvil.rpcUrl, [
    { address: wallets['BANK-A'].address, bankId: 'BANK-A' },
    { address: wallets['BANK-B'].address, bankId: 'BANK-B' },
  ]);
  await mine(provider, 1); // a block after the balances were set, so reorgs above it keep them
  return {
    anvil,
    azurite,
    provider,
    registryAddress,
    deployBlock,
    wallets,
    stop: async () => {
      provider.destroy();
      await stopParts();
    },
  };
}

export const subject = (): string => hexlify(randomBytes(32));

/** A record with a valid layout; its event id is returned as the UUID too. */
export function creditRecord(subjectRef: string, sequence: bigint, score = 700): RegistryRecord & { uuid: string } {
  const uuid = randomUUID();
  const data = encodeRecord({
    sequence,
    asOf: 1_767_225_600 + Number(sequence),
    score,
    openAccounts: 3,
    delinquencies: { days30: 1, days60: 0, days90: 0 },
    defaulted: false,
    totalBalance: 12_000,
    creditLimit: 50_000,
  });
  return { subject: subjectRef, eventId: eventIdToBytes16(uuid), data, uuid };
}

export async function submit(
  chain: ReadPathChain,
  bankId: 'BANK-A' | 'BANK-B',
  records: RegistryRecord[]
): Promise<TransactionReceipt> {
  const registry = connectRegistry(chain.registryAddress, chain.wallets[bankId]);
  const receipt = await (
    await registry.submitBatch(records.map(({ subject, eventId, data }) => ({ subject, eventId, data })))
  ).wait();
  if (!receipt) throw new Error('no receipt');
  return receipt;
}

/** A raw submitBatch transaction for anvil_reorg to put into the replacement chain. */
export async function rawSubmit(
  chain: ReadPathChain,
  bankId: 'BANK-A' | 'BANK-B',
  records: RegistryRecord[],
  nonce: number
): Promise<string> {
  return chain.wallets[bankId].signTransaction({
    to: chain.registryAddress,
    data: registryInterface.encodeFunctionData('submitBatch', [
      records.map(({ subject, eventId, data }) => ({ subject, eventId, data })),
    ]),
    nonce,
    gasLimit: 5_000_000,
    gasPrice: 10_000_000_000,
    chainId: chain.anvil.chainId,
    type: 0,
  });
}

export async function mine(provider: JsonRpcProvider, blocks: number): Promise<void> {
  await provider.send('anvil_mine', [toQuantity(blocks)]);
}

export interface RecordedTelemetry extends Telemetry {
  metrics: { name: string; value: number; dimensions?: Record<string, string> }[];
  events: { name: string; properties?: Record<string, string>; measurements?: Record<string, number> }[];
}

/** Keeps what the code under test reports, for assertions (the real SDK is exercised by the ops tests). */
export function recordingTelemetry(): RecordedTelemetry {
  const metrics: RecordedTelemetry['metrics'] = [];
  const events: RecordedTelemetry['events'] = [];
  return {
    metrics,
    events,
    metric: (name, value, dimensions) => metrics.push({ name, value, dimensions }),
    event: (name, properties, measurements) => events.push({ name, properties, measurements }),
    availability: () => undefined,
    exception: () => undefined,
    flush: async () => undefined,
  };
}

export function storeFor(chain: ReadPathChain, account: string): TableStore {
  const found = chain.azurite.accounts.find((a) => a.name === account);
  if (!found) throw new Error(`no storage account ${account}`);
  return new TableStore({ connectionString: found.connectionString });
}

export function watchSettings(
  chain: ReadPathChain,
  bankId: string,
  overrides: Partial<WatchSettings> = {}
): WatchSettings {
  return {
    bankId,
    registryAddress: chain.registryAddress,
    fromBlock: chain.deployBlock,
    confirmations: 2,
    logChunkBlocks: 2000,
    reorgWindowBlocks: 32,
    ...overrides,
  };
}

export function watcherFor(
  tables: TableStore,
  rpcUrl: string,
  settings: WatchSettings,
  telemetry: Telemetry = recordingTelemetry()
): { watcher: Watcher; chain: Chain } {
  const chain = new Chain({ rpcUrls: [rpcUrl], chainId: 31337, timeoutMs: 10_000 });
  return { watcher: new Watcher({ tables, chain, telemetry }, settings), chain };
}

/**
 * The full contents of the projection tables, keys included, system properties excluded, in key order. Without
 * the ledger's watermark rows: they say how far each bucket is applied, which a rollback leaves at the rollback's
 * block where a fresh projection has the bucket's last update.
 */
export async function dumpProjections(tables: TableStore): Promise<Record<string, Record<string, unknown>[]>> {
  const dump: Record<string, Record<string, unknown>[]> = {};
  for (const name of [TABLES.creditLedger, TABLES.members]) {
    const rows: Record<string, unknown>[] = [];
    for await (const row of (await tables.table(name)).listEntities<Record<string, unknown>>()) {
      const { etag: _e, timestamp: _t, ...fields } = row;
      if (fields.kind !== 'watermark') rows.push(fields);
    }
    dump[name] = rows;
  }
  return dump;
}

/** Projects the chain from scratch into an unused storage account: the reference a projection must equal. */
export async function freshProjection(
  chain: ReadPathChain,
  account: string,
  bankId: string
): Promise<Record<string, Record<string, unknown>[]>> {
  const tables = storeFor(chain, account);
  const { watcher, chain: rpc } = watcherFor(tables, chain.anvil.rpcUrl, watchSettings(chain, bankId));
  try {
    await watcher.run();
    return await dumpProjections(tables);
  } finally {
    rpc.destroy();
  }
}

export interface RpcProxy {
  url: string;
  getLogsCalls: { fromBlock: number; toBlock: number; refused: boolean }[];
  /** Runs once before the next eth_getLogs is forwarded (e.g. a reorg "in the middle of a run"). */
  beforeNextGetLogs?: () => Promise<void>;
  close(): Promise<void>;
}

/**
 * A JSON-RPC proxy in front of anvil that refuses eth_getLogs ranges wider than `maxRange` blocks the way
 * Besu and Infura do (code -32005 "limit exceeded"): the one narrow stand-in for a real node limit.
 */
export async function startRpcProxy(target: string, maxRange = Infinity): Promise<RpcProxy> {
  const proxy: RpcProxy = { url: '', getLogsCalls: [], close: async () => undefined };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const request = JSON.parse(body) as {
          id: number;
          method: string;
          params: [{ fromBlock: string; toBlock: string }];
        };
        if (request.method === 'eth_getLogs') {
          const fromBlock = Number(request.params[0].fromBlock);
          const toBlock = Number(request.params[0].toBlock);
          const refused = toBlock - fromBlock + 1 > maxRange;
          proxy.getLogsCalls.push({ fromBlock, toBlock, refused });
          if (refused) {
            res.writeHead(200, { 'content-type': 'application/json' }).end(
              JSON.stringify({
                jsonrpc: '2.0',
                id: request.id,
                error: {
                  code: -32005,
                  message: `query returned more than 10000 results; range exceeds ${maxRange} blocks`,
                },
              })
            );
            return;
          }
          const hook = proxy.beforeNextGetLogs;
          proxy.beforeNextGetLogs = undefined;
          await hook?.();
        }
        const upstream = await fetch(target, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        res.writeHead(upstream.status, { 'content-type': 'application/json' }).end(await upstream.text());
      })().catch((err: Error) => res.writeHead(500).end(err.message));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  proxy.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  proxy.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return proxy;
}
