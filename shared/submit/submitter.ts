import { keccak256, Transaction, type TransactionRequest } from 'ethers';
import { decodeRegistryRevert, encodeSubmitBatch, registryErrorMessage } from '../chain/registry';
import type { Chain } from '../chain/provider';
import type { Config } from '../config';
import { eventIdToBytes16 } from '../domain/event-id';
import {
  backInFlight,
  BatchConflictError,
  MAX_RECORDS_PER_BATCH,
  type Batches,
  type BatchRow,
} from '../storage/batches';
import type { Outbox, PendingRecord } from '../storage/outbox';
import type { TransactionSigner } from '../keyvault/transaction-signer';
import type { Telemetry } from '../telemetry';
import type { UrgentWork } from '../urgent-work';
import type { MinedTx } from '../chain/rpc-answers';
import { broadcast, findReceipt } from './broadcast';
import { SUBMIT_EVENTS, SUBMIT_METRICS } from './telemetry-names';
import { bumpFees, feeFields, feeModelOf, maxFeePerGas, readBlockTerms, type FeeModel } from './fees';
import { noncePlan, readChainNonces, RECENT_ROWS_LIMIT, type ChainNonces, type NoncePlan } from './reconcile';

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
  crashPoints?: { afterSign?(): void; afterWriteAhead?(): void; afterClaim?(): void; afterBroadcast?(): void };
  /** Commits run as urgent work, which ingest in this process waits for (shared/urgent-work.ts). */
  urgent?: Pick<UrgentWork, 'run'>;
}

export interface SubmitReport {
  signer: string;
  head: number;
  /** The chain's `latest` transaction count for the signer when the run started. */
  chainNonce: number;
  newBatches: number;
  newRecords: number;
  broadcasts: number;
  rebroadcasts: number;
  feeBumps: number;
  mined: number;
  abandoned: number;
  /** Mined batches whose receipt vanished (a reorg), sent again. */
  orphaned: number;
  gapsFilled: number;
  /** Rows another writer changed while this run had them: left to the next run. */
  conflicts: number;
  /** Batches signed and not yet mined after this run. */
  inFlight: number;
  /** Why no new batch was started this run although records may be pending. */
  held?: string;
  /**
   * Pending records left for a fuller batch: too few for a whole one, and sent now they would only take block
   * space from a full batch (see waitsToFill).
   */
  filling: number;
}

/**
 * Gas of one new record (measured: ~26.1k) with room for calldata variance, and of the transaction around it.
 * A batch is sized with this until the newest batch row's estimate says what records cost now: an update of a
 * subject the chain already holds costs about a third of a new record (~8.9k).
 */
const GAS_PER_RECORD = 27_000;
const GAS_PER_TX = 60_000;
/**
 * A transaction's gas limit is eth_estimateGas plus this margin, or the gas its size predicts with this margin when
 * that is more (see sign). A node packs a block by gas limits, so the margin is gas no record can use: two batches
 * at the default budget fill 98% of a 30M block with 1%, 93% with 5%. 1% is enough because a batch cannot need more
 * at mining than at its estimate, short of a rare edge: its records only become cheaper (a subject's first record
 * turns into an update, an update into a skip) since this key's earlier nonces are mined first; only a reorg that
 * takes away a record another key of the same bank wrote can make one dearer. A batch that runs out of gas reverts
 * whole; reconciliation gives it up and its events go out again (rule 2 in reconcile.ts).
 */
const GAS_MARGIN_PERCENT = 1;
/** Sizing from a measured gas per record aims this much under the budget, so that a like batch fits first time. */
const SIZING_HEADROOM = 1.005;
/** A batch that overshoots is cut by its measured overshoot and this much more, then estimated again. */
const CUT_HEADROOM = 0.99;
/** A batch this large says what a record costs; in a smaller one the transaction's own gas blurs it. */
const MEASURING_BATCH = 50;
/** A plain transfer: what a filler transaction (rule 4 of reconcile.ts) costs. */
const TRANSFER_GAS = 21_000n;
const WEI_PER_GWEI = 1_000_000_000n;

const feeCap = (deps: SubmitDeps): bigint => BigInt(deps.config.submit.maxFeePerGasGwei) * WEI_PER_GWEI;

/** The most gas a batch's estimate may come to: its gas limit (estimate plus margin) then stays in the budget. */
const gasTarget = (config: Pick<Config, 'submit'>): number =>
  (config.submit.txGasBudget * 100) / (100 + GAS_MARGIN_PERCENT);

