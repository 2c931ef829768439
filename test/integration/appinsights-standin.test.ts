import { randomUUID } from 'node:crypto';
import * as diagnostics from 'node:diagnostics_channel';
import { existsSync } from 'node:fs';
import type { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { startAppInsightsStandIn, type AppInsightsStandIn, type TelemetryRecord } from '../../local/stack/appinsights';
import { generateLocalTls, trustCertificate, type LocalTls } from '../../local/stack/tls';
import { createTelemetry, type Telemetry } from '../../shared/telemetry';

/**
 * Watches every outgoing connection of this process (http/https, fetch, raw net/tls) so the test fails if the
 * SDK contacts anything but a stand-in: statsbeat, live metrics, OneSettings or an IMDS probe would show here.
 */
function watchOutbound(): { targets: string[]; stop(): void } {
  const targets: string[] = [];
  const onHttp = (message: unknown): void => {
    const { request } = message as { request: { getHeader(name: string): unknown } };
    targets.push(`http ${String(request.getHeader('host'))}`);
  };
  const onFetch = (message: unknown): void => {
    targets.push(`fetch ${(message as { request: { origin: string } }).request.origin}`);
  };
  const onSocket = (message: unknown): void => {
    (message as { socket: Socket }).socket.once('connectionAttempt', (ip: string, port: number) =>
      targets.push(`tcp ${ip}:${port}`)
    );
  };
  diagnostics.subscribe('http.client.request.start', onHttp);
  diagnostics.subscribe('undici:request:create', onFetch);
  diagnostics.subscribe('net.client.socket', onSocket);
  return {
    targets,
    stop: () => {
      diagnostics.unsubscribe('http.client.request.start', onHttp);
      diagnostics.unsubscribe('undici:request:create', onFetch);
      diagnostics.unsubscribe('net.client.socket', onSocket);
    },
  };
}

/** The exporter's process-wide OneSettings poller (see shared/telemetry.ts); it must not be left running. */
function settingsPollerRunning(): boolean {
  const sdkDir = dirname(require.resolve('applicationinsights'));
  const entry = require.resolve('@azure/monitor-opentelemetry-exporter', { paths: [sdkDir] });
  const file = join(dirname(entry), '_configuration', 'configurationManager.js');
  expect(existsSync(file)).toBe(true);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { ConfigurationManager } = require(file) as { ConfigurationManager: { getInstance(): { worker?: unknown } } };
  return ConfigurationManager.getInstance().worker !== undefined;
}

async function postTrack(standIn: AppInsightsStandIn, body: string | Buffer, headers: Record<string, string> = {}) {
  const res = await fetch(`${standIn.url}/v2.1/track`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function envelope(iKey: string, name: string, value: number): Record<string, unknown> {
  return {
    name: 'Microsoft.ApplicationInsights.Metric',
    time: new Date().toISOString(),
    iKey,
    tags: { 'ai.cloud.role': 'raw-client' },
    data: { baseType: 'MetricData', baseData: { ver: 2, metrics: [{ name, value, count: 1 }], properties: {} } },
  };
}

describe('Application Insights stand-in with the real applicationinsights SDK', () => {
  const outbound = watchOutbound();
  let tls: LocalTls;
  let standIn: AppInsightsStandIn;
  let other: AppInsightsStandIn | undefined;
  let telemetry: Telemetry;
  const startedAt = Date.now();

  beforeAll(async () => {
    // A unique subject: certificates sharing the default one (another suite in this worker) make OpenSSL pick
    // the wrong trusted issuer at random ("self-signed certificate").
    tls = await generateLocalTls(`appinsights stand-in test ${randomUUID()}`);
    trustCertificate(tls.certPem);
    standIn = await startAppInsightsStandIn({ tls });
    telemetry = createTelemetry({ connectionString: standIn.connectionString, roleName: 'ledger-bridge-test' });
  });

  afterAll(async () => {
    outbound.stop();
    await Promise.all([standIn?.stop(), other?.stop()]);
  });

  test('metric, event and availability sent through the SDK arrive after flush', async () => {
    telemetry.metric('outbox.depth', 42, { bank: 'bank-a', validator: 'v1' });
    telemetry.event('validator.state', { validator: 'v1', state: 'down' }, { lagBlocks: 7 });
    telemetry.availability({
      name: 'validator v1',
      runLocation: 'bank-a',
      success: false,
      durationMs: 1234,
      message: 'connection refused',
      properties: { rpc: 'http://127.0.0.1:1' },
    });
    const flushStarted = Date.now();
    await telemetry.flush();
    console.log(`flush took ${Date.now() - flushStarted} ms`);

    const arrived = (r: TelemetryRecord, type: TelemetryRecord['type'], name: string): boolean =>
      r.type === type && r.name === name;
    const [metric] = await standIn.waitFor((r) => arrived(r, 'metric', 'outbox.depth'), 2000);
    expect(metric).toMatchObject({
      value: 42,
      count: 1,
      properties: { bank: 'bank-a', validator: 'v1' },
      roleName: 'ledger-bridge-test',
      iKey: standIn.instrumentationKey,
    });

    const [event] = await standIn.waitFor((r) => arrived(r, 'event', 'validator.state'), 2000);
    expect(event).toMatchObject({
      properties: { validator: 'v1', state: 'down' },
      measurements: { lagBlocks: 7 },
      roleName: 'ledger-bridge-test',
    });

    const [availability] = await standIn.waitFor((r) => arrived(r, 'availability', 'validator v1'), 2000);
    expect(availability).toMatchObject({
      success: false,
      durationMs: 1234,
      runLocation: 'bank-a',
      message: 'connection refused',
      properties: { rpc: 'http://127.0.0.1:1' },
      roleName: 'ledger-bridge-test',
    });
    expect(Date.parse(availability!.time)).toBeGreaterThanOrEqual(startedAt - 1000);
  });

  test('exceptions arrive with their type and properties', async () => {
    telemetry.exception(new RangeError('nonce gap'), { signer: '0xabc' });
    await telemetry.flush();
    const [exception] = await standIn.waitFor((r) => r.type === 'exception', 2000);
    expect(exception).toMatchObject({ name: 'RangeError', properties: { signer: '0xabc' } });
  });

  test('GET /query serves the simplified records to other processes', async () => {
    const query = async (params: string): Promise<TelemetryRecord[]> => {
      const res = await fetch(`${standIn.url}/query?${params}`);
      expect(res.status).toBe(200);
      return ((await res.json()) as { records: TelemetryRecord[] }).records;
    };
    const metrics = await query(`type=metric&name=outbox.depth&sinceMs=${startedAt}`);
    expect(metrics).toHaveLength(1);
    expect(metrics[0]).toMatchObject({ value: 42, properties: { validator: 'v1' } });
    expect((await query('type=availability')).map((r) => r.success)).toEqual([false]);
    expect(await query(`sinceMs=${Date.now() + 60_000}`)).toEqual([]);
  });

  test('answers like the ingestion service: 400 on malformed bodies, gzip and newline-delimited JSON accepted', async () => {
    const malformed = await postTrack(standIn, '{"name": oops');
    expect(malformed.status).toBe(400);
    expect(JSON.stringify(malformed.body)).toContain('malformed JSON');
    expect((await postTrack(standIn, '')).status).toBe(400);
    expect((await postTrack(standIn, 'garbage', { 'content-encoding': 'gzip' })).status).toBe(400);

    const ndjson = [envelope(standIn.instrumentationKey, 'raw.a', 1), envelope(standIn.instrumentationKey, 'raw.b', 2)]
      .map((e) => JSON.stringify(e))
      .join('\n');
    const accepted = await postTrack(standIn, gzipSync(ndjson), { 'content-encoding': 'gzip' });
    expect(accepted).toEqual({ status: 200, body: { itemsReceived: 2, itemsAccepted: 2, errors: [] } });

    const partial = await postTrack(standIn, JSON.stringify([envelope('k', 'raw.c', 3), { name: 'no data' }]));
    expect(partial.status).toBe(206);
    expect(partial.body).toMatchObject({ itemsReceived: 2, itemsAccepted: 1, errors: [{ index: 1, statusCode: 400 }] });
    expect(standIn.envelopes({ type: 'metric' }).map((r) => r.name)).toEqual(
      expect.arrayContaining(['raw.a', 'raw.b', 'raw.c'])
    );
  });

  test('waitFor rejects listing what did arrive', async () => {
    await expect(standIn.waitFor((r) => r.name === 'never.sent', 200)).rejects.toThrow(
      /received: .*metric "outbox.depth"=42/
    );
  });

  test('a second client to a second stand-in stays separate', async () => {
    other = await startAppInsightsStandIn({ tls, retentionMinutes: 5 });
    const second = createTelemetry({ connectionString: other.connectionString, roleName: 'second-role' });
    second.event('only.second');
    telemetry.event('only.first');
    await Promise.all([second.flush(), telemetry.flush()]);
    expect(other.envelopes().map((r) => `${r.roleName}/${r.name}`)).toEqual(['second-role/only.second']);
    expect(standIn.envelopes({ name: 'only.second' })).toEqual([]);
    expect(standIn.envelopes({ name: 'only.first' })).toHaveLength(1);
  });

  test('a busy port fails with a message naming the stand-in and the port', async () => {
    await expect(startAppInsightsStandIn({ tls, port: standIn.port })).rejects.toThrow(
      new RegExp(`Application Insights stand-in: port ${standIn.port} .*in use`)
    );
  });

  test('without a connection string telemetry is dropped with one warning', async () => {
    const warnings: string[] = [];
    const dropping = createTelemetry({ roleName: 'no-ai', logger: { warn: (m) => warnings.push(m) } });
    dropping.metric('x', 1);
    dropping.event('y');
    await dropping.flush();
    expect(warnings).toEqual([expect.stringContaining('no Application Insights connection string')]);
  });

  test('nothing but the stand-ins was contacted, and no auto-collected telemetry was sent', () => {
    expect(settingsPollerRunning()).toBe(false);
    expect(standIn.unexpectedRequests()).toEqual([]);
    const allowed = new Set([standIn, other!].flatMap((s) => [`http 127.0.0.1:${s.port}`, `tcp 127.0.0.1:${s.port}`]));
    allowed.add(`fetch ${standIn.url}`);
    expect(outbound.targets.length).toBeGreaterThan(0);
    expect(outbound.targets.filter((t) => !allowed.has(t))).toEqual([]);
    const types = new Set(standIn.envelopes().map((r) => r.type));
    expect(types.has('request') || types.has('dependency') || types.has('trace')).toBe(false);
  });
});
