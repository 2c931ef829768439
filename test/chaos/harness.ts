import { createWriteStream, mkdirSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { JsonRpcProvider } from 'ethers';
import { spawnFunctionHost, type RunningHost } from '../../local/host/spawn';
import { publishEvents } from '../../local/publish-events';
import { bankSettings, startStack, type Stack } from '../../local/stack/stack';
import { sampleCreditUpdates } from '../../local/sample-events';
import type { CreditUpdate } from '../../shared/domain/credit-update';
import type { StatusReport } from '../../shared/ops/status';
import { TableStore } from '../../shared/storage/tables';

/**
 * The local consortium under faults: the real stack (Azurite per bank, anvil, the Key Vault and Application
 * Insights stand-ins) and one Function App per bank in the local host, every app reaching the chain through a
 * gate that can refuse connections like a load balancer that is down. Tests drive faults through it and read the
 * chain, every bank's tables and every bank's /api/status.
 */

export const CHAOS_CHAIN = { blockTimeSeconds: 1, confirmations: 2, reorgWindowBlocks: 8 } as const;
/** RecordsUnconfirmed threshold of the apps under test: short, so faults make records count as stuck. */
export const UNCONFIRMED_AGE_SECONDS = 20;

/** A TCP gate in front of the chain's RPC port: `down()` refuses every connection until `up()`. */
export class RpcGate {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(private targetPort: number) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async up(): Promise<void> {
    if (this.server) return;
    const server = createServer((client) => {
      const upstream = connect(this.targetPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => [client, upstream].forEach((x) => x.destroy()));
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** The chain moved (a restart gives anvil a new port); the gate keeps its own. */
  retarget(port: number): void {
    this.targetPort = port;
  }
}

export interface Published {
  event: CreditUpdate;
  bankIndex: number;
  at: number;
}

export class ChaosConsortium {
  readonly hosts = new Map<string, RunningHost[]>();
  private sequenceBase = Math.floor(Date.now() / 1000);

  private constructor(
    public stack: Stack,
    readonly gate: RpcGate,
    public provider: JsonRpcProvider,
    readonly dataDir: string,
    private readonly log: (line: string) => void
  ) {}

  static async start(dataDir: string, log: (line: string) => void): Promise<ChaosConsortium> {
    const stack = await startChain(dataDir);
    const gate = new RpcGate(portOf(stack.info.chain.rpcUrl));
    await gate.up();
    const consortium = new ChaosConsortium(stack, gate, providerFor(stack), dataDir, log);
    try {
      await consortium.startApps();
    } catch (err) {
      await consortium.stop();
      throw err;
    }
    return consortium;
  }

  get bankIds(): string[] {
    return this.stack.info.banks.map((b) => b.bankId);
  }

  /** One bank's app settings: the stack's, with the chain behind the gate and short ops intervals. */
  settings(bankId: string): Record<string, string> {
    return {
      ...bankSettings(this.stack.info, bankId),
      CHAIN_RPC_URLS: this.gate.url,
      VALIDATOR_RPC_URLS: this.gate.url,
      HEARTBEAT_SCHEDULE: '*/2 * * * * *',
      WATCH_REORG_WINDOW_BLOCKS: String(CHAOS_CHAIN.reorgWindowBlocks),
      ALERT_UNCONFIRMED_AGE_SECONDS: String(UNCONFIRMED_AGE_SECONDS),
      ALERT_BATCH_STUCK_BLOCKS: '15',
    };
  }

  tables(bankId: string): TableStore {
    return new TableStore({ connectionString: this.settings(bankId).AzureWebJobsStorage! });
  }

  /** Starts one more Function App for the bank (a second one runs beside the first, as in a slot swap). */
  async startHost(bankId: string): Promise<RunningHost> {
    // Each app's log in the data dir, kept for a post-mortem when a scenario fails.
    mkdirSync(join(this.dataDir, 'logs'), { recursive: true });
    const file = createWriteStream(join(this.dataDir, 'logs', `${bankId}.log`), { flags: 'a' });
    const host = await spawnFunctionHost({
      name: `${bankId} app`,
      appDir: join(__dirname, '..', '..'),
      settings: this.settings(bankId),
      onLine: (line) => file.write(`${new Date().toISOString()} ${line}\n`),
    });
    this.hosts.set(bankId, [...(this.hosts.get(bankId) ?? []), host]);
    return host;
  }

  /** SIGKILL of every app of the bank, as an instance that dies mid-run. */
  async killHosts(bankId: string): Promise<void> {
    for (const host of this.hosts.get(bankId) ?? []) {
      const exited = new Promise((r) => host.process.child.once('exit', r));
      host.process.child.kill('SIGKILL');
      await exited;
    }
    this.hosts.set(bankId, []);
  }

  async stopHost(bankId: string, host: RunningHost): Promise<void> {
    await host.stop();
    this.hosts.set(
      bankId,
      (this.hosts.get(bankId) ?? []).filter((h) => h !== host)
    );
  }

  /** Publishes `perBank` new events for every bank to its queue; returns them with their send times. */
  async publish(perBank: number): Promise<Published[]> {
    this.sequenceBase += 1_000;
    const published: Published[] = [];
    await Promise.all(
      this.stack.info.banks.map(async (bank, bankIndex) => {
        const events = sampleCreditUpdates({ bankId: bank.bankId, count: perBank, sequenceBase: this.sequenceBase });
        await publishEvents(bank.serviceBusConnectionString, events, (event, at) =>
          published.push({ event, bankIndex, at })
        );
      })
    );
    return published;
  }

  /**
   * Replaces the last `depth` blocks with empty ones (their transactions are gone, from the pool too). anvil gives
   * the replacement blocks their old timestamps and keeps mining at that lag, which a real chain does not: the
   * next block is put back on the wall clock.
   */
  async reorg(depth: number): Promise<void> {
    this.log(`anvil_reorg ${depth}`);
    await this.provider.send('anvil_reorg', [depth, []]);
    await this.provider.send('evm_setNextBlockTimestamp', [Math.floor(Date.now() / 1000)]);
  }

  /** Every bank's /api/status; undefined for a bank whose app does not answer. */
  async statuses(): Promise<Map<string, StatusReport | undefined>> {
    const out = new Map<string, StatusReport | undefined>();
    await Promise.all(
      this.bankIds.map(async (bankId) => {
        const host = this.hosts.get(bankId)?.[0];
        const report = host
          ? await fetch(`${host.url}/api/status`, {
              headers: { 'x-functions-key': host.functionKey },
              signal: AbortSignal.timeout(3_000),
            })
              .then(async (r) => (r.ok ? ((await r.json()) as StatusReport) : undefined))
              .catch(() => undefined)
          : undefined;
        out.set(bankId, report);
      })
    );
    return out;
  }

  /** Stops every app and the stack gracefully, then starts both again on the same data dir. */
  async restartAll(): Promise<void> {
    await this.stopApps();
    this.provider.destroy();
    await this.stack.stop();
    this.stack = await startChain(this.dataDir);
    this.provider = providerFor(this.stack);
    this.gate.retarget(portOf(this.stack.info.chain.rpcUrl));
    await this.startApps();
  }

  async stop(): Promise<void> {
    await this.stopApps();
    await this.gate.down();
    this.provider.destroy();
    await this.stack.stop();
  }

  private async startApps(): Promise<void> {
    this.log(`starting ${this.bankIds.length} Function Apps`);
    await Promise.all(this.bankIds.map((bankId) => this.startHost(bankId)));
  }

  private async stopApps(): Promise<void> {
    await Promise.all([...this.hosts.values()].flat().map((h) => h.stop().catch(() => undefined)));
    this.hosts.clear();
  }
}

function startChain(dataDir: string): Promise<Stack> {
  return startStack({
    banks: 3,
    blockTimeSeconds: CHAOS_CHAIN.blockTimeSeconds,
    confirmations: CHAOS_CHAIN.confirmations,
    dataDir,
  });
}

const portOf = (url: string): number => Number(new URL(url).port);
const providerFor = (stack: Stack): JsonRpcProvider =>
  new JsonRpcProvider(stack.info.chain.rpcUrl, undefined, { staticNetwork: true, cacheTimeout: -1 });
