import type { Block } from 'ethers';
import type { Chain } from '../chain/provider';
import type { Config } from '../config';
import type { TableStore } from '../storage/tables';
import type { Telemetry } from '../telemetry';
import type { ChainLog } from '../chain/rpc-answers';
import { decodeEvent, readRegistryLogs, type RegistryEvent } from './events';
import { isRangeRefusal, LogRangeSizer } from './log-range';
import { Projector } from './projection';
import {
  CheckpointConflictError,
  PROJECTION_LAYOUT,
  WatcherStateStore,
  type BlockJournal,
  type Checkpoint,
  type StoredBlock,
} from './state';
import { forEachLimit } from '../util';
import { WATCH_EVENTS, WATCH_METRICS } from './telemetry-names';

/**
 * The read path's one way to project: from the checkpoint up to head − confirmations, in adaptive log ranges,
 * with block-hash continuity checked against a window of recent blocks (also across runs). A reorg inside the
 * window is undone and reprocessed; a deeper one halts the watcher loudly instead of letting tables diverge.
 */

export interface WatchSettings {
  /** This bank: its events also settle its outbox and batch rows. */
  bankId: string;
  registryAddress: string;
  /** First block to project (the registry's deploy block). */
  fromBlock: number;
  confirmations: number;
  logChunkBlocks: number;
  reorgWindowBlocks: number;
  /** At most this many registry logs in one chunk (its range shrinks until they fit, down to one block). */
  maxChunkLogs?: number;
}

/**
 * A chunk is bounded by its logs too, not only by blocks: behind a backlog of full blocks (over a thousand records
 * each), 2,000 blocks would be one chunk of a million records, projected with no checkpoint for as long as it takes
 * and past the function's timeout.
 */
export const MAX_CHUNK_LOGS = 2000;

export const watchSettingsOf = (config: Config): WatchSettings => ({
  bankId: config.bankId,
  registryAddress: config.chain.registryAddress,
  fromBlock: config.watch.fromBlock,
  confirmations: config.chain.confirmations,
  logChunkBlocks: config.watch.logChunkBlocks,
  reorgWindowBlocks: config.watch.reorgWindowBlocks,
});

export interface WatchDeps {
  tables: TableStore;
  chain: Chain;
  telemetry: Telemetry;
}

export interface WatchProgress {
  startBlock: number;
  targetBlock: number;
  doneBlocks: number;
  totalBlocks: number;
  records: number;
  elapsedMs: number;
}

export interface WatchRunResult {
  /** 'superseded': another instance moved the checkpoint first; this run stopped without writing it. */
  outcome: 'projected' | 'up-to-date' | 'superseded';
  checkpointBlock: number;
  headBlock: number;
  blocks: number;
  records: number;
  /** Depth of the reorg undone in this run, 0 when none. */
  reorgDepth: number;
}

/** The watcher stopped on a reorg it cannot undo; thrown by every run until the projections are rebuilt. */
export class WatcherHaltedError extends Error {
  constructor(readonly reason: string) {
    super(`watcher halted: ${reason}`);
    this.name = 'WatcherHaltedError';
  }
}

interface Header {
  number: number;
  hash: string;
  parentHash: string;
  blockTime: number;
}

const EMPTY_JOURNAL: BlockJournal = { updates: [], members: [], ownEvents: [], ownTxs: [] };
/** Block headers requested at once while checking a chunk's continuity. */
const HEADER_FETCH_PARALLELISM = 16;
/** Passes over the chain in one run when the chain forks under it, before leaving the rest to the next run. */
const MAX_PASSES = 3;
/** How often `follow` asks for the head: a block waits at most this long for projection once it is confirmed. */
const HEAD_POLL_MS = 250;

export class Watcher {
  private readonly sizer: LogRangeSizer;
  private readonly state: WatcherStateStore;
  private readonly projector: Projector;

  constructor(
    private readonly deps: WatchDeps,
    readonly settings: WatchSettings
  ) {
    this.sizer = new LogRangeSizer(settings.logChunkBlocks);
    this.state = new WatcherStateStore(deps.tables);
    this.projector = new Projector(deps.tables, deps.chain, deps.telemetry, settings.bankId);
  }

  /** The current log range (blocks per eth_getLogs), after any shrinking. */
  get logRangeBlocks(): number {
    return this.sizer.blocks;
  }

