import type { TokenCredential } from '@azure/core-auth';
import { isRestError } from '@azure/core-rest-pipeline';
import { CryptographyClient, KeyClient, type CryptographyClientOptions, type KeyVaultKey } from '@azure/keyvault-keys';
import {
  AbstractSigner,
  Signature,
  TypedDataEncoder,
  getAddress,
  getBytes,
  hashMessage,
  hexlify,
  recoverAddress,
  toBeHex,
  type BytesLike,
  type Provider,
  type TransactionRequest,
  type TypedDataDomain,
  type TypedDataField,
} from 'ethers';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config, Environment } from '../config';
import { keyVaultClientOptions } from '../identity';
import type { Telemetry } from '../telemetry';
import { ethereumAddressFromJwk } from './address';
import { SIGN_CALLS_METRIC, SIGN_LATENCY_METRIC, SIGN_THROTTLED_METRIC } from './telemetry-names';
import { unsignedTransaction, type TransactionSigner } from './transaction-signer';

const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const SECP256K1_HALF_N = SECP256K1_N >> 1n;

export interface KeyVaultRetryOptions {
  /** Attempts per vault request, the first included. Default 6. */
  maxAttempts?: number;
  /** First backoff step; doubles per attempt, with jitter. Default 250 ms. */
  baseDelayMs?: number;
  /** Cap on one backoff step (a vault's Retry-After is honoured as given). Default 4 s. */
  maxDelayMs?: number;
  /** Overall budget of one sign call, queueing and retries included. Default 30 s. */
  deadlineMs?: number;
}

export interface KeyVaultSigningKeyOptions {
  environment: Environment;
  /** Pin this version; by default the version current at first use is pinned for the signer's lifetime. */
  keyVersion?: string;
  /** Sign requests in flight at once, per signing key (and every signer connected from it). Default 8. */
  maxConcurrentSigns?: number;
  telemetry?: Telemetry;
  retry?: KeyVaultRetryOptions;
  /** Extra pipeline settings (policies, user agent, proxy). Retries are this module's, so they are not settable. */
  clientOptions?: Omit<CryptographyClientOptions, 'retryOptions' | 'disableChallengeResourceVerification'>;
}

export interface VaultSignature {
  /** Low-s signature with the recovery parity that yields the key's address. */
  signature: Signature;
  /** r‖s exactly as Key Vault returned it (IEEE P1363, 64 bytes). */
  vaultSignature: Uint8Array;
  /** Whether Key Vault returned a high s that was folded to n - s (EIP-2). */
  folded: boolean;
}

/** A Key Vault failure. `retryable` false means trying again cannot help (wrong key, missing permission). */
export class KeyVaultSignerError extends Error {
  constructor(
    message: string,
    readonly keyName: string,
    readonly retryable: boolean,
    readonly statusCode?: number,
    options?: { cause?: unknown }
  ) {
    super(message, options);
    this.name = 'KeyVaultSignerError';
  }
}

interface PinnedKey {
  key: KeyVaultKey;
  address: string;
  crypto: CryptographyClient;
}

/**
 * An Ethereum signing key held in Key Vault (EC-HSM, P-256K): the private key never leaves the vault. The key is
 * read once, on first use, and its version pinned, so a rotation never changes the address under a running
 * signer. Every vault request goes through one retry policy and, for signs, a concurrency limit.
 */
export class KeyVaultSigningKey {
  /** Counters since creation, for operators and tests. */
  readonly stats = { signatures: 0, foldedHighS: 0, throttled: 0, retries: 0 };
  readonly #credential: TokenCredential;
  readonly #options: KeyVaultSigningKeyOptions;
  readonly #retry: Required<KeyVaultRetryOptions>;
  readonly #limiter: Limiter;
  #pinned?: Promise<PinnedKey>;

