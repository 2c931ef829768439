import { createECDH, generateKeyPairSync, randomBytes, type JsonWebKey } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { assertPortFree, freePort } from './ports';
import type { LocalTls } from './tls';

/**
 * HTTPS stand-in for the Azure Key Vault data plane: the subset @azure/keyvault-keys uses for EC keys (create, get,
 * sign, verify) plus secret set/get. Private keys never leave it: every response carries the public JWK only.
 */

export type KeyVaultOperation = 'createKey' | 'getKey' | 'sign' | 'verify' | 'setSecret' | 'getSecret' | 'unsupported';

export interface KeyVaultFaultSpec {
  status: 429 | 500 | 503;
  count: number;
  /** Sent as Retry-After (429 and 503 only); without it the SDK does not retry a 429. */
  retryAfterSeconds?: number;
  operation?: KeyVaultOperation | '*';
}

export interface KeyVaultSlowSpec {
  /** How long the answer is held back. */
  delayMs: number;
  count: number;
  operation?: KeyVaultOperation | '*';
}

export interface KeyVaultFaults {
  /** The next `count` authenticated requests for `operation` (default any) fail with `status`. */
  failNext(spec: KeyVaultFaultSpec): void;
  /** The next `count` authenticated requests for `operation` (default any) answer only after `delayMs`. */
  slowNext(spec: KeyVaultSlowSpec): void;
  /** Delay added to every request, to mimic an HSM round trip in benchmarks. */
  latencyMs: number;
  clear(): void;
}

export interface KeyVaultStats {
  /** Signatures actually produced. */
  signCalls: number;
  /** 401 challenges sent to requests without a bearer token. */
  challenges: number;
  faultsInjected: number;
  /** Every request received, by operation, including challenged and faulted ones. */
  requests: Record<KeyVaultOperation, number>;
}

export interface KeyVaultStandIn {
  url: string;
  faults: KeyVaultFaults;
  stats: KeyVaultStats;
  stop(): Promise<void>;
}

/** The shape the real service's challenge has; the SDK splits on `, ` and reads authorization/resource. */
const CHALLENGE =
  'Bearer authorization="https://login.microsoftonline.com/00000000-0000-4000-8000-00000000cafe", resource="https://vault.azure.net"';
const NAME_PATTERN = /^[0-9a-zA-Z-]{1,127}$/;
const MAX_BODY_BYTES = 1 << 20;

interface Curve {
  nodeName: string;
  alg: string;
  p: bigint;
  a: bigint;
  n: bigint;
}

const SECP256K1_P = 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2fn;
const P256_P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const CURVES: Record<string, Curve> = {
  'P-256K': {
    nodeName: 'secp256k1',
    alg: 'ES256K',
    p: SECP256K1_P,
    a: 0n,
    n: 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n,
  },
  'P-256': {
    nodeName: 'prime256v1',
    alg: 'ES256',
    p: P256_P,
    a: P256_P - 3n,
    n: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  },
};

interface StoredKey {
  version: string;
  kty: string;
  crv: string;
  keyOps: string[];
  created: number;
  tags?: Record<string, string>;
  /** Private JWK (x, y, d). Never serialized into a response. */
  jwk: JsonWebKey;
}

interface StoredSecret {
  version: string;
  value: string;
  contentType?: string;
  created: number;
}

interface VaultState {
  keys: Record<string, StoredKey[]>;
  secrets: Record<string, StoredSecret[]>;
}

class KvError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly innerCode?: string
  ) {
    super(message);
  }
}

const badParameter = (message: string) => new KvError(400, 'BadParameter', message);

// ---------- ECDSA over a caller-supplied digest (node:crypto only signs messages it hashes itself) ----------

const mod = (x: bigint, m: bigint) => ((x % m) + m) % m;
const toBig = (bytes: Buffer) => BigInt(`0x${bytes.toString('hex') || '0'}`);
const to32 = (x: bigint) => Buffer.from(x.toString(16).padStart(64, '0'), 'hex');

