import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

export interface BenchOptions {
  events: number;
  naiveEvents: number;
  banks: number;
  blockTime: number;
  gasLimit: number;
  confirmations: number;
  kvLatencyMs: number;
  latencyRate: number;
  latencySeconds: number;
  out: string;
  quick: boolean;
  skipNaive: boolean;
  /** Also compare partial-batch waits under mixed load: every bank but the last in a burst, the last trickling. */
  mixed: boolean;
  /** The trickling bank's events per second in the mixed-load comparison. */
  mixedRate: number;
  /** How the chain's pool orders pending transactions (anvil's --order, `fees` by default; AnvilOptions.txOrder). */
  txOrder: 'fees' | 'fifo';
}

const TX_ORDERS = ['fees', 'fifo'] as const;

export const BENCH_USAGE = `usage: bench [--events N] [--banks N] [--block-time S] [--gas-limit N] [--confirmations N]
             [--kv-latency-ms N] [--naive-events N] [--latency-rate N] [--latency-seconds N]
             [--out DIR] [--quick] [--skip-naive] [--mixed] [--mixed-rate N] [--tx-order fees|fifo]`;

/** The bench's options, as node:util parseArgs takes them. */
export const BENCH_OPTIONS = {
  events: { type: 'string' },
  'naive-events': { type: 'string' },
  banks: { type: 'string' },
  'block-time': { type: 'string' },
  'gas-limit': { type: 'string' },
  confirmations: { type: 'string' },
  'kv-latency-ms': { type: 'string' },
  'latency-rate': { type: 'string' },
  'latency-seconds': { type: 'string' },
  out: { type: 'string' },
  quick: { type: 'boolean' },
  'skip-naive': { type: 'boolean' },
  mixed: { type: 'boolean' },
  'mixed-rate': { type: 'string' },
  'tx-order': { type: 'string' },
} as const;

export function parseBenchArgs(argv: string[]): BenchOptions {
  const { values } = parseArgs({ args: argv, options: { ...BENCH_OPTIONS, help: { type: 'boolean' } } });
  if (values.help) {
    console.log(BENCH_USAGE);
    process.exit(0);
  }
  const quick = values.quick === true;
  const num = (name: string, raw: string | undefined, fallback: number, min: number): number => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min)
      throw new Error(`--${name} must be a number >= ${min}, got ${raw}\n${BENCH_USAGE}`);
    return n;
  };
  const banks = num('banks', values.banks, 3, 1);
  const mixed = values.mixed === true;
  if (mixed && banks < 2)
    throw new Error(`--mixed needs at least 2 banks (one trickles), got ${banks}\n${BENCH_USAGE}`);
  const txOrder = values['tx-order'] ?? 'fees';
  if (!(TX_ORDERS as readonly string[]).includes(txOrder))
    throw new Error(`--tx-order must be fees or fifo, got ${txOrder}\n${BENCH_USAGE}`);
  return {
    events: Math.round(num('events', values.events, quick ? 600 : 20_000, 1)),
    naiveEvents: Math.round(num('naive-events', values['naive-events'], quick ? 10 * banks : 30 * banks, 1)),
    banks: Math.round(banks),
    blockTime: num('block-time', values['block-time'], 2, 1),
    gasLimit: Math.round(num('gas-limit', values['gas-limit'], 30_000_000, 1_000_000)),
    confirmations: Math.round(num('confirmations', values.confirmations, 2, 0)),
    kvLatencyMs: num('kv-latency-ms', values['kv-latency-ms'], 30, 0),
    latencyRate: num('latency-rate', values['latency-rate'], 5, 0.1),
    latencySeconds: num('latency-seconds', values['latency-seconds'], quick ? 20 : 60, 1),
    out: resolve(values.out ?? join(__dirname, '..', '..', 'bench', 'results')),
    quick,
    skipNaive: values['skip-naive'] === true,
    mixed,
    mixedRate: num('mixed-rate', values['mixed-rate'], 100, 1),
    txOrder: txOrder as BenchOptions['txOrder'],
  };
}
