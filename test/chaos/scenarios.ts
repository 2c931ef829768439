import { loadConfig } from '../../shared/config';
import { Chain } from '../../shared/chain/provider';
import { createTelemetry } from '../../shared/telemetry';
import { rebuildProjections } from '../../shared/watch/rebuild';
import { readWatcherStatus } from '../../shared/watch/state';
import { watchSettingsOf } from '../../shared/watch/watcher';
import { CHAOS_CHAIN, type ChaosConsortium, type Published } from './harness';

/**
 * The faults, each injected while events flow. `short` is the form `npm test` runs; `full` is `npm run chaos`.
 * A scenario returns when its fault is over; the suite then waits for the pipeline to drain and checks the
 * invariants (invariants.ts).
 */

export type Mode = 'short' | 'full';

export interface ScenarioContext {
  env: ChaosConsortium;
  mode: Mode;
  /** Deterministic from the scenario's seed: every choice of when and whom. */
  random: () => number;
  /** Publishes `perBank` events to every bank now, recording them for the checks. */
  publish(perBank: number): Promise<void>;
  /** Publishes in the background, `perBank` events per bank each second, until the returned stop is called. */
  load(perBankPerSecond: number): () => Promise<void>;
  log(line: string): void;
}

export interface Scenario {
  name: string;
  /** Also in the short form run by `npm test`. */
  short: boolean;
  run(ctx: ScenarioContext): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const between = (random: () => number, min: number, max: number): number => min + Math.floor(random() * (max - min));

/**
 * Load for `seconds`, with `fault` at a random moment between `earliest` seconds in and half the load (so
 * batches are in every state when it strikes); returns when both are over.
 */
async function underLoad(
  ctx: ScenarioContext,
  seconds: number,
  fault: () => Promise<void>,
  earliest = 1
): Promise<void> {
  const stop = ctx.load(ctx.mode === 'full' ? 10 : 4);
  try {
    await sleep(between(ctx.random, earliest * 1000, Math.max(earliest + 1, seconds / 2) * 1000));
    await fault();
  } finally {
    await sleep(1_000);
    await stop();
  }
}

function reorg(depth: number, name: string, short = false): Scenario {
  return {
    name,
    short,
    async run(ctx) {
      await underLoad(ctx, 8, async () => {
        await ctx.env.reorg(depth);
      });
    },
  };
}

function keyVault(name: string, status: 429 | 503, retryAfterSeconds?: number): Scenario {
  return {
    name,
    short: false,
    async run(ctx) {
      const seconds = 20;
      await underLoad(ctx, seconds, async () => {
        const faults = ctx.env.stack.keyVault.faults;
        faults.failNext({ status, count: 1_000_000, operation: 'sign', retryAfterSeconds });
        await sleep(seconds * 1000);
        faults.clear();
      });
    },
  };
}

/** `ledger-bridge rebuild-projections` for every bank whose watcher halted (the documented recovery). */
async function rebuildHalted(ctx: ScenarioContext): Promise<void> {
  const deadline = Date.now() + 30_000;
  const halted = new Set<string>();
  while (halted.size < ctx.env.bankIds.length && Date.now() < deadline) {
    for (const bankId of ctx.env.bankIds)
      if ((await readWatcherStatus(ctx.env.tables(bankId)))?.halted) halted.add(bankId);
    await sleep(500);
  }
  for (const bankId of halted) {
    const config = loadConfig(ctx.env.settings(bankId));
    const chain = new Chain({ rpcUrls: config.chain.rpcUrls, chainId: config.chain.chainId });
    try {
      const result = await rebuildProjections(
        { tables: ctx.env.tables(bankId), chain, telemetry: createTelemetry({ roleName: 'chaos' }) },
        watchSettingsOf(config)
      );
      ctx.log(
        `${bankId}: rebuilt to block ${result.checkpointBlock}; own batches checked against the chain ` +
          `${result.writeSide.checked}, sent back in flight ${result.writeSide.reset} (${result.writeSide.events} events)`
      );
    } finally {
      chain.destroy();
    }
  }
  if (halted.size === 0) throw new Error('no watcher halted after a reorg deeper than the window');
}

export const SCENARIOS: Scenario[] = [
  reorg(1, 'reorg shallower than the confirmations (1 block)'),
  reorg(CHAOS_CHAIN.confirmations, `reorg as deep as the confirmations (${CHAOS_CHAIN.confirmations} blocks)`),
  reorg(CHAOS_CHAIN.confirmations + 3, `reorg deeper than the confirmations (${CHAOS_CHAIN.confirmations + 3} blocks)`),
  {
    name: 'reorg after receipts, twice (4 then 3 blocks)',
    short: true,
    async run(ctx) {
      await underLoad(ctx, 8, async () => {
        await ctx.env.reorg(4);
        await ctx.publish(20);
        await sleep(3_000);
        await ctx.env.reorg(3);
      });
    },
  },
  {
    name: `reorg deeper than the watcher's window (${2 * CHAOS_CHAIN.reorgWindowBlocks} blocks), then rebuild-projections`,
    short: false, // npm test: test/integration/reconcile.test.ts rebuilds after a reorg deeper than the window
    async run(ctx) {
      // Late enough that the blocks it takes away hold batches the watcher had already confirmed, and deep enough
      // to pass below the window however far a busy watcher lags.
      const depth = 2 * CHAOS_CHAIN.reorgWindowBlocks;
      await underLoad(ctx, 12, () => ctx.env.reorg(depth), CHAOS_CHAIN.confirmations + 4);
      await rebuildHalted(ctx);
    },
  },
  {
    name: 'chain RPC refusing connections',
    short: false,
    async run(ctx) {
      const seconds = ctx.mode === 'full' ? 30 : 8;
      await underLoad(ctx, seconds, async () => {
        await ctx.env.gate.down();
        await sleep(seconds * 1000);
        await ctx.env.gate.up();
      });
    },
  },
  keyVault('Key Vault 429 with Retry-After for 20 s', 429, 1),
  keyVault('Key Vault 429 without Retry-After for 20 s', 429),
  keyVault('Key Vault 503 for 20 s', 503),
  {
    name: "SIGKILL of one bank's app at a random moment",
    short: true,
    async run(ctx) {
      const times = ctx.mode === 'full' ? 10 : 2;
      const stop = ctx.load(ctx.mode === 'full' ? 10 : 4);
      try {
        for (let i = 0; i < times; i++) {
          await sleep(between(ctx.random, 500, 4_000));
          const bankId = ctx.env.bankIds[between(ctx.random, 0, ctx.env.bankIds.length)]!;
          ctx.log(`SIGKILL ${bankId}`);
          await ctx.env.killHosts(bankId);
          await sleep(between(ctx.random, 0, 2_000));
          await ctx.env.startHost(bankId);
        }
      } finally {
        await stop();
      }
    },
  },
  {
    name: 'two apps for one bank at once',
    short: false, // npm test: two submitters at once in submitter.test.ts and reconcile.test.ts
    async run(ctx) {
      const bankId = ctx.env.bankIds[0]!;
      const second = await ctx.env.startHost(bankId);
      try {
        await underLoad(ctx, 12, async () => sleep(6_000));
      } finally {
        await ctx.env.stopHost(bankId, second);
      }
    },
  },
  {
    name: 'restart of the whole consortium on its data dir',
    short: false,
    async run(ctx) {
      await underLoad(ctx, 8, async () => {
        ctx.log('restarting everything');
        await ctx.env.restartAll();
        await sleep(4_000); // events keep coming to the restarted consortium
      });
    },
  },
];

export type { Published };
