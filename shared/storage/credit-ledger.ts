import type { TableClient, TransactionAction } from '@azure/data-tables';
import { forEachLimit, groupBy } from '../util';
import {
  deleteRows,
  isConflict,
  isNotFound,
  isPreconditionFailed,
  listRows,
  MAX_TRANSACTION_ACTIONS,
  odata,
  submitTransaction,
  TABLES,
  type TableStore,
} from './tables';

/**
 * The projected credit records of every bank, current and history, in one table (CreditLedger):
 *
 *   PK  bucket: the subject ref's first hex digit ('0'–'f')
 *   RK  <subjectRef>|r|<bankId>                kind 'record': the current record of subject × bank
 *       <subjectRef>|h|<inverted block, log>   kind 'history': every applied update, newest first
 *       watermark                              kind 'watermark': every update at or below (blockNumber, logIndex)
 *                                              is applied to this bucket, and none above it
 *
 * Why 16 buckets: the subject refs of a block's records are HMAC outputs, spread evenly, so a block's records land
 * in 16 partitions and are written as one entity-group transaction per bucket (up to 49 records each) — history and
 * current rows together, atomically — instead of two requests a record. With 256 buckets (layout 2) a block of a few
 * hundred records made a transaction of a handful of rows per bucket, and the per-request cost in the host and in
 * storage dominated (docs/read-api.md#tables has the measurement). A subject's rows still share a partition and a
 * RowKey prefix, so reading a subject is one range query. 16 partitions × 2,000 entities/s (a partition's target)
 * is over 25 times the two rows a record of the chain's capacity needs.
 *
 * The watermark makes the writes exactly-once per bucket without reading the current rows: updates are applied in
 * chain order, so an update after the watermark is always newer than the stored record of its subject × bank
 * (the contract only emits an update with a higher sequence). Every transaction moves the watermark with its
 * ETag, so a replay skips what is applied, and of two concurrent writers the loser re-reads and skips too.
 */

const WATERMARK = 'watermark';
/** A transaction: up to this many updates (history + current row each) plus the watermark. */
const UPDATES_PER_TRANSACTION = Math.floor((MAX_TRANSACTION_ACTIONS - 1) / 2);
/** Buckets written at once. */
const BUCKET_CONCURRENCY = 32;
const ATTEMPTS = 5;

const MAX_BLOCK = 999_999_999_999_999;
const MAX_LOG = 9_999_999_999;
/** Inverted so that a subject's history lists newest first. */
export const positionKey = (blockNumber: number, logIndex: number): string =>
  `${String(MAX_BLOCK - blockNumber).padStart(15, '0')}-${String(MAX_LOG - logIndex).padStart(10, '0')}`;

export const bucketOf = (subjectRef: string): string => subjectRef.slice(2, 3).toLowerCase();
/** Buckets are one hex digit; a partition key of another length is a row of an older layout. */
const isBucket = (partitionKey: string): boolean => /^[0-9a-f]$/.test(partitionKey);
export const recordKey = (subjectRef: string, bankId: string): string => `${subjectRef}|r|${bankId}`;
export const historyKey = (subjectRef: string, blockNumber: number, logIndex: number): string =>
  `${subjectRef}|h|${positionKey(blockNumber, logIndex)}`;

/** One applied update: where it is on the chain and the row's fields (subjectRef, bankId, provenance, record). */
export interface LedgerUpdate {
  subjectRef: string;
  bankId: string;
  blockNumber: number;
  logIndex: number;
  fields: Record<string, unknown>;
}

export type LedgerRow = Record<string, unknown> & {
  partitionKey: string;
  rowKey: string;
  kind: 'record' | 'history';
  subjectRef: string;
  bankId: string;
  blockNumber: number;
  logIndex: number;
};

interface Position {
  blockNumber: number;
  logIndex: number;
}
interface Watermark extends Position {
  /** Undefined while the bucket has no watermark row. */
  etag?: string;
}
const NOTHING_APPLIED: Watermark = { blockNumber: -1, logIndex: -1 };
const isAfter = (a: Position, b: Position): boolean =>
  a.blockNumber > b.blockNumber || (a.blockNumber === b.blockNumber && a.logIndex > b.logIndex);

/** A row's own fields, without the table's keys and system properties. */
function fieldsOf(row: Record<string, unknown>): Record<string, unknown> {
  const { partitionKey: _p, rowKey: _r, etag: _e, timestamp: _t, ...fields } = row;
  return fields;
}

