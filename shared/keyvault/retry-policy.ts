import { isRestError } from '@azure/core-rest-pipeline';
import { setTimeout as sleep } from 'node:timers/promises';
import { errorMessage, redactUrl } from '../redact';

export interface KeyVaultRetryOptions {
  /** Attempts per vault request, the first included. Default 6. */
  maxAttempts?: number;
  /** First backoff step; doubles per attempt, with jitter. Default 250 ms. */
  baseDelayMs?: number;
  /** Cap on one backoff step (a vault's Retry-After is honoured as given). Default 4 s. */
  maxDelayMs?: number;
  /** Overall budget of one sign call, queueing and retries included. Default 30 s. */
  deadlineMs?: number;
  /**
   * Budget of one request; a request still unanswered then is aborted and retried, so one slow answer cannot
   * use up the whole deadline. Default 5 s (KEY_VAULT_ATTEMPT_TIMEOUT_MS).
   */
  attemptTimeoutMs?: number;
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

export type VaultOperation = 'read' | 'sign';

/** The key a policy retries for, and what it reports to it. */
export interface RetriedKey {
  keyName: string;
  vaultUrl: string;
  onThrottled(operation: VaultOperation): void;
  onRetry(): void;
}

/**
 * The one retry policy for a key's vault requests (the SDK's own is off): 429s with or without Retry-After, 5xx,
 * network failures and timeouts are retried with capped, jittered backoff, every wait inside the call's deadline;
 * anything else fails at once with a message that names the key and never the request (it carries the token).
 */
export class VaultRetryPolicy {
  readonly options: Required<KeyVaultRetryOptions>;

  constructor(
    private readonly key: RetriedKey,
    options: KeyVaultRetryOptions = {}
  ) {
    this.options = {
      maxAttempts: options.maxAttempts ?? 6,
      baseDelayMs: options.baseDelayMs ?? 250,
      maxDelayMs: options.maxDelayMs ?? 4_000,
      deadlineMs: options.deadlineMs ?? 30_000,
      attemptTimeoutMs: options.attemptTimeoutMs ?? 5_000,
    };
    if (!Number.isInteger(this.options.maxAttempts) || this.options.maxAttempts < 1) {
      throw new Error(`retry.maxAttempts must be a whole number of at least 1, not ${this.options.maxAttempts}`);
    }
    if (!(this.options.attemptTimeoutMs > 0)) {
      throw new Error(`retry.attemptTimeoutMs must be positive, not ${this.options.attemptTimeoutMs}`);
    }
  }

  /** The deadline of a call that starts now. */
  deadline(): number {
    return Date.now() + this.options.deadlineMs;
  }

  async run<T>(
    operation: VaultOperation,
    deadline: number,
    call: (abortSignal: AbortSignal) => Promise<T>
  ): Promise<T> {
    const what = `Key Vault key "${this.key.keyName}" at ${redactUrl(this.key.vaultUrl)}: ${operation}`;
    for (let attempt = 1; ; attempt += 1) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new KeyVaultSignerError(
          `${what} ran out of its ${this.options.deadlineMs} ms deadline`,
          this.key.keyName,
          true
        );
      }
      const attemptMs = Math.min(remaining, this.options.attemptTimeoutMs);
      // The SDK aborts the request on this signal; the AbortError that follows is retried like a timeout.
      const signal = AbortSignal.timeout(attemptMs);
      try {
        return await call(signal);
      } catch (err) {
        const status = isRestError(err) ? err.statusCode : undefined;
        if (status === 429) this.key.onThrottled(operation);
        const problem = signal.aborted ? `no answer within ${attemptMs} ms` : describe(err);
        if (!isRetryable(err)) {
          throw new KeyVaultSignerError(`${what} failed: ${problem}`, this.key.keyName, false, status, { cause: err });
        }
        const retryAfter = retryAfterMs(err);
        const delay = this.#backoff(attempt, retryAfter);
        if (attempt >= this.options.maxAttempts || Date.now() + delay >= deadline) {
          const wait = retryAfter === undefined ? '' : ` (the vault asked to wait ${Math.ceil(retryAfter)} ms)`;
          const message = `${what} failed after ${attempt} attempt(s)${wait}: ${problem}`;
          throw new KeyVaultSignerError(message, this.key.keyName, true, status, { cause: err });
        }
        this.key.onRetry();
        await sleep(delay);
      }
    }
  }

  /** Exponential with jitter so a burst of callers does not retry in lockstep; a Retry-After is a floor. */
  #backoff(attempt: number, retryAfter: number | undefined): number {
    const { baseDelayMs, maxDelayMs } = this.options;
    if (retryAfter !== undefined) return retryAfter + Math.random() * baseDelayMs;
    const step = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
    return step / 2 + (Math.random() * step) / 2;
  }
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

/** Status, service code and message (any URL in it redacted); never the request (it carries the bearer token). */
function describe(err: unknown): string {
  if (isRestError(err)) {
    const status = err.statusCode === undefined ? (err.code ?? 'network error') : `HTTP ${err.statusCode}`;
    const code = err.statusCode !== undefined && err.code ? ` ${err.code}` : '';
    return `${status}${code}: ${errorMessage(err)}`;
  }
  return err instanceof Error ? `${err.name}: ${errorMessage(err)}` : errorMessage(err);
}
