import type { Config } from '../config';
import { isPseudonymous, type CreditUpdate } from '../domain/credit-update';
import { subjectRef } from '../domain/pseudonymize';
import { encodeRecord } from '../domain/record-codec';
import { parseCreditUpdate, type RejectionCode } from '../domain/validate';
import { contentHash, type AcceptOutcome, type Outbox } from '../storage/outbox';
import type { Rejections } from '../storage/rejections';
import type { Telemetry } from '../telemetry';
import type { UrgentWork } from '../urgent-work';
import { INGEST_TELEMETRY } from './telemetry-names';

/**
 * The ingest service: credit-update messages in (a batch, as the Service Bus trigger hands them over), one
 * outcome per message out. A message that can never succeed is recorded as a rejection; anything transient
 * (storage, Key Vault) throws, so the broker redelivers the batch and finally dead-letters it. Accepting is
 * idempotent by event id (the outbox), so the messages of a redelivered batch that were accepted before are
 * duplicates the second time.
 */

export interface IngestDeps {
  config: Pick<Config, 'bankId'>;
  outbox: Pick<Outbox, 'acceptMany'>;
  rejections: Pick<Rejections, 'record'>;
  telemetry: Pick<Telemetry, 'metric' | 'event'>;
  /** Asked for only when a raw subject needs it: rejected and pseudonymous events never wait for Key Vault. */
  pseudonymizationKey: () => Promise<Buffer>;
  /** Batches being committed in this process, which the outbox writes wait for (shared/urgent-work.ts). */
  urgent?: Pick<UrgentWork, 'settled'>;
}

/** How long the outbox writes of a batch wait for commits in this process, at most. */
const COMMIT_WAIT_LIMIT_MS = 2_000;

export interface IngestMessage {
  body: Buffer;
  messageId: string;
  /** Service Bus enqueued time (UTC, with or without an offset); now when absent. */
  enqueuedTimeUtc?: string;
  deliveryCount: number;
}

export type IngestResult =
  | { outcome: 'accepted' | 'duplicate'; eventId: string }
  | { outcome: 'rejected'; code: RejectionCode; reason: string; eventId?: string };

/**
 * An event id repeated within one batch, against what the outbox holds for it: the first's content, unless the
 * first conflicted with an earlier one. (Hashed only here: most batches repeat nothing.)
 */
type Content = Parameters<typeof contentHash>[0];

function repeatOutcome(row: Content, first: Content, firstOutcome: AcceptOutcome): AcceptOutcome {
  const acceptedHash = firstOutcome.outcome === 'conflict' ? firstOutcome.acceptedHash : contentHash(first);
  const receivedHash = contentHash(row);
  return acceptedHash === receivedHash ? { outcome: 'duplicate' } : { outcome: 'conflict', acceptedHash, receivedHash };
}

