import type { PipelinePolicy } from '@azure/core-rest-pipeline';
import { KeyClient, type KeyVaultKey } from '@azure/keyvault-keys';
import {
  JsonRpcProvider,
  Transaction,
  Wallet,
  computeAddress,
  getBytes,
  hexlify,
  parseEther,
  randomBytes,
  verifyMessage,
  verifyTypedData,
  type TransactionReceipt,
  type TransactionRequest,
} from 'ethers';
import { createECDH, createHash, createPublicKey, verify, type JsonWebKey } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startAnvil, type Anvil } from '../../local/stack/anvil';
import { deployConsortium } from '../../local/stack/consortium';
import { startKeyVaultStandIn, type KeyVaultStandIn } from '../../local/stack/keyvault';
import { generateLocalTls, trustCertificate, type LocalTls } from '../../local/stack/tls';
import { connectRegistry } from '../../shared/chain/registry';
import { keyVaultClientOptions, localStackCredential } from '../../shared/identity';
import {
  KeyVaultSigner,
  KeyVaultSigningKey,
  createKeyVaultSigner,
  type KeyVaultSigningKeyOptions,
} from '../../shared/keyvault/key-vault-signer';
import { KeyVaultSignerError } from '../../shared/keyvault/retry-policy';
import { SIGN_CALLS_METRIC, SIGN_LATENCY_METRIC, SIGN_THROTTLED_METRIC } from '../../shared/keyvault/telemetry-names';
import type { Telemetry } from '../../shared/telemetry';

const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const P = 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2fn;
const KEY = 'bank-a-signer';
// Short backoff so fault tests take milliseconds; the policy is the production one.
const RETRY = { baseDelayMs: 20, maxDelayMs: 200, deadlineMs: 10_000 };

let tls: LocalTls;
let kv: KeyVaultStandIn;
let anvil: Anvil;
let provider: JsonRpcProvider;
let keys: KeyClient;
let created: KeyVaultKey;
let signer: KeyVaultSigner;
let registryAddress: string;
const metrics: { name: string; value: number; dimensions?: Record<string, string> }[] = [];

/** A telemetry sink that records metrics, so the test can assert what operators would see. */
const telemetry: Telemetry = {
  metric: (name, value, dimensions) => void metrics.push({ name, value, dimensions }),
  event: () => undefined,
  availability: () => undefined,
  exception: () => undefined,
  flush: async () => undefined,
};

function newSigner(keyName: string, options: Partial<KeyVaultSigningKeyOptions> = {}): KeyVaultSigner {
  const key = new KeyVaultSigningKey(kv.url, keyName, localStackCredential, {
    environment: 'local',
    retry: RETRY,
    telemetry,
    ...options,
  });
  return new KeyVaultSigner(key, provider);
}

const b64 = (bytes: Uint8Array | undefined) => Buffer.from(bytes!).toString('base64url');
const jwkOf = (k: KeyVaultKey): JsonWebKey => ({ kty: 'EC', crv: 'secp256k1', x: b64(k.key!.x), y: b64(k.key!.y) });
const addressOf = (k: KeyVaultKey) =>
  computeAddress(`0x04${hexlify(k.key!.x!).slice(2)}${hexlify(k.key!.y!).slice(2)}`);
const big = (bytes: Uint8Array) => BigInt(hexlify(bytes));

// ---- textbook ECDSA verification (no ethers), for a digest node:crypto cannot take pre-hashed (keccak) ----

