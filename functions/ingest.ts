import { app, type InvocationContext, type ServiceBusQueueFunctionOptions } from '@azure/functions';
import { CREDIT_UPDATES_QUEUE } from '../shared/domain/credit-update';
import type { IngestMessage } from '../shared/ingest/ingest';
import { errorMessage } from '../shared/redact';
import { getServices } from '../shared/services';

/**
 * A batch of credit-update messages (the trigger's cardinality 'many'): one validation pass and one outbox
 * transaction per shard for the batch. Returning settles every message of the batch (accepted, a duplicate or
 * rejected); a throw means "deliver the batch again", which is harmless for the messages accepted meanwhile
 * (they are duplicates the second time).
 */
export async function ingest(batch: unknown, context: InvocationContext): Promise<void> {
  const bodies = Array.isArray(batch) ? (batch as unknown[]) : [batch];
  const meta = context.triggerMetadata ?? {};
  const at = <T>(name: string, i: number, isType: (v: unknown) => v is T): T | undefined => {
    const value = Array.isArray(meta[name]) ? (meta[name] as unknown[])[i] : undefined;
    return isType(value) ? value : undefined;
  };
  const messages: IngestMessage[] = bodies.map((body, i) => ({
    body: Buffer.from(body as Uint8Array),
    messageId: at('messageIdArray', i, isString) ?? `${context.invocationId}/${i}`,
    deliveryCount: at('deliveryCountArray', i, isNumber) ?? 1,
    enqueuedTimeUtc: at('enqueuedTimeUtcArray', i, isString),
  }));
  // Never the body: it may hold a raw subject identifier.
  const fields = (m: IngestMessage) => ({
    messageId: m.messageId,
    deliveryCount: m.deliveryCount,
    bodySize: m.body.length,
  });
  try {
    const results = await getServices().ingest(messages);
    const counts = { messages: messages.length, accepted: 0, duplicate: 0, rejected: 0 };
    for (const [i, result] of results.entries()) {
      counts[result.outcome]++;
      // Accepted messages are counted, not listed: their outbox rows keep the message ids, and a line each would
      // be a trace per event in Application Insights, hundreds a second in a burst.
      if (result.outcome !== 'accepted')
        context.log(JSON.stringify({ event: 'ingest', ...fields(messages[i]!), ...result }));
    }
    context.log(JSON.stringify({ event: 'ingestBatch', ...counts }));
  } catch (err) {
    const error = errorMessage(err);
    for (const m of messages) context.warn(JSON.stringify({ event: 'ingest', ...fields(m), outcome: 'retry', error }));
    throw err;
  }
}

const isString = (v: unknown): v is string => typeof v === 'string';
const isNumber = (v: unknown): v is number => typeof v === 'number';

// dataType 'binary' hands over the raw bytes, so invalid UTF-8 is seen (and rejected) as such. It is a standard
// binding property the library's option types do not list; the library passes it through to the binding.
const options: ServiceBusQueueFunctionOptions & { dataType: 'binary' } = {
  connection: 'ServiceBusConnection',
  queueName: CREDIT_UPDATES_QUEUE,
  cardinality: 'many',
  dataType: 'binary',
  handler: ingest,
};
app.serviceBusQueue('ingest', options);
