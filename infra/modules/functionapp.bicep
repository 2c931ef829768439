// The Function App on the Flex Consumption plan (FC1), Node.js 22, the user-assigned identity of identity.bicep,
// every app setting shared/config.ts reads, and App Service authentication (Microsoft Entra ID) in front of every
// HTTP route but the health probe. No connection strings, no keys, no client secret: every connection is
// identity-based. Flex Consumption takes the runtime from functionAppConfig.runtime; FUNCTIONS_WORKER_RUNTIME and
// FUNCTIONS_EXTENSION_VERSION must not be set as app settings on this plan.

@description('Azure region.')
param location string

@description('Tags for every resource; the site also gets azd-service-name=api.')
param tags object

@description('Flex Consumption plan name.')
param planName string

@description('Function App name.')
param name string

@description('Resource id of the user-assigned identity the app runs as.')
param identityId string

@description('Client id of that identity (AZURE_CLIENT_ID and the host\'s __clientId settings).')
param identityClientId string

@description('Microsoft Entra tenant id: the only tenant whose tokens App Service authentication accepts.')
param tenantId string

@description('Application (client) id of the Entra app registration App Service authentication validates tokens for.')
param authClientId string

@description('CIDR ranges allowed to reach the public endpoint (and the deployment endpoint); empty allows any address.')
param allowedIpRanges array

@description('Public network access of the site: Disabled when it is reached through a private endpoint.')
@allowed(['Enabled', 'Disabled'])
param publicNetworkAccess string

@description('Storage account of the host and the app tables (AzureWebJobsStorage__accountName).')
param storageAccountName string

@description('URL of the blob container the Flex plan deploys the package from.')
param deploymentContainerUrl string

@description('Application Insights connection string.')
param appInsightsConnectionString string

@description('Service Bus namespace host (ServiceBusConnection__fullyQualifiedNamespace).')
param serviceBusHost string

@description('Key Vault URL (KEY_VAULT_URL).')
param keyVaultUri string

@description('Signer key name (SIGNER_KEY_NAME).')
param signerKeyName string

@description('Pseudonymization secret name (PSEUDONYMIZATION_SECRET_NAME).')
param pseudonymizationSecretName string

@description('Member bank id (BANK_ID).')
param bankId string

@description('Chain RPC URLs, load balancer first (CHAIN_RPC_URLS).')
param chainRpcUrls string

@description('Validator RPC URLs for the heartbeat; empty means CHAIN_RPC_URLS (VALIDATOR_RPC_URLS).')
param validatorRpcUrls string

@description('Chain id (CHAIN_ID).')
param chainId string

@description('CreditRegistry address (REGISTRY_ADDRESS).')
param registryAddress string

@description('CreditRegistry deployment block (WATCH_FROM_BLOCK).')
param watchFromBlock int

@description('Confirmations before projecting (CONFIRMATIONS).')
param confirmations int

@description('Target block time in seconds (BLOCK_TIME_SECONDS).')
param blockTimeSeconds int

@description('ALERT_VALIDATOR_SILENT_BEATS.')
param alertValidatorSilentBeats int

@description('ALERT_BLOCK_AGE_FACTOR.')
param alertBlockAgeFactor int

@description('ALERT_BLOCK_TIME_FACTOR.')
param alertBlockTimeFactor int

@description('ALERT_OUTBOX_OLDEST_AGE_SECONDS.')
param alertOutboxOldestAgeSeconds int

@description('ALERT_DEAD_LETTERS.')
param alertDeadLetters int

@description('ALERT_BATCH_STUCK_BLOCKS.')
param alertBatchStuckBlocks int

@description('ALERT_UNCONFIRMED_AGE_SECONDS.')
param alertUnconfirmedAgeSeconds int

@description('Subnet for VNet integration; empty for none.')
param subnetId string

@description('Instance memory in MB.')
param instanceMemoryMB int

@description('Bound of the Node.js worker\'s old-space heap in MB.')
param nodeMaxOldSpaceMB int

@description('Maximum instance count.')
param maximumInstanceCount int

@description('Submit timer, six-field NCRONTAB (SUBMIT_SCHEDULE).')
param submitSchedule string = '* * * * * *'

@description('Watch timer, six-field NCRONTAB (WATCH_SCHEDULE).')
param watchSchedule string = '* * * * * *'

@description('Heartbeat timer, six-field NCRONTAB (HEARTBEAT_SCHEDULE).')
param heartbeatSchedule string = '*/30 * * * * *'

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { tier: 'FlexConsumption', name: 'FC1' }
  properties: { reserved: true }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: publicNetworkAccess
    virtualNetworkSubnetId: empty(subnetId) ? null : subnetId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      // Access restrictions: with ranges given, only they reach the app; the deployment (SCM) endpoint follows
      // the same rules, so `azd deploy` must run from one of them.
      ipSecurityRestrictions: [
        for (cidr, i) in allowedIpRanges: {
          name: 'allow-${i}'
          ipAddress: cidr
          action: 'Allow'
          tag: 'Default'
          priority: 100 + i
        }
      ]
      ipSecurityRestrictionsDefaultAction: empty(allowedIpRanges) ? 'Allow' : 'Deny'
      scmIpSecurityRestrictionsUseMain: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: { name: 'node', version: '22' }
    }
  }
}

