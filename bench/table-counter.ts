import { Agent, createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

/**
 * A counting HTTP proxy in front of one Azurite table endpoint: Azurite keeps no request counters, so the bench
 * points one bank's `TableEndpoint` here and counts what the real app sends. An entity-group transaction
 * (`$batch`) is one request that carries several operations: both are counted, the operations per table by
 * reading the multipart body's request lines. It runs in a worker thread of its own: on the bench's main thread,
 * busy with the publisher and the Service Bus namespaces while a burst starts, it made every storage request of the
 * bank it counts wait for that thread (that bank's first batch of a burst was signed after both others' in 15 of 23
 * runs, where chance gives a third).
 */
export interface TableCounts {
  requests: number;
  batches: number;
  /** Entity operations: single requests plus every operation inside a batch. */
  operations: number;
  /** Entity operations per table. */
  byTable: Record<string, number>;
  /** HTTP requests per table (an entity-group transaction is one request, of its one table). */
  requestsByTable: Record<string, number>;
  /** The requests per table that write (all but GET: reads and queries), transactions included. */
  writesByTable: Record<string, number>;
  /** Bytes of request and response bodies per table: what the app sends and reads back. */
  bytesSentByTable: Record<string, number>;
  bytesReadByTable: Record<string, number>;
}

export interface TableCounter {
  /** The connection string with its TableEndpoint pointing at the proxy. */
  connectionString: string;
  snapshot(): Promise<TableCounts>;
  stop(): Promise<void>;
}

const SUB_REQUEST = /^(?:GET|PUT|POST|PATCH|DELETE|MERGE) \S+\/([A-Za-z][A-Za-z0-9]*)(?:\(|\?|\s)/gm;

function tableOf(path: string): string {
  // /<account>/<Table>(PartitionKey='…',RowKey='…')?… or /<account>/Tables…
  const name = path.split('/')[2] ?? '';
  return name.replace(/[(?].*$/, '') || '(service)';
}

/** The worker's proxy: counts and forwards to `endpoint`, on a free loopback port. */
async function serveCounting(endpoint: string): Promise<{ port: number; counts: TableCounts; stop(): Promise<void> }> {
  const target = new URL(endpoint);
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const counts: TableCounts = {
    requests: 0,
    batches: 0,
    operations: 0,
    byTable: {},
    requestsByTable: {},
    writesByTable: {},
    bytesSentByTable: {},
    bytesReadByTable: {},
  };
  const addBytes = (into: Record<string, number>, table: string, n: number): void => {
    into[table] = (into[table] ?? 0) + n;
  };
  const add = (table: string, n: number): void => {
    counts.byTable[table] = (counts.byTable[table] ?? 0) + n;
    counts.operations += n;
  };
  const addRequest = (table: string, method: string | undefined): void => {
    counts.requestsByTable[table] = (counts.requestsByTable[table] ?? 0) + 1;
    if (method !== 'GET') counts.writesByTable[table] = (counts.writesByTable[table] ?? 0) + 1;
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const path = req.url ?? '/';
      counts.requests += 1;
      let table = tableOf(path);
      if (path.includes('$batch')) {
        counts.batches += 1;
        const tables = [...body.toString('latin1').matchAll(SUB_REQUEST)].map((m) => m[1]!);
        for (const t of tables) add(t, 1);
        table = tables[0] ?? '(batch)';
      } else add(table, 1);
      addRequest(table, req.method);
      addBytes(counts.bytesSentByTable, table, body.length);
      const upstream = request(
        {
          host: target.hostname,
          port: target.port,
          method: req.method,
          path,
          headers: { ...req.headers, host: target.host },
          agent,
        },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.on('data', (c: Buffer) => addBytes(counts.bytesReadByTable, table, c.length));
          up.pipe(res);
        }
      );
      upstream.on('error', (err) => {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`table counter: ${err.message}`);
      });
      upstream.end(body);
    });
  };

  const server: Server = createServer(handle);
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    counts,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        agent.destroy();
      }),
  };
}

/** The compiled module (the worker runs JavaScript, also when a test loads this file as TypeScript). */
const WORKER_FILE = __filename.endsWith('.ts') ? join(__dirname, '../dist/bench/table-counter.js') : __filename;

type Reply = { port: number } | { counts: TableCounts } | { stopped: true } | { error: string };

export async function startTableCounter(connectionString: string): Promise<TableCounter> {
  const endpoint = /TableEndpoint=([^;]+)/.exec(connectionString)?.[1];
  if (!endpoint) throw new Error('table counter: the connection string has no TableEndpoint');
  const worker = new Worker(WORKER_FILE, { workerData: { tableCounterEndpoint: endpoint } });
  // One question at a time is all the bench asks; each waits for the worker's next answer.
  const next = (): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const onExit = (code: number): void => reject(new Error(`table counter: its worker exited (${code})`));
      worker.once('exit', onExit);
      worker.once('error', reject);
      worker.once('message', (reply: Reply) => {
        worker.off('exit', onExit).off('error', reject);
        if ('error' in reply) reject(new Error(`table counter: ${reply.error}`));
        else resolve(reply);
      });
    });
  const ask = async (question: 'snapshot' | 'stop'): Promise<Reply> => {
    const answer = next();
    worker.postMessage(question);
    return answer;
  };
  const started = await next();
  if (!('port' in started)) throw new Error('table counter: its worker did not start');
  const path = new URL(endpoint).pathname.replace(/\/$/, '');
  return {
    connectionString: connectionString.replace(
      /TableEndpoint=[^;]+/,
      `TableEndpoint=http://127.0.0.1:${started.port}${path}`
    ),
    snapshot: async () => {
      const reply = await ask('snapshot');
      if (!('counts' in reply)) throw new Error('table counter: no counts in its answer');
      return reply.counts;
    },
    stop: async () => {
      await ask('stop');
      await worker.terminate();
    },
  };
}

/** In the worker: serve, answer snapshots (a structured copy of the counts) and stop when asked. */
async function runWorker(port: NonNullable<typeof parentPort>, endpoint: string): Promise<void> {
  try {
    const served = await serveCounting(endpoint);
    port.on('message', (question: 'snapshot' | 'stop') => {
      if (question === 'snapshot') port.postMessage({ counts: served.counts } satisfies Reply);
      else void served.stop().then(() => port.postMessage({ stopped: true } satisfies Reply));
    });
    port.postMessage({ port: served.port } satisfies Reply);
  } catch (err) {
    port.postMessage({ error: (err as Error).message } satisfies Reply);
  }
}

const data = workerData as { tableCounterEndpoint?: string } | null;
if (!isMainThread && parentPort && data?.tableCounterEndpoint) void runWorker(parentPort, data.tableCounterEndpoint);

export function diffCounts(after: TableCounts, before: TableCounts): TableCounts {
  const diff = (a: Record<string, number>, b: Record<string, number>): Record<string, number> =>
    Object.fromEntries(
      Object.entries(a)
        .map(([table, n]) => [table, n - (b[table] ?? 0)] as const)
        .filter(([, d]) => d > 0)
    );
  return {
    requests: after.requests - before.requests,
    batches: after.batches - before.batches,
    operations: after.operations - before.operations,
    byTable: diff(after.byTable, before.byTable),
    requestsByTable: diff(after.requestsByTable, before.requestsByTable),
    writesByTable: diff(after.writesByTable, before.writesByTable),
    bytesSentByTable: diff(after.bytesSentByTable, before.bytesSentByTable),
    bytesReadByTable: diff(after.bytesReadByTable, before.bytesReadByTable),
  };
}
