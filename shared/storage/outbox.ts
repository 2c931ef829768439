import { createHash } from 'node:crypto';
import type { TableClient, TransactionAction } from '@azure/data-tables';
import { forEachLimit, groupBy } from '../util';
import {
  deleteRows,
  isConflict,
  isNotFound,
  MAX_TRANSACTION_ACTIONS,
  odata,
  submitGrouped,
  submitGroupedTolerant,
  submitTransaction,
  TABLES,
  type TableStore,
} from './tables';

/**
 * The outbox: every accepted credit-update event, keyed by its event id, and an index of the ones still
 * waiting for a transaction. Both rows of an event share a partition (a shard of the event id), so accepting
 * an event is one atomic transaction and a redelivered or republished event is a 409 that changes nothing.
 *
 *   PartitionKey  s00..s15                 shard of the event id (spreads load over partitions)
 *   RowKey        e_<eventId>              the event row: status and provenance
 *                 p_<enqueuedMs>_<eventId> the pending row: what the submitter needs, oldest first
 *
 * Claiming an event for a batch is one transaction too: its pending row deleted, its event row marked batched.
 */
export const OUTBOX_SHARDS = 16;

export type OutboxStatus = 'pending' | 'batched' | 'confirmed' | 'skipped';

/** What the submitter needs of an event, on its pending row. */
export interface PendingRecord {
  eventId: string;
  subjectRef: string;
  /** The packed record word (hex). */
  data: string;
  /** When the bank's system enqueued the event (Service Bus enqueued time). */
  enqueuedAt: string;
}

export interface OutboxEvent extends PendingRecord {
  status: OutboxStatus;
  sequence: string;
  messageId: string;
  acceptedAt: string;
  signer?: string;
  nonce?: number;
  txHash?: string;
  blockNumber?: number;
  logIndex?: number;
  skipReason?: string;
}

export interface OnChainOutcome {
  status: 'confirmed' | 'skipped';
  txHash: string;
  blockNumber: number;
  logIndex: number;
  skipReason?: string;
}

/** The pending index's depth (a lower bound when `capped`) and its oldest event's enqueue time. */
export interface OutboxBacklog {
  depth: number;
  capped: boolean;
  oldestEnqueuedAt?: string;
}

export type AcceptOutcome =
  { outcome: 'accepted' | 'duplicate' } | { outcome: 'conflict'; acceptedHash: string; receivedHash: string };

/**
 * What an event means on chain, hashed: subject ref, sequence and packed record (which holds asOf and the credit
 * data). Equal for two bodies that differ only in spelling (key order, white space, the raw id's separators);
 * never over the body, whose raw identifier a hash would not hide (identifiers are few enough to try them all).
 */
export const contentHash = (event: Pick<OutboxEvent, 'subjectRef' | 'sequence' | 'data'>): string =>
  createHash('sha256').update(`${event.subjectRef}\n${event.sequence}\n${event.data}`).digest('hex');

export const shardOf = (eventId: string): string =>
  `s${String(createHash('sha256').update(eventId).digest()[0]! % OUTBOX_SHARDS).padStart(2, '0')}`;
const eventRowKey = (eventId: string): string => `e_${eventId}`;
const pendingRowKey = (record: Pick<PendingRecord, 'eventId' | 'enqueuedAt'>): string =>
  `p_${String(Date.parse(record.enqueuedAt)).padStart(15, '0')}_${record.eventId}`;
// Pending rows: RowKeys from 'p_' up to, not including, 'p`' (the character after '_').
const PENDING_ROWS = "RowKey ge 'p_' and RowKey lt 'p`'";
/** An event row back in flight: batched, without the chain position it had. */
const UNSETTLED = (eventId: string) => ({
  rowKey: eventRowKey(eventId),
  status: 'batched',
  txHash: '',
  blockNumber: -1,
  logIndex: -1,
  skipReason: '',
});
const pendingOf = (row: PendingRecord): PendingRecord => ({
  eventId: row.eventId,
  subjectRef: row.subjectRef,
  data: row.data,
  enqueuedAt: row.enqueuedAt,
});
/**
 * Who claimed a pending row, on rows an earlier version left behind: it marked the row claimed, then deleted it,
 * and a crash in between left the mark (claims now delete the row in the claiming transaction).
 */
const claimOf = (signer: string, nonce: number): string => `${signer}/${nonce}`;
type PendingRow = PendingRecord & { claimedBy?: string };
/** Pending rows a heartbeat counts per shard at most (160,000 in all). */
const BACKLOG_COUNT_PER_SHARD = 10_000;
const SHARDS = Array.from({ length: OUTBOX_SHARDS }, (_, i) => `s${String(i).padStart(2, '0')}`);

