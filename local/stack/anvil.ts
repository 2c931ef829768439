import { dirname, join } from 'node:path';
import { assertPortFree, freePort, retryOnPortRace } from './ports';
import { startProcess, type ManagedProcess } from './process';

/**
 * Anvil's own dev chain id. Kept (rather than inventing a "consortium" id) so wallets and tools recognise the local
 * chain; nothing in ledger-bridge may assume it: the chain id is always read from the node or the config.
 */
export const DEFAULT_CHAIN_ID = 31337;
export const DEFAULT_BLOCK_TIME_SECONDS = 2;
export const DEFAULT_GAS_LIMIT = 30_000_000n;
/** The contract is compiled for london (no PUSH0); running the chain at london proves the bytecode works there. */
export const DEFAULT_HARDFORK = 'london';

export interface AnvilOptions {
  port?: number;
  /** Interval mining like the PoA chain; 0 mines a block per transaction (fast tests). */
  blockTimeSeconds?: number;
  gasLimit?: bigint | number;
  chainId?: number;
  /** Persist chain state in this file across restarts (loaded at start, dumped every `stateIntervalSeconds` and on exit). */
  stateFile?: string;
  stateIntervalSeconds?: number;
  /** Number of unlocked dev accounts (anvil's default mnemonic). */
  accounts?: number;
  hardfork?: string;
  /** A zero-gas-price chain, like many Besu/GoQuorum consortia (base fee and gas price 0). */
  freeGas?: boolean;
  /**
   * How the pool orders pending transactions (anvil's default when absent: `fees`, by max fee per gas). Between
   * transactions with the same tip, Besu prefers the higher max fee, as `fees` does; geth the earlier arrival,
   * as `fifo` does.
   */
  txOrder?: 'fees' | 'fifo';
}

export interface Anvil {
  rpcUrl: string;
  chainId: number;
  blockTimeSeconds: number;
  process: ManagedProcess;
  stop(): Promise<void>;
}

/** Starts anvil on 127.0.0.1 and resolves once it answers eth_chainId. */
export async function startAnvil(options: AnvilOptions = {}): Promise<Anvil> {
  return options.port !== undefined
    ? startAnvilOn(options.port, options)
    : retryOnPortRace(async () => startAnvilOn(await freePort(), options));
}

async function startAnvilOn(port: number, options: AnvilOptions): Promise<Anvil> {
  const chainId = options.chainId ?? DEFAULT_CHAIN_ID;
  const blockTimeSeconds = options.blockTimeSeconds ?? DEFAULT_BLOCK_TIME_SECONDS;
  await assertPortFree('anvil', port);
  const rpcUrl = `http://127.0.0.1:${port}`;
  const args = [
    ['--host', '127.0.0.1'],
    ['--port', String(port)],
    ['--chain-id', String(chainId)],
    ['--gas-limit', String(options.gasLimit ?? DEFAULT_GAS_LIMIT)],
    ['--accounts', String(options.accounts ?? 10)],
    ['--hardfork', options.hardfork ?? DEFAULT_HARDFORK],
    blockTimeSeconds > 0 ? ['--block-time', String(blockTimeSeconds)] : [],
    options.stateFile
      ? ['--state', options.stateFile, '--state-interval', String(options.stateIntervalSeconds ?? 5)]
      : [],
    options.freeGas ? ['--base-fee', '0', '--gas-price', '0', '--disable-min-priority-fee'] : [],
    options.txOrder ? ['--order', options.txOrder] : [],
    ['--quiet'],
  ].flat();
  const child = await startProcess('anvil', anvilBinary(), args, {
    ready: async () => (await rpcChainId(rpcUrl)) === chainId,
  });
  // SIGTERM lets anvil dump --state on exit; a generous grace period keeps that dump from being cut short.
  return { rpcUrl, chainId, blockTimeSeconds, process: child, stop: () => child.stop(10_000) };
}

/** The platform binary itself, not the node wrapper (bin.mjs), so stopping the child stops the node. */
export function anvilBinary(): string {
  // Package names use Node's platform names and Go-style arch names (x64 → amd64).
  const pkg = `@foundry-rs/anvil-${process.platform}-${process.arch === 'x64' ? 'amd64' : process.arch}`;
  let manifest: string;
  try {
    manifest = require.resolve(`${pkg}/package.json`);
  } catch {
    throw new Error(
      `anvil: the platform package ${pkg} is not installed; the lockfile pins the Linux x64 build, ` +
        `install yours with \`npm install --no-save ${pkg}\``
    );
  }
  return join(dirname(manifest), 'bin', process.platform === 'win32' ? 'anvil.exe' : 'anvil');
}

async function rpcChainId(rpcUrl: string): Promise<number | undefined> {
  const response = await fetch(rpcUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
    signal: AbortSignal.timeout(1_000),
  });
  const body = (await response.json()) as { result?: string };
  return body.result === undefined ? undefined : Number(body.result);
}
