import {
  isError,
  keccak256,
  type JsonRpcProvider,
  type TransactionReceipt,
  type TransactionRequest,
  Transaction,
} from 'ethers';
import { registryInterface, registryErrorMessage } from '../chain/registry';
import { isTransient, type Chain } from '../chain/provider';
import type { Config } from '../config';
import { eventIdToBytes16 } from '../domain/event-id';
import type { Batches, BatchRow } from '../storage/batches';
import type { Outbox, PendingRecord } from '../storage/outbox';
import type { TransactionSigner } from '../signing/transaction-signer';
import type { Telemetry } from '../telemetry';
import { bumpFees, feeFields, feeModelOf, readFeeModel, type FeeModel } from './fees';

export interface SubmitDeps {
  config: Pick<Config, 'submit' | 'chain'>;
  outbox: Outbox;
  batches: Batches;
  chain: Chain;
  signer: TransactionSigner;
  telemetry: Telemetry;
  log?: (message: string) => void;
  /**
   * Crash points for fault-injection tests: a hook that throws ends the run exactly there, as a crash would
   * (the submitter keeps no state between runs; every run starts from the tables and the chain).
   */
  crashPoints?: { afterSign?(): void; afterWriteAhead?(): void; afterBroadcast?(): void };
}

export interface SubmitReport {
  signer: string;
  head: number;
  newBatches: number;
  newRecords: number;
  broadcasts: number;
  rebroadcasts: number;
  feeBumps: number;
  mined: number;
  abandoned: number;
  inFlight: number;
}

export const SUBMIT_METRICS = {
  batches: 'submit.batches',
  recordsPerTx: 'submit.recordsPerTx',
  inFlight: 'submit.inFlight',
  rebroadcasts: 'submit.rebroadcasts',
  feeBumps: 'submit.feeBumps',
  failures: 'submit.failures',
} as const;
export const SUBMIT_EVENTS = { batchAbandoned: 'BatchAbandoned' } as const;

/** Gas of one new record (measured: ~26.1k) with room for calldata variance, and of the transaction around it. */
const GAS_PER_RECORD = 27_000;
const GAS_PER_TX = 60_000;
/** eth_estimateGas plus this margin becomes the transaction's gas limit. */
const GAS_MARGIN_PERCENT = 5n;

/** Records per transaction: the configured cap, or what the gas budget holds if all were new (the costlier case). */
export function recordsPerTransaction(config: Pick<Config, 'submit'>): number {
  if (config.submit.mode === 'naive') return 1;
  const byGas = Math.floor((config.submit.txGasBudget / 1.05 - GAS_PER_TX) / GAS_PER_RECORD);
  return Math.max(1, Math.min(config.submit.maxRecordsPerTx, byGas));
}

/**
 * One submit run: settle what is in flight (receipts, rebroadcasts, fee bumps, abandoned nonces), then fill the
 * free in-flight slots with new batches from the outbox. Every new transaction is signed, written ahead to
 * the batch table under its nonce, and only then broadcast; nothing is broadcast that the table does not hold.
 */
export async function runSubmit(deps: SubmitDeps): Promise<SubmitReport> {
  const { chain, batches, outbox, telemetry } = deps;
  const log = deps.log ?? (() => undefined);
  const signer = (await deps.signer.getAddress()).toLowerCase();
  const head = await chain.read((p) => p.getBlockNumber());
  const report: SubmitReport = {
    signer,
    head,
    newBatches: 0,
    newRecords: 0,
    broadcasts: 0,
    rebroadcasts: 0,
    feeBumps: 0,
    mined: 0,
    abandoned: 0,
    inFlight: 0,
  };
  const fees = await chain.read((p) => readFeeModel(p));

  for (const row of await batches.open(signer)) {
    if (!row.outboxMarked) {
      // A crash after the write-ahead row and before the outbox update: finish that step now.
      await outbox.markBatched(recordsOf(row), signer, row.nonce);
      row.outboxMarked = true;
      await batches.update(row);
    }
    if (row.status === 'mined') continue; // the watcher confirms it at depth (or reorgs it back to signed)
    const receipt = await findReceipt(chain, row.txHashes);
    if (receipt?.status === 1) {
      Object.assign(row, { status: 'mined', minedTxHash: receipt.hash, minedBlock: receipt.blockNumber });
      await batches.update(row);
      report.mined++;
      continue;
    }
    if (receipt) {
      await abandon(deps, row, `transaction ${receipt.hash} reverted in block ${receipt.blockNumber}`);
      report.abandoned++;
      continue;
    }
    const chainNonce = await chain.read((p) => p.getTransactionCount(signer, 'latest'));
    if (chainNonce > row.nonce && !(await findReceipt(chain, row.txHashes, true))) {
      await abandon(deps, row, `nonce ${row.nonce} was used by a transaction that is not in this write-ahead log`);
      report.abandoned++;
      continue;
    }
    report.inFlight++;
    const due =
      row.broadcasts === 0 || head - (row.broadcastBlock ?? head) >= deps.config.submit.rebroadcastAfterBlocks;
    if (!due) continue;
    if (row.broadcasts >= 2 && fees.kind !== 'free') {
      await replaceWithHigherFees(deps, row, fees, chainNonce);
      report.feeBumps++;
      telemetry.metric(SUBMIT_METRICS.feeBumps, 1);
    }
    if (row.broadcasts > 0) {
      report.rebroadcasts++;
      telemetry.metric(SUBMIT_METRICS.rebroadcasts, 1);
    }
    await broadcastRow(deps, row, head);
    report.broadcasts++;
  }

  const free = deps.config.submit.maxInFlight - report.inFlight;
  if (free > 0) await submitNewBatches(deps, report, fees, free);
  telemetry.metric(SUBMIT_METRICS.inFlight, report.inFlight);
  // Every second: a line only when the run changed something, so an idle bridge does not fill the logs.
  const changed = report.newBatches + report.broadcasts + report.mined + report.abandoned > 0;
  if (changed)
    log(
      `submit: head ${head}, ${report.newBatches} new batch(es) with ${report.newRecords} record(s), ${report.inFlight} in flight, ` +
        `${report.mined} mined, ${report.rebroadcasts} rebroadcast, ${report.abandoned} abandoned`
    );
  return report;
}

