import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { JsonRpcProvider, Transaction, Wallet, toQuantity, type HDNodeWallet, type TransactionRequest } from 'ethers';
import { startAnvil, type Anvil, type AnvilOptions } from '../../local/stack/anvil';
import { startAzurite, type Azurite } from '../../local/stack/azurite';
import { deployConsortium } from '../../local/stack/consortium';
import { registryInterface } from '../../shared/chain/registry';
import { Chain } from '../../shared/chain/provider';
import { loadConfig, type Config } from '../../shared/config';
import { bytes16ToEventId } from '../../shared/domain/event-id';
import { encodeRecord } from '../../shared/domain/record-codec';
import { Batches } from '../../shared/storage/batches';
import { Outbox } from '../../shared/storage/outbox';
import { TableStore } from '../../shared/storage/tables';
import { createTelemetry } from '../../shared/telemetry';
import { LocalTransactionSigner } from '../../shared/signing/transaction-signer';
import { runSubmit, type SubmitDeps } from '../../shared/submit/submitter';

/** The test-only local signer over a generated wallet, counting signatures (the Key Vault signer has its own tests). */
class CountingSigner extends LocalTransactionSigner {
  signatures = 0;
  constructor(readonly wallet: HDNodeWallet) {
    super(wallet);
  }
  override async signTransaction(tx: TransactionRequest): Promise<string> {
    this.signatures++;
    return super.signTransaction(tx);
  }
}

interface Bed {
  anvil: Anvil;
  azurite: Azurite;
  provider: JsonRpcProvider;
  registryAddress: string;
  deployBlock: number;
  signer: CountingSigner;
  config: Config;
  deps(overrides?: Partial<SubmitDeps>): SubmitDeps;
  stop(): Promise<void>;
}

const telemetry = createTelemetry({ roleName: 'submitter-test', logger: { warn: () => undefined } });