function invert(x: bigint, m: bigint): bigint {
  let [a, b, u, v] = [mod(x, m), m, 1n, 0n];
  while (a !== 0n) [a, b, u, v] = [b % a, a, v - (b / a) * u, u];
  return mod(v, m);
}

/** Random-nonce ECDSA: s is deliberately NOT normalized, as a real HSM returns high s about half the time. */
function ecdsaSign(curve: Curve, d: bigint, digest: Buffer): Buffer {
  for (;;) {
    const k = toBig(randomBytes(32));
    if (k === 0n || k >= curve.n) continue;
    const ecdh = createECDH(curve.nodeName);
    ecdh.setPrivateKey(to32(k)); // native k·G
    const r = mod(toBig(ecdh.getPublicKey().subarray(1, 33)), curve.n);
    const s = mod(invert(k, curve.n) * (toBig(digest) + r * d), curve.n);
    if (r !== 0n && s !== 0n) return Buffer.concat([to32(r), to32(s)]);
  }
}

type Point = { x: bigint; y: bigint } | null;

function addPoints(c: Curve, P: Point, Q: Point): Point {
  if (!P) return Q;
  if (!Q) return P;
  if (P.x === Q.x && mod(P.y + Q.y, c.p) === 0n) return null;
  const lambda =
    P.x === Q.x
      ? mod((3n * P.x * P.x + c.a) * invert(2n * P.y, c.p), c.p)
      : mod((Q.y - P.y) * invert(Q.x - P.x, c.p), c.p);
  const x = mod(lambda * lambda - P.x - Q.x, c.p);
  return { x, y: mod(lambda * (P.x - x) - P.y, c.p) };
}

function multiply(c: Curve, P: Point, k: bigint): Point {
  let result: Point = null;
  for (let addend = P; k > 0n; k >>= 1n, addend = addPoints(c, addend, addend)) {
    if (k & 1n) result = addPoints(c, result, addend);
  }
  return result;
}

function ecdsaVerify(c: Curve, jwk: JsonWebKey, digest: Buffer, signature: Buffer): boolean {
  if (signature.length !== 64) return false;
  const [r, s] = [toBig(signature.subarray(0, 32)), toBig(signature.subarray(32))];
  if (r === 0n || s === 0n || r >= c.n || s >= c.n) return false;
  const generator = createECDH(c.nodeName);
  generator.setPrivateKey(to32(1n)); // 1·G = G, so the base point comes from OpenSSL rather than a constant
  const G = generator.getPublicKey();
  const w = invert(s, c.n);
  const Q = { x: toBig(Buffer.from(jwk.x!, 'base64url')), y: toBig(Buffer.from(jwk.y!, 'base64url')) };
  const X = addPoints(
    c,
    multiply(c, { x: toBig(G.subarray(1, 33)), y: toBig(G.subarray(33)) }, mod(toBig(digest) * w, c.n)),
    multiply(c, Q, mod(r * w, c.n))
  );
  return X !== null && mod(X.x, c.n) === r;
}

// ---------- vault state ----------

class Vault {
  private state: VaultState = { keys: {}, secrets: {} };
  private readonly file?: string;

  constructor(dataDir?: string) {
    if (!dataDir) return;
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    this.file = join(dataDir, 'keyvault.json');
    try {
      this.state = JSON.parse(readFileSync(this.file, 'utf8')) as VaultState;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  createKey(name: string, kty: string, crv: string, keyOps: string[], tags?: Record<string, string>): StoredKey {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: CURVES[crv]!.nodeName });
    const key: StoredKey = {
      version: newVersion(),
      kty,
      crv,
      keyOps,
      created: nowSeconds(),
      tags,
      jwk: privateKey.export({ format: 'jwk' }),
    };
    (this.state.keys[name] ??= []).push(key);
    this.save();
    return key;
  }

