import type { TableClient } from '@azure/data-tables';
import { isConflict, isNotFound, isPreconditionFailed, odata, TABLES, type TableStore } from './tables';

/**
 * The write-ahead log of transactions and, reconciled with the chain, the nonce authority. One row per
 * (signer, nonce), inserted before anything is broadcast: inserting nonce N fails (409) when another submitter
 * took it, and after a crash the stored raw transaction is rebroadcast as it is (same hash) instead of signing
 * anew. Every write after the insert is conditional on the ETag the writer read, so of two writers (a second
 * submitter, the watcher) the one that read a stale row loses instead of overwriting.
 *
 *   PartitionKey  the signer address (lowercase)
 *   RowKey        MAX_SAFE_INTEGER - nonce, zero-padded: the newest nonce sorts first, so the rows still in play
 *                 are read from the top of the partition and the read stops at the settled history
 *
 * Status (the chain decides every transition; see shared/submit/reconcile.ts):
 *   signed     in the log, maybe broadcast, no receipt on the chain
 *   mined      a receipt exists; re-checked every run until the watcher confirms it at depth
 *   confirmed  the watcher projected its block at confirmation depth (a reorg the watcher undoes, or the
 *              rebuild's reconciliation, sets it back to signed)
 *   abandoned  the nonce went to a transaction that is not in this row, or ours reverted; its events were
 *              returned to the pending index
 *
 * A row is bounded: it keeps the latest signed transaction only (the one a rebroadcast sends) and the hashes
 * of the earlier ones (at most 1 + SUBMIT_MAX_FEE_BUMPS), and at most MAX_RECORDS_PER_BATCH records.
 */
export type BatchStatus = 'signed' | 'mined' | 'confirmed' | 'abandoned';

export interface BatchRow {
  signer: string;
  nonce: number;
  status: BatchStatus;
  /** Event ids in the transaction, in record order, with their enqueue times (to find their pending rows). */
  eventIds: string[];
  enqueuedAts: string[];
  /**
   * The latest transaction signed for this nonce (a fee bump replaces it): what a rebroadcast sends. There only
   * on a row whose transaction was signed and is still to be written: `create` and `update` store it and drop it
   * from the row, and reads leave it out (see WITHOUT_RAW_TX), so a row's later writes keep the stored one (a
   * Merge) rather than write ~110 KB again. `Batches.rawTxOf` reads it.
   */
  rawTx?: string;
  /** eth_estimateGas of the transaction when signed: the gas its records need, which sizes the next batch. */
  gasEstimate?: number;
  /** The transaction's gas limit: the block space it asks for (a node packs a block by gas limits). */
  gasLimit?: number;
  /** Hashes of every transaction signed for this nonce, oldest first; the last one is rawTx's. */
  txHashes: string[];
  /** The outbox rows of eventIds are claimed for this nonce (see Outbox.claim); set before the first broadcast. */
  claimed: boolean;
  createdAt: string;
  /** Chain head when the row was written: how many blocks it has been in flight. */
  createdBlock: number;
  broadcastAt?: string;
  broadcastBlock?: number;
  broadcasts: number;
  feeBumps: number;
  minedTxHash?: string;
  minedBlock?: number;
  /** The hash of minedBlock when the submitter saw the receipt: while that block stands, so does the receipt. */
  minedBlockHash?: string;
  confirmedAt?: string;
  /** The last broadcast or chain failure, for operators. */
  lastError?: string;
  /** Set once fees may rise no more (SUBMIT_MAX_FEE_BUMPS or SUBMIT_MAX_FEE_PER_GAS_GWEI reached): why. */
  feeLimit?: string;
  /** Table ETag of the row as read or last written; every update is conditional on it. */
  etag?: string;
}

/**
 * Records one batch row can hold: its entity (the raw transaction as hex, 192 characters per record, plus the
 * event ids and enqueue times) must stay under Table Storage's 1 MiB entity limit, with every string counted
 * at two bytes per character. 1,500 records take about 780 KiB (test/unit/batches.test.ts measures it).
 */
export const MAX_RECORDS_PER_BATCH = 1500;
/** Table Storage refuses entities over 1 MiB. */
export const MAX_ENTITY_BYTES = 1 << 20;

/** Puts a row back in flight: signed, with nothing of where it was mined (a reorg or a rebuild took that away). */
export function backInFlight(row: BatchRow): void {
  Object.assign(row, {
    status: 'signed',
    minedTxHash: undefined,
    minedBlock: undefined,
    minedBlockHash: undefined,
    confirmedAt: undefined,
  });
}

/** Another writer changed the row since it was read: re-read before deciding anything about it. */
export class BatchConflictError extends Error {
  constructor(signer: string, nonce: number) {
    super(`batch row ${signer}/${nonce} was changed by another writer since it was read`);
    this.name = 'BatchConflictError';
  }
}

