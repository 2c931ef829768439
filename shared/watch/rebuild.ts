import { Batches } from '../storage/batches';
import { Outbox } from '../storage/outbox';
import { reconcileAfterRebuild } from '../submit/reconcile';
import { Projector } from './projection';
import { CheckpointConflictError, PROJECTION_LAYOUT, WatcherStateStore } from './state';
import { Watcher, type WatchDeps, type WatchProgress, type WatchRunResult, type WatchSettings } from './watcher';

export interface RebuildOptions {
  /** Replay from this block; the registry's deploy block (settings.fromBlock) when absent: a full rebuild. */
  fromBlock?: number;
  onProgress?: (progress: WatchProgress) => void;
}

export interface RebuildResult extends WatchRunResult {
  fromBlock: number;
  elapsedMs: number;
  /** This bank's own batch rows checked against the chain, and those (and their events) sent back in flight. */
  writeSide: { checked: number; reset: number; events: number };
}

/**
 * Replays the projections from the chain: clears them (all, or what came from `fromBlock` on), resets the
 * watcher's state to just below that block (clearing a halt), and runs the watcher itself up to the head.
 * One way to project: a rebuild is the watcher catching up from an earlier checkpoint. Then this bank's own
 * batch log and outbox are reconciled with the chain (shared/submit/reconcile.ts, rule 5).
 */
export async function rebuildProjections(
  deps: WatchDeps,
  settings: WatchSettings,
  options: RebuildOptions = {}
): Promise<RebuildResult> {
  const started = Date.now();
  const fromBlock = Math.max(options.fromBlock ?? settings.fromBlock, settings.fromBlock);
  const projector = new Projector(deps.tables, deps.chain, deps.telemetry, settings.bankId);
  const state = new WatcherStateStore(deps.tables);
  await projector.clearFrom(fromBlock <= settings.fromBlock ? 0 : fromBlock);
  await state.deleteBlocks({});
  const below = fromBlock > 0 ? await deps.chain.read((p) => p.getBlock(fromBlock - 1)) : null;
  // A watcher timer may run meanwhile: take the checkpoint from it (re-read on a lost race).
  for (let attempt = 0; ; attempt++) {
    const current = await state.readCheckpoint(settings.fromBlock);
    try {
      await state.writeCheckpoint(current, {
        block: fromBlock - 1,
        hash: below?.hash ?? '',
        blockTime: below?.timestamp ?? 0,
        headBlock: current.headBlock,
        lagBlocks: 0,
        lagSeconds: 0,
        halted: false,
        haltedReason: '',
        haltedAt: '',
        layout: PROJECTION_LAYOUT,
      });
      break;
    } catch (err) {
      if (!(err instanceof CheckpointConflictError) || attempt >= 5) throw err;
    }
  }
  const result = await new Watcher(deps, settings).run({ onProgress: options.onProgress });
  // The projections now equal the chain; the bank's own write side is made to as well.
  const writeSide = await reconcileAfterRebuild(
    { chain: deps.chain, batches: new Batches(deps.tables), outbox: new Outbox(deps.tables) },
    fromBlock
  );
  return { ...result, fromBlock, elapsedMs: Date.now() - started, writeSide };
}
