/**
 * The one place settings are read. Every setting is validated once, at start-up; all problems are reported
 * together, each naming the setting and what is expected, so a misconfigured app fails fast and clearly.
 *
 * In Azure every connection is identity-based (managed identity): connection strings and keys are refused.
 * They are accepted only with LEDGER_ENVIRONMENT=local, for the embedded local stack.
 */

import { redactUrl, redactUrlsIn } from './redact';

export type Environment = 'azure' | 'local';

export interface StorageConfig {
  /** Table service endpoint, used with a token credential (Azure) ... */
  tableUrl?: string;
  /** ... or a connection string (local stack only). */
  connectionString?: string;
}

export interface Config {
  environment: Environment;
  /** This member bank's id, as registered on the CreditRegistry contract (e.g. BANK-A). */
  bankId: string;
  storage: StorageConfig;
  keyVault: {
    url: string;
    signerKeyName: string;
    /** One Key Vault request's timeout; a timed-out request is retried within the sign call's deadline. */
    attemptTimeoutMs?: number;
  };
  chain: {
    /** The PoA network's load balancer first, then fallbacks. */
    rpcUrls: string[];
    chainId: number;
    registryAddress: string;
    /** Blocks to wait before a block is projected; 0 for immediate-finality chains (QBFT/IBFT). */
    confirmations: number;
    blockTimeSeconds: number;
  };
  /** Service Bus namespace of the credit-updates queue (identity-based); absent only on the local stack. */
  serviceBusNamespace?: string;
  /** The local stack's Service Bus namespace (a SAS connection string); refused in Azure. */
  serviceBusConnectionString?: string;
  /**
   * The consortium's subject pseudonymization key: a Key Vault secret in Azure (by name), or the value itself
   * on the local stack only.
   */
  pseudonymization: { secretName: string; localSecret?: string };
  submit: {
    /** NCRONTAB schedule of the submit timer (at least once per block). */
    schedule: string;
    /** Upper bound on records in one transaction; the gas budget usually binds first. */
    maxRecordsPerTx: number;
    /** Gas budget of one transaction; a submit run cuts one above the chain's block gas limit to that limit. */
    txGasBudget: number;
    /** Batches broadcast but not yet mined, at most. */
    maxInFlight: number;
    /** Rebroadcast a batch not mined after this many blocks. */
    rebroadcastAfterBlocks: number;
    /** Replacements with higher fees for one nonce, at most (where the chain prices gas). */
    maxFeeBumps: number;
    /** No fee bump goes past this many gwei per gas. */
    maxFeePerGasGwei: number;
    /**
     * While blocks are full, how long a partial batch may wait for more records or for room (counted from its oldest
     * record's acceptance or the key's newest batch, whichever came later); 0 sends a partial batch whenever it can
     * make the next block.
     */
    fillWaitSeconds: number;
    /** `naive` submits one transaction (one signature) per event: the benchmark's baseline, never for production. */
    mode: 'batched' | 'naive';
  };
  watch: {
    schedule: string;
    /** First block to project from (the CreditRegistry deployment block). */
    fromBlock: number;
    /** eth_getLogs range to start with; halved when a node refuses a range. */
    logChunkBlocks: number;
    /** Recent block hashes kept to detect and undo reorgs; a deeper reorg stops the watcher. */
    reorgWindowBlocks: number;
    /** After a run, how long the timer invocation keeps watching the head to project a block as it arrives. */
    followMs: number;
  };
  heartbeat: {
    schedule: string;
    /** Every validator's own RPC endpoint (not the load balancer); defaults to CHAIN_RPC_URLS. */
    validatorRpcUrls: string[];
    probeTimeoutMs: number;
  };
  alerts: {
    validatorSilentBeats: number;
    blockAgeFactor: number;
    blockTimeFactor: number;
    outboxOldestAgeSeconds: number;
    deadLetters: number;
    /** A batch in flight (signed or mined, not confirmed) for more blocks than this is stuck. */
    batchStuckBlocks: number;
    /** An accepted event not confirmed on chain this long after it was enqueued is stuck, whatever its state. */
    unconfirmedAgeSeconds: number;
  };
  /** Absent means telemetry is off (local only; required in Azure). */
  appInsightsConnectionString?: string;
  /** Client id of a user-assigned managed identity; absent means the system-assigned identity. */
  managedIdentityClientId?: string;
}

