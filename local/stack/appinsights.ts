import { randomUUID } from 'node:crypto';
import { createServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gunzipSync, inflateSync } from 'node:zlib';
import { assertPortFree } from './ports';
import type { LocalTls } from './tls';

const COMPONENT = 'Application Insights stand-in';
const TRACK_PATHS = new Set(['/v2.1/track', '/v2/track']);
const MAX_BODY_BYTES = 16 * 1024 * 1024;
const DEFAULT_MAX_RECORDS = 100_000;

export type TelemetryType =
  'metric' | 'event' | 'availability' | 'exception' | 'trace' | 'request' | 'dependency' | 'pageView' | 'other';

/** One telemetry item as the dashboard and tests need it; metric envelopes yield one record per data point. */
export interface TelemetryRecord {
  type: TelemetryType;
  /** Metric, event, availability, request or dependency name; exception type name; trace message. */
  name: string;
  /** Envelope time (ISO 8601) as the SDK stamped it. */
  time: string;
  /** When the stand-in received it (epoch ms); `sinceMs` and retention use this clock. */
  receivedAt: number;
  iKey: string;
  roleName?: string;
  roleInstance?: string;
  /** Custom dimensions (metrics) or custom properties (everything else). */
  properties: Record<string, string>;
  measurements: Record<string, number>;
  /** Metrics: the SDK pre-aggregates per export interval, so value is the sum of `count` samples. */
  value?: number;
  count?: number;
  min?: number;
  max?: number;
  success?: boolean;
  durationMs?: number;
  runLocation?: string;
  message?: string;
}

export interface TelemetryFilter {
  type?: TelemetryType;
  name?: string;
  /** Epoch ms; records received at or after it. */
  sinceMs?: number;
}

export interface AppInsightsStandIn {
  /** Base URL, e.g. https://127.0.0.1:PORT */
  url: string;
  port: number;
  instrumentationKey: string;
  connectionString: string;
  envelopes(filter?: TelemetryFilter | ((record: TelemetryRecord) => boolean)): TelemetryRecord[];
  /** Resolves with all matching records once at least one arrived; rejects listing what did arrive. */
  waitFor(predicate: (record: TelemetryRecord) => boolean, timeoutMs?: number): Promise<TelemetryRecord[]>;
  /** Requests to anything but the track and query endpoints (live metrics, probes...), as "METHOD /path". */
  unexpectedRequests(): string[];
  clear(): void;
  stop(): Promise<void>;
}

export interface AppInsightsStandInOptions {
  tls: LocalTls;
  port?: number;
  /** Records older than this are dropped (default 30, what the dashboard shows). */
  retentionMinutes?: number;
  /** Hard cap on kept records, oldest dropped first (default 100,000). */
  maxRecords?: number;
}

class BadRequest extends Error {}

type Json = Record<string, unknown>;

