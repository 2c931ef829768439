import type { TableClient, TransactionAction } from '@azure/data-tables';
import {
  isConflict,
  isNotFound,
  isPreconditionFailed,
  submitGrouped,
  TABLES,
  type TableStore,
} from '../storage/tables';
import { forEachLimit } from '../util';

/**
 * The watcher's own table (WatcherState):
 *
 *   PK 'watcher', RK 'checkpoint'   the last block projected, lag, halted state; updated only with its ETag, so
 *                                   of two concurrent watchers the loser cannot move the checkpoint
 *   PK 'blocks',  RK <block number> hash, parent hash and time of recent processed blocks (the reorg window),
 *                                   plus the undo journal: what the block's logs wrote, to take back if orphaned
 */
const CHECKPOINT = { partitionKey: 'watcher', rowKey: 'checkpoint' } as const;

/**
 * The table layout the projections are written in: 1 was CreditRecords + CreditRecordHistory (a partition per
 * subject), 2 CreditLedger in 256 buckets, 3 is CreditLedger in 16 buckets. A checkpoint of an older layout makes
 * the watcher drop layout 2's rows and replay from the deploy block (docs/read-api.md, "Migrating").
 */
export const PROJECTION_LAYOUT = 3;
const BLOCKS = 'blocks';
const blockKey = (n: number): string => String(n).padStart(15, '0');

export interface Checkpoint {
  /** Last block fully projected; fromBlock - 1 before the first run. */
  block: number;
  /** Its hash; '' when unknown (nothing projected yet). */
  hash: string;
  /** Unix seconds of that block; 0 when unknown. (Not "timestamp": the table SDK maps its system Timestamp there.) */
  blockTime: number;
  headBlock: number;
  lagBlocks: number;
  lagSeconds: number;
  halted: boolean;
  haltedReason: string;
  haltedAt: string;
  updatedAt: string;
  /** The layout the projected rows are in (PROJECTION_LAYOUT). */
  layout: number;
  /** Table ETag of the row as read; undefined before the row exists. */
  etag?: string;
}

/** What a block's logs wrote, so a reorg can take exactly that back. */
export interface BlockJournal {
  /** Record updates applied: [subjectRef, bankId, logIndex]. */
  updates: [string, string, number][];
  /** Member addresses with an event in the block (their event rows are keyed by position). */
  members: [string, number][];
  /** This bank's event ids that the block confirmed or skipped. */
  ownEvents: string[];
  /** This bank's transactions in the block: [signer, nonce]. */
  ownTxs: [string, number][];
}

export interface StoredBlock {
  number: number;
  hash: string;
  parentHash: string;
  /** Unix seconds. */
  blockTime: number;
  /** False for blocks stored only for their hash (deep in a catch-up): those cannot be undone. */
  journaled: boolean;
  /** Loaded only when asked for (undo): journals of full blocks are large. */
  journal?: BlockJournal;
}

type BlockEntity = Omit<StoredBlock, 'journal'> & { journalChunks?: number } & Record<`journal${number}`, string>;

/** The watcher lost a race for the checkpoint (another instance moved it): stop without writing. */
export class CheckpointConflictError extends Error {
  constructor() {
    super('another watcher instance moved the checkpoint; this run stops without writing a checkpoint');
    this.name = 'CheckpointConflictError';
  }
}

type CheckpointEntity = { block: number } & Partial<Omit<Checkpoint, 'block' | 'etag'>>;

// Table string properties hold at most 32K characters: the journal JSON is split over numbered properties.
const CHUNK = 30_000;
const MAX_CHUNKS = 15; // ~900 KB of UTF-16, under the 1 MB entity limit

export class WatcherStateStore {
  constructor(private readonly store: TableStore) {}

  private table(): Promise<TableClient> {
    return this.store.table(TABLES.watcher);
  }

  async readCheckpoint(fromBlock: number): Promise<Checkpoint> {
    const table = await this.table();
    try {
      const e = await table.getEntity<CheckpointEntity>(CHECKPOINT.partitionKey, CHECKPOINT.rowKey);
      return {
        block: e.block,
        hash: e.hash ?? '',
        blockTime: e.blockTime ?? 0,
        headBlock: e.headBlock ?? -1,
        lagBlocks: e.lagBlocks ?? 0,
        lagSeconds: e.lagSeconds ?? 0,
        halted: e.halted === true,
        haltedReason: e.haltedReason ?? '',
        haltedAt: e.haltedAt ?? '',
        updatedAt: e.updatedAt ?? '',
        layout: e.layout ?? 1,
        etag: e.etag,
      };
    } catch (err) {
      if (!isNotFound(err)) throw err;
      return {
        block: fromBlock - 1,
        hash: '',
        blockTime: 0,
        headBlock: -1,
        lagBlocks: 0,
        lagSeconds: 0,
        halted: false,
        haltedReason: '',
        haltedAt: '',
        updatedAt: '',
        layout: PROJECTION_LAYOUT,
      };
    }
  }