  findKey(name: string, version: string): StoredKey {
    const found = pick(this.state.keys[name], version);
    if (!found) throw notFound('KeyNotFound', 'key', name, version);
    return found;
  }

  setSecret(name: string, value: string, contentType?: string): StoredSecret {
    const secret: StoredSecret = { version: newVersion(), value, contentType, created: nowSeconds() };
    (this.state.secrets[name] ??= []).push(secret);
    this.save();
    return secret;
  }

  findSecret(name: string, version: string): StoredSecret {
    const found = pick(this.state.secrets[name], version);
    if (!found) throw notFound('SecretNotFound', 'secret', name, version);
    return found;
  }

  private save(): void {
    if (!this.file) return;
    // Write-then-rename so a crash never leaves a half-written key file; 0600 because it holds private keys.
    writeFileSync(`${this.file}.tmp`, JSON.stringify(this.state), { mode: 0o600 });
    renameSync(`${this.file}.tmp`, this.file);
  }
}

const newVersion = () => randomBytes(16).toString('hex');
const nowSeconds = () => Math.floor(Date.now() / 1000);

function pick<T extends { version: string }>(versions: T[] | undefined, version: string): T | undefined {
  return version ? versions?.find((v) => v.version === version) : versions?.at(-1);
}

function notFound(code: string, kind: string, name: string, version: string): KvError {
  const id = version ? `${name}/${version}` : name;
  return new KvError(404, code, `A ${kind} with (name/id) ${id} was not found in this key vault.`);
}

// ---------- REST handlers ----------

interface Route {
  op: KeyVaultOperation;
  name: string;
  version: string;
}

function route(method: string, segments: string[]): Route {
  const [collection, name = '', third, fourth] = segments;
  const n = segments.length;
  if (collection === 'keys') {
    if (method === 'POST' && n === 3 && third === 'create') return { op: 'createKey', name, version: '' };
    if (method === 'GET' && (n === 2 || n === 3)) return { op: 'getKey', name, version: third ?? '' };
    if (method === 'POST' && n === 4 && (fourth === 'sign' || fourth === 'verify')) {
      return { op: fourth, name, version: third ?? '' };
    }
  }
  if (collection === 'secrets') {
    if (method === 'PUT' && n === 2) return { op: 'setSecret', name, version: '' };
    if (method === 'GET' && (n === 2 || n === 3)) return { op: 'getSecret', name, version: third ?? '' };
  }
  return { op: 'unsupported', name, version: '' };
}

const attributes = (created: number) => ({
  enabled: true,
  created,
  updated: created,
  recoveryLevel: 'Recoverable+Purgeable',
  recoverableDays: 90,
});

function keyBundle(baseUrl: string, name: string, key: StoredKey) {
  const { x, y } = key.jwk;
  const kid = `${baseUrl}/keys/${name}/${key.version}`;
  return {
    key: { kid, kty: key.kty, key_ops: key.keyOps, crv: key.crv, x, y },
    attributes: { ...attributes(key.created), exportable: false },
    ...(key.tags ? { tags: key.tags } : {}),
  };
}

function secretBundle(baseUrl: string, name: string, secret: StoredSecret) {
  const { value, contentType, version, created } = secret;
  return { value, contentType, id: `${baseUrl}/secrets/${name}/${version}`, attributes: attributes(created) };
}

function requireString(body: Record<string, unknown>, field: string): string {
  const value = body[field];
  if (typeof value !== 'string' || value === '')
    throw badParameter(`Property '${field}' is required and must be a string.`);
  return value;
}