async function submitNewBatches(deps: SubmitDeps, report: SubmitReport, fees: FeeModel, free: number): Promise<void> {
  const { chain, batches, outbox, telemetry } = deps;
  const perTx = recordsPerTransaction(deps.config);
  const pending = await outbox.readPending(free * perTx);
  if (pending.length === 0) return;
  const chainNonce = await chain.read((p) => p.getTransactionCount(report.signer, 'latest'));
  const highest = await batches.highestNonce(report.signer);
  let nonce = highest === undefined ? chainNonce : highest + 1;
  if (nonce < chainNonce) {
    deps.log?.(
      `submit: the chain has nonce ${chainNonce} for ${report.signer} but the write-ahead log ends at ${nonce - 1}: the key was used outside ledger-bridge`
    );
    nonce = chainNonce;
  }
  for (let i = 0; i < pending.length; i += perTx) {
    const records = pending.slice(i, i + perTx);
    const tx = await buildTransaction(deps, report.signer, records, nonce, fees);
    const raw = await deps.signer.signTransaction(tx);
    deps.crashPoints?.afterSign?.();
    const row: BatchRow = {
      signer: report.signer,
      nonce,
      status: 'signed',
      eventIds: records.map((r) => r.eventId),
      enqueuedAts: records.map((r) => r.enqueuedAt),
      rawTxs: [raw],
      txHashes: [keccak256(raw)],
      outboxMarked: false,
      createdAt: new Date().toISOString(),
      broadcasts: 0,
    };
    if (!(await batches.create(row))) {
      // Another submitter holds this nonce; our signed transaction was never broadcast, so dropping it is safe.
      deps.log?.(`submit: nonce ${nonce} is taken by another submitter; stopping this run`);
      return;
    }
    deps.crashPoints?.afterWriteAhead?.();
    await outbox.markBatched(records, report.signer, nonce);
    row.outboxMarked = true;
    await broadcastRow(deps, row, report.head);
    deps.crashPoints?.afterBroadcast?.();
    report.newBatches++;
    report.newRecords += records.length;
    report.inFlight++;
    report.broadcasts++;
    telemetry.metric(SUBMIT_METRICS.batches, 1);
    telemetry.metric(SUBMIT_METRICS.recordsPerTx, records.length);
    nonce++;
  }
}

async function buildTransaction(
  deps: SubmitDeps,
  from: string,
  records: PendingRecord[],
  nonce: number,
  fees: FeeModel
): Promise<TransactionRequest> {
  const to = deps.config.chain.registryAddress;
  const data = registryInterface.encodeFunctionData('submitBatch', [
    records.map((r) => ({ subject: r.subjectRef, eventId: eventIdToBytes16(r.eventId), data: BigInt(r.data) })),
  ]);
  let gasLimit: bigint;
  try {
    const estimate = await deps.chain.read((p) => p.estimateGas({ from, to, data }));
    gasLimit = (estimate * (100n + GAS_MARGIN_PERCENT)) / 100n;
  } catch (err) {
    // A revert here (not a member, a removed key) will not get better by sending: say so clearly.
    throw new Error(`submit: the batch would fail: ${registryErrorMessage(err)}`);
  }
  return { from, to, data, nonce, gasLimit, chainId: BigInt(deps.config.chain.chainId), ...feeFields(fees) };
}

