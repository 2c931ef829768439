import { telemetryName, type TelemetryName } from '../telemetry';

/** Telemetry names the ingest path emits (metrics carry the value 1 per message). */
export const INGEST_TELEMETRY = {
  /** Metric: an event entered the outbox. */
  accepted: 'ingest.accepted',
  /** Metric: an event id the outbox already held with the same content (republished or redelivered). */
  duplicate: 'ingest.duplicate',
  /** Metric, dimension {code}: a message rejected for good. */
  rejected: 'ingest.rejected',
  /** Event, properties {code, messageId}: one per rejected message. */
  rejectedEvent: 'EventRejected',
} as const;

export const INGEST_NAMES: TelemetryName[] = [
  telemetryName(
    'ingest',
    INGEST_TELEMETRY.accepted,
    'metric',
    'events',
    [],
    'events that entered the outbox, one value per batch (sum the values)'
  ),
  telemetryName(
    'ingest',
    INGEST_TELEMETRY.duplicate,
    'metric',
    'events',
    [],
    'event ids the outbox already held with the same content, one value per batch'
  ),
  telemetryName('ingest', INGEST_TELEMETRY.rejected, 'metric', 'messages', ['code'], '1 per message rejected for good'),
  telemetryName(
    'ingest',
    INGEST_TELEMETRY.rejectedEvent,
    'event',
    '—',
    ['code', 'messageId'],
    'a message was rejected (code conflict: an event id reused for other content; alert EventConflict)'
  ),
];