  constructor(
    readonly vaultUrl: string,
    readonly keyName: string,
    credential: TokenCredential,
    options: KeyVaultSigningKeyOptions
  ) {
    this.#credential = credential;
    this.#options = options;
    this.#retry = {
      maxAttempts: options.retry?.maxAttempts ?? 6,
      baseDelayMs: options.retry?.baseDelayMs ?? 250,
      maxDelayMs: options.retry?.maxDelayMs ?? 4_000,
      deadlineMs: options.retry?.deadlineMs ?? 30_000,
    };
    const maxConcurrent = options.maxConcurrentSigns ?? 8;
    if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1) {
      throw new Error(`maxConcurrentSigns must be a whole number of at least 1, not ${maxConcurrent}`);
    }
    if (!Number.isInteger(this.#retry.maxAttempts) || this.#retry.maxAttempts < 1) {
      throw new Error(`retry.maxAttempts must be a whole number of at least 1, not ${this.#retry.maxAttempts}`);
    }
    this.#limiter = new Limiter(maxConcurrent);
  }

  async getAddress(): Promise<string> {
    return (await this.#key()).address;
  }

  /** The versioned key id in use (read from the vault on first use). */
  async keyId(): Promise<string> {
    return (await this.#key()).key.id!;
  }

  /** Signs a 32-byte digest with ES256K inside the vault and returns an Ethereum (low-s, recoverable) signature. */
  async sign(digest: BytesLike): Promise<VaultSignature> {
    const started = performance.now();
    let outcome = 'error';
    try {
      const bytes = getBytes(digest);
      if (bytes.length !== 32) throw new Error(`the digest to sign must be 32 bytes, not ${bytes.length}`);
      const { crypto, address } = await this.#key();
      const deadline = Date.now() + this.#retry.deadlineMs;
      const signed = await this.#limiter.run(() =>
        this.#withRetry('sign', deadline, (abortSignal) => crypto.sign('ES256K', bytes, { abortSignal }))
      );
      const result = this.#toEthereum(signed.result, bytes, address);
      this.stats.signatures += 1;
      if (result.folded) this.stats.foldedHighS += 1;
      outcome = 'ok';
      return { ...result, vaultSignature: signed.result };
    } finally {
      const dimensions = { key: this.keyName, outcome };
      this.#options.telemetry?.metric(SIGN_CALLS_METRIC, 1, dimensions);
      this.#options.telemetry?.metric(SIGN_LATENCY_METRIC, performance.now() - started, dimensions);
    }
  }

  #toEthereum(p1363: Uint8Array, digest: Uint8Array, address: string): { signature: Signature; folded: boolean } {
    try {
      return toEthereumSignature(p1363, digest, address);
    } catch (err) {
      const message = `Key Vault key "${this.keyName}" at ${this.vaultUrl}: ${(err as Error).message}`;
      throw new KeyVaultSignerError(message, this.keyName, false, undefined, { cause: err });
    }
  }

  /** Reads the key once; concurrent first calls share the read, and a failed read is retried by the next call. */
  #key(): Promise<PinnedKey> {
    this.#pinned ??= this.#readKey().catch((err: unknown) => {
      this.#pinned = undefined;
      throw err;
    });
    return this.#pinned;
  }

  async #readKey(): Promise<PinnedKey> {
    const keys = new KeyClient(this.vaultUrl, this.#credential, this.#clientOptions());
    const deadline = Date.now() + this.#retry.deadlineMs;
    const version = this.#options.keyVersion;
    const key = await this.#withRetry('read', deadline, (abortSignal) =>
      keys.getKey(this.keyName, { version, abortSignal })
    );
    const address = checkSigningKey(key, this.keyName, this.#options.environment);
    // Built from the key itself: no GET before each operation, and the requests name the version read here.
    const crypto = new CryptographyClient(key, this.#credential, this.#clientOptions());
    return { key, address, crypto };
  }

  #clientOptions(): CryptographyClientOptions {
    return {
      ...this.#options.clientOptions,
      ...keyVaultClientOptions(this.#options.environment),
      // One retry policy, here: it sees every 429 (for telemetry), retries a 429 without Retry-After (the SDK
      // does not) and keeps every retry, Retry-After waits included, inside the call's deadline.
      retryOptions: { maxRetries: 0 },
    };
  }

  async #withRetry<T>(
    operation: 'read' | 'sign',
    deadline: number,
    call: (abortSignal: AbortSignal) => Promise<T>
  ): Promise<T> {
    const what = `Key Vault key "${this.keyName}" at ${this.vaultUrl}: ${operation}`;
    for (let attempt = 1; ; attempt += 1) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new KeyVaultSignerError(
          `${what} ran out of its ${this.#retry.deadlineMs} ms deadline`,
          this.keyName,
          true
        );
      }
      try {
        return await call(AbortSignal.timeout(remaining));
      } catch (err) {
        const status = isRestError(err) ? err.statusCode : undefined;
        if (status === 429) {
          this.stats.throttled += 1;
          this.#options.telemetry?.metric(SIGN_THROTTLED_METRIC, 1, { key: this.keyName, operation });
        }
        const problem = describe(err);
        if (!isRetryable(err)) {
          throw new KeyVaultSignerError(`${what} failed: ${problem}`, this.keyName, false, status, { cause: err });
        }
        const retryAfter = retryAfterMs(err);
        const delay = this.#backoff(attempt, retryAfter);
        if (attempt >= this.#retry.maxAttempts || Date.now() + delay >= deadline) {
          const wait = retryAfter === undefined ? '' : ` (the vault asked to wait ${Math.ceil(retryAfter)} ms)`;
          const message = `${what} failed after ${attempt} attempt(s)${wait}: ${problem}`;
          throw new KeyVaultSignerError(message, this.keyName, true, status, { cause: err });
        }
        this.stats.retries += 1;
        await sleep(delay);
      }
    }
  }

  /** Exponential with jitter so a burst of callers does not retry in lockstep; a Retry-After is a floor. */
  #backoff(attempt: number, retryAfter: number | undefined): number {
    const { baseDelayMs, maxDelayMs } = this.#retry;
    if (retryAfter !== undefined) return retryAfter + Math.random() * baseDelayMs;
    const step = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
    return step / 2 + (Math.random() * step) / 2;
  }
}