const withMargin = (estimate: number): number => (estimate * (100 + GAS_MARGIN_PERCENT)) / 100;

/** The gas limit a batch of `records` records is predicted to need: at the gas per record that sizes it. */
const predictedGasLimit = (run: Run, records: number): number =>
  Math.floor(withMargin(GAS_PER_TX + records * run.gasPerRecord));

/** The block space a row's transaction asks for: its gas limit (the budget for a row without an estimate). */
function gasLimitOf(row: BatchRow, config: Pick<Config, 'submit'>): number {
  if (row.gasLimit) return row.gasLimit;
  if (row.gasEstimate) return withMargin(row.gasEstimate); // a row written before gas limits were stored
  return row.eventIds.length === 0 ? Number(TRANSFER_GAS) : config.submit.txGasBudget;
}

/**
 * Records per transaction: the configured cap, or what the gas budget (and a batch row) holds at `gasPerRecord`:
 * by default as if every record were new, or as measured by the newest batch's estimate (with some headroom).
 */
export function recordsPerTransaction(config: Pick<Config, 'submit'>, gasPerRecord = GAS_PER_RECORD): number {
  if (config.submit.mode === 'naive') return 1;
  const byGas = Math.floor((gasTarget(config) - GAS_PER_TX) / gasPerRecord);
  return Math.max(1, Math.min(config.submit.maxRecordsPerTx, MAX_RECORDS_PER_BATCH, byGas));
}

/** Gas per record the newest batch's estimate measured (with headroom); the worst case without one. */
export function measuredGasPerRecord(newest: BatchRow | undefined): number {
  const records = newest?.eventIds.length ?? 0;
  if (!newest?.gasEstimate || records < MEASURING_BATCH) return GAS_PER_RECORD;
  return Math.max(1_000, ((newest.gasEstimate - GAS_PER_TX) / records) * SIZING_HEADROOM);
}

interface Run {
  deps: SubmitDeps;
  signer: string;
  nonces: ChainNonces;
  fees: FeeModel;
  /** The gas one block holds. */
  blockGasLimit: number;
  /** The gas the latest block used. */
  latestGasUsed: number;
  /** When the latest block was made (ms since the epoch, by the validators' clocks). */
  latestBlockAt: number;
  report: SubmitReport;
  /** Gas per record as the newest batch's estimate measured it (with headroom): what sizes the next batch. */
  gasPerRecord: number;
  /** When this key's newest batch was signed (ms since the epoch; 0 without one). */
  newestBatchAt: number;
  /** Gas limits of this key's batches signed and not mined: the next block takes these before any new one. */
  unminedGas: number;
  /** Block hashes this run read, by number (several mined rows often share a block). */
  blockHashes: Map<number, Promise<string | undefined>>;
}

/**
 * One submit run: reconcile the batch log with the chain (shared/submit/reconcile.ts states the rules), then
 * fill nonce gaps and the free in-flight slots with new batches from the outbox. Every new transaction is
 * signed, written ahead to the batch table under its nonce, its records claimed, and only then broadcast.
 */
export async function runSubmit(deps: SubmitDeps): Promise<SubmitReport> {
  const signer = (await deps.signer.getAddress()).toLowerCase();
  const [nonces, { fees, gasLimit: blockGasLimit, gasUsed: latestGasUsed, timestamp }] = await Promise.all([
    readChainNonces(deps.chain, signer),
    deps.chain.read((p) => readBlockTerms(p, feeCap(deps))),
  ]);
  const report: SubmitReport = {
    signer,
    head: nonces.head,
    chainNonce: nonces.latest,
    newBatches: 0,
    newRecords: 0,
    broadcasts: 0,
    rebroadcasts: 0,
    feeBumps: 0,
    mined: 0,
    abandoned: 0,
    orphaned: 0,
    gapsFilled: 0,
    conflicts: 0,
    inFlight: 0,
    filling: 0,
  };
  const recent = await deps.batches.recent(signer, nonces.latest, RECENT_ROWS_LIMIT);
  const run: Run = {
    deps: withBudgetInBlock(deps, blockGasLimit),
    signer,
    nonces,
    fees,
    blockGasLimit,
    latestGasUsed,
    latestBlockAt: timestamp * 1000,
    report,
    gasPerRecord: measuredGasPerRecord(recent.newest),
    newestBatchAt: Date.parse(recent.newest?.createdAt ?? '') || 0,
    unminedGas: 0,
    blockHashes: new Map(),
  };
  for (const row of recent.rows) {
    if (row.status === 'signed' || row.status === 'mined') await guarded(run, () => settle(run, row));
  }
  const plan = noncePlan(recent.rows, recent.highest, nonces.latest);
  report.held =
    plan.diverged.length > 0
      ? `the chain has not reached nonce(s) ${plan.diverged.map((r) => r.nonce).join(', ')} that the watcher ` +
        `confirmed (chain nonce ${nonces.latest}): a reorg deeper than the watcher's window; run rebuild-projections`
      : nonces.pending > plan.next
        ? `the node's pool holds nonces ${plan.next}..${nonces.pending - 1} of ${signer} that the batch log does ` +
          `not: the key signs outside ledger-bridge`
        : undefined;
  if (report.held) hold(run, report.held);
  else await submitNew(run, plan);

  deps.telemetry.metric(SUBMIT_METRICS.inFlight, report.inFlight);
  // Every second: a line only when the run changed something, so an idle bridge does not fill the logs.
  const changed = report.newBatches + report.broadcasts + report.mined + report.abandoned + report.gapsFilled > 0;
  if (changed)
    deps.log?.(
      `submit: head ${report.head}, chain nonce ${report.chainNonce}, ${report.newBatches} new batch(es) with ` +
        `${report.newRecords} record(s), ${report.inFlight} in flight, ${report.mined} mined, ` +
        `${report.rebroadcasts} rebroadcast, ${report.orphaned} orphaned, ${report.abandoned} abandoned` +
        (report.filling ? `, ${report.filling} record(s) left to fill a later batch` : '')
    );
  return report;
}