type Point = { x: bigint; y: bigint } | null;
const mod = (a: bigint, m: bigint) => ((a % m) + m) % m;
function power(base: bigint, exp: bigint, m: bigint): bigint {
  let result = 1n;
  for (let b = mod(base, m), e = exp; e > 0n; e >>= 1n, b = (b * b) % m) if (e & 1n) result = (result * b) % m;
  return result;
}
const inverse = (a: bigint, prime: bigint) => power(a, prime - 2n, prime);
function add(a: Point, b: Point): Point {
  if (!a) return b;
  if (!b) return a;
  if (a.x === b.x && mod(a.y + b.y, P) === 0n) return null;
  const slope =
    a.x === b.x ? mod(3n * a.x * a.x * inverse(2n * a.y, P), P) : mod((b.y - a.y) * inverse(mod(b.x - a.x, P), P), P);
  const x = mod(slope * slope - a.x - b.x, P);
  return { x, y: mod(slope * (a.x - x) - a.y, P) };
}
function multiply(point: Point, k: bigint): Point {
  let result: Point = null;
  for (let addend = point; k > 0n; k >>= 1n, addend = add(addend, addend)) if (k & 1n) result = add(result, addend);
  return result;
}
/** Verifies r‖s over a 32-byte digest against a public key that node:crypto imported (and so checked) from the JWK. */
function ecdsaVerify(k: KeyVaultKey, digest: Uint8Array, p1363: Uint8Array): boolean {
  const imported = createPublicKey({ key: jwkOf(k), format: 'jwk' }).export({ format: 'jwk' });
  const Q = { x: big(Buffer.from(imported.x!, 'base64url')), y: big(Buffer.from(imported.y!, 'base64url')) };
  const one = createECDH('secp256k1');
  one.setPrivateKey(Buffer.from('01'.padStart(64, '0'), 'hex')); // 1·G: the generator, from OpenSSL
  const G = { x: big(one.getPublicKey().subarray(1, 33)), y: big(one.getPublicKey().subarray(33)) };
  const [r, s] = [big(p1363.subarray(0, 32)), big(p1363.subarray(32))];
  if (r <= 0n || r >= N || s <= 0n || s >= N) return false;
  const w = inverse(s, N);
  const X = add(multiply(G, mod(big(digest) * w, N)), multiply(Q, mod(r * w, N)));
  return X !== null && mod(X.x, N) === r;
}

// ---- chain helpers ----

async function transfer(overrides: TransactionRequest): Promise<TransactionRequest> {
  const address = await signer.getAddress();
  return {
    to: Wallet.createRandom().address,
    value: 1n,
    gasLimit: 21_000n,
    chainId: anvil.chainId,
    nonce: await provider.getTransactionCount(address, 'pending'),
    ...overrides,
  };
}

async function broadcast(serialized: string): Promise<TransactionReceipt> {
  const receipt = await (await provider.broadcastTransaction(serialized)).wait();
  if (!receipt) throw new Error('no receipt');
  return receipt;
}

async function failure(call: Promise<unknown>): Promise<KeyVaultSignerError> {
  try {
    await call;
  } catch (err) {
    if (err instanceof KeyVaultSignerError) return err;
    throw err;
  }
  throw new Error('expected the call to fail');
}

const metricCount = (name: string) => metrics.filter((m) => m.name === name).length;

beforeAll(async () => {
  tls = await generateLocalTls();
  trustCertificate(tls.certPem);
  [kv, anvil] = await Promise.all([startKeyVaultStandIn({ tls }), startAnvil({ blockTimeSeconds: 0 })]);
  provider = new JsonRpcProvider(anvil.rpcUrl, undefined, { pollingInterval: 50, cacheTimeout: -1 });
  keys = new KeyClient(kv.url, localStackCredential, keyVaultClientOptions('local'));
  created = await keys.createEcKey(KEY, { hsm: true, curve: 'P-256K', keyOps: ['sign', 'verify'] });
  ({ registryAddress } = await deployConsortium(anvil.rpcUrl, [{ address: addressOf(created), bankId: 'BANK-A' }]));
  signer = newSigner(KEY);
});

afterAll(async () => {
  provider?.destroy();
  await Promise.all([kv?.stop(), anvil?.stop()]);
});

afterEach(() => kv.faults.clear());

test("the signer's address is the one derived from the key's public JWK, and the key is read once", async () => {
  const getsBefore = kv.stats.requests.getKey;
  const challengesBefore = kv.stats.challenges;
  const [first, second] = await Promise.all([signer.getAddress(), signer.getAddress()]);
  expect(first).toBe(addressOf(created));
  expect(second).toBe(first);
  expect(await signer.signingKey.keyId()).toBe(created.id); // pinned to the version current at first use
  // One read, though the SDK sends a new client's first request unauthenticated, to get the 401 challenge.
  expect(kv.stats.challenges - challengesBefore).toBe(1);
  expect(kv.stats.requests.getKey - getsBefore).toBe(2);

  const factory = createKeyVaultSigner(
    { environment: 'local', keyVault: { url: kv.url, signerKeyName: KEY } },
    localStackCredential
  );
  expect(await factory.getAddress()).toBe(first);
});

