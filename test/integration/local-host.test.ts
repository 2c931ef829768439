import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnFunctionHost, type RunningHost } from '../../local/host/spawn';
import { LocalServiceBusQueue } from '../../local/host/service-bus-queue';
import { startAzurite, type Azurite } from '../../local/stack/azurite';
import { deadLetterOf } from './support/dead-letters';
import { eventually } from './support/eventually';

/** The local Functions host, as a child process, driving a fixture app's timer, HTTP and queue triggers. */
describe('local Functions host', () => {
  let azurite: Azurite;
  let host: RunningHost;
  let queue: LocalServiceBusQueue;
  const logs: string[] = [];

  interface Observed {
    appStarted: boolean;
    ticks: { at: string }[];
    messages: { messageId: string; deliveryCount: number; text: string }[];
  }
  const observed = async (): Promise<Observed> => (await fetch(`${host.url}/api/observed`)).json() as Promise<Observed>;

  beforeAll(async () => {
    azurite = await startAzurite();
    const storage = azurite.accounts[0]!.connectionString;
    host = await spawnFunctionHost({
      name: 'fixture host',
      appDir: join(__dirname, '../fixtures/host-app'),
      settings: {
        AzureWebJobsStorage: storage,
        ServiceBusConnection__fullyQualifiedNamespace: 'local',
        TICK_SCHEDULE: '*/1 * * * * *',
      },
      maxDeliveryCount: 3,
      lockDurationSeconds: 5,
      onLine: (line) => logs.push(line),
    });
    queue = new LocalServiceBusQueue(storage, 'work-items');
  });

  afterAll(async () => {
    await host?.stop();
    await azurite?.stop();
  });

  it('loads the app through @azure/functions-core and runs its appStart hook', async () => {
    expect(host.functions.sort()).toEqual(['echo', 'observed', 'tick', 'work']);
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
    const messageId = await queue.send({
      body: Buffer.from([0x7b, 0x22, 0x6f, 0x6b, 0x22, 0x7d]),
      messageId: 'msg-ok-1',
    });
    const o = await eventually(observed, (v) => v.messages.some((m) => m.messageId === messageId), 'the message');
    expect(o.messages.filter((m) => m.messageId === messageId)).toEqual([
      { messageId, deliveryCount: 1, text: '{"ok"}' },
    ]);
    await eventually(
      () => queue.activeCount(),
      (n) => n === 0,
      'the queue to be empty'
    );
  });

  it('dead-letters a queue message that is not a Service Bus envelope instead of redelivering it forever', async () => {
    await queue.queue.sendMessage(JSON.stringify({ hello: 'not an envelope' }));
    const dead = await eventually(
      () => queue.peekDeadLetters(),
      (list) => list.some((m) => m.deadLetterReason === 'MalformedEnvelope'),
      'the malformed message in the dead-letter queue'
    );
    const letter = dead.find((m) => m.deadLetterReason === 'MalformedEnvelope')!;
    expect(Buffer.from(letter.body, 'base64').toString()).toBe('{"hello":"not an envelope"}');
  });

  it('retries a failing message and dead-letters it after maxDeliveryCount with the reason', async () => {
    const messageId = await queue.send({ body: 'please fail', messageId: 'msg-fail-1' });
    const letter = await deadLetterOf(queue, messageId);
    expect(letter.deadLetterReason).toBe('MaxDeliveryCountExceeded');
    expect(letter.deadLetterErrorDescription).toContain(`cannot process ${messageId}`);
    expect(Buffer.from(letter.body, 'base64').toString()).toBe('please fail');
    const deliveries = (await observed()).messages.filter((m) => m.messageId === messageId).map((m) => m.deliveryCount);
    expect(deliveries).toEqual([1, 2, 3]);
  });
});
