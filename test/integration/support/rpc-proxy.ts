import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

/**
 * A JSON-RPC endpoint behind credentials, as hosted providers offer them: basic auth (userinfo), a project key in
 * the path (`/v3/<key>`) and a token in the query, all random per proxy, in front of the local chain. Methods in
 * `failing` answer HTTP 500 and those in `refusing` a JSON-RPC error (as a node refuses a call), so a test can make
 * the app's calls fail and see where the error text goes.
 */
export interface RpcProxy {
  /** The endpoint as a bank would configure it, credentials included. */
  url: string;
  /** Every credential in `url`, and the Basic header value a client derives from the userinfo. */
  secrets: string[];
  failing: Set<string>;
  /** Methods answered with the JSON-RPC error `{ code: -32000, message: 'execution refused' }`. */
  refusing: Set<string>;
  counts: { forwarded: number; failed: number; refused: number };
  /** Calls forwarded, per JSON-RPC method. */
  methods: Map<string, number>;
  stop(): Promise<void>;
}

export async function startRpcProxy(target: string): Promise<RpcProxy> {
  const user = `user${randomBytes(4).toString('hex')}`;
  const password = randomBytes(18).toString('base64url');
  const pathKey = randomBytes(16).toString('hex');
  const queryToken = randomBytes(12).toString('base64url');
  const basic = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  const failing = new Set<string>();
  const refusing = new Set<string>();
  const counts = { forwarded: 0, failed: 0, refused: 0 };
  const methods = new Map<string, number>();

  const authorized = (req: IncomingMessage): boolean => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    return (
      req.headers.authorization === basic &&
      url.pathname === `/v3/${pathKey}` &&
      url.searchParams.get('apikey') === queryToken
    );
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    if (!authorized(req)) {
      counts.refused++;
      res.writeHead(401).end();
      return;
    }
    const parsed = JSON.parse(body.toString('utf8')) as unknown;
    const calls = [parsed].flat() as { method?: string; id?: unknown }[];
    if (calls.some((c) => c.method !== undefined && failing.has(c.method))) {
      counts.failed++;
      res.writeHead(500, { 'content-type': 'text/plain' }).end('upstream unavailable');
      return;
    }
    if (calls.some((c) => c.method !== undefined && refusing.has(c.method))) {
      counts.failed++;
      const error = { code: -32000, message: 'execution refused' };
      const answers = calls.map(({ id }) => ({ jsonrpc: '2.0', id, error }));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(Array.isArray(parsed) ? answers : answers[0]));
      return;
    }
    counts.forwarded++;
    for (const { method } of calls) if (method) methods.set(method, (methods.get(method) ?? 0) + 1);
    const answer = await fetch(target, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    res.writeHead(answer.status, { 'content-type': 'application/json' }).end(Buffer.from(await answer.arrayBuffer()));
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://${user}:${password}@127.0.0.1:${port}/v3/${pathKey}?apikey=${queryToken}`,
    secrets: [user, password, pathKey, queryToken, basic.slice('Basic '.length)],
    failing,
    refusing,
    counts,
    methods,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