/** Checks that a vault key can sign Ethereum transactions and returns its address. */
function checkSigningKey(key: KeyVaultKey, keyName: string, environment: 'azure' | 'local'): string {
  const name = `Key Vault key "${keyName}" (version ${key.properties.version ?? 'unknown'})`;
  const refuse = (problem: string) =>
    new KeyVaultSignerError(
      `${name} ${problem}; the transaction signer needs an EC-HSM key on curve P-256K (secp256k1) that permits "sign"`,
      keyName,
      false
    );
  const kty = key.key?.kty ?? key.keyType;
  // A software key (EC) could be exported by whoever administers the vault: in Azure only an HSM key will do.
  const allowed = environment === 'azure' ? ['EC-HSM'] : ['EC', 'EC-HSM'];
  if (!allowed.includes(kty ?? '')) throw refuse(`has key type ${kty ?? 'unknown'}`);
  if (key.key?.crv !== 'P-256K') throw refuse(`is on curve ${key.key?.crv ?? 'unknown'}`);
  const ops = key.keyOperations ?? [];
  if (!ops.includes('sign')) throw refuse(`does not permit sign (key_ops: ${ops.join(', ') || 'none'})`);
  if (key.properties.enabled === false) throw refuse('is disabled');
  return ethereumAddressFromJwk(key.key);
}

/**
 * Turns Key Vault's ES256K r‖s into an Ethereum signature: s folded to the low half (EIP-2; Key Vault, like any
 * HSM, returns either), and the recovery parity found by recovering both candidates and matching the address.
 */
export function toEthereumSignature(
  p1363: Uint8Array,
  digest: Uint8Array,
  address: string
): { signature: Signature; folded: boolean } {
  if (p1363.length !== 64) throw new Error(`Key Vault returned a ${p1363.length}-byte ES256K signature, not 64`);
  const r = BigInt(hexlify(p1363.subarray(0, 32)));
  const rawS = BigInt(hexlify(p1363.subarray(32)));
  if (r === 0n || r >= SECP256K1_N || rawS === 0n || rawS >= SECP256K1_N) {
    throw new Error('Key Vault returned an ES256K signature with r or s out of range');
  }
  const folded = rawS > SECP256K1_HALF_N;
  const s = folded ? SECP256K1_N - rawS : rawS;
  const expected = getAddress(address);
  for (const v of [27, 28]) {
    const signature = Signature.from({ r: toBeHex(r, 32), s: toBeHex(s, 32), v });
    try {
      if (recoverAddress(digest, signature) === expected) return { signature, folded };
    } catch {
      // r is not the x of a curve point for this parity; the other parity decides
    }
  }
  throw new Error(`the ES256K signature from Key Vault does not recover to the key's address ${expected}`);
}

