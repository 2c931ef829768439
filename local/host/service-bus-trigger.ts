import {
  ServiceBusClient,
  type ServiceBusReceivedMessage,
  type ServiceBusReceiver,
  type SubscribeOptions,
} from '@azure/service-bus';
import type { RpcTypedData } from './core-api';

/**
 * The local host's Service Bus queue trigger, on the real SDK as the Functions extension is on the .NET one:
 * peek-lock, the function's success completes the message and its failure abandons it (Service Bus counts the
 * delivery and dead-letters at the queue's maxDeliveryCount), locks are renewed while the function runs (up to
 * host.json's maxAutoLockRenewalDuration), at most maxConcurrentCalls run at once and, for `cardinality: 'many'`,
 * the function gets up to maxMessageBatchSize messages at once, settled together.
 */

/** The settings host.json's `extensions.serviceBus` may hold that the local host honours. */
export interface ServiceBusHostSettings {
  maxConcurrentCalls?: number;
  autoCompleteMessages?: boolean;
  maxAutoLockRenewalDuration?: string;
  maxMessageBatchSize?: number;
}

export interface TriggerInput {
  data: RpcTypedData;
  metadata: Record<string, RpcTypedData>;
}

export interface ServiceBusTriggerOptions {
  connectionString: string;
  queueName: string;
  cardinality: 'one' | 'many';
  /** dataType 'binary': the function gets the body's bytes; otherwise the body decoded as UTF-8. */
  binary: boolean;
  settings: ServiceBusHostSettings;
  /** Runs the function; a throw abandons the message(s). */
  invoke: (input: TriggerInput) => Promise<void>;
  log: (level: 'warning' | 'error', message: string) => void;
}

/**
 * How long a batch receive waits for a first message (short, so that stop() is prompt). After the first, the SDK
 * waits up to 1 s more unless the batch fills.
 */
const BATCH_WAIT_MS = 1_000;

export class ServiceBusTrigger {
  private readonly client: ServiceBusClient;
  private readonly receiver: ServiceBusReceiver;
  private readonly inFlight = new Set<Promise<void>>();
  private subscription: { close(): Promise<void> } | undefined;
  private batchLoop: Promise<void> | undefined;
  private stopping = false;

  constructor(private readonly options: ServiceBusTriggerOptions) {
    const { settings } = options;
    if (settings.autoCompleteMessages === false)
      throw new Error(
        'host.json sets serviceBus.autoCompleteMessages to false: the local host settles messages itself and supports only true'
      );
    this.client = new ServiceBusClient(options.connectionString);
    this.receiver = this.client.createReceiver(options.queueName, {
      receiveMode: 'peekLock',
      skipParsingBodyAsJson: true,
      maxAutoLockRenewalDurationInMs: timeSpanMs(settings.maxAutoLockRenewalDuration ?? '00:05:00'),
    });
  }

  start(): void {
    if (this.options.cardinality === 'many') {
      this.batchLoop = this.receiveBatches();
      return;
    }
    const subscribeOptions: SubscribeOptions = {
      autoCompleteMessages: false, // settled below, so that stop() can wait for the settlement too
      maxConcurrentCalls: this.options.settings.maxConcurrentCalls ?? 16,
    };
    this.subscription = this.receiver.subscribe(
      {
        processMessage: (message) => this.track(this.deliver([message])),
        processError: async ({ error, errorSource }) => {
          if (!this.stopping) this.options.log('warning', `${this.options.queueName} ${errorSource}: ${error.message}`);
        },
      },
      subscribeOptions
    );
  }

