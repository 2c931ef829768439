import { INGEST_TELEMETRY } from '../ingest';
import { SIGN_CALLS_METRIC, SIGN_LATENCY_METRIC, SIGN_THROTTLED_METRIC } from '../signing/key-vault-signer';
import { SUBMIT_EVENTS, SUBMIT_METRICS } from '../submit/submitter';
import { WATCH_EVENTS, WATCH_METRICS } from '../watch/telemetry-names';

/**
 * Every custom metric, event and availability test the app sends to Application Insights, in one place, so
 * dashboards, alert rules (infra) and the README table all use the same names. The README table is generated
 * from this module (`renderTelemetryTable()`); a unit test fails when they drift apart.
 */

export type TelemetryKind = 'metric' | 'event' | 'availability';

export interface TelemetryName {
  name: string;
  kind: TelemetryKind;
  /** Unit of a metric's value, or the properties of an event. */
  unit: string;
  /** Custom dimensions (metrics) or properties (events, availability). */
  dimensions: string[];
  emittedBy: string;
  meaning: string;
}

export const METRICS = {
  validatorHead: 'validator.head',
  validatorLag: 'validator.lagBlocks',
  validatorBlockAge: 'validator.blockAgeSeconds',
  validatorPeers: 'validator.peerCount',
  validatorLatency: 'validator.probeLatencyMs',
  chainHead: 'chain.head',
  chainBlockAge: 'chain.blockAgeSeconds',
  chainAvgBlockTime: 'chain.avgBlockTimeSeconds',
  chainTxPerMinute: 'chain.txPerMinute',
  members: 'consortium.members',
  outboxDepth: 'outbox.depth',
  outboxOldestAge: 'outbox.oldestPendingAgeSeconds',
  inFlightBlocks: 'submit.oldestInFlightBlocks',
  unconfirmedAge: 'pipeline.oldestUnconfirmedAgeSeconds',
  nonceGaps: 'submit.nonceGaps',
  rejections: 'ingest.rejections',
  deadLetters: 'ingest.deadLetters',
} as const;

export const EVENTS = {
  validatorDown: 'ValidatorDown',
  validatorUp: 'ValidatorUp',
  chainStalled: 'ChainStalled',
  chainResumed: 'ChainResumed',
  validatorSetChanged: 'ValidatorSetChanged',
  alertFired: 'AlertFired',
  alertResolved: 'AlertResolved',
} as const;

/** Availability results are named `validator <host:port>`, one per validator per beat. */
export const availabilityName = (validator: string): string => `validator ${validator}`;

const HEARTBEAT = 'heartbeat';

