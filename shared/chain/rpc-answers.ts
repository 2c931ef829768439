/**
 * The two JSON-RPC answers the hot path reads raw instead of through ethers, checked field by field: a malformed
 * answer is an error naming the field, never data. (The validator probes have their own readers in
 * ops/rpc-parse.ts, which report ProbeErrors.)
 */

const HASH = /^0x[0-9a-f]{64}$/i;
const QUANTITY = /^0x[0-9a-f]+$/i;
const BYTES = /^0x(?:[0-9a-f]{2})*$/i;

/** The value lower-cased when it is a hex string of that pattern, else undefined. */
const hex = (value: unknown, pattern: RegExp): string | undefined =>
  typeof value === 'string' && pattern.test(value) ? value.toLowerCase() : undefined;

/** A log as eth_getLogs answers it, checked: the fields the watcher uses. */
export interface ChainLog {
  blockNumber: number;
  blockHash: string;
  transactionHash: string;
  index: number;
  topics: string[];
  data: string;
  removed: boolean;
}

/**
 * The logs of an eth_getLogs answer for `address`'s logs in blocks [from, to], checked field by field: a log of
 * another contract or outside the range is refused, not projected. Read raw rather than through ethers' getLogs,
 * which checksums every log's address (a keccak hash each) and builds an object per log: 2,000 logs a chunk at
 * every bank made that a visible share of a host's CPU.
 */
export function parseLogs(answer: unknown, asked: { address: string; from: number; to: number }): ChainLog[] {
  const { from, to } = asked;
  const fail = (what: string): never => {
    throw new Error(`invalid eth_getLogs answer for blocks ${from}–${to}: ${what}`);
  };
  if (!Array.isArray(answer)) return fail('not an array');
  return answer.map((raw: unknown, i): ChainLog => {
    const log = (typeof raw === 'object' && raw !== null ? raw : fail(`log ${i} is not an object`)) as Record<
      string,
      unknown
    >;
    const text = (field: string, pattern: RegExp): string =>
      hex(log[field], pattern) ?? fail(`log ${i}: ${field} is not ${pattern === HASH ? 'a 32-byte hash' : 'hex'}`);
    if (typeof log.address !== 'string' || log.address.toLowerCase() !== asked.address.toLowerCase())
      fail(`log ${i} is from ${String(log.address)}, not ${asked.address}`);
    const blockNumber = Number(BigInt(text('blockNumber', QUANTITY)));
    if (blockNumber < from || blockNumber > to) fail(`log ${i} is from block ${blockNumber}, outside the range`);
    const topics = Array.isArray(log.topics) ? log.topics : fail(`log ${i}: topics is not an array`);
    return {
      blockNumber,
      blockHash: text('blockHash', HASH),
      transactionHash: text('transactionHash', HASH),
      index: Number(BigInt(text('logIndex', QUANTITY))),
      topics: topics.map((t: unknown) => hex(t, HASH) ?? fail(`log ${i}: a topic is not a 32-byte hash`)),
      data: text('data', BYTES),
      removed: log.removed === true,
    };
  });
}

/** What the write side needs of a receipt: which transaction, in which block, and whether it succeeded. */
export interface MinedTx {
  hash: string;
  blockNumber: number;
  blockHash: string;
  /** 1: success, 0: reverted. */
  status: number;
}

export function parseMinedTx(answer: unknown, hash: string): MinedTx | null {
  if (answer === null) return null;
  const fail = (what: string): never => {
    throw new Error(`invalid eth_getTransactionReceipt answer for ${hash}: ${what}`);
  };
  if (typeof answer !== 'object') return fail('not an object');
  const receipt = answer as Record<string, unknown>;
  if (receipt.blockNumber === null || receipt.blockHash === null) return null; // some nodes answer while pending
  const quantity = (field: string): number =>
    Number(BigInt(hex(receipt[field], QUANTITY) ?? fail(`${field} is not a hex quantity`)));
  const txHash = receipt.transactionHash;
  if (typeof txHash !== 'string' || txHash.toLowerCase() !== hash.toLowerCase())
    return fail('transactionHash is not the hash asked for');
  return {
    hash: txHash.toLowerCase(),
    blockNumber: quantity('blockNumber'),
    blockHash: hex(receipt.blockHash, HASH) ?? fail('blockHash is not a 32-byte hex string'),
    status: quantity('status'),
  };
}
