import type { TableClient } from '@azure/data-tables';
import { isConflict, isNotFound, odata, TABLES, type TableStore } from './tables';

/**
 * The write-ahead log of transactions and the nonce authority. One row per (signer, nonce), inserted before
 * anything is broadcast: inserting nonce N fails (409) when another submitter took it, and after a crash the
 * stored raw transaction is rebroadcast as it is (same hash) instead of signing anew.
 *
 *   PartitionKey  the signer address (lowercase)
 *   RowKey        MAX_SAFE_INTEGER - nonce, zero-padded: the newest nonce sorts first, so "the highest nonce
 *                 taken" is a one-row query
 *
 * Status: signed (in the WAL, maybe broadcast) → mined (a receipt exists) → confirmed (the watcher saw it at
 * confirmation depth). `abandoned`: the nonce was consumed by a transaction that is not ours, or ours reverted;
 * its events went back to the pending index.
 */
export type BatchStatus = 'signed' | 'mined' | 'confirmed' | 'abandoned';

export interface BatchRow {
  signer: string;
  nonce: number;
  status: BatchStatus;
  /** Event ids in the transaction, in record order, with their enqueue times (to find their pending rows). */
  eventIds: string[];
  enqueuedAts: string[];
  /** Every raw transaction signed for this nonce (fee bumps add one); all carry the same records. */
  rawTxs: string[];
  txHashes: string[];
  /** Outbox rows were moved out of the pending index (see Outbox.markBatched). */
  outboxMarked: boolean;
  createdAt: string;
  broadcastAt?: string;
  broadcastBlock?: number;
  broadcasts: number;
  minedTxHash?: string;
  minedBlock?: number;
  confirmedAt?: string;
  /** The last broadcast or chain failure, for operators. */
  lastError?: string;
}

/** Table entity: lists are stored as chunked JSON strings (a string property holds at most 32K characters). */
type BatchEntity = Record<string, unknown> & { partitionKey: string; rowKey: string };

const CHUNK = 30_000;
export const nonceKey = (nonce: number): string => String(Number.MAX_SAFE_INTEGER - nonce).padStart(16, '0');

function putList(entity: BatchEntity, name: string, list: string[]): void {
  const json = JSON.stringify(list);
  const chunks = Math.ceil(json.length / CHUNK) || 1;
  entity[`${name}Chunks`] = chunks;
  for (let i = 0; i < chunks; i++) entity[`${name}${i}`] = json.slice(i * CHUNK, (i + 1) * CHUNK);
}

function getList(entity: Record<string, unknown>, name: string): string[] {
  const chunks = Number(entity[`${name}Chunks`] ?? 0);
  let json = '';
  for (let i = 0; i < chunks; i++) json += (entity[`${name}${i}`] as string | undefined) ?? '';
  return json ? (JSON.parse(json) as string[]) : [];
}

export function toEntity(row: BatchRow): BatchEntity {
  const { eventIds, enqueuedAts, rawTxs, txHashes, ...scalars } = row;
  const entity: BatchEntity = { partitionKey: row.signer.toLowerCase(), rowKey: nonceKey(row.nonce), ...scalars };
  putList(entity, 'eventIds', eventIds);
  putList(entity, 'enqueuedAts', enqueuedAts);
  putList(entity, 'rawTxs', rawTxs);
  putList(entity, 'txHashes', txHashes);
  for (const [key, value] of Object.entries(entity)) if (value === undefined) delete entity[key];
  return entity;
}

export function fromEntity(entity: Record<string, unknown>): BatchRow {
  return {
    signer: String(entity.signer),
    nonce: Number(entity.nonce),
    status: entity.status as BatchStatus,
    eventIds: getList(entity, 'eventIds'),
    enqueuedAts: getList(entity, 'enqueuedAts'),
    rawTxs: getList(entity, 'rawTxs'),
    txHashes: getList(entity, 'txHashes'),
    outboxMarked: entity.outboxMarked === true,
    createdAt: String(entity.createdAt),
    broadcastAt: entity.broadcastAt as string | undefined,
    broadcastBlock: entity.broadcastBlock as number | undefined,
    broadcasts: Number(entity.broadcasts ?? 0),
    minedTxHash: entity.minedTxHash as string | undefined,
    minedBlock: entity.minedBlock as number | undefined,
    confirmedAt: entity.confirmedAt as string | undefined,
    lastError: entity.lastError as string | undefined,
  };
}

export class Batches {
  constructor(private readonly store: TableStore) {}

  table(): Promise<TableClient> {
    return this.store.table(TABLES.batches);
  }

  async get(signer: string, nonce: number): Promise<BatchRow | undefined> {
    const table = await this.table();
    try {
      return fromEntity(await table.getEntity(signer.toLowerCase(), nonceKey(nonce)));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Inserts the WAL row for a new nonce; false when another submitter holds that nonce already. */
  async create(row: BatchRow): Promise<boolean> {
    const table = await this.table();
    try {
      await table.createEntity(toEntity(row));
      return true;
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
  }

  /** Replaces the row (the submitter is its only writer besides the watcher's status marks). */
  async update(row: BatchRow): Promise<void> {
    const table = await this.table();
    await table.updateEntity(toEntity(row), 'Merge');
  }

  /** The highest nonce in the WAL for `signer`, if any. */
  async highestNonce(signer: string): Promise<number | undefined> {
    const table = await this.table();
    const query = table.listEntities<{ nonce: number }>({
      queryOptions: { filter: `PartitionKey eq ${odata(signer.toLowerCase())}`, select: ['nonce'] },
    });
    for await (const page of query.byPage({ maxPageSize: 1 })) return page[0]?.nonce;
    return undefined;
  }

  /** Rows of `signer` that are signed or mined (not yet confirmed or abandoned), by nonce. */
  async open(signer: string): Promise<BatchRow[]> {
    const table = await this.table();
    const rows: BatchRow[] = [];
    const query = table.listEntities({
      queryOptions: {
        filter: `PartitionKey eq ${odata(signer.toLowerCase())} and (status eq 'signed' or status eq 'mined')`,
      },
    });
    for await (const entity of query) rows.push(fromEntity(entity));
    return rows.sort((a, b) => a.nonce - b.nonce);
  }

  /** The watcher's mark: the transaction for (signer, nonce) is in a confirmed block. Idempotent. */
  async markConfirmed(signer: string, nonce: number, mined: { txHash: string; blockNumber: number }): Promise<void> {
    const table = await this.table();
    const entity = {
      partitionKey: signer.toLowerCase(),
      rowKey: nonceKey(nonce),
      status: 'confirmed',
      minedTxHash: mined.txHash,
      minedBlock: mined.blockNumber,
      confirmedAt: new Date().toISOString(),
    };
    await table.updateEntity(entity, 'Merge').catch((err) => {
      if (!isNotFound(err)) throw err; // a transaction this bank's WAL never held: nothing to mark
    });
  }

  /** A reorg orphaned the block that held it: the transaction is in flight again (the submitter rebroadcasts). */
  async markOrphaned(signer: string, nonce: number): Promise<void> {
    const table = await this.table();
    const entity = {
      partitionKey: signer.toLowerCase(),
      rowKey: nonceKey(nonce),
      status: 'signed',
      minedTxHash: '',
      minedBlock: -1,
    };
    await table.updateEntity(entity, 'Merge').catch((err) => {
      if (!isNotFound(err)) throw err;
    });
  }
}
