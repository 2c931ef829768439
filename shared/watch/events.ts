import { getAddress } from 'ethers';
import { bytes32ToBankId, registryInterface } from '../chain/registry';
import { bytes16ToEventId } from '../domain/event-id';

/** Where a log sits on chain: its identity and the provenance every projected row carries. */
export interface LogPosition {
  blockNumber: number;
  blockHash: string;
  txHash: string;
  logIndex: number;
}

export type RegistryEvent =
  | { kind: 'updated'; at: LogPosition; subjectRef: string; bankId: string; eventId: string; data: bigint }
  | {
      kind: 'skipped';
      at: LogPosition;
      subjectRef: string;
      bankId: string;
      eventId: string;
      sequence: bigint;
      reason: number;
    }
  | { kind: 'memberAdded' | 'memberRemoved'; at: LogPosition; address: string; bankId: string };

const EVENT_NAMES = ['CreditRecordUpdated', 'CreditRecordSkipped', 'MemberAdded', 'MemberRemoved'] as const;

/**
 * The watched events by topic0. Looked up here rather than by Interface.parseLog, which hashes every fragment's
 * signature again for every log: 7% of a host's CPU at saturation went there.
 */
const EVENTS_BY_TOPIC = new Map(
  EVENT_NAMES.map((name) => {
    const fragment = registryInterface.getEvent(name)!;
    return [fragment.topicHash, fragment] as const;
  })
);

/** topic0 of the events the projections need (one OR-ed topic filter for eth_getLogs). */
export const WATCHED_TOPICS: string[] = [...EVENTS_BY_TOPIC.keys()];

/**
 * A bank id as the chain holds it. Ids outside the naming rule (the admin registered something odd) are kept as
 * their bytes32 hex rather than stopping the watcher on another party's data.
 */
function bankIdOf(value: string): string {
  let bankId = BANK_IDS.get(value);
  if (bankId === undefined) {
    try {
      bankId = bytes32ToBankId(value);
    } catch {
      bankId = value.toLowerCase();
    }
    if (BANK_IDS.size < 1000) BANK_IDS.set(value, bankId); // a consortium has a handful
  }
  return bankId;
}
const BANK_IDS = new Map<string, string>();

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

const HASH = /^0x[0-9a-f]{64}$/i;
const QUANTITY = /^0x[0-9a-f]+$/i;
const BYTES = /^0x(?:[0-9a-f]{2})*$/i;

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
    const text = (field: string, pattern: RegExp): string => {
      const value = log[field];
      return typeof value === 'string' && pattern.test(value)
        ? value.toLowerCase()
        : fail(`log ${i}: ${field} is not ${pattern === HASH ? 'a 32-byte hash' : 'hex'}`);
    };
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
      topics: topics.map((t: unknown) =>
        typeof t === 'string' && HASH.test(t) ? t.toLowerCase() : fail(`log ${i}: a topic is not a 32-byte hash`)
      ),
      data: text('data', BYTES),
      removed: log.removed === true,
    };
  });
}

/** Decodes one CreditRegistry log; undefined for events the projections do not use (admin changes). */
export function decodeEvent(log: ChainLog): RegistryEvent | undefined {
  const fragment = EVENTS_BY_TOPIC.get(log.topics[0] ?? '');
  if (!fragment) return undefined;
  const at: LogPosition = {
    blockNumber: log.blockNumber,
    blockHash: log.blockHash,
    txHash: log.transactionHash,
    logIndex: log.index,
  };
  // The event of every record, read straight from its ABI layout: topics subject and bankId, then the data's two
  // words, eventId (bytes16, left-aligned) and data. ethers' generic decoder was 5% of a host's CPU at saturation;
  // the other events are rare and keep it.
  if (fragment.name === 'CreditRecordUpdated') {
    if (log.topics.length !== 3 || log.data.length < 2 + 128)
      throw new Error(
        `log ${log.index} of ${log.transactionHash}: CreditRecordUpdated with ${log.topics.length} topics and ` +
          `${(log.data.length - 2) / 2} bytes of data (3 topics and 64 bytes expected)`
      );
    return {
      kind: 'updated',
      at,
      subjectRef: log.topics[1]!.toLowerCase(),
      bankId: bankIdOf(log.topics[2]!),
      eventId: bytes16ToEventId(log.data.slice(2, 34)),
      data: BigInt(`0x${log.data.slice(66, 130)}`),
    };
  }
  const args = registryInterface.decodeEventLog(fragment, log.data, log.topics);
  switch (fragment.name) {
    case 'CreditRecordSkipped':
      return {
        kind: 'skipped',
        at,
        subjectRef: String(args.subject).toLowerCase(),
        bankId: bankIdOf(String(args.bankId)),
        eventId: bytes16ToEventId(String(args.eventId)),
        sequence: BigInt(args.sequence as bigint),
        reason: Number(args.reason),
      };
    case 'MemberAdded':
    case 'MemberRemoved':
      return {
        kind: fragment.name === 'MemberAdded' ? 'memberAdded' : 'memberRemoved',
        at,
        address: getAddress(String(args.member)),
        bankId: bankIdOf(String(args.bankId)),
      };
    default:
      return undefined;
  }
}