export async function startAppInsightsStandIn(options: AppInsightsStandInOptions): Promise<AppInsightsStandIn> {
  if (options.port !== undefined) await assertPortFree(COMPONENT, options.port);
  const retentionMs = (options.retentionMinutes ?? 30) * 60_000;
  const maxRecords = options.maxRecords ?? DEFAULT_MAX_RECORDS;
  let records: TelemetryRecord[] = [];
  const unexpected: string[] = [];
  const waiters = new Set<() => void>();

  const prune = (): void => {
    const oldest = Date.now() - retentionMs;
    const firstKept = records.findIndex((r) => r.receivedAt >= oldest);
    records = firstKept < 0 ? [] : records.slice(Math.max(firstKept, records.length - maxRecords));
  };
  const select = (filter?: TelemetryFilter | ((record: TelemetryRecord) => boolean)): TelemetryRecord[] => {
    prune();
    if (typeof filter === 'function') return records.filter(filter);
    return records.filter((r) => matches(r, filter ?? {}));
  };

  const server = createServer({ cert: options.tls.certPem, key: options.tls.keyPem }, (req, res) => {
    handle(req, res).catch((err: unknown) => reply(res, 500, { error: String(err) }));
  });
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://stand-in');
    if (req.method === 'POST' && TRACK_PATHS.has(url.pathname)) return track(req, res);
    if (req.method === 'GET' && url.pathname === '/query') return reply(res, 200, { records: select(parseQuery(url)) });
    unexpected.push(`${req.method} ${url.pathname}`);
    req.resume();
    reply(res, 404, { error: `${COMPONENT} does not serve ${req.method} ${url.pathname}` });
  }
  async function track(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let items: unknown[];
    try {
      items = parseItems(decode(await readBody(req), req.headers['content-encoding']));
    } catch (err) {
      if (!(err instanceof BadRequest)) throw err;
      return reply(res, 400, {
        itemsReceived: 0,
        itemsAccepted: 0,
        errors: [{ index: 0, statusCode: 400, message: err.message }],
      });
    }
    const receivedAt = Date.now();
    const errors: { index: number; statusCode: number; message: string }[] = [];
    items.forEach((item, index) => {
      const problem = envelopeProblem(item);
      if (problem) errors.push({ index, statusCode: 400, message: problem });
      else records.push(...simplify(item as Json, receivedAt));
    });
    prune();
    for (const wake of waiters) wake();
    // Breeze answers 206 with per-item errors when only part of a batch is accepted.
    reply(res, errors.length ? 206 : 200, {
      itemsReceived: items.length,
      itemsAccepted: items.length - errors.length,
      errors,
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  const url = `https://127.0.0.1:${port}`;
  const instrumentationKey = randomUUID();

  return {
    url,
    port,
    instrumentationKey,
    // LiveEndpoint points here too, so a live-metrics client that slipped through is counted, not sent to Azure.
    connectionString: `InstrumentationKey=${instrumentationKey};IngestionEndpoint=${url}/;LiveEndpoint=${url}/`,
    envelopes: select,
    unexpectedRequests: () => [...unexpected],
    clear: () => {
      records = [];
      unexpected.length = 0;
    },
    waitFor: (predicate, timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const found = select(predicate);
          if (found.length === 0) return;
          finish();
          resolve(found);
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`${COMPONENT}: nothing matched within ${timeoutMs} ms; received: ${describe(select())}`));
        }, timeoutMs);
        const finish = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      }),
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function matches(record: TelemetryRecord, filter: TelemetryFilter): boolean {
  return (
    (filter.type === undefined || record.type === filter.type) &&
    (filter.name === undefined || record.name === filter.name) &&
    (filter.sinceMs === undefined || record.receivedAt >= filter.sinceMs)
  );
}

function parseQuery(url: URL): TelemetryFilter {
  const since = url.searchParams.get('sinceMs');
  return {
    type: (url.searchParams.get('type') as TelemetryType | null) ?? undefined,
    name: url.searchParams.get('name') ?? undefined,
    sinceMs: since === null ? undefined : Number(since),
  };
}

