import { randomBytes } from 'node:crypto';
import { ServiceBusClient } from '@azure/service-bus';
import { startNamespace, type LocalServiceBusNamespace } from '../../local/servicebus/namespace';
import { CREDIT_UPDATES_QUEUE } from '../../shared/domain/credit-update';
import { ServiceBusDeadLetterCounter } from '../../shared/ops/dead-letters';

/** The heartbeat's dead-letter count as it runs in Azure (the Service Bus SDK), against the local namespace. */
describe('dead-letter count over the Service Bus SDK', () => {
  let namespace: LocalServiceBusNamespace;
  beforeAll(async () => {
    namespace = await startNamespace({
      queues: [{ name: CREDIT_UPDATES_QUEUE }],
      sharedAccessKeyName: 'RootManageSharedAccessKey',
      sharedAccessKey: randomBytes(32).toString('base64'),
    });
  });
  afterAll(async () => namespace?.stop());

  it('counts every dead letter at every beat, not only those after the last peek', async () => {
    const client = new ServiceBusClient(namespace.connectionString);
    const sender = client.createSender(CREDIT_UPDATES_QUEUE);
    await sender.sendMessages([
      { body: 'a', messageId: 'a' },
      { body: 'b', messageId: 'b' },
    ]);
    const receiver = client.createReceiver(CREDIT_UPDATES_QUEUE);
    for (const m of await receiver.receiveMessages(2, { maxWaitTimeInMs: 5_000 }))
      await receiver.deadLetterMessage(m, {
        deadLetterReason: 'MaxDeliveryCountExceeded',
        deadLetterErrorDescription: '',
      });
    await client.close();

    const counter = new ServiceBusDeadLetterCounter(
      () => new ServiceBusClient(namespace.connectionString),
      CREDIT_UPDATES_QUEUE
    );
    // The SDK keeps a peek cursor per client: a counter that kept its client would count 0 the second time.
    expect([await counter.count(), await counter.count()]).toEqual([2, 2]);
  });
});
