import { toBeHex } from 'ethers';
import type { Chain } from '../chain/provider';
import { describeSkipReason, sequenceOf } from '../chain/registry';
import { decodeRecord } from '../domain/record-codec';
import { Batches } from '../storage/batches';
import { Outbox, type OnChainOutcome } from '../storage/outbox';
import { CreditLedger, positionKey } from '../storage/credit-ledger';
import {
  deleteRows,
  isNotFound,
  listRows,
  odata,
  submitGrouped,
  TABLES,
  type Row,
  type TableStore,
} from '../storage/tables';
import type { Telemetry } from '../telemetry';
import type { RegistryEvent } from './events';
import type { BlockJournal, StoredBlock } from './state';
import { forEachLimit } from '../util';
import { WATCH_METRICS } from './telemetry-names';

/**
 * The projections, written only from chain logs and always idempotently, so any range can be replayed:
 *
 *   CreditLedger         current record per subject × bank and every applied update (storage/credit-ledger.ts)
 *   ConsortiumMembers    PK 'members'   RK address (lowercase)      bankId, active, added/removed block
 *                        PK 'events'    RK inverted (block, log)    the membership events the rows derive from
 *
 * Record and history rows carry the decoded fields plus provenance (bank, tx hash, block, log index, event id,
 * the data word as hex). Rows hold nothing time-dependent, so a replay writes byte-identical rows.
 */

const MEMBERS = 'members';
const MEMBER_EVENTS = 'events';

type UpdatedEvent = Extract<RegistryEvent, { kind: 'updated' }>;
type MemberEvent = Extract<RegistryEvent, { kind: 'memberAdded' | 'memberRemoved' }>;

/** The fields of a record or history row: provenance plus the decoded record word. */
export function recordFields(event: UpdatedEvent): Record<string, unknown> {
  const fields: Record<string, unknown> = {
    subjectRef: event.subjectRef,
    bankId: event.bankId,
    sequence: sequenceOf(event.data).toString(),
    data: toBeHex(event.data, 32),
    eventId: event.eventId,
    txHash: event.at.txHash,
    blockNumber: event.at.blockNumber,
    blockHash: event.at.blockHash,
    logIndex: event.at.logIndex,
  };
  try {
    const record = decodeRecord(event.data);
    Object.assign(fields, {
      asOf: new Date(record.asOf * 1000).toISOString(),
      score: record.score,
      openAccounts: record.openAccounts,
      days30: record.delinquencies.days30,
      days60: record.delinquencies.days60,
      days90: record.delinquencies.days90,
      defaulted: record.defaulted,
      totalBalance: record.totalBalance,
      creditLimit: record.creditLimit,
    });
  } catch (err) {
    // Another bank's newer layout must not stop the watcher: keep the word and say why it is not decoded.
    fields.layoutError = (err as Error).message;
  }
  return fields;
}

export interface OwnTx {
  signer: string;
  nonce: number;
}

export class Projector {
  private readonly outbox: Outbox;
  private readonly batches: Batches;
  private readonly ledger: CreditLedger;

  constructor(
    private readonly tables: TableStore,
    private readonly chain: Chain,
    private readonly telemetry: Telemetry,
    /** This bank: its events also settle its outbox and batch rows. */
    private readonly bankId: string
  ) {
    this.outbox = new Outbox(tables);
    this.batches = new Batches(tables);
    this.ledger = new CreditLedger(tables);
  }

  private isOwn(event: RegistryEvent): event is Extract<RegistryEvent, { kind: 'updated' | 'skipped' }> {
    return (event.kind === 'updated' || event.kind === 'skipped') && event.bankId === this.bankId;
  }

  /** Signer and nonce of this bank's transactions among `events`: one eth_getTransactionByHash per tx. */
  async ownTransactions(events: RegistryEvent[]): Promise<Map<string, OwnTx>> {
    const hashes = new Set(events.filter((e) => this.isOwn(e)).map((e) => e.at.txHash));
    const txs = new Map<string, OwnTx>();
    await forEachLimit(hashes, 8, async (hash) => {
      const tx = await this.chain.read((p) => p.getTransaction(hash));
      if (tx) txs.set(hash, { signer: tx.from.toLowerCase(), nonce: tx.nonce });
    });
    return txs;
  }