test('legacy, EIP-1559 and zero-gas-price transactions are accepted by the chain and mined', async () => {
  const address = await signer.getAddress();
  const { gasPrice } = await provider.getFeeData();
  const receipts: TransactionReceipt[] = [];

  const legacy = await signer.signTransaction(await transfer({ type: 0, gasPrice }));
  expect(Transaction.from(legacy).type).toBe(0);
  receipts.push(await broadcast(legacy));

  const fees = await provider.getFeeData();
  const eip1559 = await signer.signTransaction(
    await transfer({ type: 2, maxFeePerGas: fees.maxFeePerGas, maxPriorityFeePerGas: fees.maxPriorityFeePerGas })
  );
  expect(Transaction.from(eip1559).type).toBe(2);
  receipts.push(await broadcast(eip1559));

  // A PoA chain that does not price gas: base fee 0 and a gas price of 0.
  await provider.send('anvil_setNextBlockBaseFeePerGas', ['0x0']);
  const free = await signer.signTransaction(await transfer({ type: 0, gasPrice: 0n }));
  expect(Transaction.from(free).gasPrice).toBe(0n);
  receipts.push(await broadcast(free));

  for (const [receipt, serialized] of receipts.map((r, i) => [r, [legacy, eip1559, free][i]!] as const)) {
    expect(receipt.status).toBe(1);
    expect(receipt.from).toBe(address);
    expect(Transaction.from(serialized).from).toBe(address);
  }
});

test('works as an ethers contract runner: a registry batch populated, signed and sent through AbstractSigner', async () => {
  const registry = connectRegistry(registryAddress, signer);
  const record = { subject: hexlify(randomBytes(32)), eventId: hexlify(randomBytes(16)), data: 1n };
  const receipt = await (await registry.submitBatch([record])).wait();
  expect(receipt?.status).toBe(1);
  expect(receipt?.from).toBe(await signer.getAddress());
  expect(await registry.recordOf(record.subject, await registry.bankOf(receipt!.from))).toBe(1n);
});

test('folds the high s the vault returns about half the time; every transaction is low-s and mined', async () => {
  const { foldedHighS, signatures } = signer.signingKey.stats;
  const calls = metricCount(SIGN_CALLS_METRIC);
  const getsBefore = kv.stats.requests.getKey;
  const address = await signer.getAddress();
  const first = await provider.getTransactionCount(address, 'pending');
  const latencies = metrics.length;

  const signed = await Promise.all(
    Array.from({ length: 20 }, async (_, i) =>
      signer.signTransaction(await transfer({ nonce: first + i, gasPrice: parseEther('0.000000002') }))
    )
  );

  const folded = signer.signingKey.stats.foldedHighS - foldedHighS;
  expect(signer.signingKey.stats.signatures - signatures).toBe(20);
  expect(folded).toBeGreaterThan(0); // all 20 low would happen with probability 2^-20
  expect(folded).toBeLessThan(20);
  for (const serialized of signed) {
    const tx = Transaction.from(serialized);
    expect(BigInt(tx.signature!.s)).toBeLessThanOrEqual(N / 2n);
    expect(tx.from).toBe(address);
  }
  for (const serialized of signed) expect((await broadcast(serialized)).from).toBe(address);

  expect(kv.stats.requests.getKey).toBe(getsBefore); // the key is never read again
  expect(metricCount(SIGN_CALLS_METRIC) - calls).toBe(20);
  const ms = metrics
    .slice(latencies)
    .filter((m) => m.name === SIGN_LATENCY_METRIC)
    .map((m) => m.value)
    .sort((a, b) => a - b);
  const one: number[] = [];
  for (let i = 0; i < 10; i++) {
    const started = performance.now();
    await signer.signingKey.sign(randomBytes(32));
    one.push(performance.now() - started);
  }
  one.sort((a, b) => a - b);
  console.log(
    `Key Vault stand-in ES256K sign: one at a time median ${one[5]!.toFixed(1)} ms (min ${one[0]!.toFixed(1)}); ` +
      `20 at once (limit 8) median ${ms[10]!.toFixed(1)} ms, max ${ms.at(-1)!.toFixed(1)} ms`
  );
});