/** Another writer moved a bucket's watermark (or a row read before changed): re-read and go again. */
const isLostRace = (err: unknown): boolean => isPreconditionFailed(err) || isConflict(err) || isNotFound(err);

export class CreditLedger {
  /** The watermark last written or read per bucket; a stale one only costs a failed transaction and a re-read. */
  private readonly watermarks = new Map<string, Watermark>();

  constructor(private readonly tables: TableStore) {}

  private table(): Promise<TableClient> {
    return this.tables.table(TABLES.creditLedger);
  }

  /** A subject's current records (every bank's, by bank id), and its history (newest first) when asked for. */
  async subject(subjectRef: string, options: { history?: boolean } = {}): Promise<LedgerRow[]> {
    const prefix = options.history ? `${subjectRef}|` : `${subjectRef}|r|`;
    return this.rows(bucketOf(subjectRef), prefix);
  }

  /** Applies updates given in chain order; those at or below a bucket's watermark are applied already. */
  async apply(updates: LedgerUpdate[]): Promise<void> {
    const table = await this.table();
    await forEachLimit(
      groupBy(updates, (u) => bucketOf(u.subjectRef)),
      BUCKET_CONCURRENCY,
      ([bucket, list]) => {
        // A remembered watermark is trusted only below every update: one at or above some would skip them unverified,
        // and the rows may have been cleared since (a rebuild by another process).
        const remembered = this.watermarks.get(bucket);
        const fresh = remembered === undefined || !isAfter(list[0]!, remembered);
        return this.retrying(bucket, (watermark) => this.applyToBucket(table, bucket, watermark, list), { fresh });
      }
    );
  }

  private async applyToBucket(
    table: TableClient,
    bucket: string,
    watermark: Watermark,
    updates: LedgerUpdate[]
  ): Promise<void> {
    const pending = updates.filter((u) => isAfter(u, watermark));
    for (let i = 0; i < pending.length; i += UPDATES_PER_TRANSACTION) {
      const group = pending.slice(i, i + UPDATES_PER_TRANSACTION);
      const current = new Map(group.map((u) => [recordKey(u.subjectRef, u.bankId), u])); // the newest wins
      const actions: TransactionAction[] = [
        ...group.map((u): TransactionAction => {
          const rowKey = historyKey(u.subjectRef, u.blockNumber, u.logIndex);
          return ['upsert', { partitionKey: bucket, rowKey, kind: 'history', ...u.fields }, 'Replace'];
        }),
        ...[...current].map(([rowKey, u]): TransactionAction => {
          return ['upsert', { partitionKey: bucket, rowKey, kind: 'record', ...u.fields }, 'Replace'];
        }),
      ];
      watermark = await this.commit(table, bucket, watermark, actions, group.at(-1)!);
    }
  }

  /**
   * Takes back every update above block `throughBlock` for these subject × bank pairs (a reorg's orphaned blocks,
   * or a partial rebuild): deletes their history rows, sets each current row to the newest remaining update or
   * deletes it, and lowers the watermark of the buckets involved (and of `alsoBuckets`) to that block.
   */
  async rollBack(
    pairs: [subjectRef: string, bankId: string][],
    throughBlock: number,
    alsoBuckets: string[] = []
  ): Promise<void> {
    const table = await this.table();
    const byBucket = groupBy(pairs, ([subjectRef]) => bucketOf(subjectRef));
    for (const bucket of alsoBuckets) if (!byBucket.has(bucket)) byBucket.set(bucket, []);
    const floor: Position = { blockNumber: throughBlock, logIndex: MAX_LOG };
    await forEachLimit(byBucket, BUCKET_CONCURRENCY, ([bucket, list]) =>
      this.retrying(
        bucket,
        async (watermark) => {
          const actions: TransactionAction[] = [];
          for (const [subjectRef, banks] of groupBy(list, ([subjectRef]) => subjectRef)) {
            const rows = await this.rows(bucket, `${subjectRef}|`);
            for (const bankId of new Set(banks.map(([, b]) => b))) {
              const history = rows.filter((r) => r.kind === 'history' && r.bankId === bankId); // newest first
              const orphaned = history.filter((r) => r.blockNumber > throughBlock);
              for (const r of orphaned) actions.push(['delete', { partitionKey: bucket, rowKey: r.rowKey }]);
              const newest = history.find((r) => r.blockNumber <= throughBlock);
              const rowKey = recordKey(subjectRef, bankId);
              if (newest)
                actions.push([
                  'upsert',
                  { ...fieldsOf(newest), partitionKey: bucket, rowKey, kind: 'record' },
                  'Replace',
                ]);
              else if (rows.some((r) => r.rowKey === rowKey))
                actions.push(['delete', { partitionKey: bucket, rowKey }]);
            }
          }
          const lowered = isAfter(watermark, floor) ? floor : watermark;
          if (actions.length === 0 && lowered === watermark) return;
          const perTransaction = MAX_TRANSACTION_ACTIONS - 1;
          for (let i = 0; i === 0 || i < actions.length; i += perTransaction) {
            watermark = await this.commit(table, bucket, watermark, actions.slice(i, i + perTransaction), lowered);
          }
        },
        { fresh: true }
      )
    );
  }