/** Table entity: lists are stored as chunked JSON strings (a string property holds at most 32K characters). */
type BatchEntity = Record<string, unknown> & { partitionKey: string; rowKey: string };

const CHUNK = 30_000;
/**
 * Rows a page of `recent` holds. A row as read carries its event ids and their enqueue times (~40 KB at 550
 * records), and the rows in play are few (the in-flight limit, plus mined ones the watcher has not confirmed yet):
 * a large page would read settled rows past the first confirmed one on every run (32 rows with their raw
 * transactions came to ~4.5 MB a second).
 */
const RECENT_PAGE_ROWS = 8;
export const nonceKey = (nonce: number): string => String(Number.MAX_SAFE_INTEGER - nonce).padStart(16, '0');

function putChunked(entity: BatchEntity, name: string, text: string): void {
  const chunks = Math.ceil(text.length / CHUNK) || 1;
  entity[`${name}Chunks`] = chunks;
  for (let i = 0; i < chunks; i++) entity[`${name}${i}`] = text.slice(i * CHUNK, (i + 1) * CHUNK);
}

function getChunked(entity: Record<string, unknown>, name: string): string {
  const chunks = Number(entity[`${name}Chunks`] ?? 0);
  let text = '';
  for (let i = 0; i < chunks; i++) text += (entity[`${name}${i}`] as string | undefined) ?? '';
  return text;
}

/**
 * Chunks a list column may take: 120,000 characters, where a batch of MAX_RECORDS_PER_BATCH records needs two (event
 * ids as JSON, about 59,000 characters). Bounded, so that reads can name every column but the raw transaction.
 */
const LIST_CHUNKS = 4;
const LISTS = ['eventIds', 'enqueuedAts', 'txHashes'] as const;

/** Every scalar of a row: a field added to BatchRow fails to compile until it is listed, so no read drops it. */
const SCALARS: Record<Exclude<keyof BatchRow, (typeof LISTS)[number] | 'rawTx' | 'etag'>, true> = {
  signer: true,
  nonce: true,
  status: true,
  gasEstimate: true,
  gasLimit: true,
  claimed: true,
  createdAt: true,
  createdBlock: true,
  broadcastAt: true,
  broadcastBlock: true,
  broadcasts: true,
  feeBumps: true,
  minedTxHash: true,
  minedBlock: true,
  minedBlockHash: true,
  confirmedAt: true,
  lastError: true,
  feeLimit: true,
};

/**
 * The columns reads ask for ($select): all but the raw transaction's. At ~110 KB a batch of 550 records the raw
 * transaction is most of a row, and a submit run reads the rows in play every second (a megabyte a second at
 * saturation) while it needs a raw transaction only to send it again.
 */
export const WITHOUT_RAW_TX = [
  ...Object.keys(SCALARS),
  ...LISTS.flatMap((name) => [`${name}Chunks`, ...Array.from({ length: LIST_CHUNKS }, (_, i) => `${name}${i}`)]),
];

const getList = (entity: Record<string, unknown>, name: string): string[] => {
  const json = getChunked(entity, name);
  return json ? (JSON.parse(json) as string[]) : [];
};

/**
 * What a Merge writes for a field the row no longer has (a reorg took away where it was mined): a Merge keeps the
 * columns it does not name. Read back as absent.
 */
const CLEARED: Partial<Record<keyof typeof SCALARS, string | number>> = {
  gasEstimate: -1,
  gasLimit: -1,
  broadcastAt: '',
  broadcastBlock: -1,
  minedTxHash: '',
  minedBlock: -1,
  minedBlockHash: '',
  confirmedAt: '',
  lastError: '',
  feeLimit: '',
};

/**
 * The entity that writes the row: the whole row (Replace), or, for a row read without its raw transaction, every
 * other column (Merge: the stored raw transaction stays), with the fields it no longer has written as cleared.
 */
export function toEntity(row: BatchRow): BatchEntity {
  const { eventIds, enqueuedAts, rawTx, txHashes, etag: _etag, ...scalars } = row;
  const name = `batch row ${row.signer}/${row.nonce}`;
  const entity: BatchEntity = { partitionKey: row.signer.toLowerCase(), rowKey: nonceKey(row.nonce), ...scalars };
  const lists = { eventIds, enqueuedAts, txHashes };
  for (const list of LISTS) {
    putChunked(entity, list, JSON.stringify(lists[list]));
    if (Number(entity[`${list}Chunks`]) > LIST_CHUNKS)
      throw new Error(`${name}: its ${list} take more than the ${LIST_CHUNKS} chunks reads ask for`);
  }
  if (rawTx === undefined) for (const [key, cleared] of Object.entries(CLEARED)) entity[key] ??= cleared;
  else putChunked(entity, 'rawTx', rawTx);
  for (const [key, value] of Object.entries(entity)) if (value === undefined) delete entity[key];
  const bytes = entityBytes(entity);
  if (bytes > MAX_ENTITY_BYTES)
    throw new Error(`${name} would take ${bytes} bytes, over Table Storage's ${MAX_ENTITY_BYTES}`);
  return entity;
}