  /**
   * Writes the checkpoint only if nobody changed it since `current` was read (ETag; insert-only when it did not
   * exist). Returns the new state with its new ETag; throws CheckpointConflictError when it lost the race.
   */
  async writeCheckpoint(current: Checkpoint, next: Omit<Checkpoint, 'etag' | 'updatedAt'>): Promise<Checkpoint> {
    const table = await this.table();
    const updatedAt = new Date().toISOString();
    const entity = { ...CHECKPOINT, ...next, updatedAt };
    try {
      const response =
        current.etag === undefined
          ? await table.createEntity(entity)
          : await table.updateEntity(entity, 'Replace', { etag: current.etag });
      return { ...next, updatedAt, etag: response.etag };
    } catch (err) {
      if (isPreconditionFailed(err) || isConflict(err)) throw new CheckpointConflictError();
      throw err;
    }
  }

  /** Stored blocks (above `above` when given), newest first; their journals only when asked for. */
  async blocks(options: { journals?: boolean; above?: number } = {}): Promise<StoredBlock[]> {
    const table = await this.table();
    const rows: StoredBlock[] = [];
    const range = options.above === undefined ? '' : ` and RowKey gt '${blockKey(options.above)}'`;
    const query = table.listEntities<BlockEntity>({
      queryOptions: {
        filter: `PartitionKey eq '${BLOCKS}'${range}`,
        select: options.journals ? undefined : ['number', 'hash', 'parentHash', 'blockTime', 'journaled'],
      },
    });
    for await (const e of query) {
      let json = '';
      for (let i = 0; i < (e.journalChunks ?? 0); i++) json += e[`journal${i}`] ?? '';
      rows.push({
        number: e.number,
        hash: e.hash,
        parentHash: e.parentHash,
        blockTime: e.blockTime,
        journaled: e.journaled === true,
        journal: json ? (JSON.parse(json) as BlockJournal) : undefined,
      });
    }
    return rows.sort((a, b) => b.number - a.number);
  }

  async putBlocks(blocks: StoredBlock[]): Promise<void> {
    if (blocks.length === 0) return;
    const entities = blocks.map((block) => {
      const entity: Record<string, unknown> & { partitionKey: string; rowKey: string } = {
        partitionKey: BLOCKS,
        rowKey: blockKey(block.number),
        number: block.number,
        hash: block.hash,
        parentHash: block.parentHash,
        blockTime: block.blockTime,
        journaled: block.journal !== undefined,
        journalChunks: 0,
      };
      const json = block.journal ? JSON.stringify(block.journal) : '';
      const chunks = Math.ceil(json.length / CHUNK);
      if (chunks > MAX_CHUNKS) {
        throw new Error(
          `block ${block.number}: its undo journal (${json.length} characters) does not fit one WatcherState row`
        );
      }
      entity.journalChunks = chunks;
      for (let i = 0; i < chunks; i++) entity[`journal${i}`] = json.slice(i * CHUNK, (i + 1) * CHUNK);
      return entity;
    });
    // One request per row: a full block's journal is ~100 KB and a transaction may carry at most 4 MB.
    const table = await this.table();
    await forEachLimit(entities, 8, async (entity) => {
      await table.upsertEntity(entity, 'Replace');
    });
  }

  /** Deletes stored blocks numbered at or below `max` (out of the window) or above `min` (orphaned). */
  async deleteBlocks(filter: { atOrBelow?: number; above?: number }): Promise<void> {
    const table = await this.table();
    const conditions = [`PartitionKey eq '${BLOCKS}'`];
    if (filter.atOrBelow !== undefined) conditions.push(`RowKey le '${blockKey(filter.atOrBelow)}'`);
    if (filter.above !== undefined) conditions.push(`RowKey gt '${blockKey(filter.above)}'`);
    const actions: TransactionAction[] = [];
    const query = table.listEntities({ queryOptions: { filter: conditions.join(' and '), select: ['RowKey'] } });
    for await (const e of query) actions.push(['delete', { partitionKey: BLOCKS, rowKey: e.rowKey! }]);
    await submitGrouped(table, actions);
  }
}

export interface WatcherStatus {
  checkpointBlock: number;
  checkpointHash: string;
  /** Unix seconds of the checkpoint block. */
  checkpointTime: number;
  /** The chain head the watcher saw on its last run. */
  headBlock: number;
  lagBlocks: number;
  /** Seconds between the last run and the checkpoint block's time, as of that run. */
  lagSeconds: number;
  halted?: { reason: string; at: string };
  updatedAt: string;
}

/** The watcher's progress for the status endpoint; undefined before its first run. */
export async function readWatcherStatus(tables: TableStore): Promise<WatcherStatus | undefined> {
  const checkpoint = await new WatcherStateStore(tables).readCheckpoint(0);
  if (checkpoint.etag === undefined) return undefined;
  return {
    checkpointBlock: checkpoint.block,
    checkpointHash: checkpoint.hash,
    checkpointTime: checkpoint.blockTime,
    headBlock: checkpoint.headBlock,
    lagBlocks: checkpoint.lagBlocks,
    lagSeconds: checkpoint.lagSeconds,
    ...(checkpoint.halted ? { halted: { reason: checkpoint.haltedReason, at: checkpoint.haltedAt } } : {}),
    updatedAt: checkpoint.updatedAt,
  };
}
