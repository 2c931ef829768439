import type { JsonRpcProvider } from 'ethers';
import { bytes16ToEventId } from '../../shared/domain/event-id';
import { bytes32ToBankId, registryInterface } from '../../shared/chain/registry';
import { Batches } from '../../shared/storage/batches';
import { Outbox } from '../../shared/storage/outbox';
import { listRows, TABLES } from '../../shared/storage/tables';
import { noncePlan } from '../../shared/submit/reconcile';
import { historyKey, recordKey } from '../../shared/storage/credit-ledger';
import { readWatcherStatus } from '../../shared/watch/state';
import { CHAOS_CHAIN, UNCONFIRMED_AGE_SECONDS, type ChaosConsortium, type Published } from './harness';

/**
 * What every chaos scenario must leave behind, checked against the chain itself (its logs, read here, not
 * through any ledger-bridge code):
 * - every accepted event is on chain exactly once, by its update or its skip log;
 * - every bank's projections equal the chain, and each bank's own outbox and batch log agree with it;
 * - no alert is left firing;
 * - no /api/status said the pipeline was ok while an accepted record was stuck past its threshold.
 */

export interface ChainLog {
  kind: 'updated' | 'skipped';
  eventId: string;
  subjectRef: string;
  bankId: string;
  txHash: string;
  blockNumber: number;
  logIndex: number;
}

export interface ChainView {
  head: number;
  /** Logs of each event id (update or skip) in blocks at confirmation depth. */
  byEvent: Map<string, ChainLog[]>;
  members: Set<string>;
}

const TOPICS = ['CreditRecordUpdated', 'CreditRecordSkipped', 'MemberAdded', 'MemberRemoved'].map(
  (name) => registryInterface.getEvent(name)!.topicHash
);

export async function readChain(provider: JsonRpcProvider, registry: string, fromBlock: number): Promise<ChainView> {
  const head = await provider.getBlockNumber();
  const toBlock = head - CHAOS_CHAIN.confirmations;
  const logs = await provider.getLogs({ address: registry, topics: [TOPICS], fromBlock, toBlock });
  const view: ChainView = { head, byEvent: new Map(), members: new Set() };
  for (const log of logs) {
    const parsed = registryInterface.parseLog(log)!;
    if (parsed.name === 'MemberAdded') view.members.add(String(parsed.args.member).toLowerCase());
    else if (parsed.name === 'MemberRemoved') view.members.delete(String(parsed.args.member).toLowerCase());
    else {
      const eventId = bytes16ToEventId(String(parsed.args.eventId));
      const entry: ChainLog = {
        kind: parsed.name === 'CreditRecordUpdated' ? 'updated' : 'skipped',
        eventId,
        subjectRef: String(parsed.args.subject).toLowerCase(),
        bankId: bytes32ToBankId(String(parsed.args.bankId)),
        txHash: log.transactionHash,
        blockNumber: log.blockNumber,
        logIndex: log.index,
      };
      view.byEvent.set(eventId, [...(view.byEvent.get(eventId) ?? []), entry]);
    }
  }
  return view;
}

export interface Tally {
  lost: string[];
  duplicated: string[];
}

export function tally(view: ChainView, published: Published[]): Tally {
  const lost: string[] = [];
  const duplicated: string[] = [];
  for (const { event } of published) {
    const n = view.byEvent.get(event.eventId)?.length ?? 0;
    if (n === 0) lost.push(event.eventId);
    if (n > 1) duplicated.push(event.eventId);
  }
  return { lost, duplicated };
}

/**
 * The cheap signs that the pipeline has drained, polled every second before the full comparison: every event on
 * chain, every bank's watcher past the last record, and every bank's own events settled in its outbox. `settled`
 * carries the events already seen settled between polls, so each poll reads only the rest.
 */
