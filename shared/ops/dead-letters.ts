import type { TokenCredential } from '@azure/core-auth';
import type { ServiceBusClient } from '@azure/service-bus';
import type Long from 'long';
import type { Config } from '../config';
import { CREDIT_UPDATES_QUEUE } from '../domain/credit-update';
import { hasServiceBus, serviceBusClientFor } from '../servicebus';

/** Counts messages dead-lettered on the credit-updates queue. */
export interface DeadLetterCounter {
  readonly queue: string;
  count(): Promise<number>;
}

/**
 * Peeks the queue's dead-letter sub-queue with the receiver role the app already has (Azure Service Bus Data
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

/** The counter for these settings, or undefined when they do not say where the queue is. */
export function deadLetterCounterFor(
  config: Config,
  credential: TokenCredential,
  queue = CREDIT_UPDATES_QUEUE
): DeadLetterCounter | undefined {
  if (!hasServiceBus(config)) return undefined;
  return new ServiceBusDeadLetterCounter(() => serviceBusClientFor(config, credential), queue);
}
