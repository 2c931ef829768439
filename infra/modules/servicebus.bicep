// Service Bus namespace and the credit-updates queue the bank systems publish to. Local (SAS) auth is disabled.

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Namespace name.')
param name string

@description('Standard (public) or Premium (required for private endpoints). Basic lacks duplicate detection.')
@allowed(['Standard', 'Premium'])
param skuName string

@description('Public network access: Disabled when private endpoints are used.')
@allowed(['Enabled', 'Disabled'])
param publicNetworkAccess string

@description('Queue name; functions/ingest.ts and shared/ops/dead-letters.ts use credit-updates.')
param queueName string = 'credit-updates'

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: name
  location: location
  tags: tags
  sku: skuName == 'Premium' ? { name: 'Premium', tier: 'Premium', capacity: 1 } : { name: 'Standard', tier: 'Standard' }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: publicNetworkAccess
  }
}

resource queue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = {
  parent: namespace
  name: queueName
  properties: {
    // A handler run is one table write per message; a minute is ample, and the host renews the lock
    // (host.json maxAutoLockRenewalDuration) if a run is slow.
    lockDuration: 'PT1M'
    // host.json / README: a message that keeps failing is dead-lettered after 10 deliveries.
    maxDeliveryCount: 10
    deadLetteringOnMessageExpiration: true
    defaultMessageTimeToLive: 'P14D'
    // Publishers set messageId = eventId, so a republish inside the window is dropped by Service Bus
    // (the outbox deduplicates anything older).
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT10M'
    enableBatchedOperations: true
  }
}

@description('Namespace resource id.')
output id string = namespace.id

@description('Namespace name.')
output name string = namespace.name

@description('Fully qualified namespace host (ServiceBusConnection__fullyQualifiedNamespace).')
output host string = '${namespace.name}.servicebus.windows.net'

@description('Queue name.')
output queueName string = queue.name
