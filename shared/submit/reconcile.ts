import type { Chain } from '../chain/provider';
import { forEachLimit } from '../util';
import { backInFlight, type BatchRow, type Batches } from '../storage/batches';
import type { Outbox } from '../storage/outbox';

/**
 * The chain is the truth for the write side too. Every submit run first reconciles the batch log (Batches)
 * with the chain, and only then signs anything new. The invariants, and who keeps each:
 *
 * 1. Every accepted event is in exactly one place: the pending index, one batch that claimed it (its event row
 *    names the batch), or settled on chain (confirmed or skipped, with the log's position). Claims are
 *    conditional on the pending row's ETag (Outbox.claim), so two submitters never put an event in two batches.
 *    An applied event is never downgraded to skipped (Outbox.markOnChainMany).
 * 2. A batch row follows the chain, re-checked every run until the watcher confirms it at depth (submitter):
 *    - a receipt of any of its hashes: mined (checked by its block's hash while that block stands); a reverted
 *      one, once at confirmation depth (a reorg could mine it again, and it might succeed): abandoned, its
 *      events back to pending;
 *    - no receipt, and the chain's nonce is past the row's (asked of every endpoint: a lagging node may only
 *      not know yet): the nonce went to a transaction the log does not hold: once the chain's nonce at
 *      confirmation depth is past it too (a reorg could free it), abandoned, events back to pending;
 *    - no receipt, the nonce still open: signed; the stored transaction (same hash) is rebroadcast, lowest
 *      nonce first, at once when its receipt vanished (a reorg), else after SUBMIT_REBROADCAST_AFTER_BLOCKS,
 *      or after two blocks when it is at the chain's next nonce and the latest block had room for it.
 * 3. Fees rise only for the transaction at the chain's next nonce that two broadcasts did not get mined, at
 *    most SUBMIT_MAX_FEE_BUMPS times and never past SUBMIT_MAX_FEE_PER_GAS_GWEI. One queued behind a gap is
 *    never bumped: the gap is what holds it. A row keeps its latest transaction and the earlier hashes only.
 * 4. Nonces: a new batch takes max(highest row + 1, the chain's `latest` count). A nonce at or above the
 *    chain's count without a live row (its row was given up, then a reorg freed it again) is a gap: it is
 *    filled first, with pending records or, when there are none, a zero-value transfer to the signer itself,
 *    since every later nonce waits on it. A `pending` count above the log's next nonce means the key signs
 *    elsewhere too: no new batch until that clears (it would only collide).
 * 5. A confirmed row at a nonce the chain has not reached means the chain lost a transaction the watcher had
 *    confirmed: a reorg deeper than the watcher's window (the watcher halts). New batches wait;
 *    `rebuild-projections` replays the chain and then resets such rows and their events (reconcileAfterRebuild)
 *    for rule 2 to resend the very same transactions.
 * 6. Every write to a batch row after its insert is conditional on the ETag it was read with; the writer that
 *    lost a race leaves the row to the next run.
 *
 * The watcher keeps its side: it confirms rows and events at depth, and a reorg it undoes sets them back to
 * signed/batched (shared/watch/projection.ts).
 */

/** What the chain says about a signer: its head, and its nonce counts from one endpoint. */
export interface ChainNonces {
  head: number;
  /** Transactions of the signer in the latest block's state: the next nonce the chain will execute. */
  latest: number;
  /** Including what that node's pool holds: a hint only (nodes behind a load balancer differ). */
  pending: number;
}

export async function readChainNonces(chain: Chain, signer: string): Promise<ChainNonces> {
  const [head, latest, pending] = await Promise.all([
    chain.read((p) => p.getBlockNumber()),
    chain.read((p) => p.getTransactionCount(signer, 'latest')),
    chain.read((p) => p.getTransactionCount(signer, 'pending')),
  ]);
  return { head, latest, pending };
}

