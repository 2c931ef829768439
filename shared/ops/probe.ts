import { createHash } from 'node:crypto';
import { errorMessage } from '../redact';
import { RpcClient, isMethodNotFound } from './rpc';
import { blockHeader, clientVersion, quantity, syncStatus, type BlockHeader, type SyncStatus } from './rpc-parse';
import { DAY_MS } from '../util';
import {
  FAMILIES,
  consensusHealth,
  parseActivity,
  parseValidators,
  type ConsensusHealth,
  type ParsedActivity,
} from './validator-methods';

/** One validator's RPC endpoint as the heartbeat names it: host:port only, so no credential in a URL leaks. */
export interface ValidatorEndpoint {
  url: string;
  name: string;
  /** Stable table key (hash of the URL). */
  key: string;
}

export function validatorEndpoint(url: string): ValidatorEndpoint {
  const parsed = new URL(url);
  const port = parsed.port || (parsed.protocol === 'https:' ? '443' : '80');
  return {
    url,
    name: `${parsed.hostname}:${port}`,
    key: createHash('sha256').update(url).digest('hex').slice(0, 32),
  };
}

/** Methods an endpoint does not offer, with when that was last seen; persisted so restarts do not re-ask. */
export type UnsupportedMethods = Record<string, string>;

/** How long "method not found" is believed before asking again (a node may be reconfigured). */
export const METHOD_RECHECK_MS = DAY_MS;

export interface ProbeOptions {
  timeoutMs: number;
  expectedChainId: number;
  unsupported: UnsupportedMethods;
  now: number;
  recheckMs?: number;
}

export interface ProbeResult {
  endpoint: ValidatorEndpoint;
  /** Answered the core calls (chain id, head block) correctly and in time. */
  up: boolean;
  /** Why it is down. */
  error?: string;
  /** Non-fatal trouble (an optional call failed or answered nonsense): the node is degraded. */
  problems: string[];
  durationMs: number;
  latencyMs?: number;
  chainId?: number;
  clientVersion?: string;
  sync?: SyncStatus;
  peers?: number;
  head?: BlockHeader;
  consensus?: ConsensusHealth;
  /** JSON-RPC calls this probe made. */
  rpcCalls: number;
  /** The endpoint's unsupported methods after this probe (new ones added, stale ones dropped). */
  unsupported: UnsupportedMethods;
}

/**
 * Probes one validator: core calls (chain id, head block) decide up/down; the rest (client version, syncing,
 * peers, validator set and participation) enrich the picture and degrade it when they fail. Everything runs
 * under one deadline, so a dead or slow node costs at most `timeoutMs` and never delays the others.
 */
export async function probeValidator(endpoint: ValidatorEndpoint, options: ProbeOptions): Promise<ProbeResult> {
  const client = new RpcClient(endpoint.url);
  const signal = AbortSignal.timeout(options.timeoutMs);
  const recheckMs = options.recheckMs ?? METHOD_RECHECK_MS;
  const unsupported: UnsupportedMethods = {};
  for (const [method, seenAt] of Object.entries(options.unsupported)) {
    if (options.now - Date.parse(seenAt) < recheckMs) unsupported[method] = seenAt;
  }
  const problems: string[] = [];
  const started = performance.now();

  /** An optional call: undefined when the node does not offer it (remembered) or when it failed (a problem). */
  const optional = async <T>(method: string, params: unknown[], parse: (v: unknown) => T): Promise<T | undefined> => {
    if (unsupported[method]) return undefined;
    try {
      return parse(await client.call(method, params, signal));
    } catch (err) {
      if (isMethodNotFound(err)) unsupported[method] = new Date(options.now).toISOString();
      else problems.push(errorMessage(err));
      return undefined;
    }
  };

  let latencyMs: number | undefined;
  const core = Promise.all([
    client.call('eth_chainId', [], signal).then((v) => quantity(v, 'eth_chainId')),
    (async () => {
      const t0 = performance.now();
      const head = blockHeader(await client.call('eth_getBlockByNumber', ['latest', false], signal), 'latest block');
      latencyMs = Math.round(performance.now() - t0);
      return head;
    })(),
  ]);
  const extras = Promise.all([
    optional('web3_clientVersion', [], clientVersion),
    optional('eth_syncing', [], syncStatus),
    optional('net_peerCount', [], (v) => quantity(v, 'net_peerCount')),
    probeConsensus(optional, unsupported),
  ]);
  const [coreResult, extrasResult] = await Promise.allSettled([core, extras]);
  const [version, sync, peers, consensus] = extrasResult.status === 'fulfilled' ? extrasResult.value : [];
  const result: ProbeResult = {
    endpoint,
    up: false,
    problems,
    durationMs: Math.round(performance.now() - started),
    rpcCalls: client.calls,
    unsupported,
    ...(version !== undefined && { clientVersion: version }),
    ...(sync !== undefined && { sync }),
    ...(peers !== undefined && { peers }),
    ...(consensus !== undefined && { consensus }),
  };
  if (coreResult.status === 'rejected') {
    result.error = errorMessage(coreResult.reason);
    return result;
  }
  const [chainId, head] = coreResult.value;
  result.chainId = chainId;
  result.head = head;
  result.latencyMs = latencyMs;
  if (chainId !== options.expectedChainId) {
    result.error = `serves chain ${chainId}, expected CHAIN_ID ${options.expectedChainId}`;
    return result;
  }
  result.up = true;
  return result;
}

type Optional = <T>(method: string, params: unknown[], parse: (v: unknown) => T) => Promise<T | undefined>;

/** Tries the consensus families in order and stops at the first the node answers. */
async function probeConsensus(
  optional: Optional,
  unsupported: UnsupportedMethods
): Promise<ConsensusHealth | undefined> {
  for (const family of FAMILIES) {
    if (unsupported[family.validators.method] && unsupported[family.activity.method]) continue;
    const [validators, activity] = await Promise.all([
      optional(family.validators.method, family.validators.params, (v) => parseValidators(family.validators.method, v)),
      optional<ParsedActivity>(family.activity.method, family.activity.params, (v) =>
        parseActivity(family.activity.method, v)
      ),
    ]);
    if (validators !== undefined || activity !== undefined) return consensusHealth(family.family, validators, activity);
    // Offered but failing (not "not found"): stop here rather than ask other engines' methods too.
    if (!unsupported[family.validators.method] || !unsupported[family.activity.method]) return undefined;
  }
  return undefined;
}