test("the vault's raw ES256K signature verifies with implementations other than ethers", async () => {
  // Over a transaction's unsigned (keccak) hash: textbook ECDSA against the node-imported JWK public key.
  const tx = Transaction.from(await signer.signTransaction(await transfer({ gasPrice: 1n })));
  const digest = getBytes(tx.unsignedHash);
  const { vaultSignature, signature } = await signer.signingKey.sign(digest);
  expect(vaultSignature).toHaveLength(64);
  expect(ecdsaVerify(created, digest, vaultSignature)).toBe(true);
  const tampered = Uint8Array.from(vaultSignature);
  tampered[40]! ^= 1;
  expect(ecdsaVerify(created, digest, tampered)).toBe(false);
  expect(ecdsaVerify(created, getBytes(tx.hash!), vaultSignature)).toBe(false);

  // Over SHA-256, where node:crypto can hash the message itself: the raw signature and the folded one both verify.
  const message = randomBytes(100);
  const signed = await signer.signingKey.sign(createHash('sha256').update(message).digest());
  const publicKey = {
    key: createPublicKey({ key: jwkOf(created), format: 'jwk' }),
    dsaEncoding: 'ieee-p1363' as const,
  };
  expect(verify('sha256', message, publicKey, signed.vaultSignature)).toBe(true);
  expect(verify('sha256', message, publicKey, getBytes(signed.signature.r + signed.signature.s.slice(2)))).toBe(true);
  expect(verify('sha256', randomBytes(100), publicKey, signed.vaultSignature)).toBe(false);
  expect(BigInt(signature.s)).toBeLessThanOrEqual(N / 2n);
});

test('signs EIP-191 messages and EIP-712 data with the same key', async () => {
  const address = await signer.getAddress();
  expect(verifyMessage('ledger-bridge', await signer.signMessage('ledger-bridge'))).toBe(address);
  const domain = { name: 'ledger-bridge', version: '1', chainId: anvil.chainId, verifyingContract: registryAddress };
  const types = { Attestation: [{ name: 'bank', type: 'string' }] };
  const value = { bank: 'BANK-A' };
  expect(verifyTypedData(domain, types, value, await signer.signTypedData(domain, types, value))).toBe(address);
});

test('connect() shares the pinned key, and a rotation does not move a running signer to the new version', async () => {
  const getsBefore = kv.stats.requests.getKey;
  const connected = signer.connect(null);
  expect(connected.signingKey).toBe(signer.signingKey);
  expect(await connected.getAddress()).toBe(await signer.getAddress());
  expect(kv.stats.requests.getKey).toBe(getsBefore);

  const rotated = await keys.createEcKey(KEY, { hsm: true, curve: 'P-256K' });
  const tx = await connected.signTransaction(await transfer({ gasPrice: 1n }));
  expect(Transaction.from(tx).from).toBe(addressOf(created));

  expect(await newSigner(KEY).getAddress()).toBe(addressOf(rotated));
  const pinned = newSigner(KEY, { keyVersion: created.properties.version });
  expect(await pinned.getAddress()).toBe(addressOf(created));
  expect(await pinned.signingKey.keyId()).toBe(created.id);
});

