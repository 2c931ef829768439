import type { TokenCredential } from '@azure/core-auth';
import { ServiceBusClient } from '@azure/service-bus';
import type Long from 'long';
import { QueueClient } from '@azure/storage-queue';
import type { Config } from '../config';
import { CREDIT_UPDATES_QUEUE } from '../domain/credit-update';

/** Counts messages dead-lettered on the credit-updates queue. */
export interface DeadLetterCounter {
  readonly queue: string;
  count(): Promise<number>;
}

/**
 * Azure: peeks the queue's dead-letter sub-queue with the receiver the app already has (Azure Service Bus Data
 * Receiver). Reading runtime properties would need a management role (Data Owner), far more than counting
 * needs. Counts up to `cap`; beyond that the alert fires anyway and Azure Monitor's DeadletteredMessages metric
 * has the exact figure. A client per count: the SDK keeps a peek cursor per client, so a kept client's next
 * count would start after the last message it saw and miss every older dead letter.
 */
export class ServiceBusDeadLetterCounter implements DeadLetterCounter {
  constructor(
    private readonly connect: () => ServiceBusClient,
    readonly queue: string,
    private readonly cap = 1000
  ) {}

  async count(): Promise<number> {
    const client = this.connect();
    const receiver = client.createReceiver(this.queue, { subQueueType: 'deadLetter' });
    try {
      let count = 0;
      let from: Long | undefined;
      while (count < this.cap) {
        const page = await receiver.peekMessages(
          Math.min(250, this.cap - count),
          from ? { fromSequenceNumber: from } : {}
        );
        if (page.length === 0) break;
        count += page.length;
        from = page[page.length - 1]!.sequenceNumber?.add(1);
        if (!from) break;
      }
      return count;
    } finally {
      await receiver.close();
      await client.close();
    }
  }
}

/**
 * Local stack: the host emulates Service Bus on Azurite and moves dead letters to `<queue>-deadletter`
 * (local/host/service-bus-queue.ts). Reading a queue's approximate length is all this needs, so the adapter
 * lives here rather than making production code depend on local/.
 */
export class AzuriteDeadLetterCounter implements DeadLetterCounter {
  private readonly client: QueueClient;

  constructor(
    connectionString: string,
    readonly queue: string
  ) {
    this.client = new QueueClient(connectionString, `${queue}-deadletter`);
  }

  async count(): Promise<number> {
    try {
      return (await this.client.getProperties()).approximateMessagesCount ?? 0;
    } catch (err) {
      // The host creates the queue with its trigger; before that nothing can have been dead-lettered.
      // (Duck-typed: the storage SDK may carry its own copy of RestError.)
      if ((err as { statusCode?: number }).statusCode === 404) return 0;
      throw err;
    }
  }
}

/** The counter for this environment, or undefined when the environment does not say where the queue is. */
export function deadLetterCounterFor(
  config: Config,
  credential: TokenCredential,
  queue = CREDIT_UPDATES_QUEUE
): DeadLetterCounter | undefined {
  if (config.environment === 'local') {
    return config.storage.connectionString
      ? new AzuriteDeadLetterCounter(config.storage.connectionString, queue)
      : undefined;
  }
  const namespace = config.serviceBusNamespace;
  return namespace
    ? new ServiceBusDeadLetterCounter(() => new ServiceBusClient(namespace, credential), queue)
    : undefined;
}
