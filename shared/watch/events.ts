import { getAddress, toQuantity, type JsonRpcProvider } from 'ethers';
import { bytes32ToBankId, registryInterface } from '../chain/registry';
import { bytes16ToEventId } from '../domain/event-id';
import { parseLogs, type ChainLog } from '../chain/rpc-answers';

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

/** The registry's logs of the watched events in blocks [from, to]: one eth_getLogs, read raw and checked. */
export async function readRegistryLogs(
  provider: JsonRpcProvider,
  asked: { address: string; from: number; to: number }
): Promise<ChainLog[]> {
  const { address, from, to } = asked;
  const filter = { address, topics: [WATCHED_TOPICS], fromBlock: toQuantity(from), toBlock: toQuantity(to) };
  return parseLogs(await provider.send('eth_getLogs', [filter]), asked);
}

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