/** The one place that decides what is worth retrying: throttling, server trouble, the network, our own timeout. */
function isRetryable(err: unknown): boolean {
  if (isRestError(err)) {
    const status = err.statusCode;
    if (status === undefined) return err.code !== 'PARSE_ERROR'; // no response: a network failure
    return status === 408 || status === 429 || status === 500 || status === 502 || status === 503 || status === 504;
  }
  return err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError');
}

/** Retry-After (seconds or an HTTP date) or the ms variants Azure sends, from a 429/503 answer. */
function retryAfterMs(err: unknown): number | undefined {
  const headers = isRestError(err) ? err.response?.headers : undefined;
  if (!headers) return undefined;
  for (const name of ['retry-after-ms', 'x-ms-retry-after-ms']) {
    const ms = Number(headers.get(name));
    if (headers.get(name) && Number.isFinite(ms) && ms >= 0) return ms;
  }
  const value = headers.get('retry-after');
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

/** Status, service code and message; never the request (it carries the bearer token). */
function describe(err: unknown): string {
  if (isRestError(err)) {
    const status = err.statusCode === undefined ? (err.code ?? 'network error') : `HTTP ${err.statusCode}`;
    const code = err.statusCode !== undefined && err.code ? ` ${err.code}` : '';
    return `${status}${code}: ${err.message}`;
  }
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/** At most `max` tasks at once; the rest wait in arrival order. */
class Limiter {
  #active = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(readonly max: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#active < this.max) this.#active += 1;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await task();
    } finally {
      // Hand the slot straight to the next waiter, so a newcomer cannot overtake it.
      const next = this.#waiting.shift();
      if (next) next();
      else this.#active -= 1;
    }
  }
}

/**
 * An ethers v6 Signer whose key lives in Key Vault. It signs transactions (and EIP-191 messages, EIP-712 data)
 * with the same digest path; `connect` shares the key, its pinned version, limit and counters.
 */
export class KeyVaultSigner extends AbstractSigner implements TransactionSigner {
  constructor(
    readonly signingKey: KeyVaultSigningKey,
    provider: Provider | null = null
  ) {
    super(provider);
  }

  getAddress(): Promise<string> {
    return this.signingKey.getAddress();
  }

  connect(provider: Provider | null): KeyVaultSigner {
    return new KeyVaultSigner(this.signingKey, provider);
  }

  async signTransaction(request: TransactionRequest): Promise<string> {
    const tx = await unsignedTransaction(request, await this.getAddress(), this);
    tx.signature = (await this.signingKey.sign(tx.unsignedHash)).signature;
    return tx.serialized;
  }

  async signMessage(message: string | Uint8Array): Promise<string> {
    return (await this.signingKey.sign(hashMessage(message))).signature.serialized;
  }

  async signTypedData(
    domain: TypedDataDomain,
    types: Record<string, TypedDataField[]>,
    value: Record<string, unknown>
  ): Promise<string> {
    const populated = await TypedDataEncoder.resolveNames(domain, types, value, async (name) => {
      const resolved = await this.resolveName(name);
      if (!resolved) throw new Error(`cannot resolve the name ${name} in typed data`);
      return resolved;
    });
    const digest = TypedDataEncoder.hash(populated.domain, types, populated.value as Record<string, unknown>);
    return (await this.signingKey.sign(digest)).signature.serialized;
  }
}

/**
 * The production signer: the configured vault and key, nothing else. It never falls back to a local key;
 * `LocalTransactionSigner` exists for tests only and is never returned from here.
 */
export function createKeyVaultSigner(
  config: Pick<Config, 'environment' | 'keyVault'>,
  credential: TokenCredential,
  telemetry?: Telemetry
): KeyVaultSigner {
  const key = new KeyVaultSigningKey(config.keyVault.url, config.keyVault.signerKeyName, credential, {
    environment: config.environment,
    telemetry,
  });
  return new KeyVaultSigner(key);
}