  /** Removes what came from block `fromBlock` on, or everything when `fromBlock` is 0 or below. */
  async clearFrom(fromBlock: number): Promise<void> {
    const table = await this.table();
    this.watermarks.clear();
    if (fromBlock <= 0) return deleteRows(table, await listRows(table, undefined, []));
    const orphaned = await listRows(table, `kind eq 'history' and blockNumber ge ${fromBlock}`, [
      'subjectRef',
      'bankId',
    ]);
    const marks = await listRows(table, `RowKey eq '${WATERMARK}' and blockNumber ge ${fromBlock}`, []);
    await this.rollBack(
      orphaned.map((r) => [String(r.subjectRef), String(r.bankId)]),
      fromBlock - 1,
      marks.map((m) => m.partitionKey)
    );
  }

  /**
   * Deletes the rows an older layout left in this table (layout 2's partitions were two hex digits). Only those:
   * a watcher already replaying into the current layout next to this one loses nothing.
   */
  async dropOlderLayout(): Promise<number> {
    const table = await this.table();
    const rows = (await listRows(table, undefined, [])).filter((r) => !isBucket(r.partitionKey));
    await deleteRows(table, rows);
    return rows.length;
  }

  /** Rows of one bucket whose RowKey starts with `prefix` ('|' sorts just below '}'). */
  private async rows(bucket: string, prefix: string): Promise<LedgerRow[]> {
    const table = await this.table();
    const end = `${prefix.slice(0, -1)}}`;
    return listRows(
      table,
      `PartitionKey eq ${odata(bucket)} and RowKey ge ${odata(prefix)} and RowKey lt ${odata(end)}`
    ) as Promise<LedgerRow[]>;
  }

  /** Runs `work` with the bucket's watermark; when another writer got there first, re-reads it and runs again. */
  private async retrying(
    bucket: string,
    work: (watermark: Watermark) => Promise<void>,
    options: { fresh?: boolean } = {}
  ): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const cached = options.fresh || attempt > 1 ? undefined : this.watermarks.get(bucket);
      try {
        await work(cached ?? (await this.readWatermark(bucket)));
        return;
      } catch (err) {
        this.watermarks.delete(bucket);
        if (!isLostRace(err) || attempt >= ATTEMPTS) throw err;
      }
    }
  }

  private async readWatermark(bucket: string): Promise<Watermark> {
    const table = await this.table();
    try {
      const row = await table.getEntity<Position>(bucket, WATERMARK);
      return { blockNumber: row.blockNumber, logIndex: row.logIndex, etag: row.etag };
    } catch (err) {
      if (isNotFound(err)) return NOTHING_APPLIED;
      throw err;
    }
  }

  /** One transaction: `actions` plus the watermark moved to `to`, guarded by the watermark's ETag. */
  private async commit(
    table: TableClient,
    bucket: string,
    watermark: Watermark,
    actions: TransactionAction[],
    to: Position
  ): Promise<Watermark> {
    const row = {
      partitionKey: bucket,
      rowKey: WATERMARK,
      kind: 'watermark',
      blockNumber: to.blockNumber,
      logIndex: to.logIndex,
    };
    const move: TransactionAction =
      watermark.etag === undefined ? ['create', row] : ['update', row, 'Replace', { etag: watermark.etag }];
    const response = await submitTransaction(table, [...actions, move]);
    const next: Watermark = {
      blockNumber: to.blockNumber,
      logIndex: to.logIndex,
      // Sub-responses come in the actions' order (an upsert's names no row key): the watermark's is the last.
      etag: response.subResponses.at(-1)?.etag,
    };
    if (next.etag) this.watermarks.set(bucket, next);
    else this.watermarks.delete(bucket);
    return next;
  }
}