/** An accepted event's two rows, created together: the event row and its pending row. */
function acceptActions(event: Omit<OutboxEvent, 'status'>): TransactionAction[] {
  const partitionKey = shardOf(event.eventId);
  const pending: PendingRecord = {
    eventId: event.eventId,
    subjectRef: event.subjectRef,
    data: event.data,
    enqueuedAt: event.enqueuedAt,
  };
  return [
    ['create', { partitionKey, rowKey: eventRowKey(event.eventId), ...event, status: 'pending' }],
    ['create', { partitionKey, rowKey: pendingRowKey(pending), ...pending }],
  ];
}

/** A create refused because the row exists (a transaction reports it as a 409 too). */
const isExisting = (err: unknown): boolean =>
  isConflict(err) || (err as { code?: string }).code === 'EntityAlreadyExists';

export class Outbox {
  constructor(private readonly store: TableStore) {}

  private table(): Promise<TableClient> {
    return this.store.table(TABLES.outbox);
  }

  /**
   * Records a valid event. An event id accepted before changes nothing: a 'duplicate' when the content is the
   * same (a redelivery or republish), a 'conflict' when it is not (the sender reused an id for other data).
   */
  async accept(event: Omit<OutboxEvent, 'status'>): Promise<AcceptOutcome> {
    const table = await this.table();
    try {
      await submitTransaction(table, acceptActions(event));
      return { outcome: 'accepted' };
    } catch (err) {
      if (!isExisting(err)) throw err;
    }
    return this.compareWithAccepted(event);
  }

  /**
   * Records many valid events (distinct event ids) as `accept` does, with one entity-group transaction per shard
   * for up to 50 events instead of one per event. A transaction refused because one of its events exists
   * already changes nothing, and its events are then accepted one by one, so each gets its own outcome.
   */
  async acceptMany(events: Omit<OutboxEvent, 'status'>[]): Promise<AcceptOutcome[]> {
    const table = await this.table();
    const outcomes: AcceptOutcome[] = new Array<AcceptOutcome>(events.length);
    const byShard = groupBy(events.keys(), (i) => shardOf(events[i]!.eventId));
    const perTransaction = MAX_TRANSACTION_ACTIONS / 2; // two rows per event
    await Promise.all(
      [...byShard.values()].map(async (indexes) => {
        for (let start = 0; start < indexes.length; start += perTransaction) {
          const chunk = indexes.slice(start, start + perTransaction);
          try {
            await submitTransaction(
              table,
              chunk.flatMap((i) => acceptActions(events[i]!))
            );
            for (const i of chunk) outcomes[i] = { outcome: 'accepted' };
          } catch (err) {
            if (!isExisting(err)) throw err;
            for (const i of chunk) outcomes[i] = await this.accept(events[i]!);
          }
        }
      })
    );
    return outcomes;
  }

  private async compareWithAccepted(event: Omit<OutboxEvent, 'status'>): Promise<AcceptOutcome> {
    const accepted = await this.get(event.eventId);
    if (!accepted) throw new Error(`event ${event.eventId}: the outbox refused it as existing but has no row for it`);
    const acceptedHash = contentHash(accepted);
    const receivedHash = contentHash(event);
    return acceptedHash === receivedHash
      ? { outcome: 'duplicate' }
      : { outcome: 'conflict', acceptedHash, receivedHash };
  }

