import { randomUUID } from 'node:crypto';
import { QueueClient, QueueServiceClient, type DequeuedMessageItem } from '@azure/storage-queue';

/**
 * Service Bus queue semantics on an Azurite queue, for the local stack only (the Service Bus emulator needs
 * Docker). Peek-lock is the visibility timeout, the delivery count is the dequeue count, abandon makes the
 * message visible again at once, and after `maxDeliveryCount` failed deliveries the message moves to the
 * `<queue>-deadletter` queue with the reason, as Service Bus does. The message body travels as base64 so any
 * bytes (not only UTF-8 JSON) reach the function unchanged.
 */

export interface ServiceBusMessageInput {
  body: Buffer | string | object;
  messageId?: string;
  contentType?: string;
  correlationId?: string;
  applicationProperties?: Record<string, string | number | boolean>;
}

/** What travels in the Azurite queue message. */
export interface MessageEnvelope {
  messageId: string;
  body: string; // base64
  contentType?: string;
  correlationId?: string;
  applicationProperties?: Record<string, string | number | boolean>;
  enqueuedTimeUtc: string;
  sequenceNumber: number;
  deliveryCount?: number;
  deadLetterReason?: string;
  deadLetterErrorDescription?: string;
  deadLetterSource?: string;
}

export interface ReceivedMessage extends MessageEnvelope {
  bodyBytes: Buffer;
  deliveryCount: number;
}

/** Azure queue messages are at most 64 KiB of text; base64 and the envelope leave room for ~45 KiB bodies. */
export const MAX_LOCAL_BODY_BYTES = 45 * 1024;

export const deadLetterQueueName = (queueName: string): string => `${queueName}-deadletter`;

export function toBodyBuffer(body: ServiceBusMessageInput['body']): Buffer {
  if (Buffer.isBuffer(body)) return body;
  return Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8');
}

let sequence = Date.now() * 1000;

export class LocalServiceBusQueue {
  readonly queue: QueueClient;
  readonly deadLetter: QueueClient;

  constructor(
    connectionString: string,
    readonly name: string
  ) {
    const service = QueueServiceClient.fromConnectionString(connectionString);
    this.queue = service.getQueueClient(name);
    this.deadLetter = service.getQueueClient(deadLetterQueueName(name));
  }

  async ensureExists(): Promise<void> {
    await Promise.all([this.queue.createIfNotExists(), this.deadLetter.createIfNotExists()]);
  }

  /** Sends one message; returns its message id. */
  async send(message: ServiceBusMessageInput): Promise<string> {
    const bytes = toBodyBuffer(message.body);
    if (bytes.length > MAX_LOCAL_BODY_BYTES) {
      throw new Error(
        `message body is ${bytes.length} bytes; the local queue emulation carries at most ${MAX_LOCAL_BODY_BYTES} bytes (Service Bus Standard allows 256 KiB)`
      );
    }
    const envelope: MessageEnvelope = {
      messageId: message.messageId ?? randomUUID(),
      body: bytes.toString('base64'),
      contentType: message.contentType,
      correlationId: message.correlationId,
      applicationProperties: message.applicationProperties,
      enqueuedTimeUtc: new Date().toISOString(),
      sequenceNumber: sequence++,
    };
    await this.queue.sendMessage(JSON.stringify(envelope));
    return envelope.messageId;
  }

  /** Approximate number of active (not dead-lettered) messages. */
  async activeCount(): Promise<number> {
    return (await this.queue.getProperties()).approximateMessagesCount ?? 0;
  }

  /** Reads dead-lettered messages without removing them (a peek of up to 32). */
  async peekDeadLetters(max = 32): Promise<MessageEnvelope[]> {
    const peeked = await this.deadLetter.peekMessages({ numberOfMessages: Math.min(max, 32) });
    return peeked.peekedMessageItems.map((item) => JSON.parse(item.messageText) as MessageEnvelope);
  }
}

export interface PumpOptions {
  maxConcurrentCalls: number;
  lockDurationSeconds: number;
  maxDeliveryCount: number;
  log: (level: 'information' | 'warning' | 'error', message: string) => void;
}

/**
 * Delivers messages to `handler` with at most `maxConcurrentCalls` in flight. Completes on success, abandons on
 * a throw, dead-letters once the delivery count reaches `maxDeliveryCount`, and renews the lock while a handler
 * runs long. A message whose handler never finishes (the process dies) reappears when its lock expires.
 */
export class QueuePump {
  private inFlight = 0;
  private stopped = false;
  private readonly idle = new Set<() => void>();
  private loop: Promise<void> | undefined;

  constructor(
    private readonly queue: LocalServiceBusQueue,
    private readonly handler: (message: ReceivedMessage) => Promise<void>,
    private readonly options: PumpOptions
  ) {}

  start(): void {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    while (this.inFlight > 0) await new Promise<void>((resolve) => this.idle.add(resolve));
  }