describe('faults', () => {
  test('429 without Retry-After three times: retried with backoff, and counted', async () => {
    const { throttled } = signer.signingKey.stats;
    const throttledMetrics = metricCount(SIGN_THROTTLED_METRIC);
    const injected = kv.stats.faultsInjected;
    kv.faults.failNext({ status: 429, count: 3, operation: 'sign' });
    const tx = await signer.signTransaction(await transfer({ gasPrice: 1n }));
    expect(Transaction.from(tx).from).toBe(await signer.getAddress());
    expect(kv.stats.faultsInjected - injected).toBe(3);
    expect(signer.signingKey.stats.throttled - throttled).toBe(3);
    expect(metricCount(SIGN_THROTTLED_METRIC) - throttledMetrics).toBe(3);
  });

  test('503 twice, and 429 with Retry-After (honoured): the signature arrives', async () => {
    const { retries } = signer.signingKey.stats;
    kv.faults.failNext({ status: 503, count: 2, operation: 'sign' });
    expect((await signer.signingKey.sign(randomBytes(32))).vaultSignature).toHaveLength(64);
    expect(signer.signingKey.stats.retries - retries).toBe(2);

    kv.faults.failNext({ status: 429, count: 1, retryAfterSeconds: 1, operation: 'sign' });
    const started = Date.now();
    await signer.signingKey.sign(randomBytes(32));
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
  });

  test('gives up after the attempt cap with a retryable error naming the key, without hammering', async () => {
    const signRequests = kv.stats.requests.sign;
    kv.faults.failNext({ status: 429, count: 50, operation: 'sign' });
    const capped = newSigner(KEY, { keyVersion: created.properties.version, retry: { ...RETRY, maxAttempts: 4 } });
    await capped.getAddress();
    const started = Date.now();
    const err = await failure(capped.signingKey.sign(randomBytes(32)));
    expect(err.retryable).toBe(true);
    expect(err.statusCode).toBe(429);
    expect(err.message).toMatch(
      new RegExp(`Key Vault key "${KEY}" at .*: sign failed after 4 attempt\\(s\\): HTTP 429`)
    );
    // The new sign client's 401 challenge, then 4 attempts spaced by backoff: 10-20, 20-40, 40-80 ms.
    expect(kv.stats.requests.sign - signRequests).toBe(5);
    expect(Date.now() - started).toBeGreaterThanOrEqual(70);
  });

  test('a Retry-After beyond the deadline fails at once instead of sleeping past it', async () => {
    const short = newSigner(KEY, { keyVersion: created.properties.version, retry: { ...RETRY, deadlineMs: 1_000 } });
    await short.getAddress();
    kv.faults.failNext({ status: 429, count: 1, retryAfterSeconds: 30, operation: 'sign' });
    const started = Date.now();
    const err = await failure(short.signingKey.sign(randomBytes(32)));
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('sign failed after 1 attempt(s) (the vault asked to wait 30000 ms): HTTP 429');
  });

  test('one slow answer (8 s) is abandoned after the attempt timeout and retried, well inside the deadline', async () => {
    // Without a per-attempt timeout the first request would hold the whole 6 s deadline and the sign would fail.
    const patient = newSigner(KEY, {
      keyVersion: created.properties.version,
      retry: { ...RETRY, deadlineMs: 6_000, attemptTimeoutMs: 1_500 },
    });
    await patient.signingKey.sign(randomBytes(32)); // warm up: key read and the sign client's challenge
    const signRequests = kv.stats.requests.sign;
    const injected = kv.stats.faultsInjected;
    kv.faults.slowNext({ delayMs: 8_000, count: 1, operation: 'sign' });
    const started = Date.now();
    const signed = await patient.signingKey.sign(randomBytes(32));
    const elapsed = Date.now() - started;
    expect(signed.vaultSignature).toHaveLength(64);
    expect(kv.stats.faultsInjected - injected).toBe(1);
    expect(kv.stats.requests.sign - signRequests).toBe(2); // the slow one, then the retry
    expect(patient.signingKey.stats.retries).toBe(1);
    expect(elapsed).toBeGreaterThanOrEqual(1_500);
    expect(elapsed).toBeLessThan(4_000);
  });

  test('a vault that never answers in time fails at the deadline, saying so', async () => {
    const short = newSigner(KEY, {
      keyVersion: created.properties.version,
      retry: { ...RETRY, deadlineMs: 1_000, attemptTimeoutMs: 300 },
    });
    await short.getAddress();
    kv.faults.slowNext({ delayMs: 5_000, count: 20, operation: 'sign' });
    const started = Date.now();
    const err = await failure(short.signingKey.sign(randomBytes(32)));
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(
      /sign (failed after \d attempt\(s\): no answer within \d+ ms|ran out of its 1000 ms deadline)/
    );
  });

  test('a network outage is retried until the vault is back', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'kv-signer-'));
    let vault = await startKeyVaultStandIn({ tls, dataDir });
    try {
      await new KeyClient(vault.url, localStackCredential, keyVaultClientOptions('local')).createEcKey('outage', {
        hsm: true,
        curve: 'P-256K',
      });
      const key = new KeyVaultSigningKey(vault.url, 'outage', localStackCredential, {
        environment: 'local',
        retry: RETRY,
      });
      await key.getAddress();
      const port = Number(new URL(vault.url).port);
      await vault.stop();
      const restarted = sleep(300).then(() => startKeyVaultStandIn({ tls, dataDir, port }));
      const signing = key.sign(randomBytes(32));
      vault = await restarted;
      expect((await signing).vaultSignature).toHaveLength(64);
      expect(key.stats.retries).toBeGreaterThan(0);
    } finally {
      await vault.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('a key that does not permit sign fails fast, naming the key, before any sign request', async () => {
    const verifyOnly = await keys.createEcKey('verify-only', { hsm: true, curve: 'P-256K', keyOps: ['verify'] });
    const signRequests = kv.stats.requests.sign;
    const err = await failure(newSigner('verify-only').signTransaction(await transfer({ gasPrice: 1n })));
    expect(err.retryable).toBe(false);
    expect(err.keyName).toBe('verify-only');
    expect(err.message).toBe(
      `Key Vault key "verify-only" (version ${verifyOnly.properties.version}) does not permit sign (key_ops: verify); ` +
        'the transaction signer needs an EC-HSM key on curve P-256K (secp256k1) that permits "sign"'
    );
    expect(kv.stats.requests.sign).toBe(signRequests);
  });

  test('a missing key fails fast with 404 naming the key, not retried', async () => {
    const getsBefore = kv.stats.requests.getKey;
    const started = Date.now();
    const err = await failure(newSigner('no-such-key').getAddress());
    expect(err.retryable).toBe(false);
    expect(err.statusCode).toBe(404);
    expect(err.message).toMatch(
      /^Key Vault key "no-such-key" at https:\/\/127\.0\.0\.1:\d+: read failed: HTTP 404 KeyNotFound/
    );
    expect(kv.stats.requests.getKey - getsBefore).toBeLessThanOrEqual(2); // the challenge, then the 404
    expect(Date.now() - started).toBeLessThan(1000);
  });

  test('a key on the wrong curve is refused with a clear error', async () => {
    await keys.createEcKey('p256', { hsm: true, curve: 'P-256' });
    const err = await failure(newSigner('p256').getAddress());
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(
      /^Key Vault key "p256" \(version [0-9a-f]{32}\) is on curve P-256; the transaction signer needs/
    );
  });

  test('a burst never has more sign requests in flight than the limit', async () => {
    let inFlight = 0;
    let peak = 0;
    // Counts requests as they leave the client, beneath the signer's own limiter.
    const gauge: PipelinePolicy = {
      name: 'inFlightGauge',
      async sendRequest(request, next) {
        inFlight += 1;
        peak = Math.max(peak, inFlight);
        try {
          return await next(request);
        } finally {
          inFlight -= 1;
        }
      },
    };
    const limited = newSigner(KEY, {
      keyVersion: created.properties.version,
      maxConcurrentSigns: 8,
      clientOptions: { additionalPolicies: [{ policy: gauge, position: 'perRetry' }] },
    });
    await limited.signingKey.sign(randomBytes(32)); // warm up: key read and the sign client's challenge
    peak = 0;
    kv.faults.latencyMs = 50;
    const signRequests = kv.stats.requests.sign;
    const started = Date.now();
    await Promise.all(Array.from({ length: 40 }, () => limited.signingKey.sign(randomBytes(32))));
    const elapsed = Date.now() - started;
    expect(peak).toBe(8);
    expect(kv.stats.requests.sign - signRequests).toBe(40);
    expect(elapsed).toBeGreaterThanOrEqual((40 / 8) * 50);
  });
});