export async function drained(
  env: ChaosConsortium,
  view: ChainView,
  published: Published[],
  settled: Set<string>
): Promise<boolean> {
  if (tally(view, published).lost.length > 0) return false;
  const lastLogBlock = Math.max(-1, ...[...view.byEvent.values()].flat().map((l) => l.blockNumber));
  for (const bankId of env.bankIds) {
    const tables = env.tables(bankId);
    if (((await readWatcherStatus(tables))?.checkpointBlock ?? -1) < lastLogBlock) return false;
    const outbox = new Outbox(tables);
    for (const { event } of published.filter((p) => p.event.bankId === bankId && !settled.has(p.event.eventId))) {
      const log = view.byEvent.get(event.eventId)![0]!;
      const row = await outbox.get(event.eventId);
      if (row?.status !== (log.kind === 'updated' ? 'confirmed' : 'skipped') || row.txHash !== log.txHash) return false;
      settled.add(event.eventId);
    }
  }
  return true;
}

export interface TableCheck {
  /** What differs from the chain; empty when the bank's tables agree with it. */
  problems: string[];
  /** Published events on chain that this bank has not settled (its own) or not projected (anyone's updates). */
  stuck: Set<string>;
}

/** One bank's tables against the chain. */
export async function tablesAgainstChain(
  env: ChaosConsortium,
  bankId: string,
  view: ChainView,
  published: Published[]
): Promise<TableCheck> {
  const tables = env.tables(bankId);
  const problems: string[] = [];
  const stuck = new Set<string>();
  const status = await readWatcherStatus(tables);
  if (status?.halted) problems.push(`${bankId}: watcher halted: ${status.halted.reason}`);
  const lastLogBlock = Math.max(-1, ...[...view.byEvent.values()].flat().map((l) => l.blockNumber));
  if ((status?.checkpointBlock ?? -1) < lastLogBlock)
    problems.push(
      `${bankId}: watcher at block ${status?.checkpointBlock}, the last record is in block ${lastLogBlock}`
    );

  // Projections: the newest update per (subject, bank), every update in history, the member list.
  const updates = [...view.byEvent.values()].flat().filter((l) => l.kind === 'updated');
  const newest = new Map<string, ChainLog>();
  for (const u of updates.sort((a, b) => a.blockNumber - b.blockNumber || a.logIndex - b.logIndex))
    newest.set(`${u.subjectRef}/${u.bankId}`, u);
  const ledger = await listRows(await tables.table(TABLES.creditLedger));
  const keyOf = (rowKey: string, eventId: unknown): string => `${rowKey}/${String(eventId)}`;
  const historyOf = (u: ChainLog): string => keyOf(historyKey(u.subjectRef, u.blockNumber, u.logIndex), u.eventId);
  const expectHistory = new Set(updates.map(historyOf));
  const haveHistory = new Set(ledger.filter((r) => r.kind === 'history').map((r) => keyOf(r.rowKey, r.eventId)));
  const expectRecords = new Set([...newest.values()].map((u) => keyOf(recordKey(u.subjectRef, u.bankId), u.eventId)));
  const haveRecords = new Set(ledger.filter((r) => r.kind === 'record').map((r) => keyOf(r.rowKey, r.eventId)));
  problems.push(...difference(`${bankId} CreditLedger history`, expectHistory, haveHistory));
  for (const u of updates) if (!haveHistory.has(historyOf(u))) stuck.add(u.eventId);
  problems.push(...difference(`${bankId} CreditLedger records`, expectRecords, haveRecords));
  const members = (await listRows(await tables.table(TABLES.members))).filter(
    (r) => r.partitionKey === 'members' && r.active === true
  );
  problems.push(...difference(`${bankId} ConsortiumMembers`, view.members, new Set(members.map((r) => r.rowKey))));

  // The bank's own write side: every event it accepted settled where the chain says, no batch left in flight.
  const outbox = new Outbox(tables);
  let unsettled = 0;
  for (const { event } of published.filter((p) => p.event.bankId === bankId)) {
    const log = view.byEvent.get(event.eventId)?.[0];
    const row = await outbox.get(event.eventId);
    const expected = log && (log.kind === 'updated' ? 'confirmed' : 'skipped');
    if (!row || row.status !== expected || row.txHash !== log?.txHash || row.logIndex !== log?.logIndex) {
      unsettled++;
      stuck.add(event.eventId);
    }
  }
  if (unsettled) problems.push(`${bankId} Outbox: ${unsettled} own event(s) not settled as the chain says`);
  const signer = env.stack.info.banks.find((b) => b.bankId === bankId)!.signerAddress;
  const chainNonce = await env.provider.getTransactionCount(signer, 'latest');
  const recent = await new Batches(tables).recent(signer, chainNonce, 1000);
  const plan = noncePlan(recent.rows, recent.highest, chainNonce);
  if (plan.live.length || plan.gaps.length || plan.diverged.length)
    problems.push(
      `${bankId} Batches: ${plan.live.length} in flight, ${plan.gaps.length} nonce gap(s), ${plan.diverged.length} diverged`
    );
  return { problems, stuck };
}