function createKey(vault: Vault, baseUrl: string, name: string, body: Record<string, unknown>) {
  if (!NAME_PATTERN.test(name)) throw badParameter(`Key name '${name}' must match ${NAME_PATTERN.source}.`);
  const kty = requireString(body, 'kty');
  if (kty !== 'EC' && kty !== 'EC-HSM') {
    throw badParameter(`Key type '${kty}' is not supported by the Key Vault stand-in (supported: EC, EC-HSM).`);
  }
  const crv = typeof body.crv === 'string' ? body.crv : 'P-256';
  if (!CURVES[crv])
    throw badParameter(`Curve '${crv}' is not supported by the Key Vault stand-in (supported: P-256K, P-256).`);
  const keyOps = body.key_ops ?? ['sign', 'verify'];
  if (!Array.isArray(keyOps) || !keyOps.every((op) => typeof op === 'string')) {
    throw badParameter("Property 'key_ops' must be an array of strings.");
  }
  const tags = body.tags as Record<string, string> | undefined;
  return keyBundle(baseUrl, name, vault.createKey(name, kty, crv, keyOps, tags));
}

/** Resolves the key, checks key_ops, the algorithm for its curve and the digest length, as the service does. */
function keyForOperation(vault: Vault, route: Route, body: Record<string, unknown>, digestField: string) {
  const key = vault.findKey(route.name, route.version);
  if (!key.keyOps.includes(route.op)) {
    throw new KvError(403, 'Forbidden', `Operation ${route.op} is not permitted on this key.`, 'KeyOperationForbidden');
  }
  const curve = CURVES[key.crv]!;
  const alg = requireString(body, 'alg');
  if (alg !== curve.alg) throw badParameter(`Algorithm '${alg}' is not valid for a ${key.crv} key; use ${curve.alg}.`);
  const digest = Buffer.from(requireString(body, digestField), 'base64url');
  if (digest.length !== 32) {
    throw badParameter(`Invalid digest length: ${digest.length} bytes; algorithm ${alg} requires a 32-byte digest.`);
  }
  return { key, curve, digest };
}

// ---------- server ----------

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw badParameter('Request body is too large.');
    chunks.push(chunk);
  }
  if (size === 0) return {};
  try {
    const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // fall through to the same error as a non-object body
  }
  throw badParameter('Request body must be a JSON object.');
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}

function sendError(res: ServerResponse, err: KvError, headers: Record<string, string> = {}): void {
  const innererror = err.innerCode ? { innererror: { code: err.innerCode } } : {};
  send(res, err.status, { error: { code: err.code, message: err.message, ...innererror } }, headers);
}

const FAULT_CODES: Record<number, [string, string]> = {
  429: ['Throttled', 'Request was not processed because too many requests were received.'],
  500: ['InternalServerError', 'The service encountered an internal error.'],
  503: ['ServiceUnavailable', 'The service is temporarily unavailable.'],
};

function createFaults(stats: KeyVaultStats) {
  let pending: KeyVaultFaultSpec[] = [];
  let slow: KeyVaultSlowSpec[] = [];
  const faults: KeyVaultFaults = {
    latencyMs: 0,
    failNext: (spec) => void pending.push({ ...spec }),
    slowNext: (spec) => void slow.push({ ...spec }),
    clear: () => {
      pending = [];
      slow = [];
      faults.latencyMs = 0;
    },
  };
  /** Holds the answer back when a slow fault applies; stops waiting when the client gives up on it. */
  const delay = async (op: KeyVaultOperation, res: ServerResponse): Promise<void> => {
    const fault = slow.find((f) => f.count > 0 && [undefined, '*', op].includes(f.operation));
    if (!fault) return;
    fault.count -= 1;
    slow = slow.filter((f) => f.count > 0);
    stats.faultsInjected += 1;
    const gone = new AbortController();
    res.once('close', () => gone.abort());
    await sleep(fault.delayMs, undefined, { signal: gone.signal }).catch(() => undefined);
  };
  /** Consumes one matching fault and answers with it; false when none applies. */
  const inject = (op: KeyVaultOperation, res: ServerResponse): boolean => {
    const fault = pending.find((f) => f.count > 0 && [undefined, '*', op].includes(f.operation));
    if (!fault) return false;
    fault.count -= 1;
    pending = pending.filter((f) => f.count > 0);
    stats.faultsInjected += 1;
    const [code, message] = FAULT_CODES[fault.status]!;
    const retryAfter: Record<string, string> =
      fault.retryAfterSeconds !== undefined ? { 'retry-after': String(fault.retryAfterSeconds) } : {};
    sendError(res, new KvError(fault.status, code, message), retryAfter);
    return true;
  };
  return { faults, inject, delay };
}