/** The entity's size as Table Storage counts it (strings two bytes per character, names included), roughly. */
export function entityBytes(entity: Record<string, unknown>): number {
  let bytes = 4;
  for (const [key, value] of Object.entries(entity)) {
    bytes += 8 + 2 * key.length;
    bytes += typeof value === 'string' ? 4 + 2 * value.length : 8;
  }
  return bytes;
}

export function fromEntity(entity: Record<string, unknown>): BatchRow {
  /** An optional field: absent when not stored, or stored as cleared. */
  const optional = (key: keyof typeof CLEARED): unknown =>
    entity[key] === null || entity[key] === CLEARED[key] ? undefined : entity[key];
  const optionalNumber = (key: keyof typeof CLEARED): number | undefined => {
    const value = optional(key);
    return value === undefined ? undefined : Number(value);
  };
  return {
    signer: String(entity.signer),
    nonce: Number(entity.nonce),
    status: entity.status as BatchStatus,
    eventIds: getList(entity, 'eventIds'),
    enqueuedAts: getList(entity, 'enqueuedAts'),
    rawTx: entity.rawTxChunks === undefined ? undefined : getChunked(entity, 'rawTx'),
    txHashes: getList(entity, 'txHashes'),
    claimed: entity.claimed === true,
    createdAt: String(entity.createdAt),
    createdBlock: Number(entity.createdBlock ?? -1),
    broadcastAt: optional('broadcastAt') as string | undefined,
    broadcastBlock: optionalNumber('broadcastBlock'),
    gasEstimate: optionalNumber('gasEstimate'),
    gasLimit: optionalNumber('gasLimit'),
    broadcasts: Number(entity.broadcasts ?? 0),
    feeBumps: Number(entity.feeBumps ?? 0),
    minedTxHash: optional('minedTxHash') as string | undefined,
    minedBlock: optionalNumber('minedBlock'),
    minedBlockHash: optional('minedBlockHash') as string | undefined,
    confirmedAt: optional('confirmedAt') as string | undefined,
    lastError: optional('lastError') as string | undefined,
    feeLimit: optional('feeLimit') as string | undefined,
    etag: entity.etag as string | undefined,
  };
}

/** Rows read from the top of a signer's partition: everything still in play, and the highest nonce taken. */
export interface RecentBatches {
  /** Ascending by nonce. */
  rows: BatchRow[];
  /** The highest nonce with a row, if any. */
  highest?: number;
  /** The row of the highest nonce in the table, settled or not. */
  newest?: BatchRow;
  /** The read stopped at `limit` rows before reaching settled history. */
  truncated: boolean;
}

export class Batches {
  constructor(private readonly store: TableStore) {}

  table(): Promise<TableClient> {
    return this.store.table(TABLES.batches);
  }