/** The batch log read against the chain's nonce: what is live, what is missing, what went wrong. */
export interface NoncePlan {
  /** Rows still in play (signed or mined), ascending by nonce. */
  live: BatchRow[];
  /** Nonces at or above the chain's count without a live row, ascending, with the row there (given up) if any. */
  gaps: { nonce: number; row?: BatchRow }[];
  /** Confirmed rows at nonces the chain has not reached (rule 5). */
  diverged: BatchRow[];
  /** The nonce a new batch takes after the gaps. */
  next: number;
}

export function noncePlan(rows: BatchRow[], highest: number | undefined, chainNonce: number): NoncePlan {
  const live = rows.filter((r) => r.status === 'signed' || r.status === 'mined');
  const diverged = rows.filter((r) => r.status === 'confirmed' && r.nonce >= chainNonce);
  const byNonce = new Map(rows.map((r) => [r.nonce, r]));
  const gaps: NoncePlan['gaps'] = [];
  for (let nonce = chainNonce; highest !== undefined && nonce <= highest; nonce++) {
    const row = byNonce.get(nonce);
    if (!row || row.status === 'abandoned') gaps.push({ nonce, row });
  }
  return { live, gaps, diverged, next: Math.max(chainNonce, highest === undefined ? 0 : highest + 1) };
}

/** Rows read per run: every live row (at most SUBMIT_MAX_IN_FLIGHT unmined plus what awaits confirmation). */
export const RECENT_ROWS_LIMIT = 512;

/** The write side's health for operators (heartbeat, status): what is in flight and for how long. */
export interface WriteSideHealth {
  signer: string;
  chainNonce: number;
  pendingNonce: number;
  /** Batches signed or mined, not yet confirmed. */
  inFlight: number;
  /** Blocks since the oldest of them was written. */
  oldestInFlightBlocks?: number;
  /** Enqueue time of the oldest event they hold. */
  oldestInFlightEnqueuedAt?: string;
  /** Nonces the chain waits on that no live row holds. */
  nonceGaps: number;
  /** Confirmed rows the chain has not reached (a reorg deeper than the watcher's window). */
  diverged: number;
}

export async function readWriteSideHealth(
  deps: { chain: Chain; batches: Batches },
  signer: string
): Promise<WriteSideHealth> {
  const nonces = await readChainNonces(deps.chain, signer);
  const recent = await deps.batches.recent(signer, nonces.latest, RECENT_ROWS_LIMIT);
  const plan = noncePlan(recent.rows, recent.highest, nonces.latest);
  const createdBlocks = plan.live.map((r) => r.createdBlock).filter((b) => b >= 0);
  const enqueued = plan.live.flatMap((r) => r.enqueuedAts).sort();
  return {
    signer,
    chainNonce: nonces.latest,
    pendingNonce: nonces.pending,
    inFlight: plan.live.length,
    oldestInFlightBlocks: createdBlocks.length ? Math.max(0, nonces.head - Math.min(...createdBlocks)) : undefined,
    oldestInFlightEnqueuedAt: enqueued[0],
    nonceGaps: plan.gaps.length,
    diverged: plan.diverged.length,
  };
}

/**
 * After `rebuild-projections` replayed the chain from `fromBlock` (rule 5): every batch row the chain once held
 * from that block on is checked against it. A row whose transaction the chain no longer holds goes back to
 * signed, and what that transaction had settled in the outbox back to batched; the next submit run then
 * rebroadcasts it, or gives it up and returns its events to the pending index when its nonce went elsewhere.
 */
export async function reconcileAfterRebuild(
  deps: { chain: Chain; batches: Batches; outbox: Outbox },
  fromBlock: number
): Promise<{ checked: number; reset: number; events: number }> {
  const rows = await deps.batches.minedSince(fromBlock);
  const result = { checked: rows.length, reset: 0, events: 0 };
  await forEachLimit(rows, 8, async (row) => {
    const txHash = row.minedTxHash;
    if (txHash && (await deps.chain.read((p) => p.getTransactionReceipt(txHash)))) return;
    result.events += txHash ? await deps.outbox.unsettle(row.eventIds, txHash) : 0;
    await deps.batches.modify(row.signer, row.nonce, (current) => {
      if (current.minedTxHash !== txHash) return false;
      backInFlight(current);
      return true;
    });
    result.reset++;
  });
  return result;
}