function describe(records: TelemetryRecord[]): string {
  if (records.length === 0) return 'nothing';
  return records.map((r) => `${r.type} "${r.name}"${r.value === undefined ? '' : `=${r.value}`}`).join(', ');
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new BadRequest(`body larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function decode(body: Buffer, encoding: string | undefined): string {
  try {
    switch ((encoding ?? 'identity').toLowerCase()) {
      case 'identity':
        return body.toString('utf8');
      case 'gzip':
        return gunzipSync(body, { maxOutputLength: MAX_BODY_BYTES }).toString('utf8');
      case 'deflate':
        return inflateSync(body, { maxOutputLength: MAX_BODY_BYTES }).toString('utf8');
      default:
        throw new BadRequest(`unsupported content-encoding "${encoding}"`);
    }
  } catch (err) {
    throw err instanceof BadRequest ? err : new BadRequest(`cannot decode ${encoding} body: ${String(err)}`);
  }
}

/** A JSON array of envelopes (the OpenTelemetry exporter) or one envelope per line (the 2.x SDK). */
function parseItems(text: string): unknown[] {
  const trimmed = text.trim();
  if (!trimmed) throw new BadRequest('empty body: expected a JSON array of telemetry envelopes');
  try {
    if (trimmed.startsWith('[')) return JSON.parse(trimmed) as unknown[];
    return trimmed.split('\n').flatMap((line) => (line.trim() ? [JSON.parse(line) as unknown] : []));
  } catch (err) {
    throw new BadRequest(`malformed JSON: ${(err as Error).message}`);
  }
}

function envelopeProblem(item: unknown): string | undefined {
  if (!isObject(item)) return 'telemetry item is not a JSON object';
  if (typeof item.name !== 'string') return 'field "name" is required';
  if (typeof item.time !== 'string' || Number.isNaN(Date.parse(item.time))) return 'field "time" must be a date';
  if (typeof item.iKey !== 'string') return 'field "iKey" is required';
  if (!isObject(item.data) || typeof item.data.baseType !== 'string' || !isObject(item.data.baseData)) {
    return 'field "data" must hold baseType and baseData';
  }
  return undefined;
}

const TYPES: Record<string, TelemetryType> = {
  MetricData: 'metric',
  EventData: 'event',
  AvailabilityData: 'availability',
  ExceptionData: 'exception',
  MessageData: 'trace',
  RequestData: 'request',
  RemoteDependencyData: 'dependency',
  PageViewData: 'pageView',
};

function simplify(envelope: Json, receivedAt: number): TelemetryRecord[] {
  const data = envelope.data as Json;
  const base = data.baseData as Json;
  const tags = isObject(envelope.tags) ? envelope.tags : {};
  const type = TYPES[data.baseType as string] ?? 'other';
  const common = {
    type,
    time: envelope.time as string,
    receivedAt,
    iKey: envelope.iKey as string,
    roleName: optionalString(tags['ai.cloud.role']),
    roleInstance: optionalString(tags['ai.cloud.roleInstance']),
    properties: stringRecord(base.properties),
    measurements: numberRecord(base.measurements),
  };
  if (type === 'metric') {
    const points = Array.isArray(base.metrics) ? (base.metrics as unknown[]).filter(isObject) : [];
    return points.map((point) => ({
      ...common,
      name: String(point.name),
      value: Number(point.value),
      count: optionalNumber(point.count),
      min: optionalNumber(point.min),
      max: optionalNumber(point.max),
    }));
  }
  return [
    {
      ...common,
      name: recordName(type, base),
      success: typeof base.success === 'boolean' ? base.success : undefined,
      durationMs: typeof base.duration === 'string' ? timeSpanToMs(base.duration) : undefined,
      runLocation: optionalString(base.runLocation),
      message: optionalString(base.message),
    },
  ];
}

function recordName(type: TelemetryType, base: Json): string {
  if (type === 'exception') {
    const first = Array.isArray(base.exceptions) ? (base.exceptions as unknown[])[0] : undefined;
    return isObject(first) ? String(first.typeName) : 'Error';
  }
  if (type === 'trace') return String(base.message);
  return String(base.name);
}

/** Application Insights durations are .NET TimeSpans: [d.]hh:mm:ss[.fffffff]. */
function timeSpanToMs(span: string): number | undefined {
  const match = /^(?:(\d+)\.)?(\d+):(\d+):(\d+(?:\.\d+)?)$/.exec(span);
  if (!match) return undefined;
  const [, days = '0', hours = '0', minutes = '0', seconds = '0'] = match;
  return Math.round(((Number(days) * 24 + Number(hours)) * 60 + Number(minutes)) * 60_000 + Number(seconds) * 1000);
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function optionalNumber(value: unknown): number | undefined {
  return typeof value === 'number' ? value : undefined;
}

function stringRecord(value: unknown): Record<string, string> {
  return isObject(value) ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, String(v)])) : {};
}

function numberRecord(value: unknown): Record<string, number> {
  return isObject(value)
    ? Object.fromEntries(Object.entries(value).filter((e): e is [string, number] => typeof e[1] === 'number'))
    : {};
}