/** Runs one row's step; a row another writer changed meanwhile is left to the next run (rule 6). */
async function guarded(run: Run, step: () => Promise<void>): Promise<void> {
  try {
    await step();
  } catch (err) {
    if (!(err instanceof BatchConflictError)) throw err;
    run.report.conflicts++;
  }
}

/** Rule 2 for one signed or mined row. */
async function settle(run: Run, row: BatchRow): Promise<void> {
  const { deps, nonces, report } = run;
  if (!row.claimed) await finishClaim(run, row);
  const receipt = await receiptOf(run, row);
  if (receipt?.status === 1) {
    const filler = row.eventIds.length === 0;
    // The watcher confirms batches from their logs; a filler has none, so it is confirmed here, at the same depth.
    const status =
      filler && receipt.blockNumber <= nonces.head - deps.config.chain.confirmations ? 'confirmed' : 'mined';
    const mined = { minedTxHash: receipt.hash, minedBlock: receipt.blockNumber, minedBlockHash: receipt.blockHash };
    if (
      row.status === status &&
      row.minedTxHash === mined.minedTxHash &&
      row.minedBlock === mined.minedBlock &&
      row.minedBlockHash === mined.minedBlockHash
    )
      return;
    Object.assign(row, { status, ...mined });
    await deps.batches.update(row);
    report.mined++;
    return;
  }
  if (receipt) {
    // A revert is final at confirmation depth only: a reorg puts the transaction back in the pool, and mined again
    // in another state it may succeed; its events sent again meanwhile would then go out twice.
    if (receipt.blockNumber > nonces.head - deps.config.chain.confirmations) return;
    return abandon(run, row, `transaction ${receipt.hash} reverted in block ${receipt.blockNumber}`);
  }
  if (nonces.latest > row.nonce) {
    const elsewhere = await findReceipt(deps.chain, row.txHashes, true);
    if (elsewhere) return; // the primary endpoint lags; the next run reads the receipt there
    // Final only at confirmation depth, as a revert is: a reorg could free the nonce while this row's transaction
    // is still in a pool, and its events sent again meanwhile would go out twice.
    const depth = nonces.head - deps.config.chain.confirmations;
    if (depth < 0 || (await deps.chain.read((p) => p.getTransactionCount(row.signer, depth))) <= row.nonce) return;
    return abandon(run, row, `nonce ${row.nonce} was used by a transaction that is not in this write-ahead log`);
  }
  const orphaned = row.status === 'mined';
  if (orphaned) {
    deps.telemetry.event(SUBMIT_EVENTS.batchOrphaned, {
      signer: row.signer,
      nonce: String(row.nonce),
      txHash: row.minedTxHash ?? '',
      block: String(row.minedBlock ?? ''),
    });
    deps.log?.(
      `submit: the receipt of nonce ${row.nonce} (block ${row.minedBlock}) vanished: a reorg; sending it again`
    );
    backInFlight(row);
    report.orphaned++;
  }
  report.inFlight++;
  run.unminedGas += gasLimitOf(row, deps.config);
  const due =
    orphaned ||
    row.broadcasts === 0 ||
    nonces.head - (row.broadcastBlock ?? nonces.head) >= deps.config.submit.rebroadcastAfterBlocks ||
    passedOver(run, row);
  if (!due) return;
  const fee = await bumpFeesIfStuck(run, row);
  if (fee?.bumped) report.feeBumps++;
  else if (row.broadcasts > 0) {
    report.rebroadcasts++;
    deps.telemetry.metric(SUBMIT_METRICS.rebroadcasts, 1);
  }
  await broadcastRow(run, row, fee?.rawTx);
}