  private async run(): Promise<void> {
    let backoffMs = 20;
    while (!this.stopped) {
      const capacity = this.options.maxConcurrentCalls - this.inFlight;
      // Receive in batches: an Azurite receive sorts every visible message, so it costs the same for one message
      // as for 32. Waiting until half the slots are free keeps receives few under load.
      if (capacity < Math.max(1, Math.floor(this.options.maxConcurrentCalls / 2))) {
        await new Promise<void>((resolve) => this.idle.add(resolve));
        continue;
      }
      let items: DequeuedMessageItem[] = [];
      try {
        const response = await this.queue.queue.receiveMessages({
          numberOfMessages: Math.min(32, capacity),
          visibilityTimeout: this.options.lockDurationSeconds,
        });
        items = response.receivedMessageItems;
      } catch (err) {
        this.options.log('warning', `receive from queue ${this.queue.name} failed: ${(err as Error).message}`);
      }
      if (items.length === 0) {
        await sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, 500);
        continue;
      }
      backoffMs = 20;
      for (const item of items) {
        this.inFlight++;
        void this.deliver(item)
          .catch((err: Error) =>
            this.options.log('error', `settling a message on ${this.queue.name} failed: ${err.message}`)
          )
          .finally(() => {
            this.inFlight--;
            for (const resolve of this.idle) resolve();
            this.idle.clear();
          });
      }
    }
  }

  private async deliver(item: DequeuedMessageItem): Promise<void> {
    const envelope = parseEnvelope(item.messageText);
    if (!envelope) {
      // Not written by LocalServiceBusQueue.send: nothing can ever process it.
      const raw: MessageEnvelope = {
        messageId: item.messageId,
        body: Buffer.from(item.messageText).toString('base64'),
        enqueuedTimeUtc: item.insertedOn.toISOString(),
        sequenceNumber: 0,
      };
      await this.deadLetter(item, raw, 'MalformedEnvelope', 'the queue message is not a Service Bus envelope');
      return;
    }
    const message: ReceivedMessage = {
      ...envelope,
      bodyBytes: Buffer.from(envelope.body, 'base64'),
      deliveryCount: item.dequeueCount,
    };
    // Renewals are chained so completion always uses the newest pop receipt.
    let popReceipt = item.popReceipt;
    let renewing: Promise<void> = Promise.resolve();
    const renewal = setInterval(
      () => {
        renewing = renewing.then(() =>
          this.queue.queue
            .updateMessage(item.messageId, popReceipt, undefined, this.options.lockDurationSeconds)
            .then((r) => void (popReceipt = r.popReceipt ?? popReceipt))
            .catch((err: Error) =>
              this.options.log('warning', `lock renewal for message ${envelope.messageId} failed: ${err.message}`)
            )
        );
      },
      (this.options.lockDurationSeconds * 1000) / 2
    );
    let failure: Error | undefined;
    try {
      await this.handler(message);
    } catch (err) {
      failure = err instanceof Error ? err : new Error(String(err));
    }
    clearInterval(renewal);
    await renewing;
    if (!failure) {
      await this.queue.queue.deleteMessage(item.messageId, popReceipt);
    } else if (message.deliveryCount >= this.options.maxDeliveryCount) {
      await this.deadLetter(
        { ...item, popReceipt },
        { ...envelope, deliveryCount: message.deliveryCount },
        'MaxDeliveryCountExceeded',
        `Message could not be consumed after ${message.deliveryCount} delivery attempts. Last error: ${failure.message}`
      );
    } else {
      // Abandon: visible again at once, like a Service Bus abandon.
      await this.queue.queue.updateMessage(item.messageId, popReceipt, undefined, 0);
    }
  }

  private async deadLetter(
    item: DequeuedMessageItem,
    envelope: MessageEnvelope,
    reason: string,
    description: string
  ): Promise<void> {
    const dead: MessageEnvelope = {
      ...envelope,
      deadLetterReason: reason,
      deadLetterErrorDescription: description.slice(0, 4096),
      deadLetterSource: this.queue.name,
    };
    await this.queue.deadLetter.sendMessage(JSON.stringify(dead));
    await this.queue.queue.deleteMessage(item.messageId, item.popReceipt);
    this.options.log('warning', `message ${envelope.messageId} dead-lettered: ${reason}: ${description}`);
  }
}

/** The envelope LocalServiceBusQueue.send wrote, or undefined for anything else in the queue. */
function parseEnvelope(text: string): MessageEnvelope | undefined {
  try {
    const value = JSON.parse(text) as Partial<MessageEnvelope> | null;
    const valid =
      typeof value?.messageId === 'string' &&
      typeof value.body === 'string' &&
      typeof value.enqueuedTimeUtc === 'string';
    return valid ? (value as MessageEnvelope) : undefined;
  } catch {
    return undefined;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
