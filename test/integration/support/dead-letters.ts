import { ServiceBusClient, type ServiceBusReceivedMessage } from '@azure/service-bus';
import { eventually } from './eventually';

/** Waits until `messageId` is in the queue's dead-letter sub-queue and returns it (reason included), peeked. */
export async function deadLetterOf(
  connectionString: string,
  queue: string,
  messageId: string
): Promise<ServiceBusReceivedMessage> {
  const peek = async (): Promise<ServiceBusReceivedMessage[]> => {
    // A client per peek: the SDK keeps a peek cursor per client, and the next peek would start after this one.
    const client = new ServiceBusClient(connectionString);
    try {
      const receiver = client.createReceiver(queue, { subQueueType: 'deadLetter', skipParsingBodyAsJson: true });
      return await receiver.peekMessages(250);
    } finally {
      await client.close();
    }
  };
  const dead = await eventually(
    peek,
    (list) => list.some((m) => m.messageId === messageId),
    `message ${messageId} in the dead-letter queue`
  );
  return dead.find((m) => m.messageId === messageId)!;
}