  /**
   * Runs, then keeps watching the head for `forMs` and runs again as soon as it moves: a block is projected once it
   * is confirmed, not at the next timer tick (half a second later on average on a 1 s timer, for every record).
   */
  async follow(forMs: number, onRun: (result: WatchRunResult) => void): Promise<void> {
    const until = Date.now() + forMs;
    let result = await this.run();
    onRun(result);
    while (result.outcome !== 'superseded' && Date.now() + HEAD_POLL_MS <= until) {
      await new Promise((resolve) => setTimeout(resolve, HEAD_POLL_MS));
      const head = await this.deps.chain.read((p) => p.getBlockNumber());
      if (head === result.headBlock) continue;
      result = await this.run();
      onRun(result);
    }
  }

  async run(options: { onProgress?: (progress: WatchProgress) => void } = {}): Promise<WatchRunResult> {
    let checkpoint = await this.state.readCheckpoint(this.settings.fromBlock);
    if (checkpoint.halted) throw this.halted(checkpoint.haltedReason);
    if (checkpoint.layout > PROJECTION_LAYOUT) {
      // A newer version migrated these tables: going back would drop its rows and replay, and it would do the same.
      throw this.halted(
        `the projections are in table layout ${checkpoint.layout}, newer than this version's ${PROJECTION_LAYOUT}: ` +
          'a newer version of ledger-bridge wrote them; deploy it (or a later one) instead of this one'
      );
    }
    if (checkpoint.layout < PROJECTION_LAYOUT) checkpoint = await this.restartInNewLayout(checkpoint);
    const result: WatchRunResult = {
      outcome: 'up-to-date',
      checkpointBlock: checkpoint.block,
      headBlock: checkpoint.headBlock,
      blocks: 0,
      records: 0,
      reorgDepth: 0,
    };
    const started = Date.now();
    const startBlock = checkpoint.block + 1;
    try {
      for (let pass = 0; pass < MAX_PASSES; pass++) {
        const resolved = await this.resolveReorg(checkpoint);
        checkpoint = resolved.checkpoint;
        result.reorgDepth = Math.max(result.reorgDepth, resolved.depth);
        const head = await this.deps.chain.read((p) => p.getBlockNumber());
        const target = head - this.settings.confirmations;
        const forked = await this.advance(checkpoint, head, target, (next, blocks, records) => {
          checkpoint = next;
          result.blocks += blocks;
          result.records += records;
          options.onProgress?.({
            startBlock,
            targetBlock: target,
            doneBlocks: next.block - startBlock + 1,
            totalBlocks: target - startBlock + 1,
            records: result.records,
            elapsedMs: Date.now() - started,
          });
        });
        if (checkpoint.headBlock !== head) checkpoint = await this.recordHead(checkpoint, head);
        result.headBlock = head;
        if (!forked) break;
      }
    } catch (err) {
      if (!(err instanceof CheckpointConflictError)) throw err;
      result.outcome = 'superseded';
    }
    if (result.outcome !== 'superseded' && result.blocks > 0) result.outcome = 'projected';
    result.checkpointBlock = checkpoint.block;
    this.report(result, checkpoint);
    return result;
  }

  private report(result: WatchRunResult, checkpoint: Checkpoint): void {
    const telemetry = this.deps.telemetry;
    telemetry.metric(WATCH_METRICS.blocksProcessed, result.blocks);
    telemetry.metric(WATCH_METRICS.recordsProjected, result.records);
    if (result.headBlock >= 0) telemetry.metric(WATCH_METRICS.projectionLagBlocks, result.headBlock - checkpoint.block);
    if (checkpoint.blockTime > 0)
      telemetry.metric(WATCH_METRICS.projectionLagSeconds, lagSeconds(checkpoint.blockTime));
  }

