import { ProbeError, describe, isObject } from './rpc';
import { addressList, address, quantity, type BlockHeader } from './rpc-parse';

/**
 * The consensus-specific methods PoA clients offer for validator set and participation, read into one health
 * model. Shapes follow the clients' public documentation (recorded in test/fixtures/validator-rpc):
 *   Besu QBFT / IBFT 2.0  qbft_|ibft_getValidatorsByBlockNumber('latest') → address[]
 *                         qbft_|ibft_getSignerMetrics() → [{address, proposedBlockCount, lastProposedBlockNumber}]
 *   GoQuorum IBFT/QBFT    istanbul_getValidators('latest') → address[]
 *                         istanbul_status() → {numBlocks, sealerActivity: {address: count}}
 *   Geth Clique           clique_getSigners('latest') → address[]
 *                         clique_status() → {inturnPercent, numBlocks, sealerActivity: {address: count}}
 * A node offering none of them (anvil, a plain RPC node) gets participation from the `miner` of recent blocks.
 */

export type ConsensusFamily = 'qbft' | 'ibft' | 'istanbul' | 'clique';

export interface MethodCall {
  method: string;
  params: unknown[];
}

export interface FamilyMethods {
  family: ConsensusFamily;
  validators: MethodCall;
  activity: MethodCall;
}

/** Tried in this order; the first family a node answers is remembered for that node. */
export const FAMILIES: FamilyMethods[] = [
  {
    family: 'qbft',
    validators: { method: 'qbft_getValidatorsByBlockNumber', params: ['latest'] },
    activity: { method: 'qbft_getSignerMetrics', params: [] },
  },
  {
    family: 'ibft',
    validators: { method: 'ibft_getValidatorsByBlockNumber', params: ['latest'] },
    activity: { method: 'ibft_getSignerMetrics', params: [] },
  },
  {
    family: 'istanbul',
    validators: { method: 'istanbul_getValidators', params: ['latest'] },
    activity: { method: 'istanbul_status', params: [] },
  },
  {
    family: 'clique',
    validators: { method: 'clique_getSigners', params: ['latest'] },
    activity: { method: 'clique_status', params: [] },
  },
];

export interface SignerActivity {
  address: string;
  /** Blocks this signer proposed/sealed in the window. */
  blocks: number;
  lastBlock?: number;
}

/** The consensus view of one node (or of the chain, from block miners). */
export interface ConsensusHealth {
  source: ConsensusFamily | 'miners';
  /** The validator set at the latest block, sorted, lower-case; absent when the source does not say. */
  validators?: string[];
  /** Per-signer participation in the window, sorted by address. */
  activity?: SignerActivity[];
  /** Blocks the activity covers. */
  windowBlocks?: number;
  /** Clique: share of blocks sealed in turn. */
  inturnPercent?: number;
  /** Validators with no block in the window (only when both the set and the activity are known). */
  silent?: string[];
}

export function parseValidators(method: string, result: unknown): string[] {
  return addressList(result, method);
}

export interface ParsedActivity {
  activity: SignerActivity[];
  windowBlocks?: number;
  inturnPercent?: number;
}

/** Reads a participation answer: signer metrics (Besu) or a status object (GoQuorum, geth Clique). */
export function parseActivity(method: string, result: unknown): ParsedActivity {
  if (method.endsWith('_getSignerMetrics')) return parseSignerMetrics(method, result);
  if (method === 'istanbul_status' || method === 'clique_status') return parseStatus(method, result);
  throw new Error(`no reader for ${method}`);
}

function parseSignerMetrics(method: string, result: unknown): ParsedActivity {
  if (!Array.isArray(result))
    throw new ProbeError(`${method}: expected an array of signer objects, got ${describe(result)}`);
  const activity = result.map((item, i): SignerActivity => {
    const what = `${method}[${i}]`;
    if (!isObject(item)) throw new ProbeError(`${what}: expected an object, got ${describe(item)}`);
    const last = item.lastProposedBlockNumber;
    return {
      address: address(item.address, `${what}.address`),
      blocks: quantity(item.proposedBlockCount, `${what}.proposedBlockCount`),
      ...(last === undefined || last === null ? {} : { lastBlock: quantity(last, `${what}.lastProposedBlockNumber`) }),
    };
  });
  return {
    activity: mergeByAddress(activity),
    windowBlocks: activity.reduce((sum, a) => sum + a.blocks, 0),
  };
}

function parseStatus(method: string, result: unknown): ParsedActivity {
  if (!isObject(result)) throw new ProbeError(`${method}: expected a status object, got ${describe(result)}`);
  const sealers = result.sealerActivity;
  if (!isObject(sealers))
    throw new ProbeError(`${method}: sealerActivity is not an object of address → count (${describe(sealers)})`);
  const activity = Object.entries(sealers).map(([key, count]) => ({
    address: address(key, `${method}.sealerActivity key`),
    blocks: quantity(count, `${method}.sealerActivity[${key}]`),
  }));
  const parsed: ParsedActivity = {
    activity: mergeByAddress(activity),
    windowBlocks: quantity(result.numBlocks, `${method}.numBlocks`),
  };
  if (result.inturnPercent !== undefined) {
    const p = result.inturnPercent;
    if (typeof p !== 'number' || !Number.isFinite(p) || p < 0 || p > 100)
      throw new ProbeError(`${method}: inturnPercent must be a number from 0 to 100, got ${describe(p)}`);
    parsed.inturnPercent = p;
  }
  return parsed;
}

/** Proposers from the `miner` field of recent blocks: the fallback when a node offers no consensus API. */
export function activityFromMiners(headers: BlockHeader[]): ParsedActivity {
  const counts = new Map<string, SignerActivity>();
  for (const h of headers) {
    const entry = counts.get(h.miner) ?? { address: h.miner, blocks: 0 };
    entry.blocks++;
    entry.lastBlock = Math.max(entry.lastBlock ?? 0, h.number);
    counts.set(h.miner, entry);
  }
  return { activity: [...counts.values()].sort(byAddress), windowBlocks: headers.length };
}

/** Combines a node's answers into the health model; either part may be missing. */
export function consensusHealth(
  source: ConsensusHealth['source'],
  validators: string[] | undefined,
  activity: ParsedActivity | undefined
): ConsensusHealth {
  const health: ConsensusHealth = { source };
  if (validators) health.validators = validators;
  if (activity) {
    health.activity = activity.activity;
    if (activity.windowBlocks !== undefined) health.windowBlocks = activity.windowBlocks;
    if (activity.inturnPercent !== undefined) health.inturnPercent = activity.inturnPercent;
  }
  if (validators && activity) {
    const active = new Set(activity.activity.filter((a) => a.blocks > 0).map((a) => a.address));
    health.silent = validators.filter((v) => !active.has(v));
  }
  return health;
}

function mergeByAddress(list: SignerActivity[]): SignerActivity[] {
  const merged = new Map<string, SignerActivity>();
  for (const a of list) {
    const prev = merged.get(a.address);
    if (!prev) merged.set(a.address, { ...a });
    else {
      prev.blocks += a.blocks;
      if (a.lastBlock !== undefined) prev.lastBlock = Math.max(prev.lastBlock ?? 0, a.lastBlock);
    }
  }
  return [...merged.values()].sort(byAddress);
}

const byAddress = (a: SignerActivity, b: SignerActivity): number => a.address.localeCompare(b.address);
