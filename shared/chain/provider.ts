import http from 'node:http';
import https from 'node:https';
import { gunzipSync } from 'node:zlib';
import {
  FetchRequest,
  JsonRpcProvider,
  Network,
  isError,
  makeError,
  type FetchGetUrlFunc,
  type JsonRpcPayload,
  type JsonRpcResult,
} from 'ethers';
import { redactUrl } from '../redact';

/**
 * JSON-RPC access to the PoA network through its load balancer first and fallbacks after. Reads go to the
 * first endpoint that answers; a timeout, a network failure or a server error moves on to the next. ethers
 * parses and validates answers (blocks, transactions); the two the hot path reads raw for speed, logs and receipts,
 * are checked field by field where they are read (parseLogs, parseMinedTx). A malformed answer is an error, not
 * data.
 */
export interface ChainOptions {
  rpcUrls: string[];
  chainId: number;
  timeoutMs?: number;
  /** ethers' polling interval for tx.wait() and similar; keep well under the block time. */
  pollingIntervalMs?: number;
}

export class Chain {
  readonly providers: JsonRpcProvider[];

  constructor(readonly options: ChainOptions) {
    if (options.rpcUrls.length === 0) throw new Error('Chain: at least one RPC URL is needed');
    const network = Network.from(options.chainId);
    this.providers = options.rpcUrls.map((url) => {
      const request = endpointRequest(url, options.timeoutMs ?? 10_000);
      // staticNetwork: no eth_chainId before every call; cacheTimeout -1: never serve a stale nonce or head.
      return new HttpJsonRpcProvider(request, network, {
        staticNetwork: network,
        cacheTimeout: -1,
        pollingInterval: options.pollingIntervalMs ?? 500,
        batchMaxCount: 1,
      });
    });
  }

  /** The load balancer (first URL): what reads default to. */
  get primary(): JsonRpcProvider {
    return this.providers[0]!;
  }

  /** Runs `read` against each endpoint in turn until one succeeds; throws the last failure otherwise. */
  async read<T>(read: (provider: JsonRpcProvider) => Promise<T>): Promise<T> {
    let last: unknown;
    for (const provider of this.providers) {
      try {
        return await read(provider);
      } catch (err) {
        if (!isTransient(err)) throw err;
        last = err;
      }
    }
    throw last;
  }

  /** Checks that the node serves the configured chain; a mismatch is a configuration error worth stopping for. */
  async verifyChainId(): Promise<void> {
    const actual = await this.read((p) => p.send('eth_chainId', []) as Promise<string>);
    if (BigInt(actual) !== BigInt(this.options.chainId)) {
      throw new Error(`CHAIN_ID is ${this.options.chainId} but the RPC endpoint serves chain ${BigInt(actual)}`);
    }
  }

  destroy(): void {
    for (const provider of this.providers) provider.destroy();
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * ethers' HTTP provider, with the answer decoded by the runtime's UTF-8 decoder instead of ethers' JavaScript one:
 * eth_getLogs answers run to megabytes, and decoding them was the largest single CPU cost in a host at saturation.
 * The same steps as JsonRpcProvider._send otherwise (the extension point ethers documents).
 */
class HttpJsonRpcProvider extends JsonRpcProvider {
  // Typed as ethers types it: the answers may be JSON-RPC errors too, which ethers' caller sorts out.
  override async _send(payload: JsonRpcPayload | JsonRpcPayload[]): Promise<JsonRpcResult[]> {
    const request = this._getConnection();
    // As bytes: a string body goes through ethers' JavaScript UTF-8 encoder (a raw transaction runs to 80 KB).
    request.body = Buffer.from(JSON.stringify(payload));
    request.setHeader('content-type', 'application/json');
    const response = await request.send();
    response.assertOk();
    let answer: JsonRpcResult | JsonRpcResult[];
    try {
      answer = JSON.parse(utf8.decode(response.body ?? new Uint8Array())) as typeof answer;
    } catch {
      answer = response.bodyJson as typeof answer; // not UTF-8 JSON: ethers' own error, as before
    }
    return Array.isArray(answer) ? answer : [answer];
  }
}

/**
 * The request ethers sends to one endpoint. ethers copies a request's URL into its error messages
 * (`info.requestUrl`), and those end up in logs and tables; so the request it sees carries the redacted URL,
 * and the real one, with its credentials, is swapped in only on the wire.
 */
export function endpointRequest(url: string, timeoutMs: number): FetchRequest {
  const redacted = redactUrl(url);
  const request = new FetchRequest(redacted);
  request.timeout = timeoutMs;
  if (redacted === url) {
    request.getUrlFunc = getUrl;
    return request;
  }
  request.getUrlFunc = (req, signal) => {
    if (req.url !== redacted) return getUrl(req, signal);
    const real = req.clone();
    real.url = url;
    return getUrl(real, signal);
  };
  return request;
}

/**
 * ethers' Node.js transport with the answer's chunks joined once at the end. ethers' own copies the whole body
 * received so far on every chunk: quadratic in the answer's size, and an eth_getLogs answer of a full chunk runs
 * to megabytes (tens of megabytes of copies and garbage each). Same requests, errors and timeouts otherwise.
 */
const getUrl: FetchGetUrlFunc = (req, signal) =>
  new Promise((resolve, reject) => {
    const fail = (error: Error): void => reject(error); // typed: a rejection is always an Error
    const protocol = req.url.split(':')[0]!.toLowerCase();
    if (protocol !== 'http' && protocol !== 'https')
      return fail(makeError(`unsupported protocol ${protocol}`, 'UNSUPPORTED_OPERATION', { operation: 'request' }));
    const request = (protocol === 'http' ? http : https).request(req.url, { method: req.method, headers: req.headers });
    request.setTimeout(req.timeout, () => {
      request.destroy();
      fail(makeError('request timeout', 'TIMEOUT'));
    });
    signal?.addListener(() => {
      request.destroy();
      fail(makeError('request cancelled', 'CANCELLED'));
    });
    request.on('error', reject);
    request.on('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => {
        try {
          let body = chunks.length > 0 ? Buffer.concat(chunks) : null;
          if (body && response.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
          const headers: Record<string, string> = {};
          for (const [name, value] of Object.entries(response.headers))
            headers[name] = Array.isArray(value) ? value.join(', ') : (value ?? '');
          resolve({ statusCode: response.statusCode ?? 0, statusMessage: response.statusMessage ?? '', headers, body });
        } catch (error) {
          fail(makeError('bad response data', 'SERVER_ERROR', { request: req, info: { error } }));
        }
      });
    });
    request.end(req.body ?? undefined);
  });

/** Failures worth trying another endpoint (or again later) for, decided from ethers' error codes. */
export function isTransient(err: unknown): boolean {
  return (
    isError(err, 'TIMEOUT') ||
    isError(err, 'NETWORK_ERROR') ||
    isError(err, 'SERVER_ERROR') ||
    isError(err, 'UNKNOWN_ERROR') ||
    (err as { code?: string }).code === 'ECONNREFUSED'
  );
}
