import { randomBytes } from 'node:crypto';
import { ServiceBusClient } from '@azure/service-bus';
import { serviceBusDeadLetters } from '../../cli/deadletter';

type DeadLetterView = Awaited<ReturnType<ReturnType<typeof serviceBusDeadLetters>['peek']>>[number];
import { startNamespace, type LocalServiceBusNamespace } from '../../local/servicebus/namespace';
import { CREDIT_UPDATES_QUEUE } from '../../shared/domain/credit-update';

/**
 * `deadletter list` and `redrive` as they run in Azure (cli/deadletter.ts, the Service Bus SDK), against the local
 * namespace: bodies go back byte for byte, and a message whose id the queue's duplicate detection still remembers
 * is left dead-lettered instead of being resent into the void.
 */

const WINDOW_MS = 1_500;
// Spacing and key order that JSON parsing and re-serialising would not keep.
const BODY = Buffer.from('{ "eventId" : "e-1",\n  "b": [1, 2] }');
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function namespaceWithWindow(duplicateDetectionWindowMs: number): Promise<LocalServiceBusNamespace> {
  return startNamespace({
    sharedAccessKeyName: 'RootManageSharedAccessKey',
    sharedAccessKey: randomBytes(32).toString('base64'),
    queues: [{ name: CREDIT_UPDATES_QUEUE, duplicateDetectionWindowMs }],
  });
}

/** Sends one message and dead-letters it, as ingest's maxDeliveryCount would. */
async function deadLettered(client: ServiceBusClient, messageId: string): Promise<void> {
  await client.createSender(CREDIT_UPDATES_QUEUE).sendMessages({ body: BODY, messageId });
  const receiver = client.createReceiver(CREDIT_UPDATES_QUEUE, { skipParsingBodyAsJson: true });
  const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 5_000 });
  await receiver.deadLetterMessage(message!, {
    deadLetterReason: 'MaxDeliveryCountExceeded',
    deadLetterErrorDescription: 'x',
  });
  await receiver.close();
}

describe('deadletter list and redrive over the Service Bus SDK', () => {
  let namespace: LocalServiceBusNamespace;
  let client: ServiceBusClient;
  beforeAll(async () => {
    namespace = await namespaceWithWindow(WINDOW_MS);
    client = new ServiceBusClient(namespace.connectionString);
  });
  afterAll(async () => {
    await client?.close();
    await namespace?.stop();
  });

  /** A peek as `deadletter list` makes it, in a process of its own (the SDK's peek cursor is per client). */
  async function listed(): Promise<DeadLetterView[]> {
    const own = new ServiceBusClient(namespace.connectionString);
    try {
      return await serviceBusDeadLetters(own, 'local').peek(10);
    } finally {
      await own.close();
    }
  }

  it('lists with the reason and the body size, waits out duplicate detection, then resends the same bytes', async () => {
    await deadLettered(client, 'm-1');
    // The command's own window (the Bicep's 10 minutes) against a namespace that forgets ids after 1.5 s: early
    // on, the command must wait; with its window no longer than the namespace's, it may resend.
    const queue = serviceBusDeadLetters(client, 'local');
    expect(await listed()).toEqual([
      expect.objectContaining({ messageId: 'm-1', reason: 'MaxDeliveryCountExceeded', bodySize: BODY.length }),
    ]);

    const early = await queue.redrive({ messageId: 'm-1' });
    expect(early.moved).toEqual([]);
    expect(early.notYet).toEqual([expect.objectContaining({ messageId: 'm-1' })]);
    expect((await listed()).map((m) => m.messageId)).toEqual(['m-1']); // still there

    await sleep(WINDOW_MS);
    expect(await serviceBusDeadLetters(client, 'local', WINDOW_MS).redrive({ all: true })).toEqual({
      moved: ['m-1'],
      notYet: [],
    });
    const receiver = client.createReceiver(CREDIT_UPDATES_QUEUE, { skipParsingBodyAsJson: true });
    const [back] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 5_000 });
    expect(back?.messageId).toBe('m-1');
    expect(Buffer.compare(back!.body as Buffer, BODY)).toBe(0);
    await receiver.completeMessage(back!);
    await receiver.close();
    expect(await listed()).toEqual([]);
  });

  it('would lose the message if it resent within the window: the queue accepts the resend and drops it', async () => {
    // What the check above prevents, shown with the check turned off (window 0) against the Bicep's 10 minutes.
    const strict = await namespaceWithWindow(10 * 60_000);
    const strictClient = new ServiceBusClient(strict.connectionString);
    try {
      await deadLettered(strictClient, 'm-2');
      expect(await serviceBusDeadLetters(strictClient, 'local', 0).redrive({ all: true })).toEqual({
        moved: ['m-2'],
        notYet: [],
      });
      const receiver = strictClient.createReceiver(CREDIT_UPDATES_QUEUE);
      expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: 1_000 })).toEqual([]);
      expect(await serviceBusDeadLetters(strictClient, 'local').peek(10)).toEqual([]);
      await receiver.close();
    } finally {
      await strictClient.close();
      await strict.stop();
    }
  });
});