  /** The undo journal of each block among `events` (written before the events are applied). */
  journals(events: RegistryEvent[], ownTxs: Map<string, OwnTx>): Map<number, BlockJournal> {
    const journals = new Map<number, BlockJournal>();
    const journalOf = (block: number): BlockJournal => {
      let journal = journals.get(block);
      if (!journal) journals.set(block, (journal = { updates: [], members: [], ownEvents: [], ownTxs: [] }));
      return journal;
    };
    for (const event of events) {
      const journal = journalOf(event.at.blockNumber);
      if (event.kind === 'updated') journal.updates.push([event.subjectRef, event.bankId, event.at.logIndex]);
      if (event.kind === 'memberAdded' || event.kind === 'memberRemoved')
        journal.members.push([event.address, event.at.logIndex]);
      if (this.isOwn(event)) {
        journal.ownEvents.push(event.eventId);
        const tx = ownTxs.get(event.at.txHash);
        if (tx && !journal.ownTxs.some(([s, n]) => s === tx.signer && n === tx.nonce))
          journal.ownTxs.push([tx.signer, tx.nonce]);
      }
    }
    return journals;
  }

  /** Projects decoded events (in chain order). Returns how many record updates it saw. */
  async apply(events: RegistryEvent[], ownTxs: Map<string, OwnTx>): Promise<number> {
    const updates = events.filter((e): e is UpdatedEvent => e.kind === 'updated');
    await this.applyUpdates(updates);
    await this.applyMembership(events);
    await this.settleOwn(events, ownTxs);
    return updates.length;
  }

  private async applyUpdates(updates: UpdatedEvent[]): Promise<void> {
    await this.ledger.apply(
      updates.map((u) => ({
        subjectRef: u.subjectRef,
        bankId: u.bankId,
        blockNumber: u.at.blockNumber,
        logIndex: u.at.logIndex,
        fields: recordFields(u),
      }))
    );
  }

  private async applyMembership(events: RegistryEvent[]): Promise<void> {
    const changes = events.filter((e): e is MemberEvent => e.kind === 'memberAdded' || e.kind === 'memberRemoved');
    if (changes.length === 0) return;
    const members = await this.tables.table(TABLES.members);
    await submitGrouped(
      members,
      changes.map((e) => [
        'upsert',
        {
          partitionKey: MEMBER_EVENTS,
          rowKey: positionKey(e.at.blockNumber, e.at.logIndex),
          kind: e.kind === 'memberAdded' ? 'added' : 'removed',
          address: e.address,
          bankId: e.bankId,
          blockNumber: e.at.blockNumber,
          logIndex: e.at.logIndex,
          txHash: e.at.txHash,
        },
        'Replace',
      ])
    );
    await this.recomputeMembers(changes.map((e) => e.address));
  }

  /** Marks this bank's outbox and batch rows with what the chain did; skips rows already marked so. */
  private async settleOwn(events: RegistryEvent[], ownTxs: Map<string, OwnTx>): Promise<void> {
    const own = events.filter((e) => this.isOwn(e));
    // In bulk per transaction: one batch-row read per transaction and grouped outbox updates, instead of a read
    // and a write per event. A batch already confirmed with this transaction in this block was settled by an
    // earlier run (its events are marked before the batch is).
    const byTx = new Map<string, typeof own>();
    for (const e of own) byTx.set(e.at.txHash, [...(byTx.get(e.at.txHash) ?? []), e]);
    const outcomes: { eventId: string; outcome: OnChainOutcome }[] = [];
    const settled: { tx: OwnTx; txHash: string; blockNumber: number }[] = [];
    const latencies: [number, string][] = [];
    await forEachLimit(byTx, 8, async ([txHash, list]) => {
      const tx = ownTxs.get(txHash);
      const blockNumber = list[0]!.at.blockNumber;
      const batch = tx && (await this.batches.get(tx.signer, tx.nonce));
      if (batch?.status === 'confirmed' && batch.minedTxHash === txHash && batch.minedBlock === blockNumber) return;
      const enqueued = new Map(batch?.eventIds.map((id, i) => [id, batch.enqueuedAts[i]!]) ?? []);
      for (const event of list) {
        const outcome = outcomeOf(event);
        outcomes.push({ eventId: event.eventId, outcome });
        // Events the batch row does not list (sent outside it, or before a storage reset): their own row says.
        const enqueuedAt = enqueued.get(event.eventId) ?? (await this.outbox.get(event.eventId))?.enqueuedAt;
        const at = Date.parse(enqueuedAt ?? '');
        if (Number.isFinite(at)) latencies.push([Date.now() - at, outcome.status]);
      }
      if (tx) settled.push({ tx, txHash, blockNumber });
    });
    await this.outbox.markOnChainMany(outcomes);
    for (const [ms, status] of latencies) this.telemetry.metric(WATCH_METRICS.endToEndLatencyMs, ms, { status });
    await forEachLimit(settled, 8, ({ tx, txHash, blockNumber }) =>
      this.batches.markConfirmed(tx.signer, tx.nonce, { txHash, blockNumber }).then(() => undefined)
    );
  }

