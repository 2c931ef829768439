import { CryptographyClient, KeyClient, type KeyClientOptions, type KeyVaultKey } from '@azure/keyvault-keys';
import { Signature, SigningKey } from 'ethers';
import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKeyVaultStandIn, type KeyVaultStandIn } from '../../local/stack/keyvault';
import { generateLocalTls, trustCertificate, type LocalTls } from '../../local/stack/tls';
import { localStackCredential } from '../../shared/identity';

const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const API = 'api-version=2025-07-01';
// 127.0.0.1 is not a subdomain of vault.azure.net, so the SDK's challenge-resource check must be off locally.
const CLIENT_OPTIONS: KeyClientOptions = {
  disableChallengeResourceVerification: true,
  retryOptions: { retryDelayInMs: 20, maxRetryDelayInMs: 100 },
};

let tls: LocalTls;
let kv: KeyVaultStandIn;
let keys: KeyClient;
let key: KeyVaultKey;
let crypto: CryptographyClient;
const dataDirs: string[] = [];

function newDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kv-standin-'));
  dataDirs.push(dir);
  return dir;
}

async function raw(method: string, path: string, body?: unknown, token: string | null = 'raw-token') {
  const response = await fetch(`${kv.url}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: JSON.parse(text) as VaultJson };
}

interface VaultJson {
  error: { code: string; message: string; innererror?: { code: string } };
  key: Record<string, unknown>;
  id: string;
  value: string;
}

/** The RestError a rejected SDK call throws, for asserting status, service code and message together. */
async function failure(call: Promise<unknown>): Promise<{ statusCode?: number; code?: string; message: string }> {
  try {
    await call;
  } catch (err) {
    return err as { statusCode?: number; code?: string; message: string };
  }
  throw new Error('expected the call to fail');
}

const hex = (bytes: Uint8Array | undefined) => Buffer.from(bytes!).toString('hex');

function nodePublicKey(k: KeyVaultKey) {
  const b64 = (bytes: Uint8Array | undefined) => Buffer.from(bytes!).toString('base64url');
  return createPublicKey({ key: { kty: 'EC', crv: 'secp256k1', x: b64(k.key!.x), y: b64(k.key!.y) }, format: 'jwk' });
}

/** Recovers the signer with ethers after folding s to low s (EIP-2), as the production signer must. */
function recoversTo(k: KeyVaultKey, digest: Buffer, signature: Uint8Array): boolean {
  const r = BigInt(`0x${hex(signature.subarray(0, 32))}`);
  let s = BigInt(`0x${hex(signature.subarray(32))}`);
  if (s > SECP256K1_N / 2n) s = SECP256K1_N - s;
  const expected = `0x04${hex(k.key!.x)}${hex(k.key!.y)}`;
  return [27, 28].some(
    (v) => SigningKey.recoverPublicKey(digest, Signature.from({ r: toWord(r), s: toWord(s), v })) === expected
  );
}

const toWord = (x: bigint) => `0x${x.toString(16).padStart(64, '0')}`;

beforeAll(async () => {
  tls = await generateLocalTls();
  trustCertificate(tls.certPem);
  kv = await startKeyVaultStandIn({ tls });
  keys = new KeyClient(kv.url, localStackCredential, CLIENT_OPTIONS);
});

afterAll(async () => {
  await kv.stop();
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

afterEach(() => kv.faults.clear());

test('challenges the first request, then creates an EC-HSM P-256K key and exposes only its public JWK', async () => {
  expect(kv.stats.challenges).toBe(0);
  key = await keys.createEcKey('bank-signer', { hsm: true, curve: 'P-256K', keyOps: ['sign', 'verify'] });
  expect(kv.stats.challenges).toBeGreaterThanOrEqual(1);

  expect(key.keyType).toBe('EC-HSM');
  expect(key.key!.crv).toBe('P-256K');
  expect(key.key!.x).toHaveLength(32);
  expect(key.key!.y).toHaveLength(32);
  expect(key.key!.d).toBeUndefined();
  expect(key.properties.version).toMatch(/^[0-9a-f]{32}$/);
  expect(key.properties.exportable).toBe(false);
  expect(key.properties.createdOn!.getTime()).toBeGreaterThan(Date.now() - 60_000);

  const fetched = await keys.getKey('bank-signer');
  expect(fetched.id).toBe(key.id);
  const again = await raw('GET', `/keys/bank-signer/?${API}`);
  expect(again.status).toBe(200);
  expect(Object.keys(again.json.key as object).sort()).toEqual(['crv', 'key_ops', 'kid', 'kty', 'x', 'y']);
  expect(again.text).not.toMatch(/"d"/);
});

test('answers an unauthenticated request with the challenge the SDK parses, and requires api-version', async () => {
  const before = kv.stats.challenges;
  const anonymous = await raw('GET', `/keys/bank-signer?${API}`, undefined, null);
  expect(anonymous.status).toBe(401);
  expect(anonymous.headers.get('www-authenticate')).toMatch(
    /^Bearer authorization="https:\/\/login\.microsoftonline\.com\/[0-9a-f-]{36}", resource="https:\/\/vault\.azure\.net"$/
  );
  expect(kv.stats.challenges).toBe(before + 1);

  const noVersion = await raw('GET', '/keys/bank-signer');
  expect(noVersion.status).toBe(400);
  expect(noVersion.json.error.code).toBe('BadParameter');
  expect(noVersion.json.error.message).toMatch(/api-version/);
});

test('signs a 32-byte digest with ES256K; independent implementations verify it', async () => {
  // Pinned: an unpinned client signs with whatever version is latest at sign time (see the versions test).
  crypto = keys.getCryptographyClient('bank-signer', { keyVersion: key.properties.version! });
  const getsBefore = kv.stats.requests.getKey;
  const message = randomBytes(200);
  const digest = createHash('sha256').update(message).digest();

  const signed = await crypto.sign('ES256K', digest);
  // A CryptographyClient built from a key id fetches the key (GET) once before its first operation.
  expect(kv.stats.requests.getKey).toBe(getsBefore + 1);
  expect(signed.result).toHaveLength(64);
  expect(signed.keyID).toBe(key.id);

  const pem = nodePublicKey(key);
  expect(verify('sha256', message, { key: pem, dsaEncoding: 'ieee-p1363' }, signed.result)).toBe(true);
  expect(verify('sha256', randomBytes(200), { key: pem, dsaEncoding: 'ieee-p1363' }, signed.result)).toBe(false);
  expect(recoversTo(key, digest, signed.result)).toBe(true);

  const verifies = kv.stats.requests.verify;
  expect((await crypto.verify('ES256K', digest, signed.result)).result).toBe(true);
  const tampered = Buffer.from(signed.result);
  tampered[5]! ^= 1;
  expect((await crypto.verify('ES256K', digest, tampered)).result).toBe(false);
  expect(kv.stats.requests.verify).toBe(verifies + 2); // EC verify is remote: the SDK has no local EC provider
});

test('also serves P-256 keys with ES256', async () => {
  const p256 = await keys.createEcKey('p256', { curve: 'P-256' });
  expect(p256.keyType).toBe('EC');
  const message = randomBytes(64);
  const digest = createHash('sha256').update(message).digest();
  const client = new CryptographyClient(p256, localStackCredential, CLIENT_OPTIONS);
  const signed = await client.sign('ES256', digest);
  const b64 = (bytes: Uint8Array | undefined) => Buffer.from(bytes!).toString('base64url');
  const publicKey = createPublicKey({
    key: { kty: 'EC', crv: 'P-256', x: b64(p256.key!.x), y: b64(p256.key!.y) },
    format: 'jwk',
  });
  expect(verify('sha256', message, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signed.result)).toBe(true);
  expect((await client.verify('ES256', digest, signed.result)).result).toBe(true);
});

test('the SDK retries 429 with Retry-After and 503, and the sign then succeeds', async () => {
  const { faultsInjected, signCalls } = kv.stats;
  const signRequests = kv.stats.requests.sign;
  kv.faults.failNext({ status: 429, count: 1, retryAfterSeconds: 1, operation: 'sign' });
  kv.faults.failNext({ status: 503, count: 2, operation: 'sign' });
  const started = Date.now();

  const signed = await crypto.sign('ES256K', randomBytes(32));

  expect(signed.result).toHaveLength(64);
  expect(Date.now() - started).toBeGreaterThanOrEqual(1000); // Retry-After was honoured
  expect(kv.stats.faultsInjected).toBe(faultsInjected + 3);
  expect(kv.stats.requests.sign).toBe(signRequests + 4);
  expect(kv.stats.signCalls).toBe(signCalls + 1);
});

test('a 429 without Retry-After is not retried by the SDK (callers need their own policy)', async () => {
  kv.faults.failNext({ status: 429, count: 1, operation: 'sign' });
  await expect(crypto.sign('ES256K', randomBytes(32))).rejects.toMatchObject({ statusCode: 429, code: 'Throttled' });
  expect((await crypto.sign('ES256K', randomBytes(32))).result).toHaveLength(64);
});

test('rejects a wrong digest length or algorithm with 400 naming the problem', async () => {
  const shortDigest = await failure(crypto.sign('ES256K', randomBytes(31)));
  expect(shortDigest.statusCode).toBe(400);
  expect(shortDigest.message).toMatch(/digest length: 31 bytes.*32-byte digest/);
  const wrongAlg = await failure(crypto.sign('ES256', randomBytes(32)));
  expect(wrongAlg.statusCode).toBe(400);
  expect(wrongAlg.message).toMatch(/ES256.*not valid for a P-256K key/);
});

test('unknown keys and versions give 404 KeyNotFound', async () => {
  await expect(keys.getKey('no-such-key')).rejects.toMatchObject({ statusCode: 404, code: 'KeyNotFound' });
  await expect(keys.getKey('bank-signer', { version: '0'.repeat(32) })).rejects.toMatchObject({
    statusCode: 404,
    code: 'KeyNotFound',
  });
  const sign = await raw('POST', `/keys/no-such-key/${'0'.repeat(32)}/sign?${API}`, { alg: 'ES256K', value: 'AA' });
  expect(sign.status).toBe(404);
});

test('honours key_ops: signing with a verify-only key is forbidden', async () => {
  const verifyOnly = await keys.createEcKey('verify-only', { hsm: true, curve: 'P-256K', keyOps: ['verify'] });
  const digest = randomBytes(32).toString('base64url');
  const response = await raw('POST', `/keys/verify-only/${verifyOnly.properties.version}/sign?${API}`, {
    alg: 'ES256K',
    value: digest,
  });
  expect(response.status).toBe(403);
  expect(response.json.error).toMatchObject({ code: 'Forbidden', innererror: { code: 'KeyOperationForbidden' } });
});

test('each create makes a new version, and an unpinned client silently signs with the newest', async () => {
  const unpinned = keys.getCryptographyClient('bank-signer');
  await unpinned.sign('ES256K', randomBytes(32)); // caches version 1 from its GET
  const second = await keys.createEcKey('bank-signer', { hsm: true, curve: 'P-256K' });
  expect(second.properties.version).not.toBe(key.properties.version);
  expect((await keys.getKey('bank-signer')).properties.version).toBe(second.properties.version);
  expect(hex((await keys.getKey('bank-signer', { version: key.properties.version! })).key!.x)).toBe(hex(key.key!.x));

  // The SDK posts to /keys/bank-signer//sign (latest) yet reports the cached version-1 key id.
  const digest = randomBytes(32);
  const signed = await unpinned.sign('ES256K', digest);
  expect(signed.keyID).toBe(key.id);
  expect(recoversTo(second, digest, signed.result)).toBe(true);
  expect(recoversTo(key, digest, signed.result)).toBe(false);
});

test('unsupported key types and curves are rejected with 400', async () => {
  const rsa = await failure(keys.createRsaKey('rsa'));
  expect(rsa.statusCode).toBe(400);
  expect(rsa.message).toMatch(/Key type 'RSA' is not supported/);
  const p384 = await failure(keys.createEcKey('p384', { curve: 'P-384' }));
  expect(p384.statusCode).toBe(400);
  expect(p384.message).toMatch(/Curve 'P-384' is not supported/);
});

test('stores and returns secrets by version; unknown secrets give 404 SecretNotFound', async () => {
  const set = await raw('PUT', `/secrets/pseudonym-key?${API}`, { value: 'first' });
  await raw('PUT', `/secrets/pseudonym-key?${API}`, { value: 'second' });
  expect(set.status).toBe(200);
  expect(set.json.id).toMatch(new RegExp(`^${kv.url}/secrets/pseudonym-key/[0-9a-f]{32}$`));

  expect((await raw('GET', `/secrets/pseudonym-key/?${API}`)).json.value).toBe('second');
  expect((await raw('GET', `${new URL(set.json.id).pathname}?${API}`)).json.value).toBe('first');
  const missing = await raw('GET', `/secrets/nope?${API}`);
  expect(missing.status).toBe(404);
  expect(missing.json.error.code).toBe('SecretNotFound');
});

test('returns high-s signatures about half the time, so callers must fold s', async () => {
  const signatures = await Promise.all(
    Array.from({ length: 24 }, async () => {
      const digest = randomBytes(32);
      return { digest, signature: (await crypto.sign('ES256K', digest)).result };
    })
  );
  const highS = signatures.filter(({ signature }) => BigInt(`0x${hex(signature.subarray(32))}`) > SECP256K1_N / 2n);
  expect(highS.length).toBeGreaterThanOrEqual(1); // all 24 low would happen with probability 2^-24
  for (const { digest, signature } of signatures) expect(recoversTo(key, digest, signature)).toBe(true);
});

test('keys persist across a restart when a data dir is used, in a file only the owner can read', async () => {
  const dataDir = newDataDir();
  const first = await startKeyVaultStandIn({ tls, dataDir });
  const created = await new KeyClient(first.url, localStackCredential, CLIENT_OPTIONS).createEcKey('durable', {
    hsm: true,
    curve: 'P-256K',
  });
  await first.stop();
  expect(statSync(join(dataDir, 'keyvault.json')).mode & 0o777).toBe(0o600);

  const second = await startKeyVaultStandIn({ tls, dataDir });
  try {
    const reloaded = await new KeyClient(second.url, localStackCredential, CLIENT_OPTIONS).getKey('durable');
    expect(reloaded.properties.version).toBe(created.properties.version);
    expect(hex(reloaded.key!.x)).toBe(hex(created.key!.x));
    const signer = new CryptographyClient(reloaded, localStackCredential, CLIENT_OPTIONS);
    const digest = randomBytes(32);
    expect(recoversTo(created, digest, (await signer.sign('ES256K', digest)).result)).toBe(true);
  } finally {
    await second.stop();
  }
});

test('names the component and port when the requested port is taken', async () => {
  const port = Number(new URL(kv.url).port);
  await expect(startKeyVaultStandIn({ tls, port })).rejects.toThrow(`Key Vault stand-in: port ${port}`);
});
