// ledger-bridge: one member bank's deployment (azd: `azd up`). Subscription scope: creates the resource group.
// Written for the current Bicep CLI; no compiler was available when it was written (see infra/README.md).
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; used to name the resource group and derive unique resource names.')
param environmentName string

@minLength(1)
@description('Azure region of every resource. Must support the Flex Consumption plan (az functionapp list-flexconsumption-locations).')
param location string

@description('This member bank id as registered on the CreditRegistry contract, e.g. BANK-A (app setting BANK_ID).')
param bankId string

@description('Comma-separated JSON-RPC URLs of the PoA network, the load balancer first (CHAIN_RPC_URLS). https only.')
param chainRpcUrls string

@description('Comma-separated RPC URLs of every validator for the heartbeat (VALIDATOR_RPC_URLS); empty means CHAIN_RPC_URLS.')
param validatorRpcUrls string = ''

@description('The consortium chain id (CHAIN_ID).')
param chainId string

@description('CreditRegistry contract address, 0x + 40 hex digits (REGISTRY_ADDRESS).')
param registryAddress string

@description('First block the watcher projects: the CreditRegistry deployment block (WATCH_FROM_BLOCK).')
param watchFromBlock int = 0

@description('Blocks to wait before projecting a block; 0 for immediate-finality QBFT/IBFT chains (CONFIRMATIONS).')
param confirmations int = 2

@description('Target block time of the chain in seconds (BLOCK_TIME_SECONDS); also scales the chain alerts.')
param blockTimeSeconds int = 2

@description('Name of the EC-HSM P-256K signer key created in Key Vault (SIGNER_KEY_NAME). A new name is a new on-chain address.')
param signerKeyName string = 'signer-1'

@description('Name of a second signer key to create ahead of a rotation, while the app still signs with signerKeyName; empty for none (docs/deploy-azure.md, Rotating the signer key).')
param nextSignerKeyName string = ''

@description('Recover this environment\'s soft-deleted Key Vault (after `azd down`) instead of creating it. Set it for one deployment, then back to false: it fails when there is no deleted vault.')
param recoverKeyVault bool = false

@description('Application (client) id of the Microsoft Entra app registration that App Service authentication checks tokens against (LEDGER_AUTH_CLIENT_ID). The tenant\'s identity admins create it before the first deployment (docs/deploy-azure.md).')
@minLength(36)
@maxLength(36)
param authClientId string

@description('Comma-separated CIDR ranges allowed to reach the Function App and its deployment endpoint over the internet; empty allows any address (App Service authentication still applies). No effect with enablePrivateNetworking, which closes the public endpoint.')
param allowedIpRanges string = ''

@description('Name of the Key Vault secret holding the consortium pseudonymization key (PSEUDONYMIZATION_SECRET_NAME). Its value is set by the consortium admin, never by this template.')
param pseudonymizationSecretName string = 'pseudonymization-key'

@description('Alert: a validator failed this many beats in a row (ALERT_VALIDATOR_SILENT_BEATS).')
param alertValidatorSilentBeats int = 2

@description('Alert: head block older than this factor x block time (ALERT_BLOCK_AGE_FACTOR).')
param alertBlockAgeFactor int = 5

@description('Alert: average block time above this factor x block time (ALERT_BLOCK_TIME_FACTOR).')
param alertBlockTimeFactor int = 2

@description('Alert: oldest pending outbox event older than this many seconds (ALERT_OUTBOX_OLDEST_AGE_SECONDS).')
param alertOutboxOldestAgeSeconds int = 60

@description('Alert: at least this many messages in the credit-updates dead-letter queue (ALERT_DEAD_LETTERS).')
param alertDeadLetters int = 1

@description('Alert: a batch in flight (signed or mined, not confirmed) for more than this many blocks (ALERT_BATCH_STUCK_BLOCKS).')
param alertBatchStuckBlocks int = 30