  /** Projects (checkpoint, target] chunk by chunk. Returns true when the chain forked under it (resolve, retry). */
  private async advance(
    start: Checkpoint,
    head: number,
    target: number,
    onChunk: (checkpoint: Checkpoint, blocks: number, records: number) => void
  ): Promise<boolean> {
    const window = this.settings.reorgWindowBlocks;
    let checkpoint = start;
    while (checkpoint.block < target) {
      const from = checkpoint.block + 1;
      const to = Math.min(target, from + this.sizer.blocks - 1);
      const endBefore = await this.header(to);
      let logs: ChainLog[];
      try {
        logs = await this.logs(from, to);
      } catch (err) {
        if (isRangeRefusal(err) && this.sizer.shrink(to - from + 1)) continue;
        throw err;
      }
      if (logs.length > (this.settings.maxChunkLogs ?? MAX_CHUNK_LOGS) && this.sizer.shrink(to - from + 1)) continue;
      // Hashes are kept for the window below the target; deeper blocks only for the chunk's end.
      const windowStart = Math.max(from, target - window + 1);
      const recent = windowStart <= to ? await this.headers(windowStart, to) : [];
      if (windowStart <= to && recent.length === 0) return true; // a window block vanished: the chain got shorter
      const first = recent[0]?.number === from ? recent[0] : await this.header(from);
      const end = recent.at(-1) ?? (await this.header(to));
      if (!endBefore || !first || !end || !continuous(checkpoint.hash, first, recent, endBefore, end, logs)) {
        return true;
      }
      const events = logs.map(decodeEvent).filter((e): e is RegistryEvent => e !== undefined);
      const ownTxs = await this.projector.ownTransactions(events);
      const journals = this.projector.journals(events, ownTxs);
      // Hashes and journals before the projection writes: a crash in between still finds what to take back.
      await this.state.putBlocks(
        recent.length > 0
          ? recent.map((h) => ({ ...h, journaled: true, journal: journals.get(h.number) ?? EMPTY_JOURNAL }))
          : [{ ...end, journaled: false }]
      );
      const records = await this.projector.apply(events, ownTxs);
      checkpoint = await this.state.writeCheckpoint(checkpoint, {
        ...checkpoint,
        block: to,
        hash: end.hash,
        blockTime: end.blockTime,
        headBlock: head,
        lagBlocks: head - to,
        lagSeconds: lagSeconds(end.blockTime),
      });
      await this.state.deleteBlocks({ atOrBelow: to - window - 1 });
      this.sizer.grow();
      onChunk(checkpoint, to - from + 1, records);
    }
    return false;
  }

  /**
   * Projections written by an older version in an older table layout: drop the older layout's rows from
   * CreditLedger (layout 1's tables are left for downstream readers to move off) and replay the chain from the
   * deploy block into the current layout. Settling this bank's own rows again is idempotent, so the replay is a
   * catch-up like any other. The checkpoint moves last: a run that fails before starts over.
   */
  private async restartInNewLayout(checkpoint: Checkpoint): Promise<Checkpoint> {
    const dropped = await this.projector.dropOlderLayout();
    this.deps.telemetry.event(WATCH_EVENTS.projectionLayoutChanged, {
      from: String(checkpoint.layout),
      to: String(PROJECTION_LAYOUT),
      replayFromBlock: String(this.settings.fromBlock),
      droppedRows: String(dropped),
    });
    await this.state.deleteBlocks({});
    return this.state.writeCheckpoint(checkpoint, {
      ...checkpoint,
      block: this.settings.fromBlock - 1,
      hash: '',
      blockTime: 0,
      layout: PROJECTION_LAYOUT,
    });
  }

  /** Keeps the status row's head and lag current when there was nothing to project. */
  private recordHead(checkpoint: Checkpoint, head: number): Promise<Checkpoint> {
    return this.state.writeCheckpoint(checkpoint, {
      ...checkpoint,
      headBlock: head,
      lagBlocks: head - checkpoint.block,
      lagSeconds: checkpoint.blockTime > 0 ? lagSeconds(checkpoint.blockTime) : 0,
    });
  }

