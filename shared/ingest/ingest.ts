import type { Config } from '../config';
import { isPseudonymous, type CreditUpdate } from '../domain/credit-update';
import { subjectRef } from '../domain/pseudonymize';
import { encodeRecord } from '../domain/record-codec';
import { parseCreditUpdate, type RejectionCode } from '../domain/validate';
import type { Outbox } from '../storage/outbox';
import type { Rejections } from '../storage/rejections';
import type { Telemetry } from '../telemetry';
import { INGEST_TELEMETRY } from './telemetry-names';

/**
 * The ingest service: one credit-update message in, one settled outcome out. A message that can never
 * succeed is recorded as a rejection and settled; anything transient (storage, Key Vault) throws, so the
 * broker redelivers it and finally dead-letters it. Accepting is idempotent by event id (the outbox).
 */

export interface IngestDeps {
  config: Pick<Config, 'bankId'>;
  outbox: Pick<Outbox, 'accept'>;
  rejections: Pick<Rejections, 'record'>;
  telemetry: Pick<Telemetry, 'metric' | 'event'>;
  /** Asked for only when a raw subject needs it: rejected and pseudonymous events never wait for Key Vault. */
  pseudonymizationKey: () => Promise<Buffer>;
}

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

export async function ingestMessage(deps: IngestDeps, message: IngestMessage): Promise<IngestResult> {
  const now = new Date();
  const enqueuedAt = enqueuedAtOf(message.enqueuedTimeUtc, now);
  const parsed = parseCreditUpdate(message.body, deps.config.bankId, now);
  if (!parsed.ok) return reject(deps, message, parsed, enqueuedAt, now);
  const event = parsed.event;
  const accepted = await deps.outbox.accept({
    eventId: event.eventId,
    subjectRef: isPseudonymous(event.subject)
      ? event.subject.ref
      : subjectRef(await deps.pseudonymizationKey(), event.subject),
    data: recordWord(event),
    sequence: String(event.sequence),
    enqueuedAt,
    messageId: message.messageId,
    acceptedAt: now.toISOString(),
  });
  if (accepted.outcome === 'conflict') {
    // Content hashes only: neither body is kept, and the accepted one stays what the chain gets.
    const reason = `event ${event.eventId} was accepted before with other content (sha256 of subject ref, sequence and record: accepted ${accepted.acceptedHash}, this message ${accepted.receivedHash}); publish a change with a new eventId and a higher sequence`;
    return reject(deps, message, { code: 'conflict', reason, eventId: event.eventId }, enqueuedAt, now);
  }
  const metric = accepted.outcome === 'accepted' ? INGEST_TELEMETRY.accepted : INGEST_TELEMETRY.duplicate;
  deps.telemetry.metric(metric, 1);
  return { outcome: accepted.outcome, eventId: event.eventId };
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