/**
 * Whether the chain passed over a transaction it could have taken: the one at its next nonce, broadcast two
 * blocks ago or more, while the latest block had room for it. A node can lose a transaction (a pool that does not
 * promote it when the nonce before it is mined, gossip that never reaches the validator), and blocks with room
 * say it is not waiting for space: it is sent again now rather than SUBMIT_REBROADCAST_AFTER_BLOCKS after.
 */
function passedOver(run: Run, row: BatchRow): boolean {
  const { nonces, latestGasUsed, blockGasLimit, deps } = run;
  return (
    row.nonce === nonces.latest &&
    row.broadcastBlock !== undefined &&
    nonces.head - row.broadcastBlock >= 2 &&
    latestGasUsed + gasLimitOf(row, deps.config) <= blockGasLimit
  );
}

/**
 * The receipt that decides rule 2 for a row. A mined row whose block still has the hash it was mined in keeps its
 * receipt (a block's hash commits to its transactions), so the run reads that block's header, shared by the rows
 * it holds, instead of the receipt with its hundreds of logs every second until the watcher confirms the row.
 */
async function receiptOf(run: Run, row: BatchRow): Promise<MinedTx | null> {
  const { minedTxHash, minedBlock, minedBlockHash } = row;
  if (row.status === 'mined' && minedTxHash && minedBlock !== undefined && minedBlockHash) {
    let hash = run.blockHashes.get(minedBlock);
    if (!hash) {
      hash = run.deps.chain.read((p) => p.getBlock(minedBlock)).then((b) => b?.hash?.toLowerCase() ?? undefined);
      run.blockHashes.set(minedBlock, hash);
    }
    if ((await hash) === minedBlockHash)
      return { hash: minedTxHash, blockNumber: minedBlock, blockHash: minedBlockHash, status: 1 };
  }
  return findReceipt(run.deps.chain, row.txHashes);
}

/**
 * Rule 3: a replacement with higher fees, only for the transaction at the chain's next nonce (executable, not
 * queued behind a gap) that two broadcasts did not get mined, within the bump count and the fee cap. (A node
 * evicts a transaction its fees no longer pay for, so whether the pool still holds it says nothing.) Written
 * ahead before it is broadcast. Returns the transaction to broadcast (the replacement, or the latest as it is at a
 * limit); undefined when the row is not one to bump.
 */
async function bumpFeesIfStuck(run: Run, row: BatchRow): Promise<{ rawTx: string; bumped: boolean } | undefined> {
  const { deps, fees, nonces } = run;
  if (fees.kind === 'free' || row.nonce !== nonces.latest || row.broadcasts < 2) return undefined;
  const latest = await deps.batches.rawTxOf(row);
  const last = Transaction.from(latest);
  const bumped = bumpFees(feeModelOf(last), fees);
  const cap = feeCap(deps);
  const limit =
    row.feeBumps >= deps.config.submit.maxFeeBumps
      ? `${row.feeBumps} fee bumps (SUBMIT_MAX_FEE_BUMPS)`
      : maxFeePerGas(bumped) > cap
        ? `the fee cap of ${deps.config.submit.maxFeePerGasGwei} gwei (SUBMIT_MAX_FEE_PER_GAS_GWEI)`
        : undefined;
  if (limit) {
    if (!row.feeLimit) {
      row.feeLimit = `not mined at ${maxFeePerGas(feeModelOf(last))} wei per gas after ${limit}`;
      deps.telemetry.event(SUBMIT_EVENTS.feeLimitReached, { signer: row.signer, nonce: String(row.nonce), limit });
      deps.log?.(`submit: nonce ${row.nonce} is ${row.feeLimit}; rebroadcasting it as it is`);
    }
    return { rawTx: latest, bumped: false };
  }
  const raw = await deps.signer.signTransaction({
    from: row.signer,
    to: last.to,
    data: last.data,
    nonce: row.nonce,
    gasLimit: last.gasLimit,
    chainId: last.chainId,
    ...feeFields(bumped),
  });
  row.rawTx = raw;
  row.txHashes.push(transactionHash(raw));
  row.feeBumps++;
  await deps.batches.update(row);
  deps.telemetry.metric(SUBMIT_METRICS.feeBumps, 1);
  return { rawTx: raw, bumped: true };
}