function difference(what: string, expected: Set<string>, actual: Set<string>): string[] {
  const missing = [...expected].filter((k) => !actual.has(k));
  const extra = [...actual].filter((k) => !expected.has(k));
  if (!missing.length && !extra.length) return [];
  return [
    `${what}: ${missing.length} row(s) missing (e.g. ${missing[0] ?? '-'}), ${extra.length} extra (e.g. ${extra[0] ?? '-'})`,
  ];
}

/** A status a bank's app served, and when its heartbeat sampled it. */
export interface StatusSample {
  bankId: string;
  sampledAt: number;
  overall: string;
  /** What the app measured, for the report when the sample is a violation. */
  pipeline?: unknown;
}

export interface Violation {
  sample: StatusSample;
  /** The oldest record that was stuck then: when it was published, accepted and confirmed (ms). */
  stuck: { eventId: string; publishedAt: number; acceptedAt: number; confirmedAt?: number };
}

/**
 * Status samples taken while one of the bank's accepted records had waited past the RecordsUnconfirmed threshold
 * without reaching confirmation depth (by the chain's own block times), each with that record. Slack covers what
 * a heartbeat cannot know exactly: enqueue versus send time, and a record accepted just before the beat (3 s).
 * A sample in this list that says `ok` is a violation.
 */
export function samplesWhileStuck(
  samples: StatusSample[],
  published: Published[],
  acceptedAt: Map<string, number>,
  confirmedAt: Map<string, number>
): Violation[] {
  const thresholdMs = (UNCONFIRMED_AGE_SECONDS + 3) * 1000;
  const stuckSamples: Violation[] = [];
  for (const sample of samples) {
    const stuck = published.find(({ event, at }) => {
      if (event.bankId !== sample.bankId) return false;
      const accepted = acceptedAt.get(event.eventId);
      const confirmed = confirmedAt.get(event.eventId);
      return (
        accepted !== undefined &&
        accepted <= sample.sampledAt - 3_000 &&
        sample.sampledAt - at > thresholdMs &&
        (confirmed === undefined || confirmed > sample.sampledAt)
      );
    });
    if (stuck)
      stuckSamples.push({
        sample,
        stuck: {
          eventId: stuck.event.eventId,
          publishedAt: stuck.at,
          acceptedAt: acceptedAt.get(stuck.event.eventId)!,
          confirmedAt: confirmedAt.get(stuck.event.eventId),
        },
      });
  }
  return stuckSamples;
}

/** When each bank's outbox accepted each published event (ms), read at the end of a scenario. */
export async function acceptedTimes(env: ChaosConsortium, published: Published[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const bankId of env.bankIds) {
    const outbox = new Outbox(env.tables(bankId));
    for (const { event } of published.filter((p) => p.event.bankId === bankId)) {
      const row = await outbox.get(event.eventId);
      if (row) out.set(event.eventId, Date.parse(row.acceptedAt));
    }
  }
  return out;
}