@description('Alert: an accepted event not confirmed on chain this many seconds after it was enqueued (ALERT_UNCONFIRMED_AGE_SECONDS).')
param alertUnconfirmedAgeSeconds int = 300

@description('Alert: rejected messages above this percentage of all ingested messages over 15 minutes.')
param alertRejectionRatePercent int = 5

@description('E-mail address the action group notifies; empty creates the action group without receivers.')
param alertEmail string = ''

@description('Object id of the deploying user or admin group (azd sets AZURE_PRINCIPAL_ID); gets Key Vault Secrets Officer to set the pseudonymization secret and Key Vault Reader to read the signer keys\' public part (the address). Empty skips both.')
param adminPrincipalId string = ''

@description('Recommended for production: put Storage, Service Bus (Premium), Key Vault and the Function App itself behind private endpoints, integrate the Function App with a VNet, and close every public endpoint.')
param enablePrivateNetworking bool = false

@description('Flex Consumption instance memory in MB.')
@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

@description('Bound of the Node.js worker\'s old-space heap in MB (NODE_OPTIONS --max-old-space-size): the app lives in about 60 MB, and without a bound V8 lets garbage grow the heap far beyond that, by a limit it derives from the machine\'s memory. Lower it (256) on 512 MB instances (docs/deploy-azure.md#memory).')
@minValue(128)
param nodeMaxOldSpaceMB int = 1024

@description('Flex Consumption maximum instance count.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

var tags = { 'azd-env-name': environmentName, app: 'ledger-bridge', bank: bankId }
var token = toLower(uniqueString(subscription().id, environmentName, location))
var names = {
  resourceGroup: 'rg-${environmentName}'
  logAnalytics: 'log-${token}'
  appInsights: 'appi-${token}'
  actionGroup: 'ag-${token}'
  storage: 'st${token}'
  serviceBus: 'sb-${token}'
  keyVault: 'kv-${token}'
  identity: 'id-${token}'
  plan: 'plan-${token}'
  functionApp: 'func-${token}'
  vnet: 'vnet-${token}'
  workbook: guid(subscription().id, environmentName, 'ledger-bridge-workbook')
}

// Trimmed, empty entries dropped: 'a, b,' is ['a', 'b'].
var ipRanges = filter(map(split(allowedIpRanges, ','), cidr => trim(cidr)), cidr => !empty(cidr))

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: names.resourceGroup
  location: location
  tags: tags
}

module monitoring 'modules/monitoring.bicep' = {
  scope: rg
  name: 'monitoring'
  params: {
    location: location
    tags: tags
    logAnalyticsName: names.logAnalytics
    appInsightsName: names.appInsights
    actionGroupName: names.actionGroup
    alertEmail: alertEmail
  }
}

module network 'modules/network.bicep' = if (enablePrivateNetworking) {
  scope: rg
  name: 'network'
  params: {
    location: location
    tags: tags
    vnetName: names.vnet
  }
}