  async get(eventId: string): Promise<OutboxEvent | undefined> {
    const table = await this.table();
    try {
      return await table.getEntity<OutboxEvent>(shardOf(eventId), eventRowKey(eventId));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** The oldest pending records (approximately, across shards), at most `limit`, oldest first. */
  async readPending(limit: number): Promise<PendingRecord[]> {
    const table = await this.table();
    // Each shard gives its oldest rows, twice its fair share: enough for the hash-spread shards to yield the
    // globally oldest `limit`, without reading a whole backlog on every run (a deep backlog stalled Azurite).
    const quota = Math.min(limit, 2 * Math.ceil(limit / OUTBOX_SHARDS));
    const perShard = await Promise.all(
      SHARDS.map(async (shard) => {
        const rows: PendingRecord[] = [];
        const query = table.listEntities<PendingRow>({
          queryOptions: {
            filter: `PartitionKey eq ${odata(shard)} and ${PENDING_ROWS}`,
            select: ['eventId', 'subjectRef', 'data', 'enqueuedAt', 'claimedBy'],
          },
        });
        for await (const page of query.byPage({ maxPageSize: Math.min(quota, 1000) })) {
          for (const row of page) if (!row.claimedBy) rows.push(pendingOf(row));
          if (rows.length >= quota) break;
        }
        return rows.slice(0, quota);
      })
    );
    return perShard
      .flat()
      .sort((a, b) => Date.parse(a.enqueuedAt) - Date.parse(b.enqueuedAt))
      .slice(0, limit);
  }

  /**
   * Claims records for the batch (signer, nonce): takes their rows out of the pending index and marks their
   * event rows batched, together. Of two submitters that read the same pending rows, only one can claim each
   * (the other's delete finds no row, and its transaction changes nothing), so no event is ever in two batches.
   * Returns the records this call claimed, in their order (the others were claimed by someone else meanwhile).
   */
  async claim(records: PendingRecord[], signer: string, nonce: number): Promise<PendingRecord[]> {
    const table = await this.table();
    const byShard = groupBy(records, (r) => shardOf(r.eventId));
    const claimed = new Set<string>();
    await Promise.all(
      [...byShard.values()].map(async (list) => {
        for (let i = 0; i < list.length; i += MAX_TRANSACTION_ACTIONS / 2) {
          const group = list.slice(i, i + MAX_TRANSACTION_ACTIONS / 2);
          if (await claimAll(table, group, signer, nonce)) group.forEach((r) => claimed.add(r.eventId));
          // Someone else took one of them: find out which, one at a time.
          else
            for (const record of group) if (await claimAll(table, [record], signer, nonce)) claimed.add(record.eventId);
        }
      })
    );
    return records.filter((r) => claimed.has(r.eventId));
  }

  /**
   * Finishes the claim of a batch row written before a crash: claims what is still pending and keeps what an
   * earlier attempt claimed for this very batch. Returns the batch's records that are now its own, in the row's
   * order; the others went to another batch meanwhile.
   */
  async reclaim(eventIds: string[], enqueuedAts: string[], signer: string, nonce: number): Promise<PendingRecord[]> {
    const table = await this.table();
    const unclaimed: PendingRecord[] = [];
    const ours: PendingRecord[] = [];
    const markedOurs: PendingRecord[] = [];
    await forEachLimit(eventIds.keys(), 16, async (i) => {
      const eventId = eventIds[i]!;
      try {
        const row = await table.getEntity<PendingRow>(
          shardOf(eventId),
          pendingRowKey({ eventId, enqueuedAt: enqueuedAts[i]! })
        );
        if (!row.claimedBy) unclaimed.push(pendingOf(row));
        else if (row.claimedBy === claimOf(signer, nonce)) markedOurs.push(pendingOf(row));
      } catch (err) {
        if (!isNotFound(err)) throw err;
        const event = await this.get(eventId);
        if (event?.status === 'batched' && event.signer === signer && event.nonce === nonce)
          ours.push(pendingOf(event));
      }
    });
    await this.dropPendingRows(markedOurs);
    const claimed = new Map(
      [...ours, ...markedOurs, ...(await this.claim(unclaimed, signer, nonce))].map((r) => [r.eventId, r])
    );
    return eventIds.flatMap((id) => claimed.get(id) ?? []);
  }

  /** Deletes pending rows an earlier version marked claimed (idempotent: a row already gone is fine). */
  private async dropPendingRows(records: PendingRecord[]): Promise<void> {
    const table = await this.table();
    await deleteRows(
      table,
      records.map((r) => ({ partitionKey: shardOf(r.eventId), rowKey: pendingRowKey(r) }))
    );
  }

  /**
   * Records what the chain did with this bank's events (applied or skipped, where), grouped by shard, up to 100
   * per entity-group transaction. An applied event is never downgraded: a skip that comes later (the same record
   * sent again after its batch was given up too early) leaves a `confirmed` row as it is. An event this outbox
   * never held (submitted before a storage reset) is skipped.
   */
  async markOnChainMany(outcomes: { eventId: string; outcome: OnChainOutcome }[]): Promise<void> {
    if (outcomes.length === 0) return;
    const table = await this.table();
    const skips = outcomes.filter((o) => o.outcome.status === 'skipped');
    const confirmedAlready = new Set<string>();
    await forEachLimit(skips, 16, async ({ eventId, outcome }) => {
      const event = await this.get(eventId);
      if (event?.status === 'confirmed' && event.txHash !== outcome.txHash) confirmedAlready.add(eventId);
    });
    const actions: TransactionAction[] = outcomes
      .filter(({ eventId }) => !confirmedAlready.has(eventId))
      .map(({ eventId, outcome }) => [
        'update',
        { partitionKey: shardOf(eventId), rowKey: eventRowKey(eventId), skipReason: '', ...outcome },
        'Merge',
      ]);
    await submitGroupedTolerant(table, actions);
  }

  /** Undoes markOnChain for events whose block was orphaned by a reorg: they are back in flight. */
  async markOrphaned(eventIds: string[]): Promise<void> {
    const table = await this.table();
    const actions: TransactionAction[] = eventIds.map((eventId) => [
      'update',
      { partitionKey: shardOf(eventId), ...UNSETTLED(eventId) },
      'Merge',
    ]);
    await submitGroupedTolerant(table, actions);
  }

  /**
   * Puts the events a given-up batch (signer, nonce) holds back in the pending index (its transaction reverted,
   * or its nonce went to another transaction). Only events still marked batched for that very batch: one that
   * was applied meanwhile, or belongs to another batch, stays where it is. Submitting them again is safe: the
   * contract skips what already applied.
   */
  async returnToPending(eventIds: string[], signer: string, nonce: number): Promise<number> {
    const table = await this.table();
    const actions: TransactionAction[] = [];
    for (const event of await this.getMany(eventIds)) {
      if (event.status !== 'batched' || event.signer !== signer || event.nonce !== nonce) continue;
      const partitionKey = shardOf(event.eventId);
      const pending = pendingOf(event);
      actions.push(['upsert', { partitionKey, rowKey: pendingRowKey(pending), ...pending }, 'Replace']);
      actions.push(['update', { partitionKey, rowKey: eventRowKey(event.eventId), status: 'pending' }, 'Merge']);
    }
    await submitGrouped(table, actions);
    return actions.length / 2;
  }

  /**
   * The chain no longer holds transaction `txHash` (a reorg the watcher could not undo): events it applied or
   * skipped are batched again, for their batch to be rebroadcast or given up. Returns how many were reset.
   */
  async unsettle(eventIds: string[], txHash: string): Promise<number> {
    const table = await this.table();
    const actions: TransactionAction[] = [];
    for (const event of await this.getMany(eventIds)) {
      if ((event.status !== 'confirmed' && event.status !== 'skipped') || event.txHash !== txHash) continue;
      actions.push(['update', { partitionKey: shardOf(event.eventId), ...UNSETTLED(event.eventId) }, 'Merge']);
    }
    await submitGrouped(table, actions);
    return actions.length;
  }

  private async getMany(eventIds: string[]): Promise<OutboxEvent[]> {
    const events: OutboxEvent[] = [];
    await forEachLimit(eventIds, 16, async (eventId) => {
      const event = await this.get(eventId);
      if (event) events.push(event);
    });
    return events;
  }

  /**
   * Pending depth and the enqueue time of the oldest pending event (for backlog metrics and alerts). The depth is
   * counted up to `maxPerShard` rows a shard, so a beat's reads stay bounded however deep the backlog: beyond
   * that, `capped` says the depth is a lower bound.
   */
  async backlog(maxPerShard = BACKLOG_COUNT_PER_SHARD): Promise<OutboxBacklog> {
    const table = await this.table();
    let depth = 0;
    let capped = false;
    let oldest: string | undefined;
    await Promise.all(
      SHARDS.map(async (shard) => {
        let counted = 0;
        const query = table.listEntities<{ enqueuedAt: string }>({
          queryOptions: { filter: `PartitionKey eq ${odata(shard)} and ${PENDING_ROWS}`, select: ['enqueuedAt'] },
        });
        for await (const page of query.byPage({ maxPageSize: Math.min(1000, maxPerShard + 1) })) {
          const first = page[0]?.enqueuedAt;
          if (counted === 0 && first !== undefined && (oldest === undefined || first < oldest)) oldest = first;
          counted += page.length;
          if (counted > maxPerShard) {
            capped = true;
            counted = maxPerShard;
            break;
          }
        }
        depth += counted;
      })
    );
    return { depth, capped, oldestEnqueuedAt: oldest };
  }
}

/**
 * Claims `records` (one shard) for (signer, nonce) in one entity-group transaction: every pending row deleted,
 * every event row marked batched. False when any pending row was gone (claimed by another submitter): then
 * nothing was written. A row claimed, given back to pending (its batch given up) and read again is the same
 * row with the same content, so claiming it then is right.
 */
async function claimAll(table: TableClient, records: PendingRecord[], signer: string, nonce: number): Promise<boolean> {
  const actions: TransactionAction[] = records.flatMap((record): TransactionAction[] => {
    const partitionKey = shardOf(record.eventId);
    return [
      ['delete', { partitionKey, rowKey: pendingRowKey(record) }],
      ['update', { partitionKey, rowKey: eventRowKey(record.eventId), status: 'batched', signer, nonce }, 'Merge'],
    ];
  });
  try {
    await submitTransaction(table, actions);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}