/** Gives up a nonce's batch: its events return to the pending index and go out again in a later batch. */
async function abandon(run: Run, row: BatchRow, reason: string): Promise<void> {
  const { deps } = run;
  const returned = await deps.outbox.returnToPending(row.eventIds, row.signer, row.nonce);
  Object.assign(row, { status: 'abandoned', lastError: reason });
  await deps.batches.update(row);
  run.report.abandoned++;
  deps.telemetry.event(SUBMIT_EVENTS.batchAbandoned, { signer: row.signer, nonce: String(row.nonce), reason });
  deps.log?.(`submit: abandoned nonce ${row.nonce}: ${reason}; ${returned} event(s) are pending again`);
}

/** Whether this process meets `message` for the first time: what it says once, however many runs it holds for. */
const announced = new Set<string>();
function firstTime(message: string): boolean {
  if (announced.has(message)) return false;
  announced.add(message);
  return true;
}

/** Says once per process why new batches wait (the heartbeat keeps reporting it while it lasts). */
function hold(run: Run, reason: string): void {
  if (!firstTime(reason)) return;
  run.deps.telemetry.event(SUBMIT_EVENTS.submitHeld, { signer: run.signer, reason });
  run.deps.log?.(`submit: no new batches: ${reason}`);
}

/**
 * A batch must fit a block: with a gas budget above the chain's block gas limit, a batch sized to it never could
 * (it would wait in `filling` for room that never comes, silently). The budget is cut to the block gas limit then
 * (said once per process), and records keep going.
 */
function withBudgetInBlock(deps: SubmitDeps, blockGasLimit: number): SubmitDeps {
  const { submit } = deps.config;
  if (submit.txGasBudget <= blockGasLimit) return deps;
  const warning =
    `submit: SUBMIT_TX_GAS_BUDGET (${submit.txGasBudget}) is above the block gas limit (${blockGasLimit}): ` +
    'batches are sized to the block gas limit';
  if (firstTime(warning)) deps.log?.(warning);
  return { ...deps, config: { ...deps.config, submit: { ...submit, txGasBudget: blockGasLimit } } };
}

/**
 * Rule 4: the gaps first (whatever the in-flight limit: every later nonce waits on them), then the batches that
 * waited above a gap again (pools drop what waits too long), then new batches in the free slots.
 */
async function submitNew(run: Run, { gaps, live, next }: NoncePlan): Promise<void> {
  const { deps, report } = run;
  const free = Math.max(0, deps.config.submit.maxInFlight - report.inFlight);
  if (gaps.length === 0 && free === 0) return;
  const perTx = (): number => recordsPerTransaction(deps.config, run.gasPerRecord);
  let pending = await deps.outbox.readPending((gaps.length + free) * perTx());
  let taken = 0;
  // A batch takes what fits of the next batch-worth of records (sized by the newest batch); the rest stay pending.
  const upcoming = (): PendingRecord[] => pending.slice(taken, taken + perTx());
  for (const gap of gaps) {
    const used = await commitUrgently(run, await prepareBatch(run, gap.nonce, upcoming(), gap.row));
    if (used === undefined) return;
    taken += used;
    report.gapsFilled++;
    deps.telemetry.event(SUBMIT_EVENTS.nonceGapFilled, {
      signer: run.signer,
      nonce: String(gap.nonce),
      records: String(used),
    });
  }
  const waited = gaps.length ? live.filter((r) => r.status === 'signed' && r.nonce > gaps[0]!.nonce) : [];
  for (const row of waited) await guarded(run, () => broadcastRow(run, row));
  // Each batch is read and signed while the one before it is written ahead, claimed and broadcast: those are
  // round trips to storage, and signing is round trips to Key Vault and the chain; a run with several batches to
  // send (a burst) would otherwise wait for them one after the other. Nothing is stored or sent out of nonce order.
  let committing: Promise<number | undefined> = Promise.resolve(0);
  let claiming = new Set<string>(); // the records of the batch being committed: a read may still find them pending
  const readAgain = async (i: number): Promise<PendingRecord[]> => {
    const fresh = await deps.outbox.readPending((free - i) * perTx() + claiming.size);
    pending = fresh.filter((r) => !claiming.has(r.eventId));
    taken = 0;
    return upcoming();
  };
  const prepareNext = async (i: number, nonce: number): Promise<Prepared | undefined> => {
    let candidates = upcoming();
    if (candidates.length < perTx() && i > 0) {
      // Records accepted while this run sent its batches (a burst still coming in) may fill the last one up:
      // short of a whole batch while the one before is still being sent, read again once it is sent.
      const readAll = candidates.length === 0;
      candidates = await readAgain(i);
      if (candidates.length < perTx()) {
        if ((await committing) === undefined) return undefined;
        candidates = await readAgain(i);
      }
      // Once the run has sent all it read, what came meanwhile goes now only as a full batch (the first records of
      // a burst, say): fewer are the next run's, a second away, rather than a transaction each run.
      if (readAll && candidates.length < perTx()) return undefined;
    }
    if (candidates.length === 0) return undefined;
    if (candidates.length < perTx() && waitsToFill(run, candidates)) {
      report.filling = pending.length - taken;
      return undefined;
    }
    const batch = await prepareBatch(run, nonce, candidates);
    taken += batch.records.length;
    return batch;
  };
  for (let i = 0, nonce = next; i < free; i++, nonce++) {
    const [committed, batch] = await bothSettled(committing, prepareNext(i, nonce));
    if (committed === undefined || batch === undefined) return; // a signature not committed is never stored or sent
    claiming = new Set(batch.records.map((r) => r.eventId));
    committing = commitUrgently(run, batch);
  }
  await committing;
}

