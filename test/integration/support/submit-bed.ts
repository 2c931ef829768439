/** A one-bank bed for submitter tests: anvil, Azurite, a counting local signer, and chain-side checks. */
import { randomBytes, randomUUID } from 'node:crypto';
import { JsonRpcProvider, Wallet, toQuantity, type HDNodeWallet, type TransactionRequest } from 'ethers';
import { startAnvil, type Anvil, type AnvilOptions } from '../../../local/stack/anvil';
import { startAzurite, type Azurite } from '../../../local/stack/azurite';
import { deployConsortium } from '../../../local/stack/consortium';
import { registryInterface } from '../../../shared/chain/registry';
import { Chain } from '../../../shared/chain/provider';
import { loadConfig, type Config } from '../../../shared/config';
import { bytes16ToEventId } from '../../../shared/domain/event-id';
import { encodeRecord } from '../../../shared/domain/record-codec';
import { Batches, type BatchRow } from '../../../shared/storage/batches';
import { Outbox } from '../../../shared/storage/outbox';
import { TableStore } from '../../../shared/storage/tables';
import { createTelemetry } from '../../../shared/telemetry';
import { LocalTransactionSigner } from '../../support/local-signer';
import { runSubmit, type SubmitDeps } from '../../../shared/submit/submitter';

/** The test-only local signer over a generated wallet, counting signatures (the Key Vault signer has its own tests). */
export class CountingSigner extends LocalTransactionSigner {
  signatures = 0;
  constructor(readonly wallet: HDNodeWallet) {
    super(wallet);
  }
  override async signTransaction(tx: TransactionRequest): Promise<string> {
    this.signatures++;
    return super.signTransaction(tx);
  }
}

export interface Bed {
  anvil: Anvil;
  azurite: Azurite;
  provider: JsonRpcProvider;
  registryAddress: string;
  deployBlock: number;
  signer: CountingSigner;
  config: Config;
  tables: TableStore;
  deps(overrides?: Partial<SubmitDeps>): SubmitDeps;
  stop(): Promise<void>;
}

const telemetry = createTelemetry({ roleName: 'submitter-test', logger: { warn: () => undefined } });

export async function testBed(
  anvilOptions: AnvilOptions,
  settings: Record<string, string> = {},
  rpcUrl?: (anvil: Anvil) => string
): Promise<Bed> {
  const [anvil, azurite] = await Promise.all([startAnvil(anvilOptions), startAzurite()]);
  const wallet = Wallet.createRandom();
  const { registryAddress, deployBlock } = await deployConsortium(anvil.rpcUrl, [
    { address: wallet.address, bankId: 'BANK-A' },
  ]);
  // Blocks above the member's funding, so the reorgs tests make (up to 12 deep) keep the balance and the registry.
  const setup = new JsonRpcProvider(anvil.rpcUrl, undefined, { staticNetwork: true });
  await setup.send('anvil_mine', ['0x10']);
  setup.destroy();
  const config = loadConfig({
    LEDGER_ENVIRONMENT: 'local',
    BANK_ID: 'BANK-A',
    AzureWebJobsStorage: azurite.accounts[0]!.connectionString,
    KEY_VAULT_URL: 'https://127.0.0.1:1',
    SIGNER_KEY_NAME: 'unused-here',
    CHAIN_RPC_URLS: rpcUrl ? rpcUrl(anvil) : anvil.rpcUrl,
    CHAIN_ID: String(anvil.chainId),
    REGISTRY_ADDRESS: registryAddress,
    ...settings,
  });
  const tables = new TableStore(config.storage);
  const chains: Chain[] = [];
  const signer = new CountingSigner(wallet);
  const provider = new JsonRpcProvider(anvil.rpcUrl, undefined, { cacheTimeout: -1, staticNetwork: true });
  return {
    anvil,
    azurite,
    provider,
    registryAddress,
    deployBlock,
    signer,
    config,
    tables,
    deps: (overrides = {}) => {
      const chain = new Chain({ rpcUrls: config.chain.rpcUrls, chainId: config.chain.chainId, timeoutMs: 2_000 });
      chains.push(chain);
      return {
        config,
        outbox: new Outbox(tables),
        batches: new Batches(tables),
        chain,
        signer,
        telemetry,
        ...overrides,
      };
    },
    async stop() {
      for (const chain of chains) chain.destroy();
      provider.destroy();
      await Promise.all([anvil.stop(), azurite.stop()]);
    },
  };
}