  /** Stops receiving, lets the running functions finish and settle, then closes the connection. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.subscription?.close();
    await this.batchLoop;
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    await this.receiver.close();
    await this.client.close();
  }

  private track(work: Promise<void>): Promise<void> {
    this.inFlight.add(work);
    return work.finally(() => this.inFlight.delete(work));
  }

  private async receiveBatches(): Promise<void> {
    const max = this.options.settings.maxMessageBatchSize ?? 1000;
    while (!this.stopping) {
      let messages: ServiceBusReceivedMessage[] = [];
      try {
        messages = await this.receiver.receiveMessages(max, { maxWaitTimeInMs: BATCH_WAIT_MS });
      } catch (err) {
        if (this.stopping) return;
        this.options.log('warning', `${this.options.queueName} receive: ${(err as Error).message}`);
        await new Promise((resolve) => setTimeout(resolve, BATCH_WAIT_MS));
      }
      // One batch at a time, as the extension runs a batch function.
      if (messages.length > 0) await this.track(this.deliver(messages));
    }
  }

  /** Runs the function on the message(s) and settles them: complete on success, abandon on a throw. */
  private async deliver(messages: ServiceBusReceivedMessage[]): Promise<void> {
    let failed = false;
    try {
      await this.options.invoke(this.input(messages));
    } catch {
      failed = true; // the host has logged it
    }
    await Promise.all(
      messages.map((message) =>
        (failed ? this.receiver.abandonMessage(message) : this.receiver.completeMessage(message)).catch((err: Error) =>
          // The lock was lost (expired, or the connection dropped): Service Bus delivers the message again.
          this.options.log(
            'warning',
            `${failed ? 'abandoning' : 'completing'} message ${String(message.messageId)} failed: ${err.message}`
          )
        )
      )
    );
  }

  /** The trigger's data and metadata as the Functions host sends them to the Node.js worker. */
  private input(messages: ServiceBusReceivedMessage[]): TriggerInput {
    const bodies = messages.map((m) => bodyBytes(m.body));
    const fields = messages.map((m) => ({
      MessageId: m.messageId === undefined ? undefined : String(m.messageId),
      // The SDK counts earlier deliveries (0 on the first); Functions reports this delivery's number.
      DeliveryCount: (m.deliveryCount ?? 0) + 1,
      EnqueuedTimeUtc: m.enqueuedTimeUtc?.toISOString(),
      SequenceNumber: m.sequenceNumber?.toNumber(),
      ContentType: m.contentType,
      CorrelationId: m.correlationId === undefined ? undefined : String(m.correlationId),
      ApplicationProperties: m.applicationProperties,
    }));
    if (this.options.cardinality === 'many') {
      const metadata: Record<string, RpcTypedData> = {};
      for (const key of Object.keys(fields[0]!) as (keyof (typeof fields)[0])[]) {
        metadata[`${key}Array`] = { json: JSON.stringify(fields.map((f) => f[key] ?? null)) };
      }
      const data = this.options.binary
        ? { collectionBytes: { bytes: bodies } }
        : { collectionString: { string: bodies.map((b) => b.toString('utf8')) } };
      return { data, metadata };
    }
    const metadata: Record<string, RpcTypedData> = {};
    for (const [key, value] of Object.entries(fields[0]!)) {
      if (value === undefined) continue;
      metadata[key] =
        typeof value === 'number'
          ? { int: value }
          : typeof value === 'string'
            ? { string: value }
            : { json: JSON.stringify(value) };
    }
    const data = this.options.binary ? { bytes: bodies[0]! } : { string: bodies[0]!.toString('utf8') };
    return { data, metadata };
  }
}

/** With skipParsingBodyAsJson the SDK hands over the AMQP data section's bytes (or a value a sender put there). */
function bodyBytes(body: unknown): Buffer {
  if (Buffer.isBuffer(body)) return body;
  if (body instanceof Uint8Array) return Buffer.from(body);
  return Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8');
}

/** A .NET TimeSpan as host.json writes it ("hh:mm:ss"), in milliseconds. */
export function timeSpanMs(value: string): number {
  const match = /^(\d+):(\d{2}):(\d{2})$/.exec(value);
  if (!match) throw new Error(`"${value}" is not a time span (hh:mm:ss)`);
  return ((Number(match[1]) * 60 + Number(match[2])) * 60 + Number(match[3])) * 1000;
}