/** Waits for both, so that neither is left running when the run ends; the first one's failure first. */
async function bothSettled<A, B>(first: Promise<A>, second: Promise<B>): Promise<[A, B]> {
  const [a, b] = await Promise.allSettled([first, second]);
  if (a.status === 'rejected') throw a.reason;
  if (b.status === 'rejected') throw b.reason;
  return [a.value, b.value];
}

/**
 * A chain whose latest block is this many block times old makes no blocks now, however full that one was. Three,
 * not one: block timestamps are whole seconds, and a run decides a while after it read the latest block.
 */
const QUIET_AFTER_BLOCK_TIMES = 3;

/**
 * Whether a partial batch (fewer records than a whole one) is better left to fill up:
 * - it cannot make the next block beside this key's unmined batches (its earlier nonces, mined first): sent now, it
 *   would land no sooner, and would take the room a full batch needs in the block it lands in; or
 * - blocks are full (the latest was over half full, with no room for another full batch, and is under three block
 *   times old: a chain that makes no empty blocks stops at its last full one when a burst ends): a block packs
 *   whole transactions, so it would land beside one full batch where two fit, and the full batch it keeps out
 *   waits for a later block all the same; held, it goes once a block shows room (at the end of a burst), the
 *   chain goes quiet, or it fills up.
 *   (Room for the partial batch itself is no sign: a block it shares with one full batch has that much room left,
 *   and the next partial batch would go the same way. Over half full keeps a budget of a whole block from
 *   counting a block of small batches as full.) This wait ends SUBMIT_FILL_WAIT_SECONDS after its oldest record
 *   was accepted or this key's newest batch was signed, whichever came later, so that a bank that only trickles is
 *   not starved by busy ones. A bank that got a batch out moments ago is not starved: the tail of its burst (records
 *   as old as the burst) waits for a block with room, and does not take a block's room from another bank's full
 *   batch while that bank's records wait as long.
 * A later run sends it once it is full or neither holds.
 */
function waitsToFill(run: Run, records: PendingRecord[]): boolean {
  const { blockGasLimit, latestGasUsed, latestBlockAt, deps } = run;
  if (run.unminedGas + predictedGasLimit(run, records.length) > blockGasLimit) return true;
  const blocksFull =
    latestGasUsed + deps.config.submit.txGasBudget > blockGasLimit &&
    latestGasUsed * 2 > blockGasLimit &&
    Date.now() - latestBlockAt < QUIET_AFTER_BLOCK_TIMES * deps.config.chain.blockTimeSeconds * 1000;
  if (!blocksFull) return false;
  const oldest = Math.min(...records.map((r) => Date.parse(r.enqueuedAt)));
  return Date.now() - Math.max(oldest, run.newestBatchAt) < deps.config.submit.fillWaitSeconds * 1000;
}

/** A batch signed and not yet stored: its row, its transaction, its records, the given-up row it takes the place of. */
interface Prepared {
  row: BatchRow;
  rawTx: string;
  records: PendingRecord[];
  replacing?: BatchRow;
}