/**
 * Accepts `n` events into the outbox, returning their ids: for distinct new subjects, for one given subject
 * (sequences rising from `firstSequence`), or for the given subjects, one each (all at `firstSequence`).
 */
export async function acceptEvents(
  bed: Bed,
  n: number,
  subject?: string | string[],
  firstSequence = 1
): Promise<string[]> {
  const outbox = new Outbox(new TableStore(bed.config.storage));
  const ids: string[] = [];
  const now = Math.floor(Date.now() / 1000);
  for (let i = 0; i < n; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, n - i) }, async (_, j) => {
        const eventId = randomUUID();
        const sequence = BigInt(typeof subject === 'string' ? firstSequence + i + j : firstSequence);
        const data = encodeRecord({
          sequence,
          asOf: now,
          score: 600 + ((i + j) % 200),
          openAccounts: 3,
          delinquencies: { days30: 0, days60: 0, days90: 0 },
          defaulted: false,
          totalBalance: 1000,
          creditLimit: 5000,
        });
        ids.push(eventId);
        await outbox.accept({
          eventId,
          subjectRef: Array.isArray(subject) ? subject[i + j]! : (subject ?? '0x' + randomBytes(32).toString('hex')),
          data: toQuantity(data),
          sequence: String(sequence),
          enqueuedAt: new Date(Date.now() + i + j).toISOString(),
          messageId: `m-${eventId}`,
          acceptedAt: new Date().toISOString(),
        });
      })
    );
  }
  return ids;
}

/** Runs the submitter until nothing is pending and every batch is mined. */
export async function drain(bed: Bed, deps: SubmitDeps, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const report = await runSubmit(deps).catch((err: Error) => {
      if (Date.now() > deadline) throw err;
      return undefined; // transient (endpoint down, throttled): the timer would simply run again
    });
    const pending = await deps.outbox.readPending(1);
    const open = await openRows(deps);
    if (report && pending.length === 0 && open.every((row) => row.status === 'mined')) return;
    if (Date.now() > deadline)
      throw new Error(
        `not drained: ${pending.length} pending, ${open.filter((r) => r.status !== 'mined').length} batch(es) in flight`
      );
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The batch rows still in play (signed or mined) of the test signer. */
export async function openRows(deps: SubmitDeps): Promise<BatchRow[]> {
  const signer = await deps.signer.getAddress();
  const chainNonce = await deps.chain.primary.getTransactionCount(signer, 'latest');
  const { rows } = await deps.batches.recent(signer, chainNonce, 1000);
  return rows.filter((row) => row.status === 'signed' || row.status === 'mined');
}

export interface ChainView {
  applied: Map<string, number>;
  skipped: Map<string, number>;
  txs: Set<string>;
  txsPerBlock: Map<number, number>;
  gasUsed: bigint;
}

export async function chainView(bed: Bed): Promise<ChainView> {
  const logs = await bed.provider.getLogs({
    address: bed.registryAddress,
    fromBlock: bed.deployBlock,
    toBlock: 'latest',
  });
  const view: ChainView = {
    applied: new Map(),
    skipped: new Map(),
    txs: new Set(),
    txsPerBlock: new Map(),
    gasUsed: 0n,
  };
  for (const log of logs) {
    const parsed = registryInterface.parseLog(log);
    if (parsed?.name !== 'CreditRecordUpdated' && parsed?.name !== 'CreditRecordSkipped') continue;
    const eventId = bytes16ToEventId(parsed.args.eventId as string);
    const map = parsed.name === 'CreditRecordUpdated' ? view.applied : view.skipped;
    map.set(eventId, (map.get(eventId) ?? 0) + 1);
    if (!view.txs.has(log.transactionHash)) {
      view.txs.add(log.transactionHash);
      view.txsPerBlock.set(log.blockNumber, (view.txsPerBlock.get(log.blockNumber) ?? 0) + 1);
      view.gasUsed += (await bed.provider.getTransactionReceipt(log.transactionHash))!.gasUsed;
    }
  }
  return view;
}

export function expectExactlyOnce(view: ChainView, ids: string[]): void {
  expect(ids.filter((id) => view.applied.get(id) !== 1)).toEqual([]);
  expect([...view.skipped.keys()].filter((id) => ids.includes(id))).toEqual([]);
}