/** What the heartbeat itself sends. */
export const OPS_TELEMETRY: TelemetryName[] = [
  {
    name: availabilityName('<host:port>'),
    kind: 'availability',
    unit: 'success, duration',
    dimensions: ['runLocation = bank id', 'rpc host'],
    emittedBy: HEARTBEAT,
    meaning: 'one probe of one validator RPC endpoint per beat; the message says why it failed',
  },
  m(METRICS.validatorHead, 'block', ['validator'], 'head block number the validator reports'),
  m(METRICS.validatorLag, 'blocks', ['validator'], 'blocks behind the best head seen in the same beat'),
  m(METRICS.validatorBlockAge, 's', ['validator'], 'now minus the timestamp of the validator head block'),
  m(METRICS.validatorPeers, 'peers', ['validator'], 'net_peerCount (not sent when the node does not offer it)'),
  m(METRICS.validatorLatency, 'ms', ['validator'], 'round trip of the head-block request'),
  m(METRICS.chainHead, 'block', [], 'best head among reachable validators'),
  m(METRICS.chainBlockAge, 's', [], 'age of the best head block'),
  m(METRICS.chainAvgBlockTime, 's', [], 'average block interval over the last 30 blocks'),
  m(METRICS.chainTxPerMinute, 'tx/min', [], 'transactions in the last 30 blocks per minute, up to now'),
  m(METRICS.members, 'members', [], 'member addresses registered on the CreditRegistry'),
  m(METRICS.outboxDepth, 'events', [], 'outbox events waiting for a transaction'),
  m(METRICS.outboxOldestAge, 's', [], 'age of the oldest pending outbox event (since it was enqueued)'),
  m(METRICS.inFlightBlocks, 'blocks', [], 'blocks since the oldest batch not yet confirmed was written (0: none)'),
  m(METRICS.unconfirmedAge, 's', [], 'age of the oldest accepted event not confirmed on chain, in any state (0: none)'),
  m(METRICS.nonceGaps, 'nonces', [], 'nonces the chain waits on without a live batch, plus confirmed batches it lost'),
  m(METRICS.rejections, 'messages', [], 'messages rejected by ingest since the previous beat'),
  m(METRICS.deadLetters, 'messages', ['queue'], 'messages in the credit-updates dead-letter queue'),
  e(EVENTS.validatorDown, ['validator', 'reason'], 'a validator stopped answering (state change only)'),
  e(EVENTS.validatorUp, ['validator', 'downForSeconds'], 'a validator answers again (state change only)'),
  e(EVENTS.chainStalled, ['blockAgeSeconds', 'threshold'], 'no new block for block-age factor × block time'),
  e(EVENTS.chainResumed, ['blockAgeSeconds'], 'blocks are produced again'),
  e(EVENTS.validatorSetChanged, ['added', 'removed', 'validators'], 'the consensus validator set changed'),
  e(EVENTS.alertFired, ['rule', 'subject', 'value', 'threshold'], 'an alert rule started firing'),
  e(EVENTS.alertResolved, ['rule', 'subject', 'value', 'threshold'], 'an alert rule stopped firing'),
];

/** Names the write path (ingest, submit, the Key Vault signer) sends, from the modules that send them. */
export const WRITE_PATH_TELEMETRY: TelemetryName[] = [
  at('ingest', INGEST_TELEMETRY.accepted, 'metric', 'events', [], '1 per event that entered the outbox'),
  at('ingest', INGEST_TELEMETRY.duplicate, 'metric', 'events', [], '1 per event id the outbox already held'),
  at('ingest', INGEST_TELEMETRY.rejected, 'metric', 'messages', ['code'], '1 per message rejected for good'),
  at('ingest', INGEST_TELEMETRY.rejectedEvent, 'event', '—', ['code', 'messageId'], 'a message was rejected'),
  at('submit', SUBMIT_METRICS.batches, 'metric', 'transactions', [], '1 per new batch transaction'),
  at('submit', SUBMIT_METRICS.recordsPerTx, 'metric', 'records', [], 'records in each new transaction'),
  at('submit', SUBMIT_METRICS.inFlight, 'metric', 'transactions', [], 'batches broadcast and not yet mined'),
  at('submit', SUBMIT_METRICS.rebroadcasts, 'metric', 'transactions', [], '1 per rebroadcast of an unmined batch'),
  at('submit', SUBMIT_METRICS.feeBumps, 'metric', 'transactions', [], '1 per replacement with higher fees'),
  at('submit', SUBMIT_METRICS.failures, 'metric', 'broadcasts', ['kind'], 'broadcasts every endpoint refused'),
  at(
    'submit',
    SUBMIT_EVENTS.batchAbandoned,
    'event',
    '—',
    ['signer', 'nonce', 'reason'],
    'a batch reverted or lost its nonce; its events are pending again'
  ),
  at(
    'submit',
    SUBMIT_EVENTS.batchOrphaned,
    'event',
    '—',
    ['signer', 'nonce', 'txHash', 'block'],
    'the receipt of a mined batch vanished (a reorg); it is sent again'
  ),
  at('submit', SUBMIT_EVENTS.nonceGapFilled, 'event', '—', ['signer', 'nonce', 'records'], 'a nonce gap was filled'),
  at(
    'submit',
    SUBMIT_EVENTS.feeLimitReached,
    'event',
    '—',
    ['signer', 'nonce', 'limit'],
    'a stuck batch reached the fee cap or bump count'
  ),
  at('submit', SUBMIT_EVENTS.submitHeld, 'event', '—', ['signer', 'reason'], 'new batches wait: the chain disagrees'),
  at('submit', SIGN_CALLS_METRIC, 'metric', 'calls', ['key', 'outcome'], '1 per Key Vault sign call'),
  at('submit', SIGN_LATENCY_METRIC, 'metric', 'ms', ['key'], 'a sign call, including waits and retries'),
  at('submit', SIGN_THROTTLED_METRIC, 'metric', 'responses', ['key', 'operation'], '1 per 429 from Key Vault'),
];

