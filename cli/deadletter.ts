import type { ServiceBusClient, ServiceBusReceivedMessage } from '@azure/service-bus';
import { CREDIT_UPDATES_DUPLICATE_WINDOW_MS, CREDIT_UPDATES_QUEUE } from '../shared/domain/credit-update';
import { serviceBusClientFor, serviceBusNameOf } from '../shared/servicebus';
import { print, UsageError } from './common';
import { bankTarget, type BankTarget } from './target';

/** A dead-lettered message as `deadletter list` shows it (never its body). */
interface DeadLetter {
  messageId: string;
  enqueuedTimeUtc?: string;
  deliveryCount?: number;
  reason?: string;
  description?: string;
  bodySize: number;
}

type Which = { all: true } | { messageId: string };

/** The bank's dead-letter queue of credit-updates. */
interface DeadLetterQueue {
  where: string;
  /** Up to `max` dead letters. */
  peek(max: number): Promise<DeadLetter[]>;
  /**
   * Sends dead letters back to the queue with their message id (fresh delivery count): the ids moved, and those
   * left for now because duplicate detection would still drop a resend of that id (with when they can go).
   */
  redrive(which: Which): Promise<{ moved: string[]; notYet: { messageId: string; after: string }[] }>;
  close(): Promise<void>;
}

function deadLetterQueueOf({ config, credential }: BankTarget): DeadLetterQueue {
  return serviceBusDeadLetters(serviceBusClientFor(config, credential), serviceBusNameOf(config));
}

/**
 * The queue's `$DeadLetterQueue` sub-queue with the Service Bus SDK, in Azure and on the local stack alike (in
 * Azure the caller needs Azure Service Bus Data Receiver and Sender on the queue). Bodies travel as the bytes they
 * were (no JSON parsing on the way), and a message whose id the queue's duplicate detection still remembers stays
 * dead-lettered: a resend would be accepted and silently dropped, and completing the dead letter would then lose
 * it.
 */
export function serviceBusDeadLetters(
  client: ServiceBusClient,
  namespace: string,
  duplicateWindowMs = CREDIT_UPDATES_DUPLICATE_WINDOW_MS,
  now: () => number = Date.now
): DeadLetterQueue {
  const view = (m: ServiceBusReceivedMessage): DeadLetter => ({
    messageId: String(m.messageId),
    enqueuedTimeUtc: m.enqueuedTimeUtc?.toISOString(),
    deliveryCount: m.deliveryCount,
    reason: m.deadLetterReason,
    description: m.deadLetterErrorDescription,
    bodySize: Buffer.isBuffer(m.body) ? m.body.length : JSON.stringify(m.body ?? null).length,
  });
  const receiverOptions = { subQueueType: 'deadLetter', skipParsingBodyAsJson: true } as const;
  return {
    where: `${CREDIT_UPDATES_QUEUE}/$DeadLetterQueue in ${namespace}`,
    async peek(max) {
      const receiver = client.createReceiver(CREDIT_UPDATES_QUEUE, receiverOptions);
      try {
        return (await receiver.peekMessages(max)).map(view);
      } finally {
        await receiver.close();
      }
    },
    async redrive(which) {
      const receiver = client.createReceiver(CREDIT_UPDATES_QUEUE, receiverOptions);
      const sender = client.createSender(CREDIT_UPDATES_QUEUE);
      const moved: string[] = [];
      const notYet: { messageId: string; after: string }[] = [];
      const seen = new Set<string>();
      try {
        for (;;) {
          const batch = await receiver.receiveMessages(32, { maxWaitTimeInMs: 2_000 });
          // Nothing left, or every message of this batch was looked at before (abandoned ones come back at once):
          // give those back too, or they would stay locked until their lock expires.
          if (batch.every((m) => seen.has(String(m.sequenceNumber)))) {
            for (const m of batch) await receiver.abandonMessage(m);
            break;
          }
          for (const m of batch) {
            seen.add(String(m.sequenceNumber));
            if ('messageId' in which && m.messageId !== which.messageId) {
              await receiver.abandonMessage(m);
              continue;
            }
            const rememberedUntil = (m.enqueuedTimeUtc?.getTime() ?? now()) + duplicateWindowMs;
            if (rememberedUntil > now()) {
              await receiver.abandonMessage(m);
              notYet.push({ messageId: String(m.messageId), after: new Date(rememberedUntil).toISOString() });
              continue;
            }
            const { messageId, contentType, correlationId, subject, applicationProperties } = m;
            const body: unknown = m.body;
            await sender.sendMessages({ body, messageId, contentType, correlationId, subject, applicationProperties });
            await receiver.completeMessage(m);
            moved.push(String(messageId));
          }
          if ('messageId' in which && moved.length + notYet.length > 0) break;
        }
        return { moved, notYet };
      } finally {
        await sender.close();
        await receiver.close();
      }
    },
    close: () => client.close(),
  };
}

const LIST_MAX = 32;

/** `deadletter list`: a peek (up to 32) of the dead-lettered messages, with the dead-letter reason. */
export async function deadLetterListCommand(options: { bankId?: string; json: boolean }): Promise<void> {
  const queue = deadLetterQueueOf(bankTarget(options.bankId));
  try {
    // One more than shown tells whether there are more.
    const messages = await queue.peek(LIST_MAX + 1);
    const shown = messages.slice(0, LIST_MAX);
    if (options.json) return print(JSON.stringify(shown));
    for (const m of shown)
      print(`${m.enqueuedTimeUtc ?? '?'}  ${m.messageId}  ${m.reason ?? '?'}: ${m.description ?? ''}`);
    print(
      messages.length > LIST_MAX
        ? `more than ${LIST_MAX} dead-lettered messages in ${queue.where} (the first ${LIST_MAX} shown)`
        : `${messages.length} dead-lettered message(s) in ${queue.where}`
    );
  } finally {
    await queue.close();
  }
}

/** `deadletter redrive`: moves dead letters back to `credit-updates`, keeping the message id. */
export async function deadLetterRedriveCommand(options: {
  bankId?: string;
  all: boolean;
  messageId?: string;
  json: boolean;
}): Promise<void> {
  if (options.all === (options.messageId !== undefined)) throw new UsageError('give either --all or one message id');
  const target = bankTarget(options.bankId);
  const queue = deadLetterQueueOf(target);
  try {
    const { moved, notYet } = await queue.redrive(options.all ? { all: true } : { messageId: options.messageId! });
    if (!options.all && moved.length + notYet.length === 0)
      throw new Error(`no dead-lettered message ${options.messageId} in ${queue.where}`);
    if (options.json) return print(JSON.stringify({ bankId: target.config.bankId, redriven: moved, notYet }));
    for (const id of moved) print(`redriven ${id} → ${CREDIT_UPDATES_QUEUE}`);
    for (const { messageId, after } of notYet)
      print(`left ${messageId}: the queue's duplicate detection would drop a resend until ${after}; redrive it then`);
    print(`${moved.length} message(s) moved back to ${CREDIT_UPDATES_QUEUE} of ${target.config.bankId}`);
  } finally {
    await queue.close();
  }
}
