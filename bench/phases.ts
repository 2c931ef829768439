import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { NonceManager, Wallet, hexlify, randomBytes, type JsonRpcProvider } from 'ethers';
import { randomUUID } from 'node:crypto';
import { spawnFunctionHost, type RunningHost } from '../local/host/spawn';
import { EventPublisher } from '../local/publish-events';
import { deployConsortium } from '../local/stack/consortium';
import { bankSettings, startStack, type Stack } from '../local/stack/stack';
import { connectRegistry, type RegistryRecord } from '../shared/chain/registry';
import type { CreditUpdate } from '../shared/domain/credit-update';
import { eventIdToBytes16 } from '../shared/domain/event-id';
import { Chain } from '../shared/chain/provider';
import { decodeEvent, readRegistryLogs } from '../shared/watch/events';
import { encodeRecord } from '../shared/domain/record-codec';
import { sampleCreditUpdates } from '../local/sample-events';
import { TableStore } from '../shared/storage/tables';
import { WatcherStateStore } from '../shared/watch/state';
import { busyPercent, cpuSecondsUsed, machineCpu, procStats, type ProcStats } from './proc';
import { diffCounts, startTableCounter, type TableCounter, type TableCounts } from './table-counter';
import { sleep, Progress, log, percentile, round, upperBound } from './util';
import type { BenchOptions } from './options';

/** The benchmark's environment and phases: a stack with the real apps, tracking, load, calibration. */
// ---------- the environment: a stack and one Function App per bank ----------

export interface Env {
  stack: Stack;
  hosts: RunningHost[];
  publishers: EventPublisher[];
  stores: WatcherStateStore[];
  provider: JsonRpcProvider;
  counter?: TableCounter;
  stop(): Promise<void>;
}

