// Key Vault Premium (HSM-backed keys) with RBAC authorization, soft delete and purge protection, and the
// bank's transaction signer key (and, during a rotation, the next one). The pseudonymization secret is NOT created
// here: its value is the consortium's shared key, which the consortium admin sets with `az keyvault secret set`
// (see docs/deploy-azure.md).

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Key Vault name (3-24 characters).')
param name string

@description('Name of the EC-HSM P-256K signer key.')
param signerKeyName string

@description('Name of a second signer key to create ahead of a rotation; empty for none.')
param nextSignerKeyName string = ''

@description('Recover the soft-deleted vault of the same name (after `azd down`) instead of creating a new one.')
param recoverSoftDeleted bool = false

@description('Public network access: Disabled when private endpoints are used.')
@allowed(['Enabled', 'Disabled'])
param publicNetworkAccess string

@description('Soft-delete retention in days (7-90).')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'premium' }
    // The vault name is derived from the environment, and purge protection keeps a deleted vault (with its keys)
    // for softDeleteRetentionInDays: a redeployment after `azd down` cannot create the name again, it must
    // recover the vault. Recovering also brings back the signer key, so the bank keeps its on-chain address.
    // 'recover' fails when no deleted vault exists, so it is a one-time switch (docs/deploy-azure.md).
    createMode: recoverSoftDeleted ? 'recover' : 'default'
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      defaultAction: publicNetworkAccess == 'Enabled' ? 'Allow' : 'Deny'
      bypass: 'AzureServices'
    }
  }
}

// The transaction signer: secp256k1 inside the HSM, sign/verify only, never exportable. No rotationPolicy on
// purpose: a new key version is a new Ethereum address that is not a consortium member until the admin adds
// it, so rotation is the documented procedure (next key, addMember, switch SIGNER_KEY_NAME, removeMember).
// Azure Resource Manager creates a key only when it does not exist: a redeployment never adds a version.
resource signerKey 'Microsoft.KeyVault/vaults/keys@2023-07-01' = {
  parent: vault
  name: signerKeyName
  tags: tags
  properties: {
    kty: 'EC-HSM'
    curveName: 'P-256K'
    keyOps: ['sign', 'verify']
    attributes: {
      enabled: true
      exportable: false
    }
  }
}

// The key a rotation moves to, created (through Resource Manager, so the admin needs no key-creating data role)
// while the app still signs with signerKey, so its address can be registered with addMember first.
// Without a next key the resource is skipped, but Resource Manager still validates its name: never an empty one.
resource nextSignerKey 'Microsoft.KeyVault/vaults/keys@2023-07-01' = if (!empty(nextSignerKeyName)) {
  parent: vault
  name: empty(nextSignerKeyName) ? 'no-next-key' : nextSignerKeyName
  tags: tags
  properties: {
    kty: 'EC-HSM'
    curveName: 'P-256K'
    keyOps: ['sign', 'verify']
    attributes: {
      enabled: true
      exportable: false
    }
  }
}

@description('Key Vault resource id.')
output id string = vault.id

@description('Key Vault name.')
output name string = vault.name

@description('Key Vault URL without a trailing slash (KEY_VAULT_URL).')
output uri string = 'https://${vault.name}${environment().suffixes.keyvaultDns}'

@description('Name of the signer key (SIGNER_KEY_NAME).')
output signerKeyName string = signerKey.name

@description('Versionless URI of the signer key (what `az keyvault key show --id` reads).')
output signerKeyUri string = signerKey.properties.keyUri

@description('Name of the key created ahead of a rotation; empty when none.')
output nextSignerKeyName string = nextSignerKeyName
