import { ProbeError, describe, isObject } from './rpc';

/**
 * Strict readers for the standard answers a probe uses. A value of the wrong type or shape is a ProbeError
 * naming the method and what was expected, never a NaN or undefined that flows on into metrics.
 */

const QUANTITY = /^0x(0|[1-9a-f][0-9a-f]*)$/i;
// Leading zeros occur in the wild (e.g. "0x0a"); accepted, since they do not change the value.
const LOOSE_QUANTITY = /^0x[0-9a-f]{1,64}$/i;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const HASH = /^0x[0-9a-fA-F]{64}$/;

/** A hex QUANTITY (or a non-negative safe integer, as some clients send) as a number. */
export function quantity(value: unknown, what: string): number {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  if (typeof value !== 'string' || !(QUANTITY.test(value) || LOOSE_QUANTITY.test(value)))
    throw new ProbeError(`${what}: expected a hex quantity, got ${describe(value)}`);
  const n = BigInt(value);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new ProbeError(`${what}: ${value} is out of range`);
  return Number(n);
}

/** A 20-byte address, lower-cased (checksums are not verified: node answers mix cases freely). */
export function address(value: unknown, what: string): string {
  if (typeof value !== 'string' || !ADDRESS.test(value))
    throw new ProbeError(`${what}: expected a 20-byte address (0x + 40 hex digits), got ${describe(value)}`);
  return value.toLowerCase();
}

export function addressList(value: unknown, what: string): string[] {
  if (!Array.isArray(value)) throw new ProbeError(`${what}: expected an array of addresses, got ${describe(value)}`);
  if (value.length > 10_000) throw new ProbeError(`${what}: implausibly many addresses (${value.length})`);
  return [...new Set(value.map((v, i) => address(v, `${what}[${i}]`)))].sort();
}

export interface BlockHeader {
  number: number;
  hash: string;
  parentHash: string;
  timestamp: number;
  miner: string;
  txCount: number;
}

/** eth_getBlockByNumber(…, false): the fields the heartbeat uses. */
export function blockHeader(value: unknown, what: string): BlockHeader {
  if (!isObject(value)) throw new ProbeError(`${what}: expected a block object, got ${describe(value)}`);
  const hash = value.hash;
  const parentHash = value.parentHash;
  if (typeof hash !== 'string' || !HASH.test(hash))
    throw new ProbeError(`${what}: block hash is not a 32-byte hex string (${describe(hash)})`);
  if (typeof parentHash !== 'string' || !HASH.test(parentHash))
    throw new ProbeError(`${what}: parentHash is not a 32-byte hex string (${describe(parentHash)})`);
  if (!Array.isArray(value.transactions))
    throw new ProbeError(`${what}: transactions is not an array (${describe(value.transactions)})`);
  return {
    number: quantity(value.number, `${what}.number`),
    hash: hash.toLowerCase(),
    parentHash: parentHash.toLowerCase(),
    timestamp: quantity(value.timestamp, `${what}.timestamp`),
    miner: address(value.miner, `${what}.miner`),
    txCount: value.transactions.length,
  };
}

export interface SyncStatus {
  syncing: boolean;
  currentBlock?: number;
  highestBlock?: number;
}

/** eth_syncing: false, or an object with currentBlock and highestBlock. */
export function syncStatus(value: unknown): SyncStatus {
  if (value === false) return { syncing: false };
  if (!isObject(value)) throw new ProbeError(`eth_syncing: expected false or a sync object, got ${describe(value)}`);
  return {
    syncing: true,
    currentBlock: quantity(value.currentBlock, 'eth_syncing.currentBlock'),
    highestBlock: quantity(value.highestBlock, 'eth_syncing.highestBlock'),
  };
}

/** web3_clientVersion: a printable string, cut to a sane length (it is shown on the dashboard). */
export function clientVersion(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0)
    throw new ProbeError(`web3_clientVersion: expected a string, got ${describe(value)}`);
  // eslint-disable-next-line no-control-regex
  return value.replace(/[\u0000-\u001f\u007f]/g, '').slice(0, 120);
}