/**
 * Signs what of `candidates` fits the gas budget (a filler transfer when there are none) at `nonce`: the batch's
 * row, not yet written. The run's sizing and block-space figures count it from here on.
 */
async function prepareBatch(
  run: Run,
  nonce: number,
  candidates: PendingRecord[],
  replacing?: BatchRow
): Promise<Prepared> {
  const { rawTx, records, gasEstimate, gasLimit } = await sign(run, nonce, candidates, { fit: true });
  const row: BatchRow = {
    signer: run.signer,
    nonce,
    status: 'signed',
    eventIds: records.map((r) => r.eventId),
    enqueuedAts: records.map((r) => r.enqueuedAt),
    rawTx,
    gasEstimate,
    gasLimit,
    txHashes: [transactionHash(rawTx)],
    claimed: false,
    createdAt: new Date().toISOString(),
    createdBlock: run.nonces.head,
    broadcasts: 0,
    feeBumps: 0,
  };
  run.gasPerRecord = measuredGasPerRecord(row); // the next batch, sized by this one
  run.newestBatchAt = Date.parse(row.createdAt);
  run.unminedGas += gasLimitOf(row, run.deps.config);
  return { row, rawTx, records, replacing };
}

/** commitBatch as urgent work: ingest in this process holds its outbox writes back meanwhile. */
const commitUrgently = (run: Run, batch: Prepared): Promise<number | undefined> =>
  run.deps.urgent ? run.deps.urgent.run(() => commitBatch(run, batch)) : commitBatch(run, batch);

/**
 * Writes a signed batch's row ahead (a new row, or in place of a given-up one), claims its records, and
 * broadcasts. Records another submitter claimed meanwhile are left out by signing again before anything is
 * broadcast. Returns how many records the batch took of those it was given (the rest stay pending); undefined
 * when another submitter holds the nonce.
 */
async function commitBatch(run: Run, { row, rawTx, records, replacing }: Prepared): Promise<number | undefined> {
  const { deps, report } = run;
  deps.crashPoints?.afterSign?.();
  if (replacing) {
    row.etag = replacing.etag;
    try {
      await deps.batches.update(row);
    } catch (err) {
      if (err instanceof BatchConflictError) return undefined;
      throw err;
    }
  } else if (!(await deps.batches.create(row))) {
    // Another submitter holds this nonce; our signed transaction was never broadcast, so dropping it is safe.
    deps.log?.(`submit: nonce ${row.nonce} is taken by another submitter; stopping this run`);
    return undefined;
  }
  deps.crashPoints?.afterWriteAhead?.();
  const claimed = await deps.outbox.claim(records, run.signer, row.nonce);
  deps.crashPoints?.afterClaim?.();
  const sent = claimed.length < records.length ? await resign(run, row, claimed) : rawTx;
  row.claimed = true;
  await broadcastRow(run, row, sent);
  deps.crashPoints?.afterBroadcast?.();
  report.newBatches++;
  report.newRecords += claimed.length;
  report.inFlight++;
  deps.telemetry.metric(SUBMIT_METRICS.batches, 1);
  deps.telemetry.metric(SUBMIT_METRICS.recordsPerTx, claimed.length);
  return records.length;
}

/** A row written before a crash, its records not (all) claimed: claim what is left, and never broadcast more. */
async function finishClaim(run: Run, row: BatchRow): Promise<void> {
  const claimed = await run.deps.outbox.reclaim(row.eventIds, row.enqueuedAts, row.signer, row.nonce);
  if (claimed.length < row.eventIds.length) await resign(run, row, claimed);
  row.claimed = true;
  await run.deps.batches.update(row);
}

/**
 * The row's transaction, signed again with only the records it claimed (a filler when none), written to the row and
 * returned. Safe only before any broadcast of the row: a row is broadcast only once all its records are claimed
 * (newBatch, finishClaim).
 */
async function resign(run: Run, row: BatchRow, claimed: PendingRecord[]): Promise<string> {
  row.eventIds = claimed.map((r) => r.eventId);
  row.enqueuedAts = claimed.map((r) => r.enqueuedAt);
  // Not fitted again: every claimed record must be in the transaction, and fewer records need less gas anyway.
  const { rawTx, gasEstimate, gasLimit } = await sign(run, row.nonce, claimed, { fit: false });
  Object.assign(row, { rawTx, gasEstimate, gasLimit });
  row.txHashes = [transactionHash(rawTx)];
  await run.deps.batches.update(row);
  return rawTx;
}

