import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { JsonRpcProvider, NonceManager, Wallet, hexlify, randomBytes, type Log } from 'ethers';
import { randomUUID } from 'node:crypto';
import { spawnFunctionHost, type RunningHost } from '../local/host/spawn';
import { LocalServiceBusQueue } from '../local/host/service-bus-queue';
import { deployConsortium } from '../local/stack/consortium';
import { bankSettings, startStack, type Stack } from '../local/stack/stack';
import { connectRegistry, registryInterface, type RegistryRecord } from '../shared/chain/registry';
import type { CreditUpdate } from '../shared/domain/credit-update';
import { bytes16ToEventId, eventIdToBytes16 } from '../shared/domain/event-id';
import { encodeRecord } from '../shared/domain/record-codec';
import { sampleCreditUpdates } from '../local/sample-events';
import { TableStore } from '../shared/storage/tables';
import { WatcherStateStore } from '../shared/watch/state';
import { chartSvg, renderPng, type Series } from './chart';
import { busyPercent, cpuSecondsUsed, machineCpu, procStats, type ProcStats } from './proc';
import { diffCounts, startTableCounter, type TableCounter, type TableCounts } from './table-counter';

/**
 * `npm run bench`: ledger-bridge against the chain's physical limit and the naive design, on the embedded local
 * stack with the real Function App per bank in the local host. Numbers come from measurement only: gas from
 * receipts, block time from block timestamps, throughput and latency from when records appear on chain and
 * when every bank's watcher checkpoint covers them, sign calls from the Key Vault stand-in, table operations
 * from a counting proxy in front of one bank's table endpoint, memory from /proc.
 */

export interface BenchOptions {
  events: number;
  naiveEvents: number;
  banks: number;
  blockTime: number;
  gasLimit: number;
  confirmations: number;
  kvLatencyMs: number;
  latencyRate: number;
  latencySeconds: number;
  out: string;
  quick: boolean;
  skipNaive: boolean;
}

export const BENCH_USAGE = `usage: bench [--events N] [--banks N] [--block-time S] [--gas-limit N] [--confirmations N]
             [--kv-latency-ms N] [--naive-events N] [--latency-rate N] [--latency-seconds N]
             [--out DIR] [--quick] [--skip-naive]`;

/** The bench's options, shared with `ledger-bridge bench` so the two cannot drift apart. */
export const BENCH_OPTIONS = {
  events: { type: 'string' },
  'naive-events': { type: 'string' },
  banks: { type: 'string' },
  'block-time': { type: 'string' },
  'gas-limit': { type: 'string' },
  confirmations: { type: 'string' },
  'kv-latency-ms': { type: 'string' },
  'latency-rate': { type: 'string' },
  'latency-seconds': { type: 'string' },
  out: { type: 'string' },
  quick: { type: 'boolean' },
  'skip-naive': { type: 'boolean' },
} as const;

export function parseBenchArgs(argv: string[]): BenchOptions {
  const { values } = parseArgs({ args: argv, options: { ...BENCH_OPTIONS, help: { type: 'boolean' } } });
  if (values.help) {
    console.log(BENCH_USAGE);
    process.exit(0);
  }
  const quick = values.quick === true;
  const num = (name: string, raw: string | undefined, fallback: number, min: number): number => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min)
      throw new Error(`--${name} must be a number >= ${min}, got ${raw}\n${BENCH_USAGE}`);
    return n;
  };
  const banks = num('banks', values.banks, 3, 1);
  return {
    events: Math.round(num('events', values.events, quick ? 600 : 20_000, 1)),
    naiveEvents: Math.round(num('naive-events', values['naive-events'], quick ? 10 * banks : 30 * banks, 1)),
    banks: Math.round(banks),
    blockTime: num('block-time', values['block-time'], 2, 1),
    gasLimit: Math.round(num('gas-limit', values['gas-limit'], 30_000_000, 1_000_000)),
    confirmations: Math.round(num('confirmations', values.confirmations, 2, 0)),
    kvLatencyMs: num('kv-latency-ms', values['kv-latency-ms'], 30, 0),
    latencyRate: num('latency-rate', values['latency-rate'], 5, 0.1),
    latencySeconds: num('latency-seconds', values['latency-seconds'], quick ? 20 : 60, 1),
    out: resolve(values.out ?? join(__dirname, '..', '..', 'bench', 'results')),
    quick,
    skipNaive: values['skip-naive'] === true,
  };
}