/** The most SUBMIT_MAX_FEE_BUMPS may be: a batch row keeps one hash per bump (its size is tested against it). */
export const MAX_FEE_BUMPS_SETTING_MAX = 20;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(
      `Invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n  - ${problems.join('\n  - ')}`
    );
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** Settings whose value is a secret: a problem names the setting and what is wrong, never what it holds. */
const SECRET_SETTINGS = new Set([
  'PSEUDONYMIZATION_SECRET',
  'APPLICATIONINSIGHTS_CONNECTION_STRING',
  'AzureWebJobsStorage',
  'ServiceBusConnection',
]);
/** Settings holding endpoint URLs, which may carry credentials (userinfo, API keys, tokens): shown redacted. */
const URL_SETTINGS = new Set([
  'KEY_VAULT_URL',
  'CHAIN_RPC_URLS',
  'VALIDATOR_RPC_URLS',
  'AzureWebJobsStorage__tableServiceUri',
]);

/** How a bad value appears in a problem: not at all for a secret, redacted otherwise (a key pasted by mistake). */
function shownValue(name: string, value: string): string {
  if (SECRET_SETTINGS.has(name)) return '';
  return ` (${JSON.stringify(URL_SETTINGS.has(name) ? redactUrl(value) : redactUrlsIn(value))})`;
}

/** Collects problems instead of throwing at the first, so one run shows everything that is wrong. */
class Reader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  optional(name: string): string | undefined {
    const value = this.env[name]?.trim();
    return value ? value : undefined;
  }

  required(name: string, expected: string): string {
    const value = this.optional(name);
    if (value === undefined) this.problems.push(`${name} is missing: expected ${expected}`);
    return value ?? '';
  }

  /** A setting for the local stack only: in Azure it is a problem, with what to set instead. */
  localOnly(name: string, local: boolean, refusal: string): string | undefined {
    const value = this.optional(name);
    if (value !== undefined && !local) this.problems.push(refusal);
    return value;
  }

  check(name: string, value: string | undefined, ok: boolean, expected: string): void {
    if (value !== undefined && !ok)
      this.problems.push(`${name} is invalid${shownValue(name, value)}: expected ${expected}`);
  }

  integer(name: string, fallback: number, min: number, max: number): number {
    const raw = this.optional(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    this.check(name, raw, /^\d+$/.test(raw) && value >= min && value <= max, `a whole number from ${min} to ${max}`);
    return value;
  }

  url(name: string, raw: string, allowHttp: boolean): string {
    let ok = false;
    try {
      const url = new URL(raw);
      ok = url.protocol === 'https:' || (allowHttp && url.protocol === 'http:');
    } catch {
      ok = false;
    }
    this.check(name, raw, ok, allowHttp ? 'an http(s) URL' : 'an https URL');
    return raw.replace(/\/+$/, '');
  }

  schedule(name: string, fallback: string): string {
    const raw = this.optional(name) ?? fallback;
    this.check(name, raw, raw.split(/\s+/).length === 6, 'a six-field NCRONTAB schedule, e.g. "*/2 * * * * *"');
    return raw;
  }

  urlList(name: string, raw: string, allowHttp: (url: string) => boolean): string[] {
    return raw
      .split(',')
      .map((part) => part.trim())
      .filter(Boolean)
      .map((url) => this.url(name, url, allowHttp(url)));
  }
}