export async function startEnv(
  o: BenchOptions,
  mode: 'batched' | 'naive',
  countTables: boolean,
  appSettings: Record<string, string> = {}
): Promise<Env> {
  const label = [mode, ...Object.entries(appSettings).map(([k, v]) => `${k}=${v}`)].join(', ');
  log(`starting the local stack (${o.banks} banks, ${o.blockTime} s blocks, gas limit ${o.gasLimit}) for ${label}…`);
  const stack = await startStack({
    banks: o.banks,
    blockTimeSeconds: o.blockTime,
    gasLimit: o.gasLimit,
    confirmations: o.confirmations,
    txOrder: o.txOrder,
  });
  const hosts: RunningHost[] = [];
  const hostLogs: WriteStream[] = [];
  const publishers: EventPublisher[] = [];
  let counter: TableCounter | undefined;
  // The product's transport: ethers' own copies an answer's body on every chunk, megabytes for a block's logs.
  const chain = new Chain({ rpcUrls: [stack.info.chain.rpcUrl], chainId: stack.info.chain.chainId });
  const provider = chain.primary;
  const stop = async (): Promise<void> => {
    chain.destroy();
    await Promise.all(publishers.map((p) => p.close().catch(() => undefined)));
    await Promise.all(hosts.map((h) => h.stop().catch(() => undefined)));
    for (const file of hostLogs) file.end();
    await counter?.stop();
    await stack.stop();
  };
  try {
    // Every Key Vault request (sign included) waits this long, like an HSM round trip.
    stack.keyVault.faults.latencyMs = o.kvLatencyMs;
    const appDir = join(__dirname, '..', '..');
    for (const bank of stack.info.banks) {
      const settings: Record<string, string> = {
        ...bankSettings(stack.info, bank.bankId),
        SUBMIT_MODE: mode,
        ...appSettings,
      };
      if (countTables && bank === stack.info.banks[0]) {
        counter = await startTableCounter(settings.AzureWebJobsStorage!);
        settings.AzureWebJobsStorage = counter.connectionString;
      }
      log(`starting the ${bank.bankId} Function App…`);
      // Each app's log beside the report (the latest run's), to look into a run that went oddly.
      const file = createWriteStream(join(o.out, `${label.replace(/[^\w=-]+/g, '_')}.${bank.bankId}.log`));
      hostLogs.push(file);
      const onLine = (line: string): boolean => file.write(`${line}\n`);
      hosts.push(await spawnFunctionHost({ name: `${bank.bankId} app`, appDir, settings, onLine }));
    }
    publishers.push(...stack.info.banks.map((b) => new EventPublisher(b.serviceBusConnectionString)));
    const stores = stack.info.banks.map(
      (b) => new WatcherStateStore(new TableStore({ connectionString: b.storageConnectionString }))
    );
    return { stack, hosts, publishers, stores, provider, counter, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

export function processes(env: Env): Record<string, ProcStats | undefined> {
  const out: Record<string, ProcStats | undefined> = {
    ...Object.fromEntries(
      env.stack.azurite.processes.map((p, i) => [
        `azurite ${env.stack.azurite.accounts[i]?.name ?? i}`,
        procStats(p.child.pid),
      ])
    ),
    anvil: procStats(env.stack.anvil.process.child.pid),
    'bench (publisher, Service Bus namespaces, Key Vault stand-in, counter)': procStats(process.pid),
  };
  env.hosts.forEach((h, i) => (out[`host ${env.stack.info.banks[i]!.bankId}`] = procStats(h.process.child.pid)));
  return out;
}

// ---------- tracking: chain logs and every bank's checkpoint ----------

export interface Sample {
  t: number; // ms since the phase started
  checkpoints: number[];
  /** When each bank wrote the checkpoint read (its updatedAt, ms since the phase started; NaN before its first write). */
  writtenAt: number[];
  head: number;
}

export class Tracker {
  readonly blockOf = new Map<string, number>();
  readonly txOf = new Map<string, string>();
  readonly skipped = new Set<string>();
  readonly samples: Sample[] = [];
  private nextBlock: number;
  readonly started = Date.now();

  constructor(
    private readonly env: Env,
    readonly sentAt: Map<string, number>,
    readonly ownerOf: Map<string, number>,
    fromBlock: number
  ) {
    this.nextBlock = fromBlock;
  }

  get onChain(): number {
    return this.blockOf.size;
  }

  async poll(): Promise<Sample> {
    const { provider, stack, stores } = this.env;
    const head = await provider.getBlockNumber();
    const t = Date.now() - this.started;
    if (head >= this.nextBlock) {
      // Read and decoded as the watcher does, not through ethers' getLogs and parseLog: a full block's ~1,100 logs
      // took the bench's event loop up to a second, and the stand-ins that share it (Key Vault, the Service Bus
      // namespaces, the table counter) stood still meanwhile.
      const logs = await readRegistryLogs(provider, {
        address: stack.info.chain.registryAddress,
        from: this.nextBlock,
        to: head,
      });
      for (const event of logs.map(decodeEvent)) {
        if (event?.kind !== 'updated' && event?.kind !== 'skipped') continue;
        if (!this.sentAt.has(event.eventId)) continue;
        if (event.kind === 'updated') {
          this.blockOf.set(event.eventId, event.at.blockNumber);
          this.txOf.set(event.eventId, event.at.txHash);
        } else this.skipped.add(event.eventId);
      }
      this.nextBlock = head + 1;
    }
    const read = await Promise.all(stores.map((s) => s.readCheckpoint(0)));
    const sample = {
      t,
      checkpoints: read.map((c) => c.block),
      writtenAt: read.map((c) => Date.parse(c.updatedAt) - this.started),
      head,
    };
    this.samples.push(sample);
    return sample;
  }

  /** Records of this phase at or below `block`. */
  projectedCount(sortedBlocks: number[], checkpoints: number[]): number {
    return upperBound(sortedBlocks, Math.min(...checkpoints));
  }

  allProjected(sample: Sample): boolean {
    if (this.blockOf.size + this.skipped.size < this.sentAt.size) return false;
    const maxBlock = Math.max(...this.blockOf.values());
    return sample.checkpoints.every((c) => c >= maxBlock);
  }

  /**
   * When (ms since start) each bank's checkpoint first covered `block`: the write time of the first checkpoint read
   * that covers it, not the time of the read (a poll waits behind the bench's own work and the stand-ins it hosts).
   * Never early; late only when the checkpoint covered the block at an earlier write no poll saw.
   */
  projectedAt(block: number): number[] {
    const banks = this.env.stores.length;
    const out = new Array<number>(banks).fill(NaN);
    for (const s of this.samples) {
      for (let i = 0; i < banks; i++) {
        const written = s.writtenAt[i]!;
        if (Number.isNaN(out[i]) && s.checkpoints[i]! >= block) out[i] = Number.isFinite(written) ? written : s.t;
      }
    }
    return out;
  }
}

/**
 * Records of a phase on chain and projected at every bank over time. A point at every poll, and one at every moment
 * a block became projected at every bank (`everyBankAt`, ms), so the marks of the throughput measure fall on the
 * last bank's checkpoint write, not on the next poll.
 */
export function timelineOf(
  samples: Sample[],
  sortedBlocks: number[],
  everyBankAt: (block: number) => number
): PhaseResult['timeline'] {
  const done = sortedBlocks
    .map(everyBankAt)
    .filter((ms) => Number.isFinite(ms))
    .sort((a, b) => a - b);
  const times = [...new Set([...samples.map((s) => s.t), ...done])].sort((a, b) => a - b);
  let polled = -1; // the last poll at or before the point
  return times.map((ms) => {
    while (polled + 1 < samples.length && samples[polled + 1]!.t <= ms) polled++;
    return {
      t: ms / 1000,
      projectedAll: upperBound(done, ms),
      onChain: polled < 0 ? 0 : upperBound(sortedBlocks, samples[polled]!.head),
    };
  });
}

/**
 * The chain's block time from block 1 to `last`, by block timestamps (NaN without a span). Timestamps are whole
 * seconds, so the span must be long: a phase's ~20 blocks alone measure a 2 s block time only to ±3%.
 */
export async function chainBlockTime(provider: JsonRpcProvider, last: number): Promise<number> {
  if (last <= 1) return NaN;
  const [first, end] = await Promise.all([provider.getBlock(1), provider.getBlock(last)]);
  return first && end ? round((end.timestamp - first.timestamp) / (last - 1), 3) : NaN;
}

/** One of the phase's transactions: the bank that sent it (by index) and the records it carried. */
export interface PhaseBatch {
  bank: number;
  records: number;
}

export interface PhaseResult {
  name: string;
  events: number;
  records: number;
  skipped: number;
  seconds: number;
  /** Steady state: from 10% to 90% of the records projected at every bank. */
  window: { fromSec: number; toSec: number; records: number; kind: string };
  /** The phase's first send, on the timeline's clock. */
  firstSentSec: number;
  throughputRecordsPerSec: number;
  projectionRecordsPerSec: number;
  chainRecordsPerSec: number;
  latencyAnotherBank: { p50: number; p95: number; p99: number; max: number };
  latencyEveryBank: { p50: number; p95: number; p99: number; max: number };
  /** Latency to another bank of each bank's own records (by bank index). */
  latencyByBank: { p50: number; p95: number; p99: number; max: number }[];
  /** When the last record of each bank was projected at every bank, from the first send (by bank index). */
  doneByBankSec: number[];
  blocks: {
    first: number;
    last: number;
    txs: number;
    gasUsed: number;
    /** Gas used over gas limit of the blocks between the phase's first and last, both left out (partial by nature). */
    fill: number;
    /** The phase's transactions' gas used over their gas limits: what their margin leaves unused of the block space they take. */
    usedOfLimit: number;
    /** Every block of the phase: transactions, this phase's records, gas used, and each of this phase's batches in it. */
    perBlock: { block: number; txs: number; records: number; gasUsed: number; batches: PhaseBatch[] }[];
  };
  timeline: { t: number; projectedAll: number; onChain: number }[];
  latencyPoints: [number, number][];
  signCalls: number;
  tables?: TableCounts;
  /** CPU seconds each process of the stack used during the phase (/proc). */
  cpuSeconds: Record<string, number>;
  /** How busy all the machine's cores were during the phase (/proc/stat, every process). */
  machineBusyPercent: number;
  complete: boolean;
}

export function lat(values: number[]): PhaseResult['latencyAnotherBank'] {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    p50: round(percentile(sorted, 50)),
    p95: round(percentile(sorted, 95)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted.at(-1) ?? NaN),
  };
}

export type Publish = (events: CreditUpdate[], ownerIndex: number) => Promise<void>;

/**
 * Runs one phase: `drive` publishes (and records send times), while the tracker polls the chain and every bank's
 * checkpoint until every record is projected at every bank (or nothing moves for `stallSeconds`).
 */
export async function runPhase(
  env: Env,
  name: string,
  total: number,
  drive: (publish: Publish) => Promise<void>,
  stallSeconds: number
): Promise<PhaseResult> {
  const sentAt = new Map<string, number>();
  const ownerOf = new Map<string, number>();
  const fromBlock = (await env.provider.getBlockNumber()) + 1;
  const tracker = new Tracker(env, sentAt, ownerOf, fromBlock);
  const signsBefore = env.stack.keyVault.stats.signCalls;
  const tablesBefore = await env.counter?.snapshot();
  const procBefore = processes(env);
  const machineBefore = machineCpu();
  const publish: Publish = async (events, ownerIndex) => {
    for (const e of events) {
      sentAt.set(e.eventId, Date.now() - tracker.started);
      ownerOf.set(e.eventId, ownerIndex);
    }
    await env.publishers[ownerIndex]!.publish(events);
  };
  const progress = new Progress();
  let driving = true;
  const driver = drive(publish).finally(() => (driving = false));
  let lastMove = Date.now();
  let lastKey = '';
  let complete = false;
  let sorted: number[] = [];
  for (;;) {
    await sleep(250);
    const sample = await tracker.poll();
    sorted = [...tracker.blockOf.values()].sort((a, b) => a - b);
    const projected = tracker.projectedCount(sorted, sample.checkpoints);
    // Records, not checkpoints: a watcher's checkpoint moves with every empty block while records are stuck.
    const key = `${tracker.onChain}/${projected}/${sentAt.size}`;
    if (key !== lastKey || driving) [lastKey, lastMove] = [key, Date.now()];
    const secs = sample.t / 1000;
    progress.update(
      name.padEnd(10),
      projected,
      total,
      `projected at every bank, ${tracker.onChain} on chain, ${sentAt.size} sent, ${secs.toFixed(0)} s`
    );
    if (!driving && sentAt.size >= total && tracker.allProjected(sample)) {
      complete = true;
      break;
    }
    if (Date.now() - lastMove > stallSeconds * 1000) {
      progress.done();
      log(`${name}: nothing moved for ${stallSeconds} s; ending the phase incomplete`);
      break;
    }
  }
  progress.done();
  await driver;
  const seconds = (Date.now() - tracker.started) / 1000;
  const procAfter = processes(env);
  const machineAfter = machineCpu();

  const coveredAt = new Map<number, number[]>(); // block → when each bank's checkpoint covered it
  for (const block of new Set(sorted)) coveredAt.set(block, tracker.projectedAt(block));
  const timeline = timelineOf(tracker.samples, sorted, (block) => Math.max(...coveredAt.get(block)!));
  const records = sorted.length;
  const at = (frac: number): number => timeline.find((p) => p.projectedAll >= frac * records)?.t ?? NaN;
  const [from, to] = [at(0.1), at(0.9)];
  const windowRecords =
    (timeline.find((p) => p.t === to)?.projectedAll ?? 0) - (timeline.find((p) => p.t === from)?.projectedAll ?? 0);
  // Too few blocks for a window (a small run lands in one or two blocks): records over first send → all projected.
  const lastT = timeline.find((p) => p.projectedAll >= records)?.t ?? NaN;
  const firstSent = Math.min(...sentAt.values()) / 1000;
  const windowed = to > from && windowRecords > 0;
  const projectionRate = windowed ? windowRecords / (to - from) : records / (lastT - firstSent);
  // End to end: from the first send until 90% of the records are projected at every bank (ramp-up included,
  // the stragglers' tail left out). The 10%-90% window above is the projection stage's own rate, which can run
  // ahead of the chain while it works off a backlog, so it is reported as a stage rate, not as throughput.
  const t90 = to > firstSent ? to : lastT;
  const throughput = (to > firstSent ? 0.9 * records : records) / (t90 - firstSent);
  const chainAt = (frac: number): number => timeline.find((p) => p.onChain >= frac * records)?.t ?? NaN;
  const [cf, ct] = [chainAt(0.1), chainAt(0.9)];
  const chainRate = ct > cf ? (0.8 * records) / (ct - cf) : NaN;

  // Latency: enqueue → the first other bank's checkpoint covers the record's block (and → every bank).
  const another: number[] = [];
  const every: number[] = [];
  const anotherByBank: number[][] = env.hosts.map(() => []);
  const doneByBank: number[] = env.hosts.map(() => -Infinity);
  const latencyPoints: [number, number][] = [];
  for (const [id, block] of tracker.blockOf) {
    const perBank = coveredAt.get(block)!;
    const sent = sentAt.get(id)!;
    const own = ownerOf.get(id)!;
    const others = perBank.filter((_, i) => i !== own || perBank.length === 1);
    const first = Math.min(...others);
    const all = Math.max(...perBank);
    if (Number.isFinite(first)) {
      another.push((first - sent) / 1000);
      anotherByBank[own]?.push((first - sent) / 1000);
      latencyPoints.push([sent / 1000, (first - sent) / 1000]);
    }
    if (Number.isFinite(all)) {
      every.push((all - sent) / 1000);
      doneByBank[own] = Math.max(doneByBank[own]!, all);
    }
  }

  // Blocks and gas of this phase's transactions (the block time is the chain's, from chainBlockTime).
  const blocks: PhaseResult['blocks'] = {
    first: sorted[0] ?? 0,
    last: sorted.at(-1) ?? 0,
    txs: 0,
    gasUsed: 0,
    fill: NaN,
    usedOfLimit: NaN,
    perBlock: [],
  };
  const txs = new Set(tracker.txOf.values());
  blocks.txs = txs.size;
  if (txs.size <= 2_000) {
    let gasLimits = 0;
    for (const hash of txs) {
      const [receipt, tx] = await Promise.all([
        env.provider.getTransactionReceipt(hash),
        env.provider.getTransaction(hash),
      ]);
      blocks.gasUsed += Number(receipt?.gasUsed ?? 0n);
      gasLimits += Number(tx?.gasLimit ?? 0n);
    }
    if (gasLimits > 0) blocks.usedOfLimit = round(blocks.gasUsed / gasLimits, 3);
  }
  const span = blocks.last - blocks.first;
  // Every block of a phase up to 1,000 blocks long (the default runs span a few dozen).
  if (span > 0 && span <= 1_000) {
    const all = await Promise.all(Array.from({ length: span + 1 }, (_, i) => env.provider.getBlock(blocks.first + i)));
    const recordsIn = new Map<number, number>();
    for (const b of sorted) recordsIn.set(b, (recordsIn.get(b) ?? 0) + 1);
    const batchOf = new Map<string, PhaseBatch>();
    for (const [id, hash] of tracker.txOf) {
      const batch = batchOf.get(hash) ?? { bank: ownerOf.get(id)!, records: 0 };
      batch.records++;
      batchOf.set(hash, batch);
    }
    blocks.perBlock = all.map((b) => ({
      block: b!.number,
      txs: b!.transactions.length,
      records: recordsIn.get(b!.number) ?? 0,
      gasUsed: Number(b!.gasUsed),
      batches: b!.transactions.flatMap((hash) => batchOf.get(hash) ?? []),
    }));
    const inner = all.slice(1, -1);
    if (inner.length > 0)
      blocks.fill = round(
        inner.reduce((sum, b) => sum + Number(b!.gasUsed), 0) / inner.reduce((sum, b) => sum + Number(b!.gasLimit), 0),
        3
      );
  }
  const tablesAfter = await env.counter?.snapshot();
  return {
    name,
    events: sentAt.size,
    records,
    skipped: tracker.skipped.size,
    seconds: round(seconds, 1),
    window: windowed
      ? {
          fromSec: round(from, 1),
          toSec: round(to, 1),
          records: windowRecords,
          kind: '10%-90% projected at every bank',
        }
      : {
          fromSec: round(firstSent, 1),
          toSec: round(lastT, 1),
          records,
          kind: 'first send to all projected (too few blocks for 10%-90%)',
        },
    firstSentSec: round(firstSent, 3),
    throughputRecordsPerSec: round(throughput, 1),
    projectionRecordsPerSec: round(projectionRate, 1),
    chainRecordsPerSec: round(chainRate, 1),
    latencyAnotherBank: lat(another),
    latencyEveryBank: lat(every),
    latencyByBank: anotherByBank.map(lat),
    doneByBankSec: doneByBank.map((t) => (Number.isFinite(t) ? round(t / 1000 - firstSent, 1) : NaN)),
    blocks,
    timeline,
    latencyPoints,
    signCalls: env.stack.keyVault.stats.signCalls - signsBefore,
    tables: tablesAfter && tablesBefore ? diffCounts(tablesAfter, tablesBefore) : undefined,
    cpuSeconds: cpuSecondsUsed(procBefore, procAfter),
    machineBusyPercent: busyPercent(machineBefore, machineAfter),
    complete,
  };
}

// ---------- events ----------

export function eventsFor(o: BenchOptions, total: number, tag: string): CreditUpdate[][] {
  return Array.from({ length: o.banks }, (_, i) => {
    const bankId = `BANK-${String.fromCharCode(65 + i)}`;
    const count = Math.floor(total / o.banks) + (i < total % o.banks ? 1 : 0);
    // Distinct subjects per phase and bank (every record new: the costlier case the capacity is computed for).
    return sampleCreditUpdates({ bankId, count }).map((e, j) => ({
      ...e,
      subject: { country: 'SE', idType: 'national-id', value: `${tag}${i}-${j}` },
    }));
  });
}

/** Publishes everything at once, as fast as the queues take it (64 sends in flight per bank). */
export async function publishAll(publish: Publish, perBank: CreditUpdate[][]): Promise<void> {
  await Promise.all(
    perBank.map(async (events, bank) => {
      for (let i = 0; i < events.length; i += 64) await publish(events.slice(i, i + 64), bank);
    })
  );
}

/** A steady rate across banks (round robin). */
export async function publishSteady(publish: Publish, perBank: CreditUpdate[][], ratePerSec: number): Promise<void> {
  const flat: [CreditUpdate, number][] = [];
  const longest = Math.max(...perBank.map((l) => l.length));
  for (let j = 0; j < longest; j++) perBank.forEach((l, b) => l[j] && flat.push([l[j]!, b]));
  const started = Date.now();
  const inFlight: Promise<void>[] = [];
  for (const [k, [event, bank]] of flat.entries()) {
    const due = started + (k * 1000) / ratePerSec;
    if (due > Date.now()) await sleep(due - Date.now());
    inFlight.push(publish([event], bank));
  }
  await Promise.all(inFlight);
}

// ---------- capacity calibration ----------

export interface Calibration {
  gasLimit: number;
  gasPerNewRecord: number;
  gasPerUpdate: number;
  gasPerTransaction: number;
  samples: { records: number; kind: string; gasUsed: number }[];
}

/**
 * Gas from real receipts: a throwaway CreditRegistry on the same chain and a funded test member submit 50 and
 * 150 new records (slope: gas per new record, intercept: per transaction), then 150 updates of those subjects.
 */
export async function calibrate(env: Env): Promise<Calibration> {
  const { provider } = env;
  const member = Wallet.createRandom().connect(provider);
  const { registryAddress } = await deployConsortium(env.stack.info.chain.rpcUrl, [
    { address: member.address, bankId: 'CALIBRATION' },
  ]);
  const registry = connectRegistry(registryAddress, new NonceManager(member));
  const subjects = Array.from({ length: 200 }, () => hexlify(randomBytes(32)));
  const record = (subject: string, sequence: bigint): RegistryRecord => ({
    subject,
    eventId: eventIdToBytes16(randomUUID()),
    data: encodeRecord({
      sequence,
      asOf: 1_767_225_600,
      score: 700,
      openAccounts: 2,
      delinquencies: { days30: 0, days60: 0, days90: 0 },
      defaulted: false,
      totalBalance: 1_000,
      creditLimit: 10_000,
    }),
  });
  const send = async (records: RegistryRecord[], kind: string) => {
    const tx = await registry.submitBatch(records, { gasLimit: 10_000_000 });
    const receipt = await tx.wait();
    return { records: records.length, kind, gasUsed: Number(receipt!.gasUsed) };
  };
  const a = await send(
    subjects.slice(0, 50).map((s) => record(s, 1n)),
    'new'
  );
  const b = await send(
    subjects.slice(50, 200).map((s) => record(s, 1n)),
    'new'
  );
  const perNew = (b.gasUsed - a.gasUsed) / (b.records - a.records);
  const perTx = a.gasUsed - a.records * perNew;
  const u = await send(
    subjects.slice(50, 200).map((s) => record(s, 2n)),
    'update'
  );
  const latest = await provider.getBlock('latest');
  return {
    gasLimit: Number(latest!.gasLimit),
    gasPerNewRecord: Math.round(perNew),
    gasPerUpdate: Math.round((u.gasUsed - perTx) / u.records),
    gasPerTransaction: Math.round(perTx),
    samples: [a, b, u],
  };
}