interface Signed {
  rawTx: string;
  /** The records in the transaction: a prefix of those given (all of them unless fitted). */
  records: PendingRecord[];
  gasEstimate?: number;
  gasLimit?: number;
}

/**
 * Signs a batch of `records` at `nonce`. The transaction is signed at once with the gas limit its size predicts
 * (its records at the gas per record that sized it, plus the margin) while eth_estimateGas checks it: both are
 * round trips, to Key Vault and to the chain, and a batch waits for neither twice. The signature is used when the
 * estimate shows the batch succeeds within that limit; a batch that needs more is signed again with its estimate's.
 * Fitted, a batch sized from a measured gas per record whose estimate overshoots the budget (its records cost
 * more than the newest batch's) is cut in proportion to its overshoot and estimated again; should that overshoot
 * too, it is cut to the worst-case size: at most three estimates. A signature not used is never sent or stored.
 */
async function sign(run: Run, nonce: number, records: PendingRecord[], { fit }: { fit: boolean }): Promise<Signed> {
  const { deps, signer, fees } = run;
  const chainId = BigInt(deps.config.chain.chainId);
  if (records.length === 0) {
    // A filler: a zero-value transfer to the signer itself, to use up a nonce that later ones wait on.
    const filler = { from: signer, to: signer, value: 0n, nonce, gasLimit: TRANSFER_GAS, chainId, ...feeFields(fees) };
    return { rawTx: await deps.signer.signTransaction(filler), records };
  }
  const to = deps.config.chain.registryAddress;
  const worstCase = recordsPerTransaction(deps.config);
  const target = gasTarget(deps.config);
  for (let cuts = 0; ; cuts++) {
    const data = encodeSubmitBatch(
      records.map((r) => ({ subject: r.subjectRef, eventId: eventIdToBytes16(r.eventId), data: BigInt(r.data) }))
    );
    const tx: TransactionRequest = { from: signer, to, data, nonce, chainId, ...feeFields(fees) };
    const predicted = predictedGasLimit(run, records.length);
    const early = deps.signer.signTransaction({ ...tx, gasLimit: predicted });
    early.catch(() => undefined); // awaited only if its gas limit holds; a failure then is thrown there
    let estimate: number;
    try {
      estimate = Number(await deps.chain.read((p) => p.estimateGas({ from: signer, to, data })));
    } catch (err) {
      // Sized at a cheaper kind of record (updates) than it holds, a batch on a budget of a whole block can need more
      // gas than a block holds, which the node cannot estimate: cut to the worst case, which always fits, and retry.
      if (fit && records.length > worstCase && !decodeRegistryRevert(err)) {
        records = records.slice(0, worstCase);
        continue;
      }
      // A revert here (not a member, a removed key) will not get better by sending: say so clearly.
      throw new Error(`submit: the batch would fail: ${registryErrorMessage(err)}`);
    }
    if (fit && estimate > target && records.length > worstCase) {
      const inProportion = Math.floor(((records.length * target) / estimate) * CUT_HEADROOM);
      records = records.slice(0, cuts === 0 ? Math.max(worstCase, inProportion) : worstCase);
      continue;
    }
    const gasLimit = Math.max(predicted, Math.floor(withMargin(estimate)));
    const rawTx = gasLimit === predicted ? await early : await deps.signer.signTransaction({ ...tx, gasLimit });
    return { rawTx, records, gasEstimate: estimate, gasLimit };
  }
}

/** A signed transaction's hash; the bytes decoded natively, not by ethers' hex parser (the raw runs to 80 KB). */
const transactionHash = (rawTx: string): string => keccak256(Buffer.from(rawTx.slice(2), 'hex'));

/** Sends the row's latest transaction (`rawTx` when the caller holds it, else read) and records the broadcast. */
async function broadcastRow(run: Run, row: BatchRow, rawTx?: string): Promise<void> {
  const { deps } = run;
  const failure = await broadcast(deps.chain, rawTx ?? (await deps.batches.rawTxOf(row)), row.txHashes.at(-1)!);
  row.broadcasts++;
  row.broadcastAt = new Date().toISOString();
  row.broadcastBlock = run.nonces.head;
  if (failure) row.lastError = failure.message;
  run.report.broadcasts++;
  if (failure) {
    deps.telemetry.metric(SUBMIT_METRICS.failures, 1, { kind: failure.kind });
    deps.log?.(`submit: broadcasting nonce ${row.nonce} failed on every endpoint: ${failure.message}`);
  }
  await deps.batches.update(row);
}
