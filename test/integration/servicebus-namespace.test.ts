import { randomBytes } from 'node:crypto';
import {
  ServiceBusClient,
  type ServiceBusReceivedMessage,
  type ServiceBusReceiver,
  type ServiceBusReceiverOptions,
  type ServiceBusSender,
} from '@azure/service-bus';
import { message as amqp } from 'rhea';
import {
  MAX_MESSAGE_SIZE_BYTES,
  startNamespace,
  type LocalServiceBusNamespace,
} from '../../local/servicebus/namespace';

/**
 * The local Service Bus namespace as @azure/service-bus 7.9.5 sees it: every call here is the real SDK over
 * AMQP against local/servicebus, with a connection string like the local stack's. Each test has a queue of its
 * own; the queues have the Bicep's settings unless a test needs a shorter lock, fewer deliveries or a shorter
 * duplicate detection window to finish quickly.
 */

const KEY_NAME = 'RootManageSharedAccessKey';
const KEY = randomBytes(32).toString('base64');
const retryOptions = { maxRetries: 1, retryDelayInMs: 100, timeoutInMs: 10_000 };

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const ids = (messages: ServiceBusReceivedMessage[]): unknown[] => messages.map((m) => m.messageId);
const bodies = (messages: ServiceBusReceivedMessage[]): unknown[] => messages.map((m) => m.body as unknown);