const BANK_ID = /^[A-Z0-9][A-Z0-9-]{0,30}$/;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const KEY_NAME = /^[0-9a-zA-Z-]{1,127}$/;
const HOST_NAME = /^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/;

function readStorage(r: Reader, local: boolean): StorageConfig {
  const connectionString = r.optional('AzureWebJobsStorage');
  const tableUri = r.optional('AzureWebJobsStorage__tableServiceUri');
  const accountName = r.optional('AzureWebJobsStorage__accountName');
  if (connectionString !== undefined) {
    if (!local) {
      r.problems.push(
        'AzureWebJobsStorage is a connection string, which is refused in Azure: set AzureWebJobsStorage__accountName (managed identity) instead'
      );
    } else if (connectionString.toLowerCase() === 'usedevelopmentstorage=true') {
      r.problems.push(
        'AzureWebJobsStorage=UseDevelopmentStorage=true is not supported: give the local stack connection string'
      );
    }
    return { connectionString };
  }
  if (tableUri !== undefined) return { tableUrl: r.url('AzureWebJobsStorage__tableServiceUri', tableUri, local) };
  if (accountName !== undefined) {
    r.check(
      'AzureWebJobsStorage__accountName',
      accountName,
      /^[a-z0-9]{3,24}$/.test(accountName),
      'a storage account name (3-24 lowercase letters and digits)'
    );
    return { tableUrl: `https://${accountName}.table.core.windows.net` };
  }
  r.problems.push(
    'AzureWebJobsStorage__accountName is missing: expected the storage account name (identity-based connection)' +
      (local ? ', or AzureWebJobsStorage as a local stack connection string' : '')
  );
  return {};
}

function readRpcUrls(r: Reader, local: boolean): string[] {
  const raw = r.required('CHAIN_RPC_URLS', 'a comma-separated list of JSON-RPC URLs, the load balancer first');
  return r.urlList('CHAIN_RPC_URLS', raw, (url) => local || isLoopback(url));
}

function isLoopback(url: string): boolean {
  try {
    return ['127.0.0.1', 'localhost', '[::1]'].includes(new URL(url).hostname);
  } catch {
    return false;
  }
}