// ---------- small helpers ----------

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const round = (v: number, digits = 2): number => Math.round(v * 10 ** digits) / 10 ** digits;

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** Index of the first element > v in an ascending array (how many are <= v). */
function upperBound(sorted: number[], v: number): number {
  let [lo, hi] = [0, sorted.length];
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

class Progress {
  private last = 0;
  private readonly tty = process.stderr.isTTY === true;
  update(label: string, done: number, total: number, extra: string): void {
    const now = Date.now();
    if (!this.tty && now - this.last < 10_000 && done < total) return;
    this.last = now;
    const width = 30;
    const filled = Math.round((Math.min(done, total) / Math.max(1, total)) * width);
    const pct = Math.floor((Math.min(done, total) / Math.max(1, total)) * 100);
    const line = `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(pct).padStart(3)}% ${done}/${total} ${extra}`;
    process.stderr.write(this.tty ? `\r${line.padEnd(110)}` : `${line}\n`);
  }
  done(): void {
    if (this.tty) process.stderr.write('\n');
  }
}

const log = (line: string): void => void process.stderr.write(`bench: ${line}\n`);

// ---------- the environment: a stack and one Function App per bank ----------

interface Env {
  stack: Stack;
  hosts: RunningHost[];
  queues: LocalServiceBusQueue[];
  stores: WatcherStateStore[];
  provider: JsonRpcProvider;
  counter?: TableCounter;
  stop(): Promise<void>;
}

async function startEnv(o: BenchOptions, mode: 'batched' | 'naive', countTables: boolean): Promise<Env> {
  log(`starting the local stack (${o.banks} banks, ${o.blockTime} s blocks, gas limit ${o.gasLimit}) for ${mode}…`);
  const stack = await startStack({
    banks: o.banks,
    blockTimeSeconds: o.blockTime,
    gasLimit: o.gasLimit,
    confirmations: o.confirmations,
  });
  const hosts: RunningHost[] = [];
  let counter: TableCounter | undefined;
  const provider = new JsonRpcProvider(stack.info.chain.rpcUrl, undefined, { staticNetwork: true, cacheTimeout: -1 });
  const stop = async (): Promise<void> => {
    provider.destroy();
    await Promise.all(hosts.map((h) => h.stop().catch(() => undefined)));
    await counter?.stop();
    await stack.stop();
  };
  try {
    // Every Key Vault request (sign included) waits this long, like an HSM round trip.
    stack.keyVault.faults.latencyMs = o.kvLatencyMs;
    const appDir = join(__dirname, '..', '..');
    for (const bank of stack.info.banks) {
      const settings: Record<string, string> = { ...bankSettings(stack.info, bank.bankId), SUBMIT_MODE: mode };
      if (countTables && bank === stack.info.banks[0]) {
        counter = await startTableCounter(settings.AzureWebJobsStorage!);
        settings.AzureWebJobsStorage = counter.connectionString;
      }
      log(`starting the ${bank.bankId} Function App…`);
      hosts.push(await spawnFunctionHost({ name: `${bank.bankId} app`, appDir, settings }));
    }
    const queues = stack.info.banks.map((b) => new LocalServiceBusQueue(b.storageConnectionString, 'credit-updates'));
    const stores = stack.info.banks.map(
      (b) => new WatcherStateStore(new TableStore({ connectionString: b.storageConnectionString }))
    );
    return { stack, hosts, queues, stores, provider, counter, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function processes(env: Env): Record<string, ProcStats | undefined> {
  const out: Record<string, ProcStats | undefined> = {
    ...Object.fromEntries(
      env.stack.azurite.processes.map((p, i) => [
        `azurite ${env.stack.azurite.accounts[i]?.name ?? i}`,
        procStats(p.child.pid),
      ])
    ),
    anvil: procStats(env.stack.anvil.process.child.pid),
    'bench (publisher, Key Vault stand-in, counter)': procStats(process.pid),
  };
  env.hosts.forEach((h, i) => (out[`host ${env.stack.info.banks[i]!.bankId}`] = procStats(h.process.child.pid)));
  return out;
}

// ---------- tracking: chain logs and every bank's checkpoint ----------

interface Sample {
  t: number; // ms since the phase started
  checkpoints: number[];
  head: number;
}

const UPDATED_TOPIC = registryInterface.getEvent('CreditRecordUpdated')!.topicHash;
const SKIPPED_TOPIC = registryInterface.getEvent('CreditRecordSkipped')!.topicHash;

class Tracker {
  readonly blockOf = new Map<string, number>();
  readonly txOf = new Map<string, string>();
  readonly skipped = new Set<string>();
  readonly samples: Sample[] = [];
  readonly blockSeenAt = new Map<number, number>();
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
    for (let b = this.nextBlock; b <= head; b++) if (!this.blockSeenAt.has(b)) this.blockSeenAt.set(b, t);
    if (head >= this.nextBlock) {
      const logs: Log[] = await provider.getLogs({
        address: stack.info.chain.registryAddress,
        topics: [[UPDATED_TOPIC, SKIPPED_TOPIC]],
        fromBlock: this.nextBlock,
        toBlock: head,
      });
      for (const entry of logs) {
        const parsed = registryInterface.parseLog(entry);
        const id = bytes16ToEventId(parsed!.args.eventId as string);
        if (!this.sentAt.has(id)) continue;
        if (parsed!.name === 'CreditRecordUpdated') {
          this.blockOf.set(id, entry.blockNumber);
          this.txOf.set(id, entry.transactionHash);
        } else this.skipped.add(id);
      }
      this.nextBlock = head + 1;
    }
    const checkpoints = await Promise.all(stores.map((s) => s.readCheckpoint(0).then((c) => c.block)));
    const sample = { t, checkpoints, head };
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

  /** When (ms since start) every bank's checkpoint first covered `block`, per bank. */
  projectedAt(block: number): number[] {
    const banks = this.env.stores.length;
    const out = new Array<number>(banks).fill(NaN);
    for (const s of this.samples) {
      for (let i = 0; i < banks; i++) if (Number.isNaN(out[i]) && s.checkpoints[i]! >= block) out[i] = s.t;
    }
    return out;
  }
}

interface PhaseResult {
  name: string;
  events: number;
  records: number;
  skipped: number;
  seconds: number;
  /** Steady state: from 10% to 90% of the records projected at every bank. */
  window: { fromSec: number; toSec: number; records: number; kind: string };
  throughputRecordsPerSec: number;
  projectionRecordsPerSec: number;
  chainRecordsPerSec: number;
  latencyAnotherBank: { p50: number; p95: number; p99: number; max: number };
  latencyEveryBank: { p50: number; p95: number; p99: number; max: number };
  blocks: { first: number; last: number; measuredBlockTimeSec: number; txs: number; gasUsed: number };
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

function lat(values: number[]): PhaseResult['latencyAnotherBank'] {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    p50: round(percentile(sorted, 50)),
    p95: round(percentile(sorted, 95)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted.at(-1) ?? NaN),
  };
}

type Publish = (events: CreditUpdate[], ownerIndex: number) => Promise<void>;

/**
 * Runs one phase: `drive` publishes (and records send times), while the tracker polls the chain and every bank's
 * checkpoint until every record is projected at every bank (or nothing moves for `stallSeconds`).
 */
async function runPhase(
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
  const tablesBefore = env.counter?.snapshot();
  const procBefore = processes(env);
  const machineBefore = machineCpu();
  const publish: Publish = async (events, ownerIndex) => {
    const queue = env.queues[ownerIndex]!;
    await Promise.all(
      events.map(async (e) => {
        sentAt.set(e.eventId, Date.now() - tracker.started);
        ownerOf.set(e.eventId, ownerIndex);
        await queue.send({ body: JSON.stringify(e), messageId: e.eventId, contentType: 'application/json' });
      })
    );
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
    const key = `${tracker.onChain}/${sample.checkpoints.join(',')}/${sentAt.size}`;
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

  // Throughput over time: records of this phase projected at every bank (min checkpoint) and on chain.
  const timeline = tracker.samples.map((s) => ({
    t: s.t / 1000,
    projectedAll: tracker.projectedCount(sorted, s.checkpoints),
    onChain: upperBound(sorted, s.head),
  }));
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
  const byBlock = new Map<number, number[]>();
  const another: number[] = [];
  const every: number[] = [];
  const latencyPoints: [number, number][] = [];
  for (const [id, block] of tracker.blockOf) {
    let perBank = byBlock.get(block);
    if (!perBank) byBlock.set(block, (perBank = tracker.projectedAt(block)));
    const sent = sentAt.get(id)!;
    const own = ownerOf.get(id)!;
    const others = perBank.filter((_, i) => i !== own || perBank.length === 1);
    const first = Math.min(...others);
    const all = Math.max(...perBank);
    if (Number.isFinite(first)) {
      another.push((first - sent) / 1000);
      latencyPoints.push([sent / 1000, (first - sent) / 1000]);
    }
    if (Number.isFinite(all)) every.push((all - sent) / 1000);
  }

  // Blocks, measured block time and gas of this phase's transactions.
  const blocks = { first: sorted[0] ?? 0, last: sorted.at(-1) ?? 0, measuredBlockTimeSec: NaN, txs: 0, gasUsed: 0 };
  const txs = new Set(tracker.txOf.values());
  blocks.txs = txs.size;
  if (txs.size <= 2_000) {
    for (const hash of txs) blocks.gasUsed += Number((await env.provider.getTransactionReceipt(hash))?.gasUsed ?? 0n);
  }
  if (blocks.last > blocks.first) {
    const [a, b] = await Promise.all([env.provider.getBlock(blocks.first), env.provider.getBlock(blocks.last)]);
    blocks.measuredBlockTimeSec = round((b!.timestamp - a!.timestamp) / (blocks.last - blocks.first), 3);
  }
  const tablesAfter = env.counter?.snapshot();
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
    throughputRecordsPerSec: round(throughput, 1),
    projectionRecordsPerSec: round(projectionRate, 1),
    chainRecordsPerSec: round(chainRate, 1),
    latencyAnotherBank: lat(another),
    latencyEveryBank: lat(every),
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

function eventsFor(o: BenchOptions, total: number, tag: string): CreditUpdate[][] {
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
async function publishAll(publish: Publish, perBank: CreditUpdate[][]): Promise<void> {
  await Promise.all(
    perBank.map(async (events, bank) => {
      for (let i = 0; i < events.length; i += 64) await publish(events.slice(i, i + 64), bank);
    })
  );
}

/** A steady rate across banks (round robin). */
async function publishSteady(publish: Publish, perBank: CreditUpdate[][], ratePerSec: number): Promise<void> {
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

interface Calibration {
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
async function calibrate(env: Env): Promise<Calibration> {
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

// ---------- the report ----------

export interface BenchReport {
  startedAt: string;
  finishedAt: string;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string; platform: string };
  settings: BenchOptions & { submitDefaults: string };
  capacityRecordsPerSec: number;
  throughputRecordsPerSec: number;
  fractionOfCapacity: number;
  naiveThroughputRecordsPerSec: number | null;
  batchedOverNaive: number | null;
  latencyP50Sec: number;
  latencyP95Sec: number;
  latencyP99Sec: number;
  latencyFloorSec: number;
  saturationLatencyP50Sec: number;
  saturationLatencyP95Sec: number;
  saturationLatencyP99Sec: number;
  signCallsPerRecord: number;
  tableOperationsPerRecord: number | null;
  tableRequestsPerRecord: number | null;
  gasPerNewRecord: number;
  gasPerUpdate: number;
  gasPerTransaction: number;
  pipelineGasPerRecord: number | null;
  gasLimit: number;
  measuredBlockTimeSec: number;
  peakRssMiB: number;
  peakRssMiBByProcess: Record<string, number>;
  /** What bounds throughput on this machine: CPU per record during saturation, and what it implies. */
  cpu: CpuCost;
  targets: Record<string, { target: string; measured: string; met: boolean }>;
  calibration: Calibration;
  phases: Record<string, Omit<PhaseResult, 'timeline' | 'latencyPoints'>>;
}

export interface CpuCost {
  machineBusyPercent: number;
  /** CPU milliseconds per record of the saturation phase, by part of the stack, and in total. */
  msPerRecord: { storageEmulators: number; functionHosts: number; bench: number; chain: number; total: number };
  /** cores × 1000 / total: the most this machine could carry at this cost, were nothing else running. */
  cpuBoundRecordsPerSec: number;
  /** Cores the chain's capacity would need at this cost: in total, and for the Function App hosts alone. */
  coresForCapacity: number;
  hostCoresForCapacity: number;
}

/** CPU per record by part of the stack (process names from `processes`), and what it implies. */
export function cpuCost(
  phase: Pick<PhaseResult, 'cpuSeconds' | 'machineBusyPercent' | 'records'>,
  cores: number,
  capacity: number
): CpuCost {
  const part = (prefix: string): number =>
    Object.entries(phase.cpuSeconds)
      .filter(([name]) => name.startsWith(prefix))
      .reduce((sum, [, seconds]) => sum + (1000 * seconds) / Math.max(1, phase.records), 0);
  const ms = {
    storageEmulators: part('azurite'),
    functionHosts: part('host'),
    bench: part('bench'),
    chain: part('anvil'),
  };
  const total = ms.storageEmulators + ms.functionHosts + ms.bench + ms.chain;
  return {
    machineBusyPercent: phase.machineBusyPercent,
    msPerRecord: {
      storageEmulators: round(ms.storageEmulators),
      functionHosts: round(ms.functionHosts),
      bench: round(ms.bench),
      chain: round(ms.chain),
      total: round(total),
    },
    cpuBoundRecordsPerSec: round((cores * 1000) / Math.max(1e-9, total), 1),
    coresForCapacity: round((capacity * total) / 1000, 1),
    hostCoresForCapacity: round((capacity * ms.functionHosts) / 1000, 1),
  };
}

function chart(report: BenchReport, phases: Record<string, PhaseResult>): string {
  const rate = (p: PhaseResult | undefined, key: 'projectedAll' | 'onChain', color: string, label: string): Series => {
    const pts: [number, number][] = [];
    const tl = p?.timeline ?? [];
    for (let i = 0, j = 0; i < tl.length; i++) {
      while (j < i && tl[i]!.t - tl[j]!.t > 5) j++;
      const dt = tl[i]!.t - tl[j]!.t;
      if (dt >= 2) pts.push([tl[i]!.t, (tl[i]![key] - tl[j]![key]) / dt]);
    }
    return { label, color, points: pts };
  };
  const sat = phases.saturation;
  const tEnd = sat?.timeline.at(-1)?.t ?? 1;
  const binned = (p: PhaseResult | undefined, q: number, color: string, label: string): Series => {
    const bins = new Map<number, number[]>();
    const span = Math.max(0, ...(p?.latencyPoints ?? []).map(([t]) => t));
    const width = Math.max(0.25, Math.min(5, span / 20));
    for (const [t, l] of p?.latencyPoints ?? []) {
      const k = Math.floor(t / width) * width;
      bins.set(k, [...(bins.get(k) ?? []), l]);
    }
    const points = [...bins.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([k, v]): [number, number] => [
        k + 2.5,
        percentile(
          v.sort((a, b) => a - b),
          q
        ),
      ]);
    return { label, color, points };
  };
  return chartSvg(
    `ledger-bridge bench ${report.startedAt} — ${report.settings.banks} banks, ${report.settings.blockTime} s blocks, ${report.gasLimit.toLocaleString('en')} gas`,
    [
      {
        title: 'Saturation: throughput (5 s window)',
        unit: 'records/s',
        series: [
          rate(sat, 'projectedAll', '#1f77b4', 'projected at every bank'),
          rate(sat, 'onChain', '#2ca02c', 'included on chain'),
          {
            label: `capacity ${Math.round(report.capacityRecordsPerSec)}/s`,
            color: '#d62728',
            dashed: true,
            points: [
              [0, report.capacityRecordsPerSec],
              [tEnd, report.capacityRecordsPerSec],
            ],
          },
          rate(phases.naive, 'projectedAll', '#9467bd', 'naive: projected'),
        ],
      },
      {
        title: 'Saturation: latency enqueue → projected at another bank (by enqueue time)',
        unit: 'seconds',
        series: [binned(sat, 50, '#1f77b4', 'p50'), binned(sat, 99, '#ff7f0e', 'p99')],
      },
      {
        title: `Latency run (${report.settings.latencyRate} events/s): latency by enqueue time`,
        unit: 'seconds',
        series: [
          binned(phases.latency, 50, '#1f77b4', 'p50'),
          binned(phases.latency, 99, '#ff7f0e', 'p99'),
          {
            label: `(confirmations+1)×block = ${report.latencyFloorSec} s`,
            color: '#d62728',
            dashed: true,
            points: [
              [0, report.latencyFloorSec],
              [phases.latency?.timeline.at(-1)?.t ?? 1, report.latencyFloorSec],
            ],
          },
        ],
      },
    ]
  );
}

/** The report's verdict on what bounds throughput, from the measured CPU cost. */
function limits(r: BenchReport): string {
  const c = r.cpu;
  const ms = c.msPerRecord;
  const cores = r.machine.cpus;
  const bound = c.machineBusyPercent >= 85;
  return [
    `During saturation the machine's ${cores} cores were **${c.machineBusyPercent}% busy**. CPU per record (projected at every bank): ` +
      `storage emulators (Azurite: tables and the Service Bus emulation) **${ms.storageEmulators} ms**, ` +
      `the ${r.settings.banks} Function App hosts **${ms.functionHosts} ms** (${round(ms.functionHosts / r.settings.banks)} ms each), ` +
      `the bench (publisher, Key Vault stand-in, table counter) ${ms.bench} ms, anvil ${ms.chain} ms: **${ms.total} ms in all**.`,
    `At that cost ${cores} cores carry at most ${c.cpuBoundRecordsPerSec} records/s; the run sustained ${r.throughputRecordsPerSec}. ` +
      (bound
        ? `**The run is CPU-bound**: the local stand-ins and the banks' hosts share this machine's cores, where in Azure every bank's Function App and storage account run on their own. `
        : `The machine was not saturated, so CPU is not what bounds this run: look at the pipeline's cadence (timers, in-flight batches) and the chain. `) +
      `The chain's ${round(r.capacityRecordsPerSec, 1)} records/s would need ~${c.coresForCapacity} cores at this cost, ` +
      `~${c.hostCoresForCapacity} of them for ledger-bridge's own hosts (${round(c.hostCoresForCapacity / r.settings.banks, 1)} per bank); the rest is emulation.`,
  ].join('\n\n');
}

function markdown(r: BenchReport, files: { json: string; png: string }): string {
  const t = r.targets;
  const row = (k: string): string => `| ${k} | ${t[k]!.target} | ${t[k]!.measured} | ${t[k]!.met ? 'yes' : '**no**'} |`;
  const phase = (name: string): string => {
    const p = r.phases[name];
    if (!p) return `| ${name} | not run | | | | | | |`;
    return `| ${name} | ${p.events} | ${p.records}${p.skipped ? ` (+${p.skipped} skipped)` : ''} | ${p.seconds} | ${p.throughputRecordsPerSec} | ${p.window.fromSec}–${p.window.toSec} s | ${p.projectionRecordsPerSec} | ${p.chainRecordsPerSec} | ${p.latencyAnotherBank.p50} / ${p.latencyAnotherBank.p95} / ${p.latencyAnotherBank.p99} | ${p.latencyEveryBank.p99} | ${p.blocks.txs} | ${p.signCalls} |${p.complete ? '' : ' incomplete'}`;
  };
  const sat = r.phases.saturation;
  const cpu = sat
    ? Object.entries(sat.cpuSeconds)
        .map(([k, v]) => `${k} ${Math.round((100 * v) / sat.seconds)}%`)
        .join(', ')
    : '';
  const byTable = sat?.tables
    ? Object.entries(sat.tables.byTable)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ${round(v / Math.max(1, sat.records), 2)}`)
        .join(', ')
    : '';
  return `# ledger-bridge benchmark — ${r.startedAt}

${r.settings.banks} banks, ${r.settings.blockTime} s blocks, ${r.gasLimit.toLocaleString('en')} gas per block, ${r.settings.confirmations} confirmations, Key Vault latency ${r.settings.kvLatencyMs} ms per request; ${r.settings.events} events at saturation, ${r.settings.naiveEvents} in the naive run, ${r.settings.latencyRate} events/s for ${r.settings.latencySeconds} s in the latency run.
Machine: ${r.machine.cpus} × ${r.machine.cpuModel}, ${r.machine.memoryGiB} GiB, Node ${r.machine.node}. Submitter defaults: ${r.settings.submitDefaults}.

## Summary

| metric | target | measured | met |
| --- | --- | --- | --- |
${Object.keys(t).map(row).join('\n')}

| quantity | value |
| --- | --- |
| chain capacity (gas limit / gas per new record / measured block time) | ${round(r.capacityRecordsPerSec, 1)} records/s |
| gas limit · measured block time | ${r.gasLimit.toLocaleString('en')} · ${r.measuredBlockTimeSec} s |
| gas per new record · per update · per transaction (calibration receipts) | ${r.gasPerNewRecord} · ${r.gasPerUpdate} · ${r.gasPerTransaction} |
| gas per record through the pipeline (saturation receipts) | ${r.pipelineGasPerRecord ?? 'n/a'} |
| sustained throughput, projected at every bank | ${r.throughputRecordsPerSec} records/s (${round(r.fractionOfCapacity * 100, 1)}% of capacity) |
| naive throughput (one transaction and signature per event) | ${r.naiveThroughputRecordsPerSec ?? 'not run'} records/s |
| batched / naive | ${r.batchedOverNaive ?? 'n/a'}× |
| latency run p50 / p95 / p99 (enqueue → projected at another bank) | ${r.latencyP50Sec} / ${r.latencyP95Sec} / ${r.latencyP99Sec} s (floor (confirmations + 1) × block time = ${r.latencyFloorSec} s) |
| saturation latency p50 / p95 / p99 | ${r.saturationLatencyP50Sec} / ${r.saturationLatencyP95Sec} / ${r.saturationLatencyP99Sec} s |
| Key Vault sign calls per record (saturation) | ${r.signCallsPerRecord} |
| table operations per record at one bank (saturation; requests incl. batches) | ${r.tableOperationsPerRecord ?? 'n/a'} (${r.tableRequestsPerRecord ?? 'n/a'} requests) |
| peak RSS of a Function App host process (VmHWM) | ${r.peakRssMiB} MiB |

## Phases

| phase | events | records | seconds | end to end (records/s) | 10–90% window | projection stage (records/s) | chain inclusion (records/s) | latency p50 / p95 / p99 (s) | p99 at every bank (s) | txs | sign calls |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
${['latency', 'saturation', 'naive'].map(phase).join('\n')}

## What limits throughput here

${limits(r)}

## How it is measured

- **Capacity**: the block gas limit is read from the chain; gas per new record and per update come from the receipts of a calibration batch (50 and 150 new records, then 150 updates, on a throwaway registry on the same chain: the slope between the two new batches is the gas per record, the intercept the gas per transaction). The block time is measured from block timestamps over the saturation run. Capacity = gas limit / gas per new record / block time.
- **Throughput**: the bench polls every 250 ms the chain's CreditRegistry logs (which block holds each event) and every bank's watcher checkpoint (\`WatcherState\`, written after a chunk is projected). A record is projected at a bank once that bank's checkpoint covers its block. **Sustained end-to-end throughput** = 90% of the phase's records / (time at which 90% are projected at every bank (min checkpoint) − first send): ramp-up included, the last 10% (stragglers) left out; the events are all published at once, faster than the chain takes them. Stage rates over the **10%–90% window** are reported too: the projection stage (projected at every bank) and chain inclusion (records in blocks); the projection stage can run ahead of the chain while it works off a backlog, so its rate is not the throughput.
- **Latency**: from the moment the bench sends the event to the bank's queue to the first poll at which another bank's checkpoint covers the event's block (resolution 250 ms); "every bank" is the last bank.
- **Sign calls**: the Key Vault stand-in's counter, divided by the records of the phase.
- **Table operations**: a counting HTTP proxy in front of ${r.settings.banks > 0 ? 'BANK-A' : ''}'s table endpoint (the Function App's AzureWebJobsStorage tables go through it; its queue does not): single requests plus every operation inside entity-group transactions, divided by the phase's records (BANK-A ingests a third of them and projects all of them). Per table: ${byTable || 'n/a'}.
- **CPU during saturation** (share of one core, from /proc: user + system time of each process over the phase): ${cpu}. The machine's busy share is from /proc/stat (all processes). CPU per record = a part's CPU seconds over the phase / the phase's records.
- **Memory**: VmHWM of each host process from /proc.

Files: ${files.json}, ${files.png}
`;
}

// ---------- main ----------

export async function runBench(o: BenchOptions): Promise<BenchReport> {
  const startedAt = new Date();
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  mkdirSync(o.out, { recursive: true });
  const phases: Record<string, PhaseResult> = {};
  const peakRss: Record<string, number> = {};
  let calibration: Calibration;

  const env = await startEnv(o, 'batched', true);
  try {
    log('calibrating gas from receipts…');
    calibration = await calibrate(env);
    log(`gas per new record ${calibration.gasPerNewRecord}, per update ${calibration.gasPerUpdate}`);
    const latencyEvents = eventsFor(o, Math.round(o.latencyRate * o.latencySeconds), 'LAT-');
    phases.latency = await runPhase(
      env,
      'latency',
      latencyEvents.flat().length,
      (p) => publishSteady(p, latencyEvents, o.latencyRate),
      120
    );
    const satEvents = eventsFor(o, o.events, 'SAT-');
    phases.saturation = await runPhase(env, 'saturation', o.events, (p) => publishAll(p, satEvents), 120);
    for (const [name, s] of Object.entries(processes(env))) if (s) peakRss[`batched ${name}`] = round(s.peakRssMiB, 1);
  } finally {
    await env.stop();
  }

  if (!o.skipNaive) {
    const naive = await startEnv(o, 'naive', false);
    try {
      const events = eventsFor(o, o.naiveEvents, 'NAIVE-');
      phases.naive = await runPhase(naive, 'naive', o.naiveEvents, (p) => publishAll(p, events), 120);
      for (const [name, s] of Object.entries(processes(naive)))
        if (s) peakRss[`naive ${name}`] = round(s.peakRssMiB, 1);
    } finally {
      await naive.stop();
    }
  }

  const sat = phases.saturation;
  const latency = phases.latency;
  const blockTime = Number.isFinite(sat.blocks.measuredBlockTimeSec) ? sat.blocks.measuredBlockTimeSec : o.blockTime;
  const capacity = calibration.gasLimit / calibration.gasPerNewRecord / blockTime;
  const naiveRate = phases.naive ? phases.naive.throughputRecordsPerSec : null;
  const hostPeak = Math.max(
    ...Object.entries(peakRss)
      .filter(([k]) => k.startsWith('batched host'))
      .map(([, v]) => v)
  );
  const floor = (o.confirmations + 1) * o.blockTime;
  const signPerRecord = round(sat.signCalls / Math.max(1, sat.records), 4);
  const report: BenchReport = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      memoryGiB: round(totalmem() / 2 ** 30, 1),
      node: process.version,
      platform: `${process.platform} ${process.arch}`,
    },
    settings: {
      ...o,
      submitDefaults: 'SUBMIT_TX_GAS_BUDGET 15M, SUBMIT_MAX_IN_FLIGHT 4, SUBMIT/WATCH schedule every second',
    },
    capacityRecordsPerSec: round(capacity, 1),
    throughputRecordsPerSec: sat.throughputRecordsPerSec,
    fractionOfCapacity: round(sat.throughputRecordsPerSec / capacity, 3),
    naiveThroughputRecordsPerSec: naiveRate,
    batchedOverNaive:
      naiveRate && Number.isFinite(naiveRate) ? round(sat.throughputRecordsPerSec / naiveRate, 1) : null,
    latencyP50Sec: latency.latencyAnotherBank.p50,
    latencyP95Sec: latency.latencyAnotherBank.p95,
    latencyP99Sec: latency.latencyAnotherBank.p99,
    latencyFloorSec: floor,
    saturationLatencyP50Sec: sat.latencyAnotherBank.p50,
    saturationLatencyP95Sec: sat.latencyAnotherBank.p95,
    saturationLatencyP99Sec: sat.latencyAnotherBank.p99,
    signCallsPerRecord: signPerRecord,
    tableOperationsPerRecord: sat.tables ? round(sat.tables.operations / Math.max(1, sat.records), 2) : null,
    tableRequestsPerRecord: sat.tables ? round(sat.tables.requests / Math.max(1, sat.records), 2) : null,
    gasPerNewRecord: calibration.gasPerNewRecord,
    gasPerUpdate: calibration.gasPerUpdate,
    gasPerTransaction: calibration.gasPerTransaction,
    pipelineGasPerRecord: sat.blocks.gasUsed > 0 ? Math.round(sat.blocks.gasUsed / sat.records) : null,
    gasLimit: calibration.gasLimit,
    measuredBlockTimeSec: blockTime,
    peakRssMiB: Number.isFinite(hostPeak) ? hostPeak : 0,
    peakRssMiBByProcess: peakRss,
    cpu: cpuCost(sat, cpus().length, capacity),
    targets: {},
    calibration: calibration!,
    phases: Object.fromEntries(
      Object.entries(phases).map(([k, { timeline: _t, latencyPoints: _l, ...rest }]) => [k, rest])
    ),
  };
  const ratio = report.batchedOverNaive;
  report.targets = {
    'sustained ≥ 80% of capacity': {
      target: '≥ 80%',
      measured: `${round(report.fractionOfCapacity * 100, 1)}%`,
      met: report.fractionOfCapacity >= 0.8,
    },
    'sustained ≥ 400 records/s': {
      target: '≥ 400/s',
      measured: `${report.throughputRecordsPerSec}/s`,
      met: report.throughputRecordsPerSec >= 400,
    },
    'batched ≥ 10× naive': { target: '≥ 10×', measured: ratio ? `${ratio}×` : 'not run', met: (ratio ?? 0) >= 10 },
    'latency run p99 ≤ 9 s': { target: '≤ 9 s', measured: `${report.latencyP99Sec} s`, met: report.latencyP99Sec <= 9 },
    'sign calls per record ≤ 0.01': { target: '≤ 0.01', measured: String(signPerRecord), met: signPerRecord <= 0.01 },
  };

  const base = join(o.out, stamp);
  const files = { json: `${base}.json`, png: `${base}.png`, md: `${base}.md`, svg: `${base}.svg` };
  writeFileSync(files.json, JSON.stringify(report, null, 2) + '\n');
  const svg = chart(report, phases);
  writeFileSync(files.svg, svg);
  try {
    await renderPng(svg, files.png);
  } catch (err) {
    log(`PNG chart not rendered (${(err as Error).message}); the SVG is at ${files.svg}`);
  }
  writeFileSync(files.md, markdown(report, files));
  log(`report: ${files.md}`);
  return report;
}

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const options = parseBenchArgs(argv);
  const report = await runBench(options);
  const t = report.targets;
  console.log(
    Object.entries(t)
      .map(([k, v]) => `${v.met ? 'met    ' : 'MISSED '} ${k}: ${v.measured}`)
      .join('\n')
  );
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  });
}
