import { RestError } from '@azure/core-rest-pipeline';
import { TableClient, type TableEntity, type TransactionAction } from '@azure/data-tables';
import type { TokenCredential } from '@azure/core-auth';
import type { StorageConfig } from '../config';
import { forEachLimit, groupBy } from '../util';
import { MAX_TRANSACTION_ACTIONS, submitTransaction, tablesHttpClient } from './table-transaction';

export { MAX_TRANSACTION_ACTIONS, submitTransaction } from './table-transaction';

/** Every table the app owns, in this bank's storage account. */
export const TABLES = {
  outbox: 'Outbox',
  batches: 'Batches',
  rejections: 'Rejections',
  creditLedger: 'CreditLedger',
  members: 'ConsortiumMembers',
  watcher: 'WatcherState',
  ops: 'OpsState',
} as const;

export type TableName = (typeof TABLES)[keyof typeof TABLES];

/** Table clients for one storage account: managed identity in Azure, a connection string on the local stack. */
export class TableStore {
  private readonly clients = new Map<string, TableClient>();
  private readonly created = new Set<string>();

  constructor(
    private readonly storage: StorageConfig,
    private readonly credential?: TokenCredential
  ) {}

  client(name: TableName): TableClient {
    let client = this.clients.get(name);
    if (!client) {
      if (this.storage.connectionString) {
        client = TableClient.fromConnectionString(this.storage.connectionString, name, {
          allowInsecureConnection: true,
          httpClient: tablesHttpClient,
        });
      } else if (this.storage.tableUrl && this.credential) {
        client = new TableClient(this.storage.tableUrl, name, this.credential, { httpClient: tablesHttpClient });
      } else {
        throw new Error('storage is not configured: neither a table URL with a credential nor a connection string');
      }
      this.clients.set(name, client);
    }
    return client;
  }

  /** The client, with its table created on first use (idempotent; 409 means it exists). */
  async table(name: TableName): Promise<TableClient> {
    const client = this.client(name);
    if (!this.created.has(name)) {
      await client.createTable();
      this.created.add(name);
    }
    return client;
  }
}

export const isConflict = (err: unknown): boolean => err instanceof RestError && err.statusCode === 409;
export const isNotFound = (err: unknown): boolean => err instanceof RestError && err.statusCode === 404;
export const isPreconditionFailed = (err: unknown): boolean => err instanceof RestError && err.statusCode === 412;

/**
 * Runs actions as entity-group transactions: grouped by partition, at most 100 per transaction. Each
 * transaction is atomic; the groups are not atomic with each other, so callers use idempotent actions
 * (upserts, deletes of what may already be gone) and can simply retry the whole call.
 */
export async function submitGrouped(table: TableClient, actions: TransactionAction[]): Promise<number> {
  const byPartition = groupBy(actions, partitionOf);
  let transactions = 0;
  for (const list of byPartition.values()) {
    for (let i = 0; i < list.length; i += MAX_TRANSACTION_ACTIONS) {
      await submitTransaction(table, list.slice(i, i + MAX_TRANSACTION_ACTIONS));
      transactions++;
    }
  }
  return transactions;
}

/**
 * submitGrouped for actions whose row may be gone already (a retry after a partial run, another process deleting
 * the same rows): a transaction failing with 404 is replayed action by action, skipping the missing rows, so the
 * end state is the same either way. Up to 16 partitions at once.
 */
export async function submitGroupedTolerant(table: TableClient, actions: TransactionAction[]): Promise<void> {
  await forEachLimit(groupBy(actions, partitionOf).values(), 16, async (list) => {
    for (let i = 0; i < list.length; i += MAX_TRANSACTION_ACTIONS) {
      const group = list.slice(i, i + MAX_TRANSACTION_ACTIONS);
      try {
        await submitTransaction(table, group);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        for (const action of group) {
          await submitOne(table, action).catch((inner) => {
            if (!isNotFound(inner)) throw inner;
          });
        }
      }
    }
  });
}

async function submitOne(table: TableClient, action: TransactionAction): Promise<unknown> {
  switch (action[0]) {
    case 'delete':
      return table.deleteEntity(action[1].partitionKey, action[1].rowKey);
    case 'update':
      return table.updateEntity(action[1], action[2], action[3]);
    case 'upsert':
      return table.upsertEntity(action[1], action[2]);
    case 'create':
      return table.createEntity(action[1]);
  }
}

/** Deletes rows by key (submitGroupedTolerant: a row already gone is fine). */
export function deleteRows(table: TableClient, keys: { partitionKey: string; rowKey: string }[]): Promise<void> {
  return submitGroupedTolerant(
    table,
    keys.map(({ partitionKey, rowKey }) => ['delete', { partitionKey, rowKey }])
  );
}

export const partitionOf = (action: TransactionAction): string => (action[1] as TableEntity).partitionKey;

export type Row = Record<string, unknown> & { partitionKey: string; rowKey: string };

/** Every row of `table` matching `filter` (all rows without one); only the keys and `select` when that is given. */
export async function listRows(table: TableClient, filter?: string, select?: string[]): Promise<Row[]> {
  const rows: Row[] = [];
  const query = table.listEntities<Record<string, unknown>>({
    queryOptions: { filter, ...(select ? { select: ['PartitionKey', 'RowKey', ...select] } : {}) },
  });
  for await (const row of query) rows.push(row as Row);
  return rows;
}

/** Escapes a string for an OData filter literal. */
export const odata = (value: string): string => `'${value.replace(/'/g, "''")}'`;