  /** Takes back what orphaned blocks (above `ancestor`, journals from the reorg window) wrote. */
  async undo(blocks: StoredBlock[], ancestor: number): Promise<void> {
    const pairs: [string, string][] = [];
    const memberEvents: Row[] = [];
    const addresses: string[] = [];
    const ownEvents: string[] = [];
    const ownTxs: [string, number][] = [];
    for (const { number, journal } of blocks) {
      if (!journal) continue;
      for (const [subjectRef, bankId] of journal.updates) pairs.push([subjectRef, bankId]);
      for (const [address, logIndex] of journal.members) {
        memberEvents.push({ partitionKey: MEMBER_EVENTS, rowKey: positionKey(number, logIndex) });
        addresses.push(address);
      }
      ownEvents.push(...journal.ownEvents);
      ownTxs.push(...journal.ownTxs);
    }
    await this.ledger.rollBack(pairs, ancestor);
    await deleteRows(await this.tables.table(TABLES.members), memberEvents);
    await this.recomputeMembers(addresses);
    if (ownEvents.length > 0) await this.outbox.markOrphaned(ownEvents);
    for (const [signer, nonce] of ownTxs) await this.batches.markOrphaned(signer, nonce);
  }

  /** Deletes the rows an older table layout left in CreditLedger; returns how many. */
  dropOlderLayout(): Promise<number> {
    return this.ledger.dropOlderLayout();
  }

  /** Removes everything projected from block `fromBlock` on (everything when at or below the first block). */
  async clearFrom(fromBlock: number): Promise<void> {
    await this.ledger.clearFrom(fromBlock);
    const members = await this.tables.table(TABLES.members);
    const rows = await listRows(
      members,
      fromBlock <= 0 ? undefined : `PartitionKey eq '${MEMBER_EVENTS}' and blockNumber ge ${fromBlock}`,
      ['address']
    );
    await deleteRows(members, rows);
    if (fromBlock > 0) await this.recomputeMembers(rows.map((r) => String(r.address)));
  }

  /** Derives each member row from its membership events: the newest decides whether it is active. */
  private async recomputeMembers(addresses: string[]): Promise<void> {
    const members = await this.tables.table(TABLES.members);
    for (const address of new Set(addresses)) {
      const events: Row[] = [];
      const query = members.listEntities<Record<string, unknown>>({
        queryOptions: { filter: `PartitionKey eq '${MEMBER_EVENTS}' and address eq ${odata(address)}` },
      });
      for await (const row of query) events.push(row as Row);
      const rowKey = address.toLowerCase();
      const latest = events[0];
      if (!latest) {
        await members.deleteEntity(MEMBERS, rowKey).catch((err) => {
          if (!isNotFound(err)) throw err;
        });
        continue;
      }
      const added = events.find((e) => e.kind === 'added');
      const active = latest.kind === 'added';
      await members.upsertEntity(
        {
          partitionKey: MEMBERS,
          rowKey,
          address,
          bankId: latest.bankId,
          active,
          addedBlock: added ? Number(added.blockNumber) : -1,
          addedTxHash: added ? String(added.txHash) : '',
          removedBlock: active ? -1 : Number(latest.blockNumber),
          removedTxHash: active ? '' : String(latest.txHash),
        },
        'Replace'
      );
    }
  }
}

function outcomeOf(event: Extract<RegistryEvent, { kind: 'updated' | 'skipped' }>): OnChainOutcome {
  return {
    status: event.kind === 'updated' ? 'confirmed' : 'skipped',
    txHash: event.at.txHash,
    blockNumber: event.at.blockNumber,
    logIndex: event.at.logIndex,
    ...(event.kind === 'skipped' ? { skipReason: describeSkipReason(event.reason) } : {}),
  };
}