module storage 'modules/storage.bicep' = {
  scope: rg
  name: 'storage'
  params: {
    location: location
    tags: tags
    name: names.storage
    publicNetworkAccess: enablePrivateNetworking ? 'Disabled' : 'Enabled'
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  scope: rg
  name: 'servicebus'
  params: {
    location: location
    tags: tags
    name: names.serviceBus
    skuName: enablePrivateNetworking ? 'Premium' : 'Standard'
    publicNetworkAccess: enablePrivateNetworking ? 'Disabled' : 'Enabled'
  }
}

module keyVault 'modules/keyvault.bicep' = {
  scope: rg
  name: 'keyvault'
  params: {
    location: location
    tags: tags
    name: names.keyVault
    signerKeyName: signerKeyName
    nextSignerKeyName: nextSignerKeyName
    recoverSoftDeleted: recoverKeyVault
    publicNetworkAccess: enablePrivateNetworking ? 'Disabled' : 'Enabled'
  }
}

// The services the app calls. No queue endpoint: nothing in Azure uses storage queues.
module privateEndpoints 'modules/private-endpoints.bicep' = if (enablePrivateNetworking) {
  scope: rg
  name: 'private-endpoints'
  params: {
    location: location
    tags: tags
    subnetId: network.outputs.privateEndpointSubnetId
    vnetId: network.outputs.vnetId
    endpoints: [
      {
        name: 'blob'
        target: storage.outputs.id
        groupId: 'blob'
        zone: 'privatelink.blob.${environment().suffixes.storage}'
      }
      {
        name: 'table'
        target: storage.outputs.id
        groupId: 'table'
        zone: 'privatelink.table.${environment().suffixes.storage}'
      }
      {
        name: 'servicebus'
        target: serviceBus.outputs.id
        groupId: 'namespace'
        zone: 'privatelink.servicebus.windows.net'
      }
      { name: 'vault', target: keyVault.outputs.id, groupId: 'vault', zone: 'privatelink.vaultcore.azure.net' }
    ]
  }
}

// First, so that every role is assigned before the Function App exists (see modules/identity.bicep).
module identity 'modules/identity.bicep' = {
  scope: rg
  name: 'identity'
  params: {
    location: location
    tags: tags
    name: names.identity
  }
}

module roles 'modules/roles.bicep' = {
  scope: rg
  name: 'roles'
  params: {
    principalId: identity.outputs.principalId
    adminPrincipalId: adminPrincipalId
    storageAccountName: storage.outputs.name
    serviceBusNamespaceName: serviceBus.outputs.name
    queueName: serviceBus.outputs.queueName
    keyVaultName: keyVault.outputs.name
    signerKeyName: keyVault.outputs.signerKeyName
    nextSignerKeyName: keyVault.outputs.nextSignerKeyName
    appInsightsName: monitoring.outputs.appInsightsName
  }
}

module functionApp 'modules/functionapp.bicep' = {
  scope: rg
  name: 'functionapp'
  // The app starts with its roles in place and, with private networking, with its backends reachable.
  dependsOn: [roles, privateEndpoints]
  params: {
    location: location
    tags: tags
    planName: names.plan
    name: names.functionApp
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    tenantId: tenant().tenantId
    authClientId: authClientId
    allowedIpRanges: enablePrivateNetworking ? [] : ipRanges
    publicNetworkAccess: enablePrivateNetworking ? 'Disabled' : 'Enabled'
    storageAccountName: storage.outputs.name
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    serviceBusHost: serviceBus.outputs.host
    keyVaultUri: keyVault.outputs.uri
    signerKeyName: keyVault.outputs.signerKeyName
    pseudonymizationSecretName: pseudonymizationSecretName
    bankId: bankId
    chainRpcUrls: chainRpcUrls
    validatorRpcUrls: validatorRpcUrls
    chainId: chainId
    registryAddress: registryAddress
    watchFromBlock: watchFromBlock
    confirmations: confirmations
    blockTimeSeconds: blockTimeSeconds
    alertValidatorSilentBeats: alertValidatorSilentBeats
    alertBlockAgeFactor: alertBlockAgeFactor
    alertBlockTimeFactor: alertBlockTimeFactor
    alertOutboxOldestAgeSeconds: alertOutboxOldestAgeSeconds
    alertDeadLetters: alertDeadLetters
    alertBatchStuckBlocks: alertBatchStuckBlocks
    alertUnconfirmedAgeSeconds: alertUnconfirmedAgeSeconds
    subnetId: enablePrivateNetworking ? network.outputs.appSubnetId : ''
    instanceMemoryMB: instanceMemoryMB
    nodeMaxOldSpaceMB: nodeMaxOldSpaceMB
    maximumInstanceCount: maximumInstanceCount
  }
}

// The Function App's inbound private endpoint: with private networking it has no public endpoint at all.
module appPrivateEndpoint 'modules/private-endpoints.bicep' = if (enablePrivateNetworking) {
  scope: rg
  name: 'app-private-endpoint'
  params: {
    location: location
    tags: tags
    subnetId: network.outputs.privateEndpointSubnetId
    vnetId: network.outputs.vnetId
    endpoints: [
      { name: 'sites', target: functionApp.outputs.id, groupId: 'sites', zone: 'privatelink.azurewebsites.net' }
    ]
  }
}

module alerts 'modules/alerts.bicep' = {
  scope: rg
  name: 'alerts'
  params: {
    location: location
    tags: tags
    appInsightsId: monitoring.outputs.appInsightsId
    serviceBusNamespaceId: serviceBus.outputs.id
    queueName: serviceBus.outputs.queueName
    actionGroupId: monitoring.outputs.actionGroupId
    blockTimeSeconds: blockTimeSeconds
    alertValidatorSilentBeats: alertValidatorSilentBeats
    alertBlockAgeFactor: alertBlockAgeFactor
    alertBlockTimeFactor: alertBlockTimeFactor
    alertOutboxOldestAgeSeconds: alertOutboxOldestAgeSeconds
    alertDeadLetters: alertDeadLetters
    alertBatchStuckBlocks: alertBatchStuckBlocks
    alertUnconfirmedAgeSeconds: alertUnconfirmedAgeSeconds
    alertRejectionRatePercent: alertRejectionRatePercent
  }
}

module workbook 'modules/workbook.bicep' = {
  scope: rg
  name: 'workbook'
  params: {
    location: location
    tags: tags
    name: names.workbook
    appInsightsId: monitoring.outputs.appInsightsId
    bankId: bankId
  }
}

@description('Resource group that holds the deployment (azd reads AZURE_RESOURCE_GROUP).')
output AZURE_RESOURCE_GROUP string = rg.name

@description('Name of the Function App (azd deploys the api service to it).')
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name

@description('HTTPS base URL of the Function App (read API under /api).')
output FUNCTION_APP_URL string = 'https://${functionApp.outputs.defaultHostName}'

@description('Sign-in redirect URI to register on the auth app registration (web platform).')
output AUTH_REDIRECT_URI string = 'https://${functionApp.outputs.defaultHostName}/.auth/login/aad/callback'

@description('The dashboard, through the Microsoft Entra sign-in (no key in the URL).')
output DASHBOARD_URL string = 'https://${functionApp.outputs.defaultHostName}/.auth/login/aad?post_login_redirect_uri=/api/dashboard'

@description('Object (principal) id of the Function App user-assigned identity: the subject of the federated credential on the auth app registration.')
output FUNCTION_APP_PRINCIPAL_ID string = identity.outputs.principalId

@description('Client id of the Function App user-assigned identity (AZURE_CLIENT_ID of the app).')
output FUNCTION_APP_CLIENT_ID string = identity.outputs.clientId

@description('Microsoft Entra tenant id (issuer of the federated credential and of accepted tokens).')
output AZURE_TENANT_ID string = tenant().tenantId

@description('Key Vault URL (KEY_VAULT_URL); the admin sets the pseudonymization secret here.')
output KEY_VAULT_URL string = keyVault.outputs.uri

@description('Key Vault name, for `az keyvault secret set --vault-name`.')
output KEY_VAULT_NAME string = keyVault.outputs.name

@description('Name of the signer key; its Ethereum address is what the consortium admin registers with addMember. Bicep cannot derive the address: docs/deploy-azure.md reads it with az keyvault key show (Key Vault Reader).')
output SIGNER_KEY_NAME string = keyVault.outputs.signerKeyName

@description('Versionless URI of the signer key.')
output SIGNER_KEY_URI string = keyVault.outputs.signerKeyUri

@description('Key created ahead of a rotation, empty when none; register its address before switching to it.')
output NEXT_SIGNER_KEY_NAME string = keyVault.outputs.nextSignerKeyName

@description('Service Bus namespace host the bank systems publish credit-update events to.')
output SERVICE_BUS_HOST string = serviceBus.outputs.host

@description('Application Insights resource id (alerts and the workbook query it).')
output APPLICATIONINSIGHTS_ID string = monitoring.outputs.appInsightsId
