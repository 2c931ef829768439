import type { LocalServiceBusQueue, MessageEnvelope } from '../../../local/host/service-bus-queue';
import { eventually } from './eventually';

/** Waits until `messageId` is in the queue's dead-letter queue and returns its envelope (reason included). */
export async function deadLetterOf(queue: LocalServiceBusQueue, messageId: string): Promise<MessageEnvelope> {
  const dead = await eventually(
    () => queue.peekDeadLetters(),
    (list) => list.some((m) => m.messageId === messageId),
    `message ${messageId} in the dead-letter queue`
  );
  return dead.find((m) => m.messageId === messageId)!;
}