  /**
   * Compares the newest stored block (the checkpoint, or a block a crashed run stored above it) with the chain.
   * On a mismatch walks back to the common ancestor, undoes the orphaned blocks and moves the checkpoint there.
   */
  private async resolveReorg(checkpoint: Checkpoint): Promise<{ checkpoint: Checkpoint; depth: number }> {
    const stored = await this.state.blocks();
    if (checkpoint.hash && !stored.some((b) => b.number === checkpoint.block)) {
      stored.push({
        number: checkpoint.block,
        hash: checkpoint.hash,
        parentHash: '',
        blockTime: checkpoint.blockTime,
        journaled: false,
      });
      stored.sort((a, b) => b.number - a.number);
    }
    const tip = stored[0];
    if (!tip) return { checkpoint, depth: 0 };
    const tipNow = await this.header(tip.number);
    if (tipNow?.hash === tip.hash) return { checkpoint, depth: 0 };

    const orphaned: StoredBlock[] = [];
    let ancestor: StoredBlock | undefined;
    for (const block of stored) {
      if ((await this.header(block.number))?.hash === block.hash) {
        ancestor = block;
        break;
      }
      orphaned.push(block);
    }
    const depth = ancestor ? tip.number - ancestor.number : Infinity;
    // Undoable only when every orphaned block was journaled, contiguously, within the window.
    const undoable =
      ancestor !== undefined &&
      depth <= this.settings.reorgWindowBlocks &&
      orphaned.length === depth &&
      orphaned.every((b) => b.journaled);
    if (!undoable) {
      const found = ancestor
        ? `the common ancestor is block ${ancestor.number}, ${depth} blocks below`
        : `none of the ${stored.length} stored recent blocks is on the chain any more`;
      const reason =
        `reorg deeper than the watcher can undo: block ${tip.number} was ${tip.hash} and is now ` +
        `${tipNow?.hash ?? 'gone'}; ${found} (WATCH_REORG_WINDOW_BLOCKS=${this.settings.reorgWindowBlocks}). ` +
        `The projections may hold records from orphaned blocks. Rebuild them with \`ledger-bridge rebuild-projections` +
        `${ancestor ? ` --from-block ${ancestor.number + 1}` : ''}\` (this clears the halt), and raise ` +
        `WATCH_REORG_WINDOW_BLOCKS if the network can reorg this deep.`;
      await this.state
        .writeCheckpoint(checkpoint, { ...checkpoint, halted: true, haltedReason: reason, haltedAt: nowIso() })
        .catch((err) => {
          if (!(err instanceof CheckpointConflictError)) throw err;
        });
      throw this.halted(reason);
    }

    this.deps.telemetry.event(
      WATCH_EVENTS.reorgDetected,
      { ancestorBlock: String(ancestor!.number), ancestorHash: ancestor!.hash, tipBlock: String(tip.number) },
      { depth }
    );
    this.deps.telemetry.metric(WATCH_METRICS.reorgs, 1, { depth: String(depth) });
    this.deps.telemetry.metric(WATCH_METRICS.reorgDepth, depth);
    await this.projector.undo(await this.state.blocks({ journals: true, above: ancestor!.number }), ancestor!.number);
    const back = ancestor!.number < checkpoint.block;
    const next = await this.state.writeCheckpoint(checkpoint, {
      ...checkpoint,
      ...(back ? { block: ancestor!.number, hash: ancestor!.hash, blockTime: ancestor!.blockTime } : {}),
    });
    // After the checkpoint: if this is cut short, the next run still sees the orphaned rows and redoes the undo.
    await this.state.deleteBlocks({ above: ancestor!.number });
    return { checkpoint: next, depth };
  }

  private halted(reason: string): WatcherHaltedError {
    this.deps.telemetry.event(WATCH_EVENTS.watcherHalted, { reason });
    return new WatcherHaltedError(reason);
  }

  private async header(blockNumber: number): Promise<Header | undefined> {
    if (blockNumber < 0) return undefined;
    const block: Block | null = await this.deps.chain.read((p) => p.getBlock(blockNumber));
    if (!block?.hash) return undefined;
    return { number: block.number, hash: block.hash, parentHash: block.parentHash, blockTime: block.timestamp };
  }

  /** Headers of [from, to] in order; an empty list when any is missing (the chain got shorter: a fork). */
  private async headers(from: number, to: number): Promise<Header[]> {
    const headers: (Header | undefined)[] = new Array<Header | undefined>(to - from + 1);
    await forEachLimit(headers.keys(), HEADER_FETCH_PARALLELISM, async (i) => {
      headers[i] = await this.header(from + i);
    });
    return headers.every((h) => h !== undefined) ? headers : [];
  }

  private logs(from: number, to: number): Promise<ChainLog[]> {
    const asked = { address: this.settings.registryAddress, from, to };
    return this.deps.chain.read((p) => readRegistryLogs(p, asked));
  }
}

/**
 * The chunk is one piece of one chain, joined to what is already projected: its first block's parent is the
 * checkpoint, the recent headers link up, the chunk's end did not change while its logs were read, and every
 * log of a block whose header we hold is from that very block.
 */
function continuous(
  checkpointHash: string,
  first: Header,
  recent: Header[],
  endBefore: Header,
  end: Header,
  logs: ChainLog[]
): boolean {
  if (checkpointHash && first.parentHash !== checkpointHash) return false;
  if (endBefore.hash !== end.hash) return false;
  for (let i = 1; i < recent.length; i++) if (recent[i]!.parentHash !== recent[i - 1]!.hash) return false;
  const known = new Map([...recent, end].map((h) => [h.number, h.hash]));
  return logs.every((log) => !log.removed && (known.get(log.blockNumber) ?? log.blockHash) === log.blockHash);
}

const nowIso = (): string => new Date().toISOString();
const lagSeconds = (blockTime: number): number => Math.max(0, Math.round(Date.now() / 1000 - blockTime));
