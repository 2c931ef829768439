import { telemetryName, type TelemetryName } from '../telemetry';

/** Telemetry the Key Vault signer sends (the submitter's signatures). */
/** One per sign call (dimension outcome: ok | error). */
export const SIGN_CALLS_METRIC = 'keyvault.sign.calls';
/** Whole sign call: key read on first use, waiting for a slot, retries. */
export const SIGN_LATENCY_METRIC = 'keyvault.sign.latencyMs';
/** One per 429 the vault answered, retried or not. */
export const SIGN_THROTTLED_METRIC = 'keyvault.sign.throttled';

export const SIGNER_NAMES: TelemetryName[] = [
  telemetryName('submit', SIGN_CALLS_METRIC, 'metric', 'calls', ['key', 'outcome'], '1 per Key Vault sign call'),
  telemetryName('submit', SIGN_LATENCY_METRIC, 'metric', 'ms', ['key'], 'a sign call, including waits and retries'),
  telemetryName(
    'submit',
    SIGN_THROTTLED_METRIC,
    'metric',
    'responses',
    ['key', 'operation'],
    '1 per 429 from Key Vault'
  ),
];