  /** The row without its raw transaction (`rawTxOf` reads that). */
  async get(signer: string, nonce: number): Promise<BatchRow | undefined> {
    const table = await this.table();
    try {
      return fromEntity(
        await table.getEntity(signer.toLowerCase(), nonceKey(nonce), { queryOptions: { select: WITHOUT_RAW_TX } })
      );
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /**
   * The row's raw transaction: the one still to be written, or the stored one, read (and left out of the row, whose
   * later writes keep it). Throws BatchConflictError when another writer changed the row since it was read or
   * written (its raw transaction may be another by now).
   */
  async rawTxOf(row: BatchRow): Promise<string> {
    if (row.rawTx !== undefined) return row.rawTx;
    const table = await this.table();
    let whole: BatchRow;
    try {
      whole = fromEntity(await table.getEntity(row.signer.toLowerCase(), nonceKey(row.nonce)));
    } catch (err) {
      if (isNotFound(err)) throw new BatchConflictError(row.signer, row.nonce);
      throw err;
    }
    if (whole.etag !== row.etag) throw new BatchConflictError(row.signer, row.nonce);
    return whole.rawTx!;
  }

  /**
   * Inserts the WAL row for a new nonce (its raw transaction stored, and dropped from the row); false when another
   * submitter holds that nonce already.
   */
  async create(row: BatchRow): Promise<boolean> {
    const table = await this.table();
    try {
      row.etag = (await table.createEntity(toEntity(row))).etag;
      row.rawTx = undefined; // stored
      return true;
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
  }

  /**
   * Writes the row, conditional on the ETag it was read or last written with; throws BatchConflictError when
   * another writer changed (or removed) it meanwhile. The row's ETag is the new one afterwards. A row with a raw
   * transaction to write is written whole, and drops it; one without is written without it (a Merge: the stored one
   * stays, as the ETag says it is).
   */
  async update(row: BatchRow): Promise<void> {
    if (!row.etag) throw new Error(`batch row ${row.signer}/${row.nonce} has no ETag: read it before updating`);
    const table = await this.table();
    const mode = row.rawTx === undefined ? 'Merge' : 'Replace';
    try {
      row.etag = (await table.updateEntity(toEntity(row), mode, { etag: row.etag })).etag;
      row.rawTx = undefined; // stored
    } catch (err) {
      if (isPreconditionFailed(err) || isNotFound(err)) throw new BatchConflictError(row.signer, row.nonce);
      throw err;
    }
  }

  /**
   * The rows still in play for `signer`, read from the highest nonce down: every row at or above `chainNonce`
   * (the chain's count of executed transactions), and below it every row until the first confirmed one (the
   * watcher confirms in chain order, so what lies below is settled). At most `limit` rows.
   */
  async recent(signer: string, chainNonce: number, limit: number): Promise<RecentBatches> {
    const table = await this.table();
    const rows: BatchRow[] = [];
    let newest: BatchRow | undefined;
    let truncated = false;
    const query = table.listEntities({
      queryOptions: { filter: `PartitionKey eq ${odata(signer.toLowerCase())}`, select: WITHOUT_RAW_TX },
    });
    scan: for await (const page of query.byPage({ maxPageSize: RECENT_PAGE_ROWS })) {
      for (const entity of page) {
        const row = fromEntity(entity);
        newest ??= row;
        if (row.nonce < chainNonce && row.status === 'confirmed') break scan;
        if (rows.length >= limit) {
          truncated = true;
          break scan;
        }
        rows.push(row);
      }
    }
    const highest = rows[0]?.nonce;
    return { rows: rows.reverse(), highest, newest, truncated };
  }

  /** The highest nonce in the WAL for `signer`, if any (one-row read: the newest nonce sorts first). */
  async highestNonce(signer: string): Promise<number | undefined> {
    const table = await this.table();
    const query = table.listEntities<{ nonce: number }>({
      queryOptions: { filter: `PartitionKey eq ${odata(signer.toLowerCase())}`, select: ['nonce'] },
    });
    for await (const page of query.byPage({ maxPageSize: 1 })) return page[0]?.nonce;
    return undefined;
  }

  /** Every row of every signer this bank used that the chain once held (mined or confirmed) from `fromBlock` on. */
  async minedSince(fromBlock: number): Promise<BatchRow[]> {
    const table = await this.table();
    const rows: BatchRow[] = [];
    const query = table.listEntities({
      queryOptions: {
        filter: `(status eq 'mined' or status eq 'confirmed') and minedBlock ge ${fromBlock}`,
        select: WITHOUT_RAW_TX,
      },
    });
    for await (const entity of query) rows.push(fromEntity(entity));
    return rows;
  }

  /**
   * Reads the row, applies `change` and writes it back conditionally, again on a lost race (a few times).
   * `change` returns false when there is nothing to write. Missing rows are left alone (not this bank's log).
   */
  async modify(signer: string, nonce: number, change: (row: BatchRow) => boolean): Promise<BatchRow | undefined> {
    for (let attempt = 0; ; attempt++) {
      const row = await this.get(signer, nonce);
      if (!row || !change(row)) return row;
      try {
        await this.update(row);
        return row;
      } catch (err) {
        if (!(err instanceof BatchConflictError) || attempt >= 4) throw err;
      }
    }
  }

  /** The watcher's mark: the transaction for (signer, nonce) is in a confirmed block. Idempotent. */
  markConfirmed(signer: string, nonce: number, mined: { txHash: string; blockNumber: number }): Promise<unknown> {
    return this.modify(signer, nonce, (row) => {
      if (row.status === 'confirmed' && row.minedTxHash === mined.txHash && row.minedBlock === mined.blockNumber)
        return false;
      Object.assign(row, {
        status: 'confirmed',
        minedTxHash: mined.txHash,
        minedBlock: mined.blockNumber,
        // The hash the submitter saw belongs to the block it saw: kept only while that is the block.
        minedBlockHash: row.minedBlock === mined.blockNumber ? row.minedBlockHash : undefined,
        confirmedAt: new Date().toISOString(),
      });
      return true;
    });
  }

  /** A reorg orphaned the block that held it: the transaction is in flight again (the submitter rebroadcasts). */
  markOrphaned(signer: string, nonce: number): Promise<unknown> {
    return this.modify(signer, nonce, (row) => {
      if (row.status === 'signed' || row.status === 'abandoned') return false;
      backInFlight(row);
      return true;
    });
  }
}
