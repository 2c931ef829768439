import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ServiceBusClient } from '@azure/service-bus';
import { spawnFunctionHost, type RunningHost } from '../../local/host/spawn';
import { startNamespace, type LocalServiceBusNamespace } from '../../local/servicebus/namespace';
import { deadLetterOf } from './support/dead-letters';
import { eventually } from './support/eventually';

/**
 * The local Functions host, as a child process, driving a fixture app's timer, HTTP and Service Bus triggers; the
 * messages travel through the local AMQP namespace, sent and inspected with @azure/service-bus.
 */
describe('local Functions host', () => {
  let namespace: LocalServiceBusNamespace;
  let client: ServiceBusClient;
  let host: RunningHost;
  const logs: string[] = [];
  const LOCK_MS = 2_000;

  interface Observed {
    appStarted: boolean;
    ticks: { at: string }[];
    messages: { messageId: string; deliveryCount: number; text: string }[];
    batches: { bodies: unknown[]; messageIds: string[]; deliveryCounts: number[] }[];
  }
  const observed = async (): Promise<Observed> => (await fetch(`${host.url}/api/observed`)).json() as Promise<Observed>;

  beforeAll(async () => {
    namespace = await startNamespace({
      queues: [
        { name: 'work-items', maxDeliveryCount: 3, lockDurationMs: LOCK_MS },
        { name: 'batch-items', maxDeliveryCount: 2 },
      ],
      sharedAccessKeyName: 'RootManageSharedAccessKey',
      sharedAccessKey: randomBytes(32).toString('base64'),
    });
    client = new ServiceBusClient(namespace.connectionString);
    host = await spawnFunctionHost({
      name: 'fixture host',
      appDir: join(__dirname, '../fixtures/host-app'),
      settings: { ServiceBusConnection: namespace.connectionString, TICK_SCHEDULE: '*/1 * * * * *' },
      onLine: (line) => logs.push(line),
    });
  });

  afterAll(async () => {
    await host?.stop();
    await client?.close();
    await namespace?.stop();
  });

  const send = (queue: string, messages: { body: unknown; messageId: string }[]): Promise<void> =>
    client.createSender(queue).sendMessages(messages);

  it('loads the app through @azure/functions-core and runs its appStart hook', async () => {
    expect(host.functions.sort()).toEqual(['echo', 'observed', 'tick', 'work', 'workBatch']);
    expect((await observed()).appStarted).toBe(true);
    const res = await fetch(`${host.url}/admin/functions`, { headers: { 'x-functions-key': host.masterKey } });
    const list = (await res.json()) as {
      name: string;
      trigger: string;
      bindings: Record<string, { queueName?: string }>;
    }[];
    expect(list.find((f) => f.name === 'work')).toMatchObject({ trigger: 'serviceBusTrigger' });
    expect(Object.values(list.find((f) => f.name === 'work')!.bindings)[0]!.queueName).toBe('work-items');
  });

  it('fires a timer on its NCRONTAB schedule (resolved from an app setting)', async () => {
    const first = (await observed()).ticks.length;
    const later = await eventually(observed, (o) => o.ticks.length >= first + 2, 'two timer ticks');
    const [a, b] = later.ticks.slice(-2).map((t) => Date.parse(t.at));
    expect(b! - a!).toBeGreaterThanOrEqual(500);
  });

  it('runs a timer on demand through the admin API', async () => {
    const before = (await observed()).ticks.length;
    const res = await fetch(`${host.url}/admin/functions/tick?wait=true`, {
      method: 'POST',
      headers: { 'x-functions-key': host.masterKey, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(await res.json()).toEqual({ status: 'Succeeded' });
    expect((await observed()).ticks.length).toBeGreaterThan(before);
    const denied = await fetch(`${host.url}/admin/functions/tick`, { method: 'POST', body: '{}' });
    expect(denied.status).toBe(401);
  });

  it('serves an HTTP function with route parameters, query, body and function-key auth', async () => {
    const url = `${host.url}/api/echo/42?q=hello`;
    const ok = await fetch(url, {
      method: 'POST',
      headers: { 'x-functions-key': host.functionKey },
      body: JSON.stringify({ a: 1 }),
    });
    expect(ok.status).toBe(201);
    expect(ok.headers.get('x-echo')).toBe('yes');
    expect(await ok.json()).toEqual({ id: '42', q: 'hello', body: { a: 1 }, method: 'POST' });
    expect((await fetch(url, { method: 'POST', body: '{}' })).status).toBe(401);
    expect((await fetch(`${url}&code=wrong`, { method: 'POST', body: '{}' })).status).toBe(401);
    expect(
      (await fetch(`${host.url}/api/echo/not-a-number?code=${host.functionKey}`, { method: 'POST', body: '{}' })).status
    ).toBe(404);
    expect((await fetch(`${url}&code=${host.functionKey}`, { method: 'GET' })).status).toBe(405);
  });

  it('keeps its keys off the command line, where every user can read them (ps)', () => {
    const argv = readFileSync(`/proc/${host.process.child.pid}/cmdline`, 'utf8').split('\0');
    expect(argv.join(' ')).toContain('main.js');
    for (const key of [host.masterKey, host.functionKey]) expect(argv.join(' ')).not.toContain(key);
  });

  it('answers 401, not 500, to a key of the right length in multibyte characters', async () => {
    const multibyte = 'é'.repeat(host.functionKey.length);
    const url = `${host.url}/api/echo/42?code=${encodeURIComponent(multibyte)}`;
    expect((await fetch(url, { method: 'POST', body: '{}' })).status).toBe(401);
    const header = await fetch(`${host.url}/admin/functions`, { headers: { 'x-functions-key': 'é'.repeat(32) } });
    expect(header.status).toBe(401);
  });

  it('never logs the key of a request URL (?code=), even when the request fails', async () => {
    const failed = await fetch(`${host.url}/api/echo/7?q=x&code=${host.functionKey}`, {
      method: 'POST',
      body: 'not json',
    });
    expect(failed.status).toBe(500);
    const line = await eventually(
      () => logs.find((l) => l.includes('HTTP POST /api/echo/7')),
      (l) => l !== undefined,
      'the failed request in the log'
    );
    expect(line).toContain('HTTP POST /api/echo/7?q=***&code=*** failed');
    expect(logs.join('\n')).not.toContain(host.functionKey);
  });

  it('delivers a queue message with Service Bus metadata and completes it', async () => {
    const messageId = 'msg-ok-1';
    await send('work-items', [{ body: Buffer.from([0x7b, 0x22, 0x6f, 0x6b, 0x22, 0x7d]), messageId }]);
    const o = await eventually(observed, (v) => v.messages.some((m) => m.messageId === messageId), 'the message');
    expect(o.messages.filter((m) => m.messageId === messageId)).toEqual([
      { messageId, deliveryCount: 1, text: '{"ok"}' },
    ]);
    await eventually(
      () => namespace.counts('work-items'),
      (c) => c.active === 0,
      'the queue to be empty'
    );
  });

  it('renews the lock while a function outlives it, so the message is delivered once and completed', async () => {
    const messageId = 'msg-slow-1';
    await send('work-items', [{ body: Buffer.from(`sleep:${LOCK_MS * 2}`), messageId }]);
    await eventually(observed, (v) => v.messages.some((m) => m.messageId === messageId), 'the slow message');
    await eventually(
      () => namespace.counts('work-items'),
      (c) => c.active === 0,
      'the slow message to be completed'
    );
    const deliveries = (await observed()).messages.filter((m) => m.messageId === messageId);
    expect(deliveries.map((m) => m.deliveryCount)).toEqual([1]);
  });

  it('abandons a failing message (the delivery count grows) until Service Bus dead-letters it at maxDeliveryCount', async () => {
    const messageId = 'msg-fail-1';
    await send('work-items', [{ body: Buffer.from('please fail'), messageId }]);
    const letter = await deadLetterOf(namespace.connectionString, 'work-items', messageId);
    expect(letter.deadLetterReason).toBe('MaxDeliveryCountExceeded');
    expect(letter.deadLetterErrorDescription).toBe('Message could not be consumed after 3 delivery attempts.');
    expect(Buffer.from(letter.body as Uint8Array).toString()).toBe('please fail');
    const deliveries = (await observed()).messages.filter((m) => m.messageId === messageId).map((m) => m.deliveryCount);
    expect(deliveries).toEqual([1, 2, 3]);
  });

  it('hands a cardinality-many function a batch with per-message metadata and settles the batch together', async () => {
    const items = [1, 2, 3].map((n) => ({ body: { n }, messageId: `batch-ok-${n}` }));
    await send('batch-items', items);
    await eventually(
      () => namespace.counts('batch-items'),
      (c) => c.active === 0,
      'the batch to be completed'
    );
    const seen = (await observed()).batches.filter((b) => b.messageIds.some((id) => id.startsWith('batch-ok-')));
    expect(seen.flatMap((b) => b.bodies)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    expect(seen.flatMap((b) => b.messageIds)).toEqual(items.map((i) => i.messageId));
    expect(seen.flatMap((b) => b.deliveryCounts)).toEqual([1, 1, 1]);
    expect(seen.every((b) => b.bodies.length <= 5)).toBe(true); // host.json maxMessageBatchSize

    // A failing batch is abandoned as a whole: both messages come back, then go to the dead-letter queue.
    await send('batch-items', [
      { body: { n: 'fail' }, messageId: 'batch-fail-1' },
      { body: { n: 4 }, messageId: 'batch-fail-2' },
    ]);
    for (const id of ['batch-fail-1', 'batch-fail-2']) {
      expect((await deadLetterOf(namespace.connectionString, 'batch-items', id)).deadLetterReason).toBe(
        'MaxDeliveryCountExceeded'
      );
    }
  });

  it('refuses to start a Service Bus trigger whose connection setting is missing, naming the setting', async () => {
    const start = spawnFunctionHost({
      name: 'fixture host without a connection',
      appDir: join(__dirname, '../fixtures/host-app'),
      settings: { TICK_SCHEDULE: '*/1 * * * * *' },
    });
    await expect(start).rejects.toThrow(/app setting ServiceBusConnection is not set/);
  });
});
