import type { TokenCredential } from '@azure/core-auth';
import { CryptographyClient, KeyClient, type CryptographyClientOptions, type KeyVaultKey } from '@azure/keyvault-keys';
import {
  AbstractSigner,
  Signature,
  TypedDataEncoder,
  getBytes,
  hashMessage,
  type BytesLike,
  type Provider,
  type TransactionRequest,
  type TypedDataDomain,
  type TypedDataField,
} from 'ethers';
import type { Config, Environment } from '../config';
import { keyVaultClientOptions } from '../identity';
import { redactUrl } from '../redact';
import type { Telemetry } from '../telemetry';
import { ethereumAddressFromJwk } from './address';
import { SIGN_CALLS_METRIC, SIGN_LATENCY_METRIC, SIGN_THROTTLED_METRIC } from './telemetry-names';
import { Limiter } from './limiter';
import { KeyVaultSignerError, VaultRetryPolicy, type KeyVaultRetryOptions } from './retry-policy';
import { toEthereumSignature } from './signature';
import { signingPayload, unsignedTransaction, type TransactionSigner } from './transaction-signer';

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
  readonly #retry: VaultRetryPolicy;
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
    this.#retry = new VaultRetryPolicy(
      {
        keyName,
        vaultUrl,
        onThrottled: (operation) => {
          this.stats.throttled += 1;
          options.telemetry?.metric(SIGN_THROTTLED_METRIC, 1, { key: keyName, operation });
        },
        onRetry: () => void (this.stats.retries += 1),
      },
      options.retry
    );
    const maxConcurrent = options.maxConcurrentSigns ?? 8;
    if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1) {
      throw new Error(`maxConcurrentSigns must be a whole number of at least 1, not ${maxConcurrent}`);
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
      const deadline = this.#retry.deadline();
      const signed = await this.#limiter.run(() =>
        this.#retry.run('sign', deadline, (abortSignal) => crypto.sign('ES256K', bytes, { abortSignal }))
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
      const message = `Key Vault key "${this.keyName}" at ${redactUrl(this.vaultUrl)}: ${(err as Error).message}`;
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
    const deadline = this.#retry.deadline();
    const version = this.#options.keyVersion;
    const key = await this.#retry.run('read', deadline, (abortSignal) =>
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
    const payload = signingPayload(await unsignedTransaction(request, await this.getAddress(), this));
    return payload.serialize((await this.signingKey.sign(payload.digest)).signature);
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
  const { url, signerKeyName, attemptTimeoutMs } = config.keyVault;
  const key = new KeyVaultSigningKey(url, signerKeyName, credential, {
    environment: config.environment,
    telemetry,
    retry: { attemptTimeoutMs },
  });
  return new KeyVaultSigner(key);
}