export async function ingestMessages(deps: IngestDeps, messages: IngestMessage[]): Promise<IngestResult[]> {
  const now = new Date();
  const results: IngestResult[] = new Array<IngestResult>(messages.length);
  const enqueuedAt = messages.map((m) => enqueuedAtOf(m.enqueuedTimeUtc, now));
  const valid: { index: number; event: CreditUpdate }[] = [];
  for (const [i, message] of messages.entries()) {
    const parsed = parseCreditUpdate(message.body, deps.config.bankId, now);
    if (parsed.ok) valid.push({ index: i, event: parsed.event });
    else results[i] = await reject(deps, message, parsed, enqueuedAt[i]!, now);
  }
  // The key only when a raw subject needs it: rejected and pseudonymous events never wait for Key Vault.
  const key = valid.some((v) => !isPseudonymous(v.event.subject)) ? await deps.pseudonymizationKey() : undefined;
  const rows = valid.map(({ index, event }) => ({
    eventId: event.eventId,
    subjectRef: isPseudonymous(event.subject) ? event.subject.ref : subjectRef(key!, event.subject),
    data: recordWord(event),
    sequence: String(event.sequence),
    enqueuedAt: enqueuedAt[index]!,
    messageId: messages[index]!.messageId,
    acceptedAt: now.toISOString(),
  }));
  // An event id twice in one batch: the first goes to the outbox, the others compare with it.
  const firstOf = new Map<string, number>();
  for (const [k, row] of rows.entries()) if (!firstOf.has(row.eventId)) firstOf.set(row.eventId, k);
  const firsts = [...firstOf.values()];
  await deps.urgent?.settled(COMMIT_WAIT_LIMIT_MS);
  const outcomes = await deps.outbox.acceptMany(firsts.map((k) => rows[k]!));
  const outcomeOf = new Map(firsts.map((k, j) => [k, outcomes[j]!]));
  let accepted = 0;
  let duplicates = 0;
  for (const [k, row] of rows.entries()) {
    const first = firstOf.get(row.eventId)!;
    const outcome = k === first ? outcomeOf.get(k)! : repeatOutcome(row, rows[first]!, outcomeOf.get(first)!);
    const { index } = valid[k]!;
    if (outcome.outcome === 'conflict') {
      // Content hashes only: neither body is kept, and the accepted one stays what the chain gets.
      const reason = `event ${row.eventId} was accepted before with other content (sha256 of subject ref, sequence and record: accepted ${outcome.acceptedHash}, this message ${outcome.receivedHash}); publish a change with a new eventId and a higher sequence`;
      results[index] = await reject(
        deps,
        messages[index]!,
        { code: 'conflict', reason, eventId: row.eventId },
        row.enqueuedAt,
        now
      );
      continue;
    }
    if (outcome.outcome === 'accepted') accepted++;
    else duplicates++;
    results[index] = { outcome: outcome.outcome, eventId: row.eventId };
  }
  if (accepted > 0) deps.telemetry.metric(INGEST_TELEMETRY.accepted, accepted);
  if (duplicates > 0) deps.telemetry.metric(INGEST_TELEMETRY.duplicate, duplicates);
  return results;
}

/** Records a message that can never succeed, with telemetry once however often it is delivered. */
async function reject(
  deps: IngestDeps,
  message: IngestMessage,
  rejection: { code: RejectionCode; reason: string; eventId?: string },
  enqueuedAt: string,
  now: Date
): Promise<IngestResult> {
  const { code, reason, eventId } = rejection;
  const recorded = await deps.rejections.record({
    messageId: message.messageId,
    eventId,
    code,
    reason,
    deliveryCount: message.deliveryCount,
    enqueuedAt,
    rejectedAt: now.toISOString(),
    bodySize: message.body.length,
  });
  // A redelivery of a message already rejected (settling failed last time) is counted once.
  if (recorded === 'recorded') {
    deps.telemetry.metric(INGEST_TELEMETRY.rejected, 1, { code });
    deps.telemetry.event(INGEST_TELEMETRY.rejectedEvent, { code, messageId: message.messageId });
  }
  return { outcome: 'rejected', code, reason, eventId };
}

/** The packed on-chain word as 0x + 64 hex digits. */
function recordWord(event: CreditUpdate): string {
  const word = encodeRecord({
    ...event.credit,
    sequence: BigInt(event.sequence),
    asOf: Math.floor(Date.parse(event.asOf) / 1000),
  });
  return `0x${word.toString(16).padStart(64, '0')}`;
}

/** ISO 8601 UTC. A time without an offset is UTC (EnqueuedTimeUtc), but Date.parse would read it as local. */
function enqueuedAtOf(raw: string | undefined, now: Date): string {
  const ms = raw === undefined ? NaN : Date.parse(/(?:z|[+-]\d\d:?\d\d)$/i.test(raw) ? raw : `${raw}Z`);
  return new Date(Number.isNaN(ms) ? now : ms).toISOString();
}
