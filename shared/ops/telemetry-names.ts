import { telemetryName, type TelemetryName } from '../telemetry';

/** Telemetry the heartbeat sends. */
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
export const HEARTBEAT_NAMES: TelemetryName[] = [
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
  m(METRICS.outboxDepth, 'events', [], 'outbox events waiting for a transaction (counted up to 160,000)'),
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

function m(name: string, unit: string, dimensions: string[], meaning: string): TelemetryName {
  return telemetryName(HEARTBEAT, name, 'metric', unit, dimensions, meaning);
}

function e(name: string, properties: string[], meaning: string): TelemetryName {
  return telemetryName(HEARTBEAT, name, 'event', '—', properties, meaning);
}
