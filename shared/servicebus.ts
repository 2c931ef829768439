import type { TokenCredential } from '@azure/core-auth';
import {
  ServiceBusClient,
  type ServiceBusMessage,
  type ServiceBusMessageBatch,
  type ServiceBusSender,
} from '@azure/service-bus';
import type { Config } from './config';

/**
 * The credit-updates queue's namespace, one way for the app and the CLI: identity-based in Azure (the namespace
 * host), the local stack's namespace by its connection string (refused in Azure by the config).
 */
export function serviceBusClientFor(config: Config, credential: TokenCredential): ServiceBusClient {
  if (config.serviceBusConnectionString) return new ServiceBusClient(config.serviceBusConnectionString);
  if (config.serviceBusNamespace) return new ServiceBusClient(config.serviceBusNamespace, credential);
  throw new Error(
    'these settings name no Service Bus namespace (ServiceBusConnection__fullyQualifiedNamespace, or ServiceBusConnection on the local stack)'
  );
}

/** The namespace as messages may show it: its host, never the connection string's key. */
export function serviceBusNameOf(config: Config): string {
  const endpoint = /Endpoint=sb:\/\/([^;/]+)/.exec(config.serviceBusConnectionString ?? '')?.[1];
  return endpoint ?? config.serviceBusNamespace ?? '(no namespace)';
}

/** Whether these settings say where the queue is. */
export const hasServiceBus = (config: Config): boolean =>
  config.serviceBusConnectionString !== undefined || config.serviceBusNamespace !== undefined;

/**
 * Sends messages in batches (`createMessageBatch`: as many as one transfer of the namespace's largest message
 * size holds), each batch when the next message no longer fits or on flush. `add` answers false for a message too
 * large for any batch (over the namespace's max message size): the caller reports it and goes on.
 */
export class BatchSender {
  private batch: ServiceBusMessageBatch | undefined;
  private onSent: (() => void)[] = [];

  constructor(private readonly sender: ServiceBusSender) {}

  async add(message: ServiceBusMessage, onSent: () => void = () => undefined): Promise<boolean> {
    this.batch ??= await this.sender.createMessageBatch();
    if (!this.batch.tryAddMessage(message)) {
      if (this.batch.count === 0) return false;
      await this.flush();
      this.batch = await this.sender.createMessageBatch();
      if (!this.batch.tryAddMessage(message)) return false;
    }
    this.onSent.push(onSent);
    return true;
  }

  async flush(): Promise<void> {
    const batch = this.batch;
    if (!batch || batch.count === 0) return;
    await this.sender.sendMessages(batch);
    for (const done of this.onSent) done();
    this.batch = undefined;
    this.onSent = [];
  }
}
