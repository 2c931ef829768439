import { Chain } from '../shared/chain/provider';
import { createTelemetry } from '../shared/telemetry';
import { rebuildProjections, type RebuildResult } from '../shared/watch/rebuild';
import { watchSettingsOf, type WatchProgress } from '../shared/watch/watcher';
import { bankTargets } from './target';

export interface RebuildCommandOptions {
  fromBlock?: number;
  bankId?: string;
  json: boolean;
}

/**
 * `ledger-bridge rebuild-projections`: every bank of the running local stack, or --bank; without a stack, the
 * bank the environment's settings describe (as the Function App reads them). See cli/target.ts.
 */
export async function rebuildCommand(options: RebuildCommandOptions): Promise<void> {
  const results: (RebuildResult & { bankId: string })[] = [];
  for (const { config, tables } of bankTargets(options.bankId, true)) {
    const chain = new Chain({ rpcUrls: config.chain.rpcUrls, chainId: config.chain.chainId });
    const bar = progressBar(config.bankId);
    try {
      const result = await rebuildProjections(
        {
          tables,
          chain,
          // A one-off command: its telemetry would only duplicate what the watcher reports.
          telemetry: createTelemetry({ roleName: 'ledger-bridge-cli', logger: { warn: () => undefined } }),
        },
        watchSettingsOf(config),
        { fromBlock: options.fromBlock, onProgress: bar.update }
      );
      bar.done(result);
      results.push({ bankId: config.bankId, ...result });
    } finally {
      chain.destroy();
    }
  }
  if (options.json) console.log(JSON.stringify(results));
}

/** blocks done/total, records and rate on stderr: redrawn in place on a terminal, every 10 % otherwise. */
function progressBar(label: string): { update: (p: WatchProgress) => void; done: (r: RebuildResult) => void } {
  const tty = process.stderr.isTTY === true;
  let lastTenth = -1;
  const line = (p: WatchProgress): string => {
    const ratio = p.totalBlocks > 0 ? Math.min(1, p.doneBlocks / p.totalBlocks) : 1;
    const width = 24;
    const filled = Math.round(ratio * width);
    const rate = p.elapsedMs > 0 ? Math.round((p.records * 1000) / p.elapsedMs) : 0;
    return (
      `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.floor(ratio * 100)).padStart(3)}% ` +
      `${p.doneBlocks}/${p.totalBlocks} blocks, ${p.records} records, ${rate} records/s`
    );
  };
  return {
    update: (p) => {
      const tenth = p.totalBlocks > 0 ? Math.floor((p.doneBlocks / p.totalBlocks) * 10) : 10;
      if (tty) process.stderr.write(`\r${line(p)}`);
      else if (tenth !== lastTenth) process.stderr.write(`${line(p)}\n`);
      lastTenth = tenth;
    },
    done: (r) => {
      const seconds = (r.elapsedMs / 1000).toFixed(1);
      process.stderr.write(
        `${tty ? '\n' : ''}${label}: rebuilt from block ${r.fromBlock} to ${r.checkpointBlock}: ${r.blocks} blocks, ` +
          `${r.records} records in ${seconds} s; own batches checked against the chain: ${r.writeSide.checked}, ` +
          `sent back in flight: ${r.writeSide.reset} (${r.writeSide.events} event(s))\n`
      );
    },
  };
}