// Basic publishing credentials (FTP, SCM) off: deployments use Entra ID (azd does).
resource ftp 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: { allow: false }
}

resource scm 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: { allow: false }
}

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: {
    LEDGER_ENVIRONMENT: 'azure'
    NODE_OPTIONS: '--max-old-space-size=${nodeMaxOldSpaceMB}'
    BANK_ID: bankId
    // The app's own clients (shared/identity.ts): ManagedIdentityCredential with this client id.
    AZURE_CLIENT_ID: identityClientId
    // The Functions host's identity-based connections must name a user-assigned identity explicitly.
    AzureWebJobsStorage__accountName: storageAccountName
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identityClientId
    ServiceBusConnection__fullyQualifiedNamespace: serviceBusHost
    ServiceBusConnection__credential: 'managedidentity'
    ServiceBusConnection__clientId: identityClientId
    KEY_VAULT_URL: keyVaultUri
    KEY_VAULT_ATTEMPT_TIMEOUT_MS: '5000'
    SIGNER_KEY_NAME: signerKeyName
    PSEUDONYMIZATION_SECRET_NAME: pseudonymizationSecretName
    APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
    // App Service authentication: the identity stands in for a client secret (a federated credential on the app
    // registration trusts it), and tokens from any other tenant are refused.
    OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID: identityClientId
    WEBSITE_AUTH_AAD_ALLOWED_TENANTS: tenantId
    CHAIN_RPC_URLS: chainRpcUrls
    VALIDATOR_RPC_URLS: validatorRpcUrls
    CHAIN_ID: chainId
    REGISTRY_ADDRESS: registryAddress
    CONFIRMATIONS: string(confirmations)
    BLOCK_TIME_SECONDS: string(blockTimeSeconds)
    WATCH_FROM_BLOCK: string(watchFromBlock)
    SUBMIT_SCHEDULE: submitSchedule
    WATCH_SCHEDULE: watchSchedule
    HEARTBEAT_SCHEDULE: heartbeatSchedule
    SUBMIT_MODE: 'batched'
    SUBMIT_MAX_RECORDS_PER_TX: '1000'
    SUBMIT_TX_GAS_BUDGET: '15000000'
    SUBMIT_MAX_IN_FLIGHT: '4'
    SUBMIT_REBROADCAST_AFTER_BLOCKS: '5'
    SUBMIT_MAX_FEE_BUMPS: '5'
    SUBMIT_MAX_FEE_PER_GAS_GWEI: '500'
    SUBMIT_FILL_WAIT_SECONDS: '30'
    WATCH_LOG_CHUNK_BLOCKS: '2000'
    WATCH_REORG_WINDOW_BLOCKS: '128'
    WATCH_FOLLOW_MS: '800'
    HEARTBEAT_PROBE_TIMEOUT_MS: '5000'
    ALERT_VALIDATOR_SILENT_BEATS: string(alertValidatorSilentBeats)
    ALERT_BLOCK_AGE_FACTOR: string(alertBlockAgeFactor)
    ALERT_BLOCK_TIME_FACTOR: string(alertBlockTimeFactor)
    ALERT_OUTBOX_OLDEST_AGE_SECONDS: string(alertOutboxOldestAgeSeconds)
    ALERT_DEAD_LETTERS: string(alertDeadLetters)
    ALERT_BATCH_STUCK_BLOCKS: string(alertBatchStuckBlocks)
    ALERT_UNCONFIRMED_AGE_SECONDS: string(alertUnconfirmedAgeSeconds)
  }
}

// App Service authentication (Easy Auth v2) with Microsoft Entra ID, in front of the read API, the status
// routes and the dashboard: a request without a valid token for the app registration gets a 401 before it
// reaches a function. Callers need a token whose audience is the app registration (downstream apps: client
// credentials; operators: the browser sign-in at /.auth/login/aad). Which principals may get such a token is set
// on the app registration: assignment required, and an app role per kind of caller (docs/deploy-azure.md).
// /api/health stays open for load balancer probes; it returns the bank id and nothing else.
resource auth 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'authsettingsV2'
  dependsOn: [appSettings]
  properties: {
    platform: {
      enabled: true
      runtimeVersion: '~1'
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
      excludedPaths: ['/api/health']
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenantId}/v2.0'
          clientId: authClientId
          // Not a secret: the name of the setting holding the identity's client id (federated credential).
          clientSecretSettingName: 'OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID'
        }
        validation: {
          allowedAudiences: [
            'api://${authClientId}'
            authClientId
          ]
        }
      }
    }
    login: {
      // The app never calls another API with the caller's token, so no token is stored.
      tokenStore: { enabled: false }
    }
  }
}

@description('Function App name.')
output name string = site.name

@description('Function App resource id.')
output id string = site.id

@description('Default host name of the Function App.')
output defaultHostName string = site.properties.defaultHostName
