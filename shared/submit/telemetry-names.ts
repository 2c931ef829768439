import { telemetryName, type TelemetryName } from '../telemetry';

/** Telemetry the submitter sends. */
export const SUBMIT_METRICS = {
  batches: 'submit.batches',
  recordsPerTx: 'submit.recordsPerTx',
  inFlight: 'submit.inFlight',
  rebroadcasts: 'submit.rebroadcasts',
  feeBumps: 'submit.feeBumps',
  failures: 'submit.failures',
} as const;
export const SUBMIT_EVENTS = {
  batchAbandoned: 'BatchAbandoned',
  batchOrphaned: 'BatchOrphaned',
  nonceGapFilled: 'NonceGapFilled',
  feeLimitReached: 'FeeLimitReached',
  submitHeld: 'SubmitHeld',
} as const;

export const SUBMIT_NAMES: TelemetryName[] = [
  telemetryName('submit', SUBMIT_METRICS.batches, 'metric', 'transactions', [], '1 per new batch transaction'),
  telemetryName('submit', SUBMIT_METRICS.recordsPerTx, 'metric', 'records', [], 'records in each new transaction'),
  telemetryName('submit', SUBMIT_METRICS.inFlight, 'metric', 'transactions', [], 'batches broadcast and not yet mined'),
  telemetryName(
    'submit',
    SUBMIT_METRICS.rebroadcasts,
    'metric',
    'transactions',
    [],
    '1 per rebroadcast of an unmined batch'
  ),
  telemetryName('submit', SUBMIT_METRICS.feeBumps, 'metric', 'transactions', [], '1 per replacement with higher fees'),
  telemetryName(
    'submit',
    SUBMIT_METRICS.failures,
    'metric',
    'broadcasts',
    ['kind'],
    'broadcasts every endpoint refused'
  ),
  telemetryName(
    'submit',
    SUBMIT_EVENTS.batchAbandoned,
    'event',
    '—',
    ['signer', 'nonce', 'reason'],
    'a batch reverted or lost its nonce; its events are pending again'
  ),
  telemetryName(
    'submit',
    SUBMIT_EVENTS.batchOrphaned,
    'event',
    '—',
    ['signer', 'nonce', 'txHash', 'block'],
    'the receipt of a mined batch vanished (a reorg); it is sent again'
  ),
  telemetryName(
    'submit',
    SUBMIT_EVENTS.nonceGapFilled,
    'event',
    '—',
    ['signer', 'nonce', 'records'],
    'a nonce gap was filled'
  ),
  telemetryName(
    'submit',
    SUBMIT_EVENTS.feeLimitReached,
    'event',
    '—',
    ['signer', 'nonce', 'limit'],
    'a stuck batch reached the fee cap or bump count'
  ),
  telemetryName(
    'submit',
    SUBMIT_EVENTS.submitHeld,
    'event',
    '—',
    ['signer', 'reason'],
    'new batches wait: the chain disagrees'
  ),
];