/** A replacement for the same nonce with the same records and higher fees; written ahead before it is broadcast. */
async function replaceWithHigherFees(
  deps: SubmitDeps,
  row: BatchRow,
  current: FeeModel,
  chainNonce: number
): Promise<void> {
  if (chainNonce > row.nonce) return; // mined meanwhile; the next run sees the receipt
  const last = Transaction.from(row.rawTxs[row.rawTxs.length - 1]);
  const fees = bumpFees(feeModelOf(last), current);
  const raw = await deps.signer.signTransaction({
    from: row.signer,
    to: last.to,
    data: last.data,
    nonce: row.nonce,
    gasLimit: last.gasLimit,
    chainId: last.chainId,
    ...feeFields(fees),
  });
  row.rawTxs.push(raw);
  row.txHashes.push(keccak256(raw));
  await deps.batches.update(row);
}

async function broadcastRow(deps: SubmitDeps, row: BatchRow, head: number): Promise<void> {
  const raw = row.rawTxs[row.rawTxs.length - 1]!;
  const failure = await broadcast(deps.chain, raw, row.txHashes[row.txHashes.length - 1]!);
  row.broadcasts++;
  row.broadcastAt = new Date().toISOString();
  row.broadcastBlock = head;
  row.lastError = failure?.message;
  if (failure) {
    deps.telemetry.metric(SUBMIT_METRICS.failures, 1, { kind: failure.kind });
    deps.log?.(`submit: broadcasting nonce ${row.nonce} failed on every endpoint: ${failure.message}`);
  }
  await deps.batches.update(row);
}

/**
 * Sends a raw transaction through the load balancer, then the fallbacks until one takes it. "Already known"
 * is detected by asking the node for the transaction, not by reading its message. A nonce already used or a
 * replacement already pooled is left for the next run's receipt check. Returns the failure, if every endpoint
 * failed.
 */
export interface BroadcastFailure {
  kind: 'insufficient-funds' | 'unreachable' | 'rejected';
  message: string;
}

export async function broadcast(chain: Chain, raw: string, hash: string): Promise<BroadcastFailure | undefined> {
  let failure: BroadcastFailure = { kind: 'unreachable', message: 'no endpoint answered' };
  for (const provider of chain.providers) {
    try {
      await provider.send('eth_sendRawTransaction', [raw]);
      return undefined;
    } catch (err) {
      if (isError(err, 'NONCE_EXPIRED') || isError(err, 'REPLACEMENT_UNDERPRICED')) return undefined;
      if (await knows(provider, hash)) return undefined;
      const message = `${provider._getConnection().url}: ${shortMessage(err)}`;
      // Every node will say the same until the signer is funded.
      if (isError(err, 'INSUFFICIENT_FUNDS')) return { kind: 'insufficient-funds', message };
      failure = { kind: isTransient(err) ? 'unreachable' : 'rejected', message };
    }
  }
  return failure;
}

async function knows(provider: JsonRpcProvider, hash: string): Promise<boolean> {
  try {
    return (await provider.getTransaction(hash)) !== null;
  } catch {
    return false;
  }
}

/** The receipt of any of the hashes; `everywhere` asks every endpoint (a lagging node may not have it yet). */
async function findReceipt(chain: Chain, hashes: string[], everywhere = false): Promise<TransactionReceipt | null> {
  const providers = everywhere ? chain.providers : [undefined];
  for (const provider of providers) {
    for (const hash of hashes) {
      const receipt = provider
        ? await provider.getTransactionReceipt(hash).catch(() => null)
        : await chain.read((p) => p.getTransactionReceipt(hash));
      if (receipt) return receipt;
    }
  }
  return null;
}

/** Gives up a nonce's batch: its events return to the pending index and go out again in a later batch. */
async function abandon(deps: SubmitDeps, row: BatchRow, reason: string): Promise<void> {
  await deps.outbox.returnToPending(row.eventIds);
  row.status = 'abandoned';
  row.lastError = reason;
  await deps.batches.update(row);
  deps.telemetry.event(SUBMIT_EVENTS.batchAbandoned, { signer: row.signer, nonce: String(row.nonce), reason });
  deps.log?.(`submit: abandoned nonce ${row.nonce}: ${reason}; its ${row.eventIds.length} event(s) are pending again`);
}

const recordsOf = (row: BatchRow): PendingRecord[] =>
  row.eventIds.map((eventId, i) => ({ eventId, enqueuedAt: row.enqueuedAts[i]!, subjectRef: '', data: '' }));

function shortMessage(err: unknown): string {
  return (err as { shortMessage?: string }).shortMessage ?? (err as Error).message ?? String(err);
}
