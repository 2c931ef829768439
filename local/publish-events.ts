import { ServiceBusClient, type ServiceBusSender } from '@azure/service-bus';
import { CREDIT_UPDATES_QUEUE } from '../shared/domain/credit-update';
import { BatchSender } from '../shared/servicebus';

/**
 * Publishes credit-update events to one bank's queue of the local stack, as a bank system would: the Service Bus
 * SDK, in batches, the eventId as message id. For the local tools (demo, benchmark, chaos suite, tests).
 */
export class EventPublisher {
  private readonly client: ServiceBusClient;
  private readonly sender: ServiceBusSender;

  constructor(connectionString: string) {
    this.client = new ServiceBusClient(connectionString);
    this.sender = this.client.createSender(CREDIT_UPDATES_QUEUE);
  }

  /**
   * Sends the events; `onSent` hears of each when its batch is acknowledged. The message id is the eventId (so the
   * queue's duplicate detection drops a republish within its window) unless `messageIdOf` says otherwise.
   */
  async publish<E extends { eventId: string }>(
    events: E[],
    onSent: (event: E, at: number) => void = () => undefined,
    messageIdOf: (event: E) => string = (event) => event.eventId
  ): Promise<void> {
    const batches = new BatchSender(this.sender);
    for (const event of events) {
      const message = {
        body: Buffer.from(JSON.stringify(event)),
        messageId: messageIdOf(event),
        contentType: 'application/json',
      };
      if (!(await batches.add(message, () => onSent(event, Date.now()))))
        throw new Error(`event ${event.eventId} is larger than the namespace's max message size`);
    }
    await batches.flush();
  }

  async close(): Promise<void> {
    await this.sender.close();
    await this.client.close();
  }
}

/** Publishes the events with a publisher of its own, closed after. */
export async function publishEvents<E extends { eventId: string }>(
  connectionString: string,
  events: E[],
  onSent?: (event: E, at: number) => void
): Promise<void> {
  const publisher = new EventPublisher(connectionString);
  try {
    await publisher.publish(events, onSent);
  } finally {
    await publisher.close();
  }
}
