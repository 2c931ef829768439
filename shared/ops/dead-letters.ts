import type { TokenCredential } from '@azure/core-auth';
import { ServiceBusAdministrationClient } from '@azure/service-bus';
import { QueueClient } from '@azure/storage-queue';
import type { Config } from '../config';

/** The bank systems' queue. TODO(lead): read it from config once the ingest function's queue setting exists. */
export const CREDIT_UPDATES_QUEUE = 'credit-updates';

/** Counts messages dead-lettered on the credit-updates queue. */
export interface DeadLetterCounter {
  readonly queue: string;
  count(): Promise<number>;
}

/**
 * Azure: the queue's runtime properties from the Service Bus management API. The Function App's identity needs
 * a role that may read them (Azure Service Bus Data Owner on the queue); Azure Monitor's DeadletteredMessages
 * metric raises the same alert independently.
 */
export class ServiceBusDeadLetterCounter implements DeadLetterCounter {
  private readonly admin: ServiceBusAdministrationClient;

  constructor(
    namespace: string,
    credential: TokenCredential,
    readonly queue: string
  ) {
    this.admin = new ServiceBusAdministrationClient(namespace, credential);
  }

  async count(): Promise<number> {
    const props = await this.admin.getQueueRuntimeProperties(this.queue);
    return props.deadLetterMessageCount;
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
  return config.serviceBusNamespace
    ? new ServiceBusDeadLetterCounter(config.serviceBusNamespace, credential, queue)
    : undefined;
}
