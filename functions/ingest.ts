import { app, type InvocationContext, type ServiceBusQueueFunctionOptions } from '@azure/functions';
import { CREDIT_UPDATES_QUEUE } from '../shared/domain/credit-update';
import { errorMessage } from '../shared/redact';
import { getServices } from '../shared/services';

/** One credit-update message: settled when accepted, a duplicate or rejected; a throw means "deliver again". */
export async function ingest(body: unknown, context: InvocationContext): Promise<void> {
  const meta = context.triggerMetadata ?? {};
  const message = {
    body: Buffer.from(body as Uint8Array),
    messageId: typeof meta.messageId === 'string' ? meta.messageId : context.invocationId,
    deliveryCount: typeof meta.deliveryCount === 'number' ? meta.deliveryCount : 1,
    enqueuedTimeUtc: typeof meta.enqueuedTimeUtc === 'string' ? meta.enqueuedTimeUtc : undefined,
  };
  // Never the body: it may hold a raw subject identifier.
  const fields = { messageId: message.messageId, deliveryCount: message.deliveryCount, bodySize: message.body.length };
  try {
    const result = await getServices().ingest(message);
    context.log(JSON.stringify({ event: 'ingest', ...fields, ...result }));
  } catch (err) {
    context.warn(JSON.stringify({ event: 'ingest', ...fields, outcome: 'retry', error: errorMessage(err) }));
    throw err;
  }
}

// dataType 'binary' hands over the raw bytes, so invalid UTF-8 is seen (and rejected) as such. It is a standard
// binding property the library's option types do not list; the library passes it through to the binding.
const options: ServiceBusQueueFunctionOptions & { dataType: 'binary' } = {
  connection: 'ServiceBusConnection',
  queueName: CREDIT_UPDATES_QUEUE,
  dataType: 'binary',
  handler: ingest,
};
app.serviceBusQueue('ingest', options);
