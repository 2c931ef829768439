import { createHash } from 'node:crypto';
import type { TableClient, TransactionAction } from '@azure/data-tables';
import { isConflict, isNotFound, odata, submitGrouped, TABLES, type TableStore } from './tables';

/**
 * The outbox: every accepted credit-update event, keyed by its event id, and an index of the ones still
 * waiting for a transaction. Both rows of an event share a partition (a shard of the event id), so accepting
 * an event is one atomic transaction and a redelivered or republished event is a 409 that changes nothing.
 *
 *   PartitionKey  s00..s15                 shard of the event id (spreads load over partitions)
 *   RowKey        e_<eventId>              the event row: status and provenance
 *                 p_<enqueuedMs>_<eventId> the pending row: what the submitter needs, oldest first
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

export const shardOf = (eventId: string): string =>
  `s${String(createHash('sha256').update(eventId).digest()[0]! % OUTBOX_SHARDS).padStart(2, '0')}`;
const eventRowKey = (eventId: string): string => `e_${eventId}`;
const pendingRowKey = (record: PendingRecord): string =>
  `p_${String(Date.parse(record.enqueuedAt)).padStart(15, '0')}_${record.eventId}`;
// Pending rows: RowKeys from 'p_' up to, not including, 'p`' (the character after '_').
const PENDING_ROWS = "RowKey ge 'p_' and RowKey lt 'p`'";
const SHARDS = Array.from({ length: OUTBOX_SHARDS }, (_, i) => `s${String(i).padStart(2, '0')}`);

export class Outbox {
  constructor(private readonly store: TableStore) {}

  private table(): Promise<TableClient> {
    return this.store.table(TABLES.outbox);
  }

  /** Records a valid event; 'duplicate' when its event id was accepted before (nothing changes then). */
  async accept(event: Omit<OutboxEvent, 'status'>): Promise<'accepted' | 'duplicate'> {
    const table = await this.table();
    const partitionKey = shardOf(event.eventId);
    const pending: PendingRecord = {
      eventId: event.eventId,
      subjectRef: event.subjectRef,
      data: event.data,
      enqueuedAt: event.enqueuedAt,
    };
    try {
      await table.submitTransaction([
        ['create', { partitionKey, rowKey: eventRowKey(event.eventId), ...event, status: 'pending' }],
        ['create', { partitionKey, rowKey: pendingRowKey(pending), ...pending }],
      ]);
      return 'accepted';
    } catch (err) {
      if (isConflict(err) || (err as { code?: string }).code === 'EntityAlreadyExists') return 'duplicate';
      throw err;
    }
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
        const query = table.listEntities<PendingRecord>({
          queryOptions: {
            filter: `PartitionKey eq ${odata(shard)} and ${PENDING_ROWS}`,
            select: ['eventId', 'subjectRef', 'data', 'enqueuedAt'],
          },
        });
        for await (const page of query.byPage({ maxPageSize: Math.min(quota, 1000) })) {
          rows.push(...page);
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

  /** Takes records out of the pending index once a write-ahead batch row holds them. Idempotent. */
  async markBatched(records: PendingRecord[], signer: string, nonce: number): Promise<void> {
    const table = await this.table();
    const actions: TransactionAction[] = [];
    for (const record of records) {
      const partitionKey = shardOf(record.eventId);
      actions.push(['delete', { partitionKey, rowKey: pendingRowKey(record) }]);
      actions.push([
        'update',
        { partitionKey, rowKey: eventRowKey(record.eventId), status: 'batched', signer, nonce },
        'Merge',
      ]);
    }
    await submitGroupedTolerant(table, actions);
  }

  /** Records what the chain did with this bank's event (applied or skipped, where). */
  async markOnChain(eventId: string, outcome: OnChainOutcome): Promise<void> {
    const table = await this.table();
    await table
      .updateEntity({ partitionKey: shardOf(eventId), rowKey: eventRowKey(eventId), ...outcome }, 'Merge')
      .catch((err) => {
        // An event this outbox never held (e.g. submitted before a storage reset): nothing to mark.
        if (!isNotFound(err)) throw err;
      });
  }

  /**
   * markOnChain for many events at once: Merge updates grouped by shard, up to 100 per entity-group transaction
   * instead of one request per event. An event this outbox never held is skipped, as in markOnChain.
   */
  async markOnChainMany(outcomes: { eventId: string; outcome: OnChainOutcome }[]): Promise<void> {
    if (outcomes.length === 0) return;
    const table = await this.table();
    const actions: TransactionAction[] = outcomes.map(({ eventId, outcome }) => [
      'update',
      { partitionKey: shardOf(eventId), rowKey: eventRowKey(eventId), ...outcome },
      'Merge',
    ]);
    await submitGroupedTolerant(table, actions);
  }

  /** Undoes markOnChain for events whose block was orphaned by a reorg: they are back in flight. */
  async markOrphaned(eventIds: string[]): Promise<void> {
    const table = await this.table();
    const actions: TransactionAction[] = eventIds.map((eventId) => [
      'update',
      {
        partitionKey: shardOf(eventId),
        rowKey: eventRowKey(eventId),
        status: 'batched',
        txHash: '',
        blockNumber: -1,
        logIndex: -1,
        skipReason: '',
      },
      'Merge',
    ]);
    await submitGroupedTolerant(table, actions);
  }

  /**
   * Puts events back in the pending index (their transaction was abandoned: reverted, or its nonce was taken by
   * another transaction). Submitting them again is safe: the contract skips what already applied.
   */
  async returnToPending(eventIds: string[]): Promise<void> {
    const table = await this.table();
    const actions: TransactionAction[] = [];
    for (const eventId of eventIds) {
      const event = await this.get(eventId);
      if (!event || event.status === 'confirmed' || event.status === 'skipped') continue;
      const partitionKey = shardOf(eventId);
      const pending: PendingRecord = {
        eventId,
        subjectRef: event.subjectRef,
        data: event.data,
        enqueuedAt: event.enqueuedAt,
      };
      actions.push(['upsert', { partitionKey, rowKey: pendingRowKey(pending), ...pending }, 'Replace']);
      actions.push(['update', { partitionKey, rowKey: eventRowKey(eventId), status: 'pending' }, 'Merge']);
    }
    await submitGrouped(table, actions);
  }

  /** Pending depth and the enqueue time of the oldest pending event (for backlog metrics and alerts). */
  async backlog(): Promise<{ depth: number; oldestEnqueuedAt?: string }> {
    const table = await this.table();
    let depth = 0;
    let oldest: string | undefined;
    await Promise.all(
      SHARDS.map(async (shard) => {
        let first = true;
        const query = table.listEntities<{ enqueuedAt: string }>({
          queryOptions: { filter: `PartitionKey eq ${odata(shard)} and ${PENDING_ROWS}`, select: ['enqueuedAt'] },
        });
        for await (const row of query) {
          depth++;
          if (first && (oldest === undefined || row.enqueuedAt < oldest)) oldest = row.enqueuedAt;
          first = false;
        }
      })
    );
    return { depth, oldestEnqueuedAt: oldest };
  }
}

/**
 * Like submitGrouped, but a transaction that fails because a row is already gone (a retry after a partial
 * run) is replayed one action at a time, skipping the missing rows: the end state is the same either way.
 */
async function submitGroupedTolerant(table: TableClient, actions: TransactionAction[]): Promise<void> {
  try {
    await submitGrouped(table, actions);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    for (const [kind, entity, mode] of actions as [string, { partitionKey: string; rowKey: string }, 'Merge'?][]) {
      try {
        if (kind === 'delete') await table.deleteEntity(entity.partitionKey, entity.rowKey);
        else await table.updateEntity(entity, mode ?? 'Merge');
      } catch (inner) {
        if (!isNotFound(inner)) throw inner;
      }
    }
  }
}
