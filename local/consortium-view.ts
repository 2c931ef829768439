import { createWriteStream, mkdirSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { TableClient } from '@azure/data-tables';
import { id as topicOf, JsonRpcProvider } from 'ethers';
import { bytes32ToBankId } from '../shared/chain/registry';
import { CREDIT_UPDATES_QUEUE, type CreditUpdate } from '../shared/domain/credit-update';
import { sampleCreditUpdates } from './sample-events';
import { TABLES, type TableName } from '../shared/storage/tables';
import { ServiceBusClient } from '@azure/service-bus';
import { ServiceBusDeadLetterCounter } from '../shared/ops/dead-letters';
import { publishEvents } from './publish-events';
import { spawnFunctionHost, type RunningHost } from './host/spawn';
import {
  bankSettings,
  defaultStackFile,
  startStack,
  writeStackFile,
  type Stack,
  type StackInfo,
  type StackOptions,
} from './stack/stack';

/**
 * `ledger-bridge start`: the local consortium (the stack plus one Function App per bank), an optional demo load,
 * and a live view of every bank's pipeline read from the same places the apps write (tables, queues, chain).
 */

export interface Consortium {
  stack: Stack;
  hosts: RunningHost[];
  info: StackInfo;
  stackFile: string;
  stop(): Promise<void>;
}

export async function startConsortium(
  options: StackOptions,
  stackFile = defaultStackFile(),
  log: (line: string) => void = () => undefined
): Promise<Consortium> {
  const stack = await startStack({ ...options, log });
  const hosts: RunningHost[] = [];
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.all(hosts.map((h) => h.stop().catch(() => undefined)));
    await stack.stop();
    rmSync(stackFile, { force: true });
  };
  try {
    const logDir = resolve(options.dataDir ?? '.local', 'logs');
    mkdirSync(logDir, { recursive: true });
    // The apps start in parallel: each is its own process.
    const started = await Promise.all(
      stack.info.banks.map(async (bank) => {
        const hostLog = createWriteStream(resolve(logDir, `${bank.bankId}.log`), { flags: 'a' });
        log(`starting the Function App of ${bank.bankId} (log: ${resolve(logDir, `${bank.bankId}.log`)})…`);
        const host = await spawnFunctionHost({
          name: `Function App ${bank.bankId}`,
          appDir: resolve(__dirname, '../..'),
          settings: bankSettings(stack.info, bank.bankId),
          onLine: (line) => hostLog.write(`${line}\n`),
        });
        hosts.push(host);
        return host;
      })
    );
    stack.info.hosts = started.map((h, i) => ({
      bankId: stack.info.banks[i]!.bankId,
      url: h.url,
      functionKey: h.functionKey,
      masterKey: h.masterKey,
    }));
    writeStackFile(stack.info, stackFile);
    return { stack, hosts: started, info: stack.info, stackFile, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

export const dashboardUrl = (host: { url: string; functionKey: string }): string =>
  `${host.url}/api/dashboard?code=${host.functionKey}`;

/** Demo events spread over the banks; every 4th event of a bank is about a subject every bank reports on. */
export function demoEvents(info: StackInfo, count: number, sequenceBase: number): CreditUpdate[] {
  const banks = info.banks.map((b) => b.bankId);
  const all: CreditUpdate[] = [];
  for (const [b, bankId] of banks.entries()) {
    const n = Math.floor(count / banks.length) + (b < count % banks.length ? 1 : 0);
    const events = sampleCreditUpdates({ bankId, count: n, sequenceBase });
    for (const [i, e] of events.entries()) {
      if (i % 4 === 0 && 'value' in e.subject) {
        const k = i / 4;
        e.subject = {
          ...e.subject,
          value: `1970${String(1 + (k % 12)).padStart(2, '0')}01-9${String(k % 1000).padStart(3, '0')}`,
        };
      }
    }
    all.push(...events);
  }
  // Interleave the banks so every bank's queue is busy from the start.
  return all.sort((a, b) => a.eventId.localeCompare(b.eventId));
}

interface BankTables {
  bankId: string;
  tables: Map<TableName, TableClient>;
  deadLetters: ServiceBusDeadLetterCounter;
}

export interface BankSnapshot {
  bankId: string;
  published: number;
  pending: number;
  onChain: number;
  projected: number;
  rejections: number;
  deadLetters: number;
}

export interface Snapshot {
  at: number;
  head: number;
  blockTimeSeconds: number | null;
  txPerMinute: number;
  validators: string;
  banks: BankSnapshot[];
}

const CREDIT_RECORD_UPDATED = topicOf('CreditRecordUpdated(bytes32,bytes32,bytes16,uint256)');

/**
 * Reads what the consortium has done: per bank its outbox, rejections, dead letters and projections, the chain's
 * records by reporting bank, block times and tx/min. `seen` maps every projected event id to when this monitor
 * first saw it at each bank (and how many history rows it has there: exactly once means 1).
 */
export class ConsortiumMonitor {
  readonly provider: JsonRpcProvider;
  private readonly banks: BankTables[];
  /** Events published per bank by this process (shared with the demo so the view keeps counting after it). */
  published = new Map<string, number>();
  /** eventId → bankId → { first seen ms, history rows } */
  readonly seen = new Map<string, Map<string, { at: number; rows: number }>>();
  private logCursor: number;
  private readonly onChainByBank = new Map<string, number>();
  private readonly blocks = new Map<number, { time: number; txs: number }>();
  private validators = '?';
  private lastStatusAt = 0;

  constructor(private readonly consortium: { info: StackInfo }) {
    const info = consortium.info;
    this.provider = new JsonRpcProvider(info.chain.rpcUrl, undefined, { staticNetwork: true, cacheTimeout: -1 });
    this.logCursor = info.chain.deployBlock;
    this.banks = info.banks.map((b) => ({
      bankId: b.bankId,
      tables: new Map(
        [TABLES.outbox, TABLES.rejections, TABLES.creditLedger].map((t) => [
          t,
          TableClient.fromConnectionString(b.storageConnectionString, t, { allowInsecureConnection: true }),
        ])
      ),
      deadLetters: new ServiceBusDeadLetterCounter(
        () => new ServiceBusClient(b.serviceBusConnectionString),
        CREDIT_UPDATES_QUEUE
      ),
    }));
  }

  destroy(): void {
    this.provider.destroy();
  }

  private async rows<T extends object>(
    bank: BankTables,
    table: TableName,
    filter?: string,
    select?: string[]
  ): Promise<T[]> {
    const out: T[] = [];
    try {
      for await (const page of bank.tables
        .get(table)!
        .listEntities<T>({ queryOptions: { filter, select } })
        .byPage({ maxPageSize: 1000 }))
        out.push(...page);
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err; // the table is created on first use
    }
    return out;
  }

  private async chain(): Promise<{ head: number }> {
    const head = await this.provider.getBlockNumber();
    if (head > this.logCursor) {
      const logs = await this.provider.getLogs({
        address: this.consortium.info.chain.registryAddress,
        topics: [CREDIT_RECORD_UPDATED],
        fromBlock: this.logCursor + 1,
        toBlock: head,
      });
      for (const log of logs) {
        const bankId = bytes32ToBankId(log.topics[2]!);
        this.onChainByBank.set(bankId, (this.onChainByBank.get(bankId) ?? 0) + 1);
      }
      for (let n = Math.max(this.logCursor + 1, head - 30); n <= head; n++) {
        const block = await this.provider.getBlock(n);
        if (block) this.blocks.set(n, { time: block.timestamp, txs: block.transactions.length });
      }
      for (const n of this.blocks.keys()) if (n < head - 30) this.blocks.delete(n);
      this.logCursor = head;
    }
    return { head };
  }

  async snapshot(): Promise<Snapshot> {
    const now = Date.now();
    const { head } = await this.chain();
    if (now - this.lastStatusAt > 10_000) {
      this.lastStatusAt = now;
      const host = this.consortium.info.hosts?.[0];
      if (host) {
        const res = await fetch(`${host.url}/api/status`, { headers: { 'x-functions-key': host.functionKey } }).catch(
          () => undefined
        );
        const body = res?.ok
          ? ((await res.json()) as { validators: { overall: string; nodes: { status: string }[] } })
          : undefined;
        this.validators = body
          ? `${body.validators.overall} (${body.validators.nodes.filter((n) => n.status === 'up').length}/${body.validators.nodes.length} up)`
          : '?';
      }
    }
    const banks = await Promise.all(
      this.banks.map(async (bank): Promise<BankSnapshot> => {
        const [pending, rejections, history, deadLetters] = await Promise.all([
          this.rows(bank, TABLES.outbox, "RowKey ge 'p_' and RowKey lt 'p`'", ['RowKey']),
          this.rows(bank, TABLES.rejections, undefined, ['RowKey']),
          this.rows<{ eventId: string }>(bank, TABLES.creditLedger, "kind eq 'history'", ['eventId']),
          bank.deadLetters.count().catch(() => 0),
        ]);
        const counts = new Map<string, number>();
        for (const row of history) counts.set(row.eventId, (counts.get(row.eventId) ?? 0) + 1);
        for (const [eventId, rows] of counts) {
          let at = this.seen.get(eventId);
          if (!at) this.seen.set(eventId, (at = new Map<string, { at: number; rows: number }>()));
          const prev = at.get(bank.bankId);
          at.set(bank.bankId, { at: prev?.at ?? now, rows });
        }
        return {
          bankId: bank.bankId,
          published: this.published.get(bank.bankId) ?? 0,
          pending: pending.length,
          onChain: this.onChainByBank.get(bank.bankId) ?? 0,
          projected: history.length,
          rejections: rejections.length,
          deadLetters,
        };
      })
    );
    const sorted = [...this.blocks.entries()].sort((a, b) => a[0] - b[0]);
    const first = sorted[0]?.[1];
    const last = sorted[sorted.length - 1]?.[1];
    const blockTimeSeconds = first && last && sorted.length > 1 ? (last.time - first.time) / (sorted.length - 1) : null;
    const span = first && last ? Math.max(1, Date.now() / 1000 - first.time) : 0;
    const txs = sorted.reduce((sum, [, b]) => sum + b.txs, 0);
    return {
      at: now,
      head,
      blockTimeSeconds,
      txPerMinute: span ? Math.round((txs * 60) / span) : 0,
      validators: this.validators,
      banks,
    };
  }
}

export function renderSnapshot(s: Snapshot, info: StackInfo): string[] {
  const header = `block ${s.head}  block time ${s.blockTimeSeconds === null ? '?' : s.blockTimeSeconds.toFixed(1)} s  ${s.txPerMinute} tx/min  validators ${s.validators}`;
  const cols = `${'bank'.padEnd(8)} ${'published'.padStart(9)} ${'pending'.padStart(8)} ${'on chain'.padStart(9)} ${'projected'.padStart(9)} ${'rejected'.padStart(8)} ${'dead'.padStart(5)}  dashboard`;
  const rows = s.banks.map((b) => {
    const host = info.hosts?.find((h) => h.bankId === b.bankId);
    return `${b.bankId.padEnd(8)} ${String(b.published).padStart(9)} ${String(b.pending).padStart(8)} ${String(b.onChain).padStart(9)} ${String(b.projected).padStart(9)} ${String(b.rejections).padStart(8)} ${String(b.deadLetters).padStart(5)}  ${host ? dashboardUrl(host) : ''}`;
  });
  return [header, cols, ...rows];
}

/** Redraws in place on a terminal; otherwise one compact line every `plainEveryMs`. */
export function liveView(out: NodeJS.WriteStream, info: StackInfo, plainEveryMs = 10_000): (s: Snapshot) => void {
  let drawn = 0;
  let lastPlain = 0;
  return (s) => {
    if (out.isTTY) {
      const lines = renderSnapshot(s, info);
      out.write(`${drawn ? `\x1b[${drawn}A` : ''}${lines.map((l) => `\x1b[2K${l}`).join('\n')}\n`);
      drawn = lines.length;
    } else if (s.at - lastPlain >= plainEveryMs) {
      lastPlain = s.at;
      out.write(
        `${new Date(s.at).toISOString()} block ${s.head} ` +
          s.banks
            .map(
              (b) =>
                `${b.bankId} pub ${b.published} pend ${b.pending} chain ${b.onChain} proj ${b.projected} rej ${b.rejections} dl ${b.deadLetters}`
            )
            .join(' | ') +
          '\n'
      );
    }
  };
}

export interface DemoSummary {
  events: number;
  banks: number;
  projectedEverywhere: number;
  rejected: number;
  deadLetters: number;
  seconds: number;
  latencyMs: { p50: number; p95: number; p99: number };
  latencyMeasured: string;
}

const percentile = (sorted: number[], p: number): number =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : 0;

/**
 * Publishes the events to their banks' queues (recording each one's enqueue time) and polls until every one is
 * projected at every bank, or fails: a rejection, a dead letter, an event projected twice, or no progress for
 * `stuckAfterMs`.
 */
export async function runDemo(
  consortium: { info: StackInfo },
  events: CreditUpdate[],
  options: {
    stuckAfterMs?: number;
    pollMs?: number;
    onSnapshot?: (s: Snapshot) => void;
    signal?: AbortSignal;
    published?: Map<string, number>;
  } = {}
): Promise<DemoSummary> {
  const monitor = new ConsortiumMonitor(consortium);
  if (options.published) monitor.published = options.published;
  const started = Date.now();
  const enqueuedAt = new Map<string, { bankId: string; at: number }>();
  const banks = consortium.info.banks.map((b) => b.bankId);
  try {
    const publishing = Promise.all(
      consortium.info.banks.map((b) =>
        publishEvents(
          b.serviceBusConnectionString,
          events.filter((e) => e.bankId === b.bankId),
          (e, at) => {
            enqueuedAt.set(e.eventId, { bankId: e.bankId, at });
            monitor.published.set(e.bankId, (monitor.published.get(e.bankId) ?? 0) + 1);
          }
        )
      )
    );
    let publishError: Error | undefined;
    publishing.catch((err: Error) => void (publishError = err));
    let progress = -1;
    let progressAt = Date.now();
    for (;;) {
      if (options.signal?.aborted) throw new Error('interrupted');
      if (publishError) throw publishError;
      const snap = await monitor.snapshot();
      options.onSnapshot?.(snap);
      const rejected = snap.banks.reduce((s, b) => s + b.rejections, 0);
      const dead = snap.banks.reduce((s, b) => s + b.deadLetters, 0);
      if (rejected > 0)
        throw new Error(`${rejected} demo event(s) were rejected (see \`ledger-bridge rejected list\`)`);
      if (dead > 0) throw new Error(`${dead} message(s) were dead-lettered (see \`ledger-bridge deadletter list\`)`);
      let everywhere = 0;
      let pairs = 0;
      for (const e of events) {
        const at = monitor.seen.get(e.eventId);
        for (const b of banks) {
          const seen = at?.get(b);
          if (!seen) continue;
          pairs++;
          if (seen.rows > 1) throw new Error(`event ${e.eventId} is projected ${seen.rows} times at ${b}`);
        }
        if (at && banks.every((b) => at.has(b))) everywhere++;
      }
      if (everywhere === events.length && enqueuedAt.size === events.length) {
        const latencies: number[] = [];
        for (const e of events) {
          const { bankId, at } = enqueuedAt.get(e.eventId)!;
          for (const [b, seen] of monitor.seen.get(e.eventId)!)
            if (b !== bankId || banks.length === 1) latencies.push(seen.at - at);
        }
        latencies.sort((a, b) => a - b);
        return {
          events: events.length,
          banks: banks.length,
          projectedEverywhere: everywhere,
          rejected,
          deadLetters: dead,
          seconds: Math.round((Date.now() - started) / 100) / 10,
          latencyMs: { p50: percentile(latencies, 50), p95: percentile(latencies, 95), p99: percentile(latencies, 99) },
          latencyMeasured: `enqueue (when Service Bus acknowledged the event's batch) to the first poll (every ${options.pollMs ?? 500} ms) that finds the record in another bank's CreditLedger history rows`,
        };
      }
      if (pairs > progress) {
        progress = pairs;
        progressAt = Date.now();
      } else if (Date.now() - progressAt > (options.stuckAfterMs ?? 60_000)) {
        const pending = snap.banks
          .map((b) => `${b.bankId} pending ${b.pending}, on chain ${b.onChain}, projected ${b.projected}`)
          .join('; ');
        throw new Error(
          `stuck: no progress for ${Math.round((Date.now() - progressAt) / 1000)} s with ${everywhere}/${events.length} events projected everywhere (${pending})`
        );
      }
      await new Promise((r) => setTimeout(r, options.pollMs ?? 500));
    }
  } finally {
    monitor.destroy();
  }
}
