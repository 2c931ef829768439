import { errorMessage } from '../redact';

/**
 * A deliberately small JSON-RPC client for probing validators. ethers' provider retries, batches and caches,
 * which hides exactly what a health probe must see (which call failed, how long it took, what came back),
 * so the probe speaks JSON-RPC itself. Every answer is external input: the envelope is validated here, the
 * result by the callers (rpc-parse.ts, validator-methods.ts).
 */

/** The node answered with a JSON-RPC error object. */
export class RpcError extends Error {
  constructor(
    readonly method: string,
    readonly code: number,
    readonly rpcMessage: string
  ) {
    super(`${method} failed: ${rpcMessage} (JSON-RPC error ${code})`);
    this.name = 'RpcError';
  }
}

/** No usable answer: network failure, timeout, HTTP error, or a malformed JSON-RPC envelope. */
export class ProbeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProbeError';
  }
}

/**
 * The node does not offer the method. -32601 is JSON-RPC's "method not found" (geth: "the method … does not
 * exist/is not available"); Besu answers -32604 "Method not enabled" for an API not switched on. Some proxies
 * wrap either in a generic -32000, so their usual wording is accepted there too.
 */
export function isMethodNotFound(err: unknown): boolean {
  if (!(err instanceof RpcError)) return false;
  if (err.code === -32601) return true;
  const text = err.rpcMessage.toLowerCase();
  const wording = /method not found|does not exist|is not available|not enabled|unsupported method/.test(text);
  return (err.code === -32604 || err.code === -32000) && wording;
}

const MAX_BODY_BYTES = 8 * 1024 * 1024;

export interface RpcCall {
  method: string;
  params: unknown[];
}

/** One endpoint; counts the JSON-RPC calls it makes (a batch of n counts n) and the HTTP requests. */
export class RpcClient {
  calls = 0;
  requests = 0;
  private nextId = 1;
  /** Where requests go: the URL without userinfo, which fetch refuses (quoting the URL in its error). */
  private readonly target: string;
  private readonly authorization: Record<string, string>;

  constructor(readonly url: string) {
    ({ target: this.target, authorization: this.authorization } = splitCredentials(url));
  }

  resetCounters(): void {
    this.calls = 0;
    this.requests = 0;
  }

  async call(method: string, params: unknown[], signal: AbortSignal): Promise<unknown> {
    const id = this.nextId++;
    this.calls++;
    const body = await this.post({ jsonrpc: '2.0', id, method, params }, signal, method);
    return unwrap(body, id, method);
  }

  /** One HTTP request carrying several calls; each result settles on its own (an error does not fail the rest). */
  async batch(calls: RpcCall[], signal: AbortSignal): Promise<PromiseSettledResult<unknown>[]> {
    if (calls.length === 0) return [];
    const ids = calls.map(() => this.nextId++);
    this.calls += calls.length;
    const what = `batch of ${calls.length} (${calls[0]!.method}…)`;
    const body = await this.post(
      calls.map((c, i) => ({ jsonrpc: '2.0', id: ids[i], method: c.method, params: c.params })),
      signal,
      what
    );
    if (!Array.isArray(body)) {
      // A node without batch support answers one error object for the whole request.
      if (isObject(body) && isObject(body.error)) unwrap(body, body.id, what);
      throw new ProbeError(`${what}: expected a JSON array of answers, got ${describe(body)}`);
    }
    const byId = new Map<unknown, unknown>();
    for (const item of body) if (isObject(item)) byId.set(item.id, item);
    return calls.map((c, i) => {
      const item = byId.get(ids[i]);
      if (item === undefined)
        return { status: 'rejected', reason: new ProbeError(`${c.method}: no answer in the batch`) };
      try {
        return { status: 'fulfilled', value: unwrap(item, ids[i], c.method) };
      } catch (err) {
        return { status: 'rejected', reason: err };
      }
    });
  }

  private async post(payload: unknown, signal: AbortSignal, what: string): Promise<unknown> {
    this.requests++;
    let response: Response;
    try {
      response = await fetch(this.target, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', ...this.authorization },
        body: JSON.stringify(payload),
        signal,
        redirect: 'error',
      });
    } catch (err) {
      throw new ProbeError(`${what}: ${networkReason(err, signal)}`);
    }
    let text: string;
    try {
      text = await readCapped(response, signal);
    } catch (err) {
      throw new ProbeError(`${what}: ${err instanceof ProbeError ? err.message : networkReason(err, signal)}`);
    }
    try {
      return JSON.parse(text) as unknown;
    } catch {
      const status = response.ok ? '' : `HTTP ${response.status} ${response.statusText}; `;
      throw new ProbeError(`${what}: ${status}the answer is not JSON (${JSON.stringify(text.slice(0, 80))})`);
    }
  }
}

/** A URL's userinfo as a Basic authorization header (what a node behind basic auth expects), and the URL without it. */
function splitCredentials(url: string): { target: string; authorization: Record<string, string> } {
  const parsed = new URL(url);
  if (!parsed.username && !parsed.password) return { target: url, authorization: {} };
  const userinfo = `${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`;
  parsed.username = '';
  parsed.password = '';
  return {
    target: parsed.toString(),
    authorization: { authorization: `Basic ${Buffer.from(userinfo).toString('base64')}` },
  };
}

function unwrap(body: unknown, id: unknown, method: string): unknown {
  if (!isObject(body)) throw new ProbeError(`${method}: the answer is not a JSON-RPC object (${describe(body)})`);
  if (body.id !== id && body.id !== null)
    throw new ProbeError(`${method}: the answer has id ${JSON.stringify(body.id)}, expected ${String(id)}`);
  if ('error' in body && body.error !== undefined && body.error !== null) {
    const error = body.error;
    if (!isObject(error) || typeof error.code !== 'number' || typeof error.message !== 'string')
      throw new ProbeError(`${method}: malformed JSON-RPC error ${describe(error)}`);
    throw new RpcError(method, error.code, error.message.slice(0, 200));
  }
  if (!('result' in body)) throw new ProbeError(`${method}: the answer has neither result nor error`);
  return body.result;
}

async function readCapped(response: Response, signal: AbortSignal): Promise<string> {
  if (!response.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      await response.body.cancel().catch(() => undefined);
      throw new ProbeError(`answer larger than ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(chunk);
    if (signal.aborted) break;
  }
  return Buffer.concat(chunks).toString('utf8');
}

function networkReason(err: unknown, signal: AbortSignal): string {
  if (signal.aborted) return 'no answer in time (probe timeout)';
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.message)
    return cause.message.includes(cause.code ?? '') ? cause.message : `${cause.code}: ${cause.message}`;
  if (cause?.code) return cause.code;
  return errorMessage(err);
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A short description of an unexpected value for error messages (never the whole answer). */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'string') return `"${value.slice(0, 60)}${value.length > 60 ? '…' : ''}"`;
  if (typeof value === 'object') return `an object with keys ${Object.keys(value).slice(0, 6).join(', ') || 'none'}`;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return `${typeof value} ${String(value)}`;
  return typeof value;
}