async function testBed(
  anvilOptions: AnvilOptions,
  settings: Record<string, string> = {},
  rpcUrl?: (anvil: Anvil) => string
): Promise<Bed> {
  const [anvil, azurite] = await Promise.all([startAnvil(anvilOptions), startAzurite()]);
  const wallet = Wallet.createRandom();
  const { registryAddress, deployBlock } = await deployConsortium(anvil.rpcUrl, [
    { address: wallet.address, bankId: 'BANK-A' },
  ]);
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

/** Accepts `n` events for distinct subjects (or the given subject) into the outbox, returning their ids. */
async function acceptEvents(bed: Bed, n: number, subject?: string, firstSequence = 1): Promise<string[]> {
  const outbox = new Outbox(new TableStore(bed.config.storage));
  const ids: string[] = [];
  const now = Math.floor(Date.now() / 1000);
  for (let i = 0; i < n; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, n - i) }, async (_, j) => {
        const eventId = randomUUID();
        const sequence = BigInt(subject ? firstSequence + i + j : firstSequence);
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
          subjectRef: subject ?? '0x' + randomBytes(32).toString('hex'),
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
async function drain(bed: Bed, deps: SubmitDeps, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const report = await runSubmit(deps).catch((err: Error) => {
      if (Date.now() > deadline) throw err;
      return undefined; // transient (endpoint down, throttled): the timer would simply run again
    });
    const pending = await deps.outbox.readPending(1);
    const open = await deps.batches.open(report?.signer ?? bed.signer.wallet.address);
    if (report && pending.length === 0 && open.every((row) => row.status === 'mined')) return;
    if (Date.now() > deadline)
      throw new Error(
        `not drained: ${pending.length} pending, ${open.filter((r) => r.status !== 'mined').length} batch(es) in flight`
      );
    await new Promise((r) => setTimeout(r, 250));
  }
}

interface ChainView {
  applied: Map<string, number>;
  skipped: Map<string, number>;
  txs: Set<string>;
  txsPerBlock: Map<number, number>;
  gasUsed: bigint;
}

async function chainView(bed: Bed): Promise<ChainView> {
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

function expectExactlyOnce(view: ChainView, ids: string[]): void {
  expect(ids.filter((id) => view.applied.get(id) !== 1)).toEqual([]);
  expect([...view.skipped.keys()].filter((id) => ids.includes(id))).toEqual([]);
}

describe('submitter on a 1 s block chain', () => {
  let bed: Bed;
  beforeAll(async () => {
    bed = await testBed({ blockTimeSeconds: 1 });
  });
  afterAll(async () => bed?.stop());

  it('puts 1,000 events on chain exactly once, in a handful of transactions per block', async () => {
    const ids = await acceptEvents(bed, 1000);
    const before = bed.signer.signatures;
    const started = Date.now();
    await drain(bed, bed.deps());
    const seconds = (Date.now() - started) / 1000;
    const view = await chainView(bed);
    expectExactlyOnce(view, ids);
    const signatures = bed.signer.signatures - before;
    expect(Math.max(...view.txsPerBlock.values())).toBeLessThanOrEqual(4);
    expect(signatures).toBeLessThanOrEqual(5);
    console.log(
      `1,000 events: ${view.txs.size} transactions, ${signatures} signatures (${(signatures / 1000).toFixed(4)} per record), ` +
        `${(Number(view.gasUsed) / 1000).toFixed(0)} gas per record, drained in ${seconds.toFixed(1)} s`
    );
  });

  it('never lets an older sequence overwrite a newer one', async () => {
    const subject = '0x' + randomBytes(32).toString('hex');
    const [newer] = await acceptEvents(bed, 1, subject, 5);
    await drain(bed, bed.deps());
    const [older] = await acceptEvents(bed, 1, subject, 3);
    await drain(bed, bed.deps());
    const view = await chainView(bed);
    expect(view.applied.get(newer!)).toBe(1);
    expect(view.applied.get(older!)).toBeUndefined();
    expect(view.skipped.get(older!)).toBe(1);
  });

  it.each(['afterSign', 'afterWriteAhead', 'afterBroadcast'] as const)(
    'loses and duplicates nothing after a crash %s',
    async (point) => {
      const ids = await acceptEvents(bed, 300);
      const crash = new Error(`crash ${point}`);
      const crashing = bed.deps({
        crashPoints: {
          [point]: () => {
            throw crash;
          },
        },
      });
      await expect(runSubmit(crashing)).rejects.toBe(crash);
      await drain(bed, bed.deps()); // the restarted instance
      expectExactlyOnce(await chainView(bed), ids);
    }
  );

  it('lets only one of two concurrent submitters take each nonce', async () => {
    const ids = await acceptEvents(bed, 400);
    await Promise.all([runSubmit(bed.deps()), runSubmit(bed.deps())]);
    await drain(bed, bed.deps());
    expectExactlyOnce(await chainView(bed), ids);
  });

  it('abandons a batch whose nonce another transaction took, and submits its events again', async () => {
    const ids = await acceptEvents(bed, 50);
    const crash = new Error('crash after write-ahead');
    await expect(
      runSubmit(
        bed.deps({
          crashPoints: {
            afterWriteAhead: () => {
              throw crash;
            },
          },
        })
      )
    ).rejects.toBe(crash);
    // The same key sends something else with that nonce, outside ledger-bridge.
    const nonce = await bed.provider.getTransactionCount(bed.signer.wallet.address, 'latest');
    const foreign = await bed.signer.wallet
      .connect(bed.provider)
      .sendTransaction({ to: bed.signer.wallet.address, value: 0n, nonce });
    await foreign.wait();
    await drain(bed, bed.deps());
    expectExactlyOnce(await chainView(bed), ids);
  });
});

describe('submitter with the RPC endpoint down for a while', () => {
  let bed: Bed;
  let proxy: Server;
  let down = false;

  beforeAll(async () => {
    // The load balancer in front of the node: while "down" it refuses every request, like an outage.
    proxy = createServer((req, res) => {
      if (down) return req.socket.destroy();
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        fetch(bed.anvil.rpcUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: Buffer.concat(chunks),
        })
          .then(async (r) => res.writeHead(r.status, { 'content-type': 'application/json' }).end(await r.text()))
          .catch(() => req.socket.destroy());
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const port = (proxy.address() as { port: number }).port;
    bed = await testBed({ blockTimeSeconds: 1 }, {}, () => `http://127.0.0.1:${port}`);
  });
  afterAll(async () => {
    await bed?.stop();
    await new Promise<void>((resolve) => proxy.close(() => resolve()));
  });

  it('loses nothing and drains the backlog after recovery', async () => {
    const ids = await acceptEvents(bed, 200);
    down = true;
    const outage = bed.deps();
    const deadline = Date.now() + 30_000;
    let failedRuns = 0;
    while (Date.now() < deadline) {
      await runSubmit(outage).catch(() => failedRuns++);
      await new Promise((r) => setTimeout(r, 1_000));
    }
    expect(failedRuns).toBeGreaterThan(20);
    expect((await outage.outbox.readPending(1000)).length).toBe(200);
    down = false;
    await drain(bed, bed.deps());
    expectExactlyOnce(await chainView(bed), ids);
  }, 90_000);
});

describe('submitter fees', () => {
  it('uses legacy transactions at price 0 on a zero-gas chain', async () => {
    const bed = await testBed({ blockTimeSeconds: 0, freeGas: true });
    try {
      const ids = await acceptEvents(bed, 20);
      await drain(bed, bed.deps());
      const view = await chainView(bed);
      expectExactlyOnce(view, ids);
      const tx = await bed.provider.getTransaction([...view.txs][0]!);
      expect(tx).toMatchObject({ type: 0, gasPrice: 0n });
    } finally {
      await bed.stop();
    }
  });

  it('rebroadcasts a transaction that is not mined, then replaces it with higher fees on an EIP-1559 chain', async () => {
    const bed = await testBed({ blockTimeSeconds: 0 }, { SUBMIT_REBROADCAST_AFTER_BLOCKS: '1' });
    try {
      await bed.provider.send('evm_setAutomine', [false]);
      const ids = await acceptEvents(bed, 10);
      const deps = bed.deps();
      const dropAndMine = async (): Promise<void> => {
        // The transaction vanished from every mempool (e.g. evicted); blocks go on without it.
        for (const hash of (await deps.batches.open(bed.signer.wallet.address)).flatMap((r) => r.txHashes)) {
          await bed.provider.send('anvil_dropTransaction', [hash]);
        }
        await bed.provider.send('evm_mine', []);
      };
      await runSubmit(deps); // signs and broadcasts
      await dropAndMine();
      await runSubmit(deps); // rebroadcast #1 (same raw transaction)
      await dropAndMine();
      const report = await runSubmit(deps); // rebroadcast #2 with higher fees
      expect(report.feeBumps).toBe(1);
      const [row] = await deps.batches.open(bed.signer.wallet.address);
      expect(row!.txHashes).toHaveLength(2);
      const [first, bumped] = row!.rawTxs.map((raw) => Transaction.from(raw));
      expect(first!.type).toBe(2);
      expect(bumped!.maxFeePerGas! > first!.maxFeePerGas!).toBe(true);
      expect(bumped!.nonce).toBe(first!.nonce);
      await bed.provider.send('evm_mine', []);
      await bed.provider.send('evm_setAutomine', [true]);
      await drain(bed, deps);
      expectExactlyOnce(await chainView(bed), ids);
      const [mined] = await deps.batches.open(bed.signer.wallet.address);
      expect(mined!.minedTxHash).toBe(row!.txHashes[1]);
    } finally {
      await bed.stop();
    }
  });
});