describe('local Service Bus namespace, through @azure/service-bus', () => {
  let namespace: LocalServiceBusNamespace;
  let client: ServiceBusClient;
  const opened: { close(): Promise<void> }[] = [];

  const sender = (queue: string): ServiceBusSender => {
    const s = client.createSender(queue);
    opened.push(s);
    return s;
  };
  const receiver = (queue: string, options: ServiceBusReceiverOptions = {}): ServiceBusReceiver => {
    const r = client.createReceiver(queue, options);
    opened.push(r);
    return r;
  };
  const deadLetterReceiver = (queue: string): ServiceBusReceiver => receiver(queue, { subQueueType: 'deadLetter' });

  beforeAll(async () => {
    namespace = await startNamespace({
      sharedAccessKeyName: KEY_NAME,
      sharedAccessKey: KEY,
      queues: [
        { name: 'credit-updates' },
        { name: 'settle' },
        { name: 'short-lock', lockDurationMs: 1_500 },
        { name: 'renew', lockDurationMs: 2_000 },
        { name: 'three-deliveries', maxDeliveryCount: 3 },
        { name: 'peek' },
        { name: 'redrive', duplicateDetectionWindowMs: 500 },
        { name: 'size' },
        { name: 'compete' },
        { name: 'batch-receive' },
        { name: 'stream' },
        { name: 'long-link' },
        { name: 'schedule' },
        { name: 'receive-and-delete' },
        { name: 'expiry' },
        { name: 'duplicates' },
      ],
    });
    client = new ServiceBusClient(namespace.connectionString, { retryOptions });
  });

  afterAll(async () => {
    try {
      for (const link of opened) await link.close().catch(() => undefined);
      await client?.close();
    } finally {
      await namespace?.stop();
    }
  });

  it('takes a connection string with UseDevelopmentEmulator on 127.0.0.1', () => {
    expect(namespace.connectionString).toBe(
      `Endpoint=sb://127.0.0.1:${namespace.port};SharedAccessKeyName=${KEY_NAME};SharedAccessKey=${KEY};UseDevelopmentEmulator=true`
    );
  });

  it('sends one message, an array and a batch; receivers get them in order with the broker properties', async () => {
    const s = sender('credit-updates');
    const before = Date.now();
    await s.sendMessages({
      body: { eventId: 'e-1', score: 700 },
      messageId: 'e-1',
      contentType: 'application/json',
      correlationId: 'c-1',
      subject: 'credit-update',
      applicationProperties: { bankId: 'BANK-A', attempt: 1 },
    });
    await s.sendMessages([
      { body: 'two', messageId: 'e-2' },
      { body: Buffer.from([0, 1, 2, 255]), messageId: 'e-3' },
    ]);
    const batch = await s.createMessageBatch();
    for (const id of ['e-4', 'e-5', 'e-6']) expect(batch.tryAddMessage({ body: { id }, messageId: id })).toBe(true);
    await s.sendMessages(batch);

    const r = receiver('credit-updates');
    const got = await r.receiveMessages(10, { maxWaitTimeInMs: 5_000 });
    expect(ids(got)).toEqual(['e-1', 'e-2', 'e-3', 'e-4', 'e-5', 'e-6']);
    const [first, second, third] = got as [
      ServiceBusReceivedMessage,
      ServiceBusReceivedMessage,
      ServiceBusReceivedMessage,
    ];
    expect(first).toMatchObject({
      body: { eventId: 'e-1', score: 700 },
      contentType: 'application/json',
      correlationId: 'c-1',
      subject: 'credit-update',
      applicationProperties: { bankId: 'BANK-A', attempt: 1 },
      deliveryCount: 0,
      state: 'active',
    });
    expect(second.body).toBe('two');
    expect(Buffer.from(third.body as Uint8Array)).toEqual(Buffer.from([0, 1, 2, 255]));
    expect(got.map((m) => m.sequenceNumber!.toNumber())).toEqual([1, 2, 3, 4, 5, 6]);
    expect(new Set(got.map((m) => m.lockToken)).size).toBe(6);
    for (const m of got) {
      expect(m.lockToken).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(m.enqueuedTimeUtc!.getTime()).toBeGreaterThanOrEqual(before - 1);
      // lockDuration PT1M, as the Bicep sets it.
      expect(m.lockedUntilUtc!.getTime() - m.enqueuedTimeUtc!.getTime()).toBeGreaterThan(55_000);
      expect(m.lockedUntilUtc!.getTime() - Date.now()).toBeLessThanOrEqual(60_000);
    }
    for (const m of got) await r.completeMessage(m);
    expect(namespace.counts('credit-updates')).toMatchObject({ active: 0, locked: 0, deadLettered: 0 });
  });

  it('settles each way: complete, abandon, defer and dead-letter with a reason', async () => {
    const s = sender('settle');
    await s.sendMessages(['done', 'again', 'later', 'poison'].map((id) => ({ body: id, messageId: id })));
    const r = receiver('settle');
    const [done, again, later, poison] = await r.receiveMessages(4, { maxWaitTimeInMs: 5_000 });

    await r.completeMessage(done!);
    await r.abandonMessage(again!, { retried: true });
    await r.deferMessage(later!);
    await r.deadLetterMessage(poison!, {
      deadLetterReason: 'SchemaInvalid',
      deadLetterErrorDescription: '/score missing',
    });
    await expect(r.completeMessage(done!)).rejects.toThrow(/already settled/i);

    // The abandoned one comes back with its delivery counted and the properties the abandon set.
    const [back] = await r.receiveMessages(5, { maxWaitTimeInMs: 3_000 });
    expect(back).toMatchObject({ messageId: 'again', deliveryCount: 1, applicationProperties: { retried: true } });
    await r.completeMessage(back!);

    // The deferred one is only reachable by its sequence number, and is settled through $management.
    expect(await r.receiveMessages(1, { maxWaitTimeInMs: 500 })).toEqual([]);
    const [deferred] = await r.receiveDeferredMessages(later!.sequenceNumber!);
    expect(deferred).toMatchObject({ messageId: 'later', state: 'deferred' });
    await r.completeMessage(deferred!);
    await expect(r.receiveDeferredMessages(later!.sequenceNumber!)).rejects.toMatchObject({ code: 'MessageNotFound' });

    const [dead] = await deadLetterReceiver('settle').receiveMessages(1, { maxWaitTimeInMs: 3_000 });
    expect(dead).toMatchObject({
      messageId: 'poison',
      deadLetterReason: 'SchemaInvalid',
      deadLetterErrorDescription: '/score missing',
      sequenceNumber: poison!.sequenceNumber,
    });
    expect(namespace.counts('settle')).toMatchObject({ active: 0, deferred: 0, deadLettered: 1 });
  });

  it('loses an expired lock: the message comes back counted, and settling with the old lock fails', async () => {
    await sender('short-lock').sendMessages({ body: 'slow', messageId: 'slow' });
    const r = receiver('short-lock', { maxAutoLockRenewalDurationInMs: 0 });
    const [held] = await r.receiveMessages(1, { maxWaitTimeInMs: 3_000 });
    await sleep(1_700);
    await expect(r.completeMessage(held!)).rejects.toMatchObject({ code: 'MessageLockLost' });
    const [back] = await r.receiveMessages(1, { maxWaitTimeInMs: 3_000 });
    expect(back).toMatchObject({ messageId: 'slow', deliveryCount: 1 });
    expect(back!.lockToken).not.toBe(held!.lockToken);
    await r.completeMessage(back!);
  });

  it('renews a lock on request and automatically, so a slow handler keeps its message', async () => {
    await sender('renew').sendMessages([{ body: 'manual' }, { body: 'auto' }]);
    const manual = receiver('renew', { maxAutoLockRenewalDurationInMs: 0 });
    const [m] = await manual.receiveMessages(1, { maxWaitTimeInMs: 3_000 });
    const firstLock = m!.lockedUntilUtc!.getTime();
    await sleep(200);
    const renewed = await manual.renewMessageLock(m!);
    expect(renewed.getTime()).toBeGreaterThanOrEqual(firstLock + 200);
    await sleep(1_200);
    await manual.renewMessageLock(m!);
    await sleep(1_200); // 2.6 s after the receive: past the first two locks, within the last one
    await manual.completeMessage(m!);

    const auto = receiver('renew', { maxAutoLockRenewalDurationInMs: 30_000 });
    const [a] = await auto.receiveMessages(1, { maxWaitTimeInMs: 3_000 });
    await sleep(3_000); // one and a half lock durations: the SDK's lock renewer kept it
    await auto.completeMessage(a!);
    expect(namespace.counts('renew')).toMatchObject({ active: 0, deadLettered: 0 });
  });

  it('dead-letters a message after maxDeliveryCount deliveries, with the reason', async () => {
    await sender('three-deliveries').sendMessages({ body: 'fails', messageId: 'fails' });
    const r = receiver('three-deliveries');
    for (let delivery = 0; delivery < 3; delivery++) {
      const [m] = await r.receiveMessages(1, { maxWaitTimeInMs: 3_000 });
      expect(m).toMatchObject({ messageId: 'fails', deliveryCount: delivery });
      await r.abandonMessage(m!);
    }
    expect(await r.receiveMessages(1, { maxWaitTimeInMs: 300 })).toEqual([]);
    const [dead] = await deadLetterReceiver('three-deliveries').receiveMessages(1, { maxWaitTimeInMs: 3_000 });
    expect(dead).toMatchObject({
      messageId: 'fails',
      deadLetterReason: 'MaxDeliveryCountExceeded',
      deadLetterErrorDescription: 'Message could not be consumed after 3 delivery attempts.',
    });
  });

  it('peeks the queue and its dead-letter queue page by page, without locking anything', async () => {
    const s = sender('peek');
    await s.sendMessages(Array.from({ length: 5 }, (_, i) => ({ body: i, messageId: `p${i}` })));
    const r = receiver('peek');
    const [first] = await r.receiveMessages(1, { maxWaitTimeInMs: 3_000 });
    await r.deadLetterMessage(first!, { deadLetterReason: 'Test', deadLetterErrorDescription: 'peek' });
    const [locked] = await r.receiveMessages(1, { maxWaitTimeInMs: 3_000 });

    const peeker = receiver('peek');
    const page1 = await peeker.peekMessages(2);
    const page2 = await peeker.peekMessages(10);
    expect([...ids(page1), ...ids(page2)]).toEqual(['p1', 'p2', 'p3', 'p4']);
    expect(page1[0]!.lockedUntilUtc).toEqual(locked!.lockedUntilUtc);
    expect(await peeker.peekMessages(10)).toEqual([]);
    expect(ids(await peeker.peekMessages(10, { fromSequenceNumber: page2[1]!.sequenceNumber! }))).toEqual(['p4']);

    const dead = await deadLetterReceiver('peek').peekMessages(10);
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ messageId: 'p0', deadLetterReason: 'Test' });
    // Peeking locked nothing: three messages are still there to receive.
    expect(ids(await r.receiveMessages(10, { maxWaitTimeInMs: 1_000 }))).toEqual(['p2', 'p3', 'p4']);
  });

  it('redrives a dead letter with the same message id once the duplicate detection window has passed', async () => {
    await sender('redrive').sendMessages({
      body: { eventId: 'r-1' },
      messageId: 'r-1',
      applicationProperties: { a: 1 },
    });
    const r = receiver('redrive');
    const [m] = await r.receiveMessages(1, { maxWaitTimeInMs: 3_000 });
    await r.deadLetterMessage(m!, { deadLetterReason: 'MalformedEnvelope', deadLetterErrorDescription: 'BOM' });

    // Within the window, Service Bus accepts a resend with a seen message id and drops it (as in Azure).
    const dlq = deadLetterReceiver('redrive');
    const [dead] = await dlq.receiveMessages(1, { maxWaitTimeInMs: 3_000 });
    await sender('redrive').sendMessages({ ...dead!, messageId: dead!.messageId });
    expect(namespace.counts('redrive').active).toBe(0);
    await dlq.abandonMessage(dead!);

    await sleep(600);
    const [again] = await dlq.receiveMessages(1, { maxWaitTimeInMs: 3_000 });
    await sender('redrive').sendMessages({
      body: again!.body as unknown,
      messageId: again!.messageId,
      applicationProperties: { a: 1 },
    });
    await dlq.completeMessage(again!);
    const [redriven] = await r.receiveMessages(1, { maxWaitTimeInMs: 3_000 });
    expect(redriven).toMatchObject({ messageId: 'r-1', body: { eventId: 'r-1' }, deliveryCount: 0 });
    expect(redriven!.deadLetterReason).toBeUndefined();
    await r.completeMessage(redriven!);
    expect(await dlq.peekMessages(10)).toEqual([]);
  });

  it('takes a message of exactly 256 KiB and refuses a larger one, single or in a batch', async () => {
    // The SDK encodes a Buffer body as one data section; pad it so the encoded message is exactly the limit.
    const encodedSize = (bodyBytes: number): number =>
      amqp.encode({
        body: amqp.data_section(Buffer.alloc(bodyBytes)) as unknown,
        message_annotations: {},
        message_id: 'big',
      }).length;
    let body = MAX_MESSAGE_SIZE_BYTES - 64;
    while (encodedSize(body + 1) <= MAX_MESSAGE_SIZE_BYTES) body++;
    expect(encodedSize(body)).toBe(256 * 1024);

    const s = sender('size');
    await s.sendMessages({ body: Buffer.alloc(body, 7), messageId: 'big' });
    await expect(s.sendMessages({ body: Buffer.alloc(body + 1), messageId: 'big' })).rejects.toMatchObject({
      code: 'MessageSizeExceeded',
    });
    const batch = await s.createMessageBatch();
    expect(batch.maxSizeInBytes).toBe(256 * 1024);
    expect(batch.tryAddMessage({ body: Buffer.alloc(body), messageId: 'big' })).toBe(false);
    await expect(s.sendMessages([{ body: Buffer.alloc(body) }])).rejects.toMatchObject({ code: 'MessageSizeExceeded' });

    const [got] = await receiver('size', { receiveMode: 'receiveAndDelete' }).receiveMessages(1, {
      maxWaitTimeInMs: 3_000,
    });
    expect(Buffer.from(got!.body as Uint8Array).equals(Buffer.alloc(body, 7))).toBe(true);
  });

  it('refuses a connection string with a wrong key, and a queue that does not exist', async () => {
    const wrongKey = namespace.connectionString.replace(KEY, randomBytes(32).toString('base64'));
    const intruder = new ServiceBusClient(wrongKey, { retryOptions: { maxRetries: 0, timeoutInMs: 5_000 } });
    try {
      await expect(intruder.createSender('credit-updates').sendMessages({ body: 'x' })).rejects.toMatchObject({
        code: 'UnauthorizedAccess',
      });
      await expect(
        intruder.createReceiver('credit-updates').receiveMessages(1, { maxWaitTimeInMs: 1_000 })
      ).rejects.toMatchObject({ code: 'UnauthorizedAccess' });
    } finally {
      await intruder.close();
    }
    await expect(
      client.createSender('no-such-queue').sendMessages({ body: 'x' }, { abortSignal: AbortSignal.timeout(5_000) })
    ).rejects.toMatchObject({ code: 'MessagingEntityNotFound' });
  });

  it('never gives two receivers the same message while it is locked', async () => {
    await sender('compete').sendMessages(Array.from({ length: 40 }, (_, i) => ({ body: i, messageId: `c${i}` })));
    const other = new ServiceBusClient(namespace.connectionString, { retryOptions });
    try {
      const receivers = [receiver('compete'), other.createReceiver('compete')];
      const got: ServiceBusReceivedMessage[][] = [[], []];
      await Promise.all(
        receivers.map(async (r, i) => {
          for (;;) {
            const page = await r.receiveMessages(5, { maxWaitTimeInMs: 1_000 });
            if (page.length === 0) return;
            got[i]!.push(...page);
          }
        })
      );
      const all = [...got[0]!, ...got[1]!];
      expect(all).toHaveLength(40);
      expect(new Set(ids(all)).size).toBe(40);
      expect(got[0]!.length).toBeGreaterThan(0);
      expect(got[1]!.length).toBeGreaterThan(0);
      await Promise.all(got.map((page, i) => Promise.all(page.map((m) => receivers[i]!.completeMessage(m)))));
      expect(namespace.counts('compete')).toMatchObject({ active: 0, locked: 0 });
    } finally {
      await other.close();
    }
  });

  it('receives many at once, and returns early with what there is', async () => {
    await sender('batch-receive').sendMessages(Array.from({ length: 20 }, (_, i) => ({ body: i })));
    const r = receiver('batch-receive');
    const many = await r.receiveMessages(16, { maxWaitTimeInMs: 5_000 });
    expect(bodies(many)).toEqual(Array.from({ length: 16 }, (_, i) => i));

    let started = Date.now();
    const rest = await r.receiveMessages(16, { maxWaitTimeInMs: 20_000 });
    expect(bodies(rest)).toEqual([16, 17, 18, 19]);
    expect(Date.now() - started).toBeLessThan(5_000); // a second after the first message, not 20 s

    started = Date.now();
    expect(await r.receiveMessages(16, { maxWaitTimeInMs: 300 })).toEqual([]);
    expect(Date.now() - started).toBeLessThan(2_000); // the drain was answered
    await Promise.all([...many, ...rest].map((m) => r.completeMessage(m)));

    // The link survived the drains: the next receive is served at once.
    await sender('batch-receive').sendMessages({ body: 'after' });
    started = Date.now();
    const [after] = await r.receiveMessages(1, { maxWaitTimeInMs: 5_000 });
    expect(after!.body).toBe('after');
    expect(Date.now() - started).toBeLessThan(1_000);
    await r.completeMessage(after!);
  });

  it('streams to subscribe() within maxConcurrentCalls, completing handled messages and abandoning a throw', async () => {
    await sender('stream').sendMessages(Array.from({ length: 20 }, (_, i) => ({ body: i, messageId: `s${i}` })));
    const r = receiver('stream');
    const handled = new Map<number, number[]>();
    let running = 0;
    let maxRunning = 0;
    const errors: Error[] = [];
    const done = new Promise<void>((resolve) => {
      const subscription = r.subscribe(
        {
          processMessage: async (m) => {
            running++;
            maxRunning = Math.max(maxRunning, running);
            handled.set(m.body as number, [...(handled.get(m.body as number) ?? []), m.deliveryCount!]);
            await sleep(20);
            running--;
            if (m.body === 7 && m.deliveryCount === 0) throw new Error('transient');
            if ([...handled.values()].flat().length === 21) void subscription.close().then(resolve);
          },
          processError: async (args) => {
            if (args.error.message !== 'transient') errors.push(args.error);
          },
        },
        { maxConcurrentCalls: 4 }
      );
    });
    await done;
    expect(errors).toEqual([]);
    expect(maxRunning).toBeGreaterThan(1);
    expect(maxRunning).toBeLessThanOrEqual(4);
    expect(handled.get(7)).toEqual([0, 1]);
    expect([...handled.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    await sleep(200);
    expect(namespace.counts('stream')).toMatchObject({ active: 0, locked: 0 });
  });

  it('keeps one receiver link going past the 2,048 deliveries a session holds', async () => {
    const s = sender('long-link');
    for (let b = 0; b < 25; b++) await s.sendMessages(Array.from({ length: 100 }, (_, i) => ({ body: b * 100 + i })));
    const r = receiver('long-link');
    let handled = 0;
    await new Promise<void>((resolve, reject) => {
      r.subscribe(
        {
          processMessage: async () => {
            if (++handled === 2_500) resolve();
          },
          processError: async (args) => reject(args.error),
        },
        { maxConcurrentCalls: 16 }
      );
    });
    await r.close();
    expect(namespace.counts('long-link')).toMatchObject({ active: 0, locked: 0 });
  });

  it('schedules messages, shows them to peek, and cancels one', async () => {
    const s = sender('schedule');
    const at = new Date(Date.now() + 1_500);
    const [keep, cancel] = await s.scheduleMessages([{ body: 'keep' }, { body: 'cancel' }], at);
    const r = receiver('schedule');
    expect(await r.receiveMessages(2, { maxWaitTimeInMs: 300 })).toEqual([]);
    const peeked = await r.peekMessages(10);
    expect(peeked.map((m) => [m.body as unknown, m.state, m.scheduledEnqueueTimeUtc?.getTime()])).toEqual([
      ['keep', 'scheduled', at.getTime()],
      ['cancel', 'scheduled', at.getTime()],
    ]);
    await s.cancelScheduledMessages(cancel!);
    const got = await r.receiveMessages(2, { maxWaitTimeInMs: 5_000 });
    expect(got.map((m) => [m.body as unknown, m.sequenceNumber!.toNumber()])).toEqual([['keep', keep!.toNumber()]]);
    expect(Date.now()).toBeGreaterThanOrEqual(at.getTime());
    await r.completeMessage(got[0]!);
  });

  it('removes messages as it hands them out in receive-and-delete mode', async () => {
    await sender('receive-and-delete').sendMessages([{ body: 1 }, { body: 2 }]);
    const got = await receiver('receive-and-delete', { receiveMode: 'receiveAndDelete' }).receiveMessages(2, {
      maxWaitTimeInMs: 2_000,
    });
    expect(got.map((m) => [m.body as unknown, m.lockToken])).toEqual([
      [1, undefined],
      [2, undefined],
    ]);
    expect(namespace.counts('receive-and-delete')).toMatchObject({ active: 0, locked: 0 });
  });

  it('dead-letters a message past its time to live', async () => {
    await sender('expiry').sendMessages({ body: 'stale', messageId: 'stale', timeToLive: 200 });
    await sleep(300);
    expect(await receiver('expiry').receiveMessages(1, { maxWaitTimeInMs: 300 })).toEqual([]);
    const [dead] = await deadLetterReceiver('expiry').receiveMessages(1, { maxWaitTimeInMs: 3_000 });
    expect(dead).toMatchObject({ messageId: 'stale', deadLetterReason: 'TTLExpiredException' });
  });

  it('drops a message id sent again within the duplicate detection window (10 minutes, as the Bicep sets)', async () => {
    const s = sender('duplicates');
    await s.sendMessages({ body: 'first', messageId: 'same' });
    await s.sendMessages({ body: 'second', messageId: 'same' });
    await s.sendMessages([
      { body: 'third', messageId: 'same' },
      { body: 'other', messageId: 'other' },
    ]);
    const got = await receiver('duplicates', { receiveMode: 'receiveAndDelete' }).receiveMessages(5, {
      maxWaitTimeInMs: 1_000,
    });
    expect(bodies(got)).toEqual(['first', 'other']);
  });
});