export async function startKeyVaultStandIn(options: {
  tls: LocalTls;
  port?: number;
  dataDir?: string;
}): Promise<KeyVaultStandIn> {
  if (options.port !== undefined) await assertPortFree('Key Vault stand-in', options.port);
  const port = options.port ?? (await freePort());
  const url = `https://127.0.0.1:${port}`;
  const vault = new Vault(options.dataDir);
  const requests = { createKey: 0, getKey: 0, sign: 0, verify: 0, setSecret: 0, getSecret: 0, unsupported: 0 };
  const stats: KeyVaultStats = { signCalls: 0, challenges: 0, faultsInjected: 0, requests };
  const { faults, inject, delay } = createFaults(stats);

  async function dispatch(r: Route, req: IncomingMessage): Promise<unknown> {
    const body = req.method === 'POST' || req.method === 'PUT' ? await readJson(req) : {};
    switch (r.op) {
      case 'createKey':
        return createKey(vault, url, r.name, body);
      case 'getKey':
        return keyBundle(url, r.name, vault.findKey(r.name, r.version));
      case 'sign': {
        const { key, curve, digest } = keyForOperation(vault, r, body, 'value');
        const signature = ecdsaSign(curve, toBig(Buffer.from(key.jwk.d!, 'base64url')), digest);
        stats.signCalls += 1;
        return { kid: `${url}/keys/${r.name}/${key.version}`, value: signature.toString('base64url') };
      }
      case 'verify': {
        const { key, curve, digest } = keyForOperation(vault, r, body, 'digest');
        return { value: ecdsaVerify(curve, key.jwk, digest, Buffer.from(requireString(body, 'value'), 'base64url')) };
      }
      case 'setSecret':
        if (!NAME_PATTERN.test(r.name))
          throw badParameter(`Secret name '${r.name}' must match ${NAME_PATTERN.source}.`);
        return secretBundle(
          url,
          r.name,
          vault.setSecret(r.name, requireString(body, 'value'), body.contentType as string)
        );
      case 'getSecret':
        return secretBundle(url, r.name, vault.findSecret(r.name, r.version));
      case 'unsupported':
        throw new KvError(404, 'NotFound', `The Key Vault stand-in does not implement ${req.method} ${req.url}.`);
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (faults.latencyMs > 0) await sleep(faults.latencyMs);
    const parsed = new URL(req.url ?? '/', url);
    const r = route(req.method ?? 'GET', parsed.pathname.split('/').slice(1).map(decodeURIComponent));
    requests[r.op] += 1;
    if (!/^Bearer \S+/i.test(req.headers.authorization ?? '')) {
      stats.challenges += 1;
      const err = new KvError(401, 'Unauthorized', 'AKV10000: Request is missing a Bearer or PoP token.');
      return sendError(res, err, { 'www-authenticate': CHALLENGE });
    }
    if (!parsed.searchParams.get('api-version')) {
      return sendError(res, badParameter("The 'api-version' query parameter is missing."));
    }
    await delay(r.op, res);
    if (res.closed) return; // the client gave up waiting
    if (inject(r.op, res)) return;
    send(res, 200, await dispatch(r, req));
  }

  const server: Server = createServer({ key: options.tls.keyPem, cert: options.tls.certPem }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof KvError) return sendError(res, err);
      sendError(res, new KvError(500, 'InternalServerError', 'The Key Vault stand-in failed to handle the request.'));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });

  return {
    url,
    faults,
    stats,
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections(); // SDK clients keep connections alive; don't wait for them
      }),
  };
}