/** Reads and validates every setting. Throws ConfigError naming each bad or missing setting. */
export function loadConfig(env: Env = process.env): Config {
  const r = new Reader(env);
  const environmentRaw = r.optional('LEDGER_ENVIRONMENT') ?? 'azure';
  r.check(
    'LEDGER_ENVIRONMENT',
    environmentRaw,
    environmentRaw === 'azure' || environmentRaw === 'local',
    '"azure" or "local"'
  );
  const local = environmentRaw === 'local';

  const bankId = r.required('BANK_ID', 'this member bank id as registered on the contract, e.g. BANK-A');
  r.check(
    'BANK_ID',
    bankId || undefined,
    BANK_ID.test(bankId),
    '1-31 characters of A-Z, 0-9 and "-", starting with a letter or digit'
  );

  const keyVaultUrl = r.url(
    'KEY_VAULT_URL',
    r.required('KEY_VAULT_URL', 'the vault URL, e.g. https://kv-bank-a.vault.azure.net'),
    false
  );
  const signerKeyName = r.required('SIGNER_KEY_NAME', 'the name of the EC-HSM P-256K key that signs transactions');
  r.check(
    'SIGNER_KEY_NAME',
    signerKeyName || undefined,
    KEY_NAME.test(signerKeyName),
    'a Key Vault key name (1-127 of 0-9, a-z, A-Z, "-")'
  );

  const chainIdRaw = r.required('CHAIN_ID', 'the consortium chain id, a whole number');
  r.check(
    'CHAIN_ID',
    chainIdRaw || undefined,
    /^\d{1,15}$/.test(chainIdRaw) && Number(chainIdRaw) > 0,
    'a positive whole number'
  );
  const registryAddress = r.required('REGISTRY_ADDRESS', 'the CreditRegistry contract address (0x + 40 hex digits)');
  r.check(
    'REGISTRY_ADDRESS',
    registryAddress || undefined,
    ADDRESS.test(registryAddress),
    '0x followed by 40 hex digits'
  );

  const appInsightsConnectionString = r.optional('APPLICATIONINSIGHTS_CONNECTION_STRING');
  if (appInsightsConnectionString === undefined && !local) {
    r.problems.push(
      'APPLICATIONINSIGHTS_CONNECTION_STRING is missing: expected the Application Insights connection string'
    );
  }
  r.check(
    'APPLICATIONINSIGHTS_CONNECTION_STRING',
    appInsightsConnectionString,
    /InstrumentationKey=/i.test(appInsightsConnectionString ?? ''),
    'a connection string with InstrumentationKey=…;IngestionEndpoint=…'
  );
  const managedIdentityClientId = r.optional('AZURE_CLIENT_ID');
  r.check(
    'AZURE_CLIENT_ID',
    managedIdentityClientId,
    GUID.test(managedIdentityClientId ?? ''),
    'a GUID (client id of a user-assigned identity)'
  );

  const rpcUrls = readRpcUrls(r, local);
  const serviceBusNamespace = r.optional('ServiceBusConnection__fullyQualifiedNamespace');
  if (serviceBusNamespace === undefined && !local) {
    r.problems.push(
      'ServiceBusConnection__fullyQualifiedNamespace is missing: expected the Service Bus namespace host, e.g. sb-bank-a.servicebus.windows.net'
    );
  }
  r.check(
    'ServiceBusConnection__fullyQualifiedNamespace',
    serviceBusNamespace,
    HOST_NAME.test(serviceBusNamespace ?? ''),
    'the namespace host name, e.g. sb-bank-a.servicebus.windows.net (not a connection string)'
  );
  const serviceBusConnectionString = r.localOnly(
    'ServiceBusConnection',
    local,
    'ServiceBusConnection (a connection string) is refused in Azure: set ServiceBusConnection__fullyQualifiedNamespace and use the managed identity'
  );
  r.check(
    'ServiceBusConnection',
    serviceBusConnectionString,
    /^Endpoint=sb:\/\/[^;]+;SharedAccessKeyName=[^;]+;SharedAccessKey=[^;]+/.test(serviceBusConnectionString ?? ''),
    'a Service Bus connection string (Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…)'
  );
  const localSecret = r.localOnly(
    'PSEUDONYMIZATION_SECRET',
    local,
    'PSEUDONYMIZATION_SECRET is refused in Azure: keep the key in Key Vault and set PSEUDONYMIZATION_SECRET_NAME'
  );
  r.check(
    'PSEUDONYMIZATION_SECRET',
    localSecret,
    /^[0-9a-fA-F]{64,}$/.test(localSecret ?? ''),
    'at least 32 bytes as hex (64+ hex digits)'
  );
  const secretName = r.optional('PSEUDONYMIZATION_SECRET_NAME') ?? 'pseudonymization-key';
  r.check(
    'PSEUDONYMIZATION_SECRET_NAME',
    secretName,
    KEY_NAME.test(secretName),
    'a Key Vault secret name (1-127 of 0-9, a-z, A-Z, "-")'
  );
  const submitMode = r.optional('SUBMIT_MODE') ?? 'batched';
  r.check('SUBMIT_MODE', submitMode, submitMode === 'batched' || submitMode === 'naive', '"batched" or "naive"');
  const validatorUrls = r.optional('VALIDATOR_RPC_URLS');

  const config: Config = {
    environment: local ? 'local' : 'azure',
    bankId,
    storage: readStorage(r, local),
    keyVault: {
      url: keyVaultUrl,
      signerKeyName,
      attemptTimeoutMs: r.integer('KEY_VAULT_ATTEMPT_TIMEOUT_MS', 5000, 100, 30_000),
    },
    chain: {
      rpcUrls,
      chainId: Number(chainIdRaw),
      registryAddress,
      confirmations: r.integer('CONFIRMATIONS', 2, 0, 128),
      blockTimeSeconds: r.integer('BLOCK_TIME_SECONDS', 2, 1, 600),
    },
    serviceBusNamespace,
    serviceBusConnectionString,
    pseudonymization: { secretName, localSecret },
    submit: {
      schedule: r.schedule('SUBMIT_SCHEDULE', '* * * * * *'),
      // A batch row holds at most 1,500 records (Table Storage's 1 MiB entity limit; see storage/batches.ts).
      maxRecordsPerTx: r.integer('SUBMIT_MAX_RECORDS_PER_TX', 1000, 1, 1500),
      txGasBudget: r.integer('SUBMIT_TX_GAS_BUDGET', 15_000_000, 100_000, 1_000_000_000),
      maxInFlight: r.integer('SUBMIT_MAX_IN_FLIGHT', 4, 1, 64),
      rebroadcastAfterBlocks: r.integer('SUBMIT_REBROADCAST_AFTER_BLOCKS', 5, 1, 1000),
      maxFeeBumps: r.integer('SUBMIT_MAX_FEE_BUMPS', 5, 0, MAX_FEE_BUMPS_SETTING_MAX),
      maxFeePerGasGwei: r.integer('SUBMIT_MAX_FEE_PER_GAS_GWEI', 500, 1, 1_000_000),
      fillWaitSeconds: r.integer('SUBMIT_FILL_WAIT_SECONDS', 30, 0, 3600),
      mode: submitMode === 'naive' ? 'naive' : 'batched',
    },
    watch: {
      schedule: r.schedule('WATCH_SCHEDULE', '* * * * * *'),
      fromBlock: r.integer('WATCH_FROM_BLOCK', 0, 0, Number.MAX_SAFE_INTEGER),
      logChunkBlocks: r.integer('WATCH_LOG_CHUNK_BLOCKS', 2000, 1, 100_000),
      reorgWindowBlocks: r.integer('WATCH_REORG_WINDOW_BLOCKS', 128, 8, 10_000),
      followMs: r.integer('WATCH_FOLLOW_MS', 800, 0, 60_000),
    },
    heartbeat: {
      schedule: r.schedule('HEARTBEAT_SCHEDULE', '*/30 * * * * *'),
      validatorRpcUrls: validatorUrls
        ? r.urlList('VALIDATOR_RPC_URLS', validatorUrls, (url) => local || isLoopback(url))
        : rpcUrls,
      probeTimeoutMs: r.integer('HEARTBEAT_PROBE_TIMEOUT_MS', 5000, 100, 60_000),
    },
    alerts: {
      validatorSilentBeats: r.integer('ALERT_VALIDATOR_SILENT_BEATS', 2, 1, 100),
      blockAgeFactor: r.integer('ALERT_BLOCK_AGE_FACTOR', 5, 1, 1000),
      blockTimeFactor: r.integer('ALERT_BLOCK_TIME_FACTOR', 2, 1, 100),
      outboxOldestAgeSeconds: r.integer('ALERT_OUTBOX_OLDEST_AGE_SECONDS', 60, 1, 86_400),
      deadLetters: r.integer('ALERT_DEAD_LETTERS', 1, 1, 1_000_000),
      batchStuckBlocks: r.integer('ALERT_BATCH_STUCK_BLOCKS', 30, 2, 100_000),
      unconfirmedAgeSeconds: r.integer('ALERT_UNCONFIRMED_AGE_SECONDS', 300, 10, 86_400),
    },
    appInsightsConnectionString,
    managedIdentityClientId,
  };
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return config;
}

let cached: Config | undefined;

/** The process-wide configuration, read and validated on first use. */
export function getConfig(): Config {
  cached ??= loadConfig();
  return cached;
}
