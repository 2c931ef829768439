// Least-privilege role assignments of the Function App's user-assigned identity, each at the narrowest scope the
// code's calls allow, and of the admin who deploys. The identity exists before the Function App (identity.bicep),
// so these are in place when the app first starts. test/unit/infra.test.ts checks these GUIDs against the clients
// the code uses.

@description('Object (principal) id of the Function App user-assigned identity.')
param principalId string

@description('Object id of the deploying admin or admin group; empty skips the admin assignments.')
param adminPrincipalId string

@description('Storage account name.')
param storageAccountName string

@description('Service Bus namespace name.')
param serviceBusNamespaceName string

@description('credit-updates queue name.')
param queueName string

@description('Key Vault name.')
param keyVaultName string

@description('Signer key name.')
param signerKeyName string

@description('Key created ahead of a rotation (keyvault.bicep); empty when none.')
param nextSignerKeyName string = ''

@description('Application Insights name.')
param appInsightsName string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = {
  name: serviceBusNamespaceName
}

resource queue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' existing = {
  parent: namespace
  name: queueName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource signerKey 'Microsoft.KeyVault/vaults/keys@2023-07-01' existing = {
  parent: vault
  name: signerKeyName
}

// Named after the current key when there is no next key, so the (skipped) assignment below still has a valid scope.
resource nextSignerKey 'Microsoft.KeyVault/vaults/keys@2023-07-01' existing = {
  parent: vault
  name: empty(nextSignerKeyName) ? signerKeyName : nextSignerKeyName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// Key Vault Crypto User on the signer KEY only: keys/read (getKey) and sign (shared/keyvault/key-vault-signer.ts).
resource keyCryptoUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(signerKey.id, principalId, '12338af0-0e69-4776-bea7-57ae8d297424')
  scope: signerKey
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '12338af0-0e69-4776-bea7-57ae8d297424')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// The same on the key created ahead of a rotation: the app signs with it only once SIGNER_KEY_NAME names it, but
// the assignment is made now, because a new assignment can take minutes to apply and the switch must not stall.
// After the rotation the old key's assignment stays (deployments only add); docs/deploy-azure.md removes it.
resource nextKeyCryptoUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(nextSignerKeyName)) {
  name: guid(nextSignerKey.id, principalId, '12338af0-0e69-4776-bea7-57ae8d297424')
  scope: nextSignerKey
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '12338af0-0e69-4776-bea7-57ae8d297424')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Key Vault Secrets User on the VAULT (shared/domain/pseudonymize.ts: getSecret). The secret cannot be the scope:
// it does not exist at deployment (its value is set later by the consortium admin). The vault holds no other
// secret, and the signer key is non-exportable, so this reads exactly the pseudonymization key.
resource vaultSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, '4633458b-17de-408a-b874-0445c86b69e6')
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '4633458b-17de-408a-b874-0445c86b69e6')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Azure Service Bus Data Receiver on the QUEUE: the ingest trigger (functions/ingest.ts, connection
// ServiceBusConnection) and the heartbeat's dead-letter count, which peeks the queue's dead-letter sub-queue
// (shared/ops/dead-letters.ts). No management role (Data Owner) is needed.
resource queueReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(queue.id, principalId, '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0')
  scope: queue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Blob Data Owner: the Functions host (AzureWebJobsStorage by identity: leases, timer singletons) and
// the Flex deployment container. No queue role: with only timer, HTTP and Service Bus triggers the host uses no
// storage queue, and the app's only QueueClient is the local stack's stand-in for Service Bus.
resource storageBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b')
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Table Data Contributor: outbox, batches, projections, ops state (shared/storage/tables.ts creates them).
resource storageTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3')
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Monitoring Metrics Publisher on Application Insights: Entra ID ingestion (local auth is disabled).
resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, principalId, '3913510d-42f4-4e42-8a64-420c390055eb')
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '3913510d-42f4-4e42-8a64-420c390055eb')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Key Vault Secrets Officer for the admin who sets the pseudonymization secret (az keyvault secret set).
resource adminSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(adminPrincipalId)) {
  name: guid(vault.id, adminPrincipalId, 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7')
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7')
    principalId: adminPrincipalId
  }
}

// Key Vault Reader for the admin, on the VAULT: its data action Microsoft.KeyVault/vaults/*/read includes keys/read,
// which returns a key's public part (x, y), so `az keyvault key show` gives the signer address, for the current
// key and for one created ahead of a rotation. It cannot sign, read a secret's value or change anything: Key Vault
// Crypto User or Officer would also let the admin sign transactions as the bank. New keys are created by
// `azd provision` through Azure Resource Manager (Microsoft.KeyVault/vaults/keys/write, which the deploying
// Owner or Contributor holds), so no key-creating data role is granted either.
resource adminVaultReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(adminPrincipalId)) {
  name: guid(vault.id, adminPrincipalId, '21090545-7ca7-4776-b22c-e363652d74d2')
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '21090545-7ca7-4776-b22c-e363652d74d2')
    principalId: adminPrincipalId
  }
}

@description('Role definition GUIDs assigned to the Function App identity.')
output functionAppRoles array = [
  '12338af0-0e69-4776-bea7-57ae8d297424'
  '4633458b-17de-408a-b874-0445c86b69e6'
  '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
  'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  '3913510d-42f4-4e42-8a64-420c390055eb'
]