/**
 * Names the read path (watcher) sends, from its own module so a rename there shows up here. The heartbeat
 * does not repeat projection lag as a metric: it reads the watcher's checkpoint for /api/status instead.
 */
export const READ_PATH_TELEMETRY: TelemetryName[] = [
  w(WATCH_METRICS.blocksProcessed, 'metric', 'blocks', [], 'blocks projected in a run'),
  w(WATCH_METRICS.recordsProjected, 'metric', 'records', [], 'CreditRecordUpdated logs projected in a run'),
  w(WATCH_METRICS.projectionLagBlocks, 'metric', 'blocks', [], 'chain head minus the last projected block'),
  w(WATCH_METRICS.projectionLagSeconds, 'metric', 's', [], 'now minus the time of the last projected block'),
  w(WATCH_METRICS.endToEndLatencyMs, 'metric', 'ms', ['status'], "this bank's records: projected minus enqueued"),
  w(WATCH_METRICS.reorgs, 'metric', 'reorgs', ['depth'], '1 per reorg undone'),
  w(WATCH_METRICS.reorgDepth, 'metric', 'blocks', [], 'blocks undone by a reorg'),
  w(WATCH_EVENTS.reorgDetected, 'event', '—', ['ancestor', 'tip', 'depth'], 'a reorg within the window was undone'),
  w(WATCH_EVENTS.watcherHalted, 'event', '—', ['reason'], 'the watcher stopped: a reorg deeper than its window'),
];

export const ALL_TELEMETRY: TelemetryName[] = [...OPS_TELEMETRY, ...WRITE_PATH_TELEMETRY, ...READ_PATH_TELEMETRY];

/** The README's telemetry table (markdown), generated from this module. */
export function renderTelemetryTable(entries: TelemetryName[] = ALL_TELEMETRY): string {
  const rows = [
    ['name', 'kind', 'unit', 'dimensions', 'emitted by', 'meaning'],
    ...entries.map((t) => [`\`${t.name}\``, t.kind, t.unit, t.dimensions.join(', ') || '—', t.emittedBy, t.meaning]),
  ].map((cells) => cells.map((c) => c.replace(/\|/g, '\\|')));
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const separator = `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`;
  return [line(rows[0]!), separator, ...rows.slice(1).map(line)].join('\n') + '\n';
}

function m(name: string, unit: string, dimensions: string[], meaning: string): TelemetryName {
  return { name, kind: 'metric', unit, dimensions, emittedBy: HEARTBEAT, meaning };
}

function e(name: string, properties: string[], meaning: string): TelemetryName {
  return { name, kind: 'event', unit: '—', dimensions: properties, emittedBy: HEARTBEAT, meaning };
}

function w(name: string, kind: TelemetryKind, unit: string, dimensions: string[], meaning: string): TelemetryName {
  return at('watch', name, kind, unit, dimensions, meaning);
}

function at(
  emittedBy: string,
  name: string,
  kind: TelemetryKind,
  unit: string,
  dimensions: string[],
  meaning: string
): TelemetryName {
  return { name, kind, unit, dimensions, emittedBy, meaning };
}
