import type { TableClient, TableEntity, TransactionAction } from '@azure/data-tables';
import { forEachLimit } from '../util';
import { isNotFound, submitGrouped } from '../storage/tables';

/** Partitions written at once: projections touch one partition per subject, so this is where throughput comes from. */
export const PARTITION_CONCURRENCY = 32;

/**
 * submitGrouped over many partitions at once (each partition's transactions stay in order). Deletes are
 * tolerant: a transaction failing because a row is already gone (a retried undo) is replayed row by row.
 */
export async function submitPartitions(table: TableClient, actions: TransactionAction[]): Promise<void> {
  const byPartition = new Map<string, TransactionAction[]>();
  for (const action of actions) {
    const key = (action[1] as TableEntity).partitionKey;
    byPartition.set(key, [...(byPartition.get(key) ?? []), action]);
  }
  await forEachLimit(byPartition.values(), PARTITION_CONCURRENCY, async (list) => {
    try {
      // A lone action as a plain request: an entity-group transaction costs a multipart round trip for nothing.
      if (list.length === 1 && list[0]![0] === 'upsert') {
        const [, entity, mode] = list[0] as ['upsert', TableEntity, 'Replace' | 'Merge' | undefined];
        await table.upsertEntity(entity, mode ?? 'Merge');
      } else {
        await submitGrouped(table, list);
      }
    } catch (err) {
      if (!isNotFound(err) || list.some(([kind]) => kind !== 'delete')) throw err;
      for (const [, entity] of list) {
        await table.deleteEntity(entity.partitionKey, entity.rowKey).catch((inner) => {
          if (!isNotFound(inner)) throw inner;
        });
      }
    }
  });
}

/** Every row of `table` matching `filter` (all rows without one), keys only. */
export async function listKeys(
  table: TableClient,
  filter?: string,
  select: string[] = []
): Promise<(Record<string, unknown> & { partitionKey: string; rowKey: string })[]> {
  const rows: (Record<string, unknown> & { partitionKey: string; rowKey: string })[] = [];
  const query = table.listEntities<Record<string, unknown>>({
    queryOptions: { filter, select: ['PartitionKey', 'RowKey', ...select] },
  });
  for await (const row of query) rows.push(row as (typeof rows)[number]);
  return rows;
}
