// Key Vault Premium (HSM-backed keys) with RBAC authorization, soft delete and purge protection, and the
// bank's transaction signer key. The pseudonymization secret is NOT created here: its value is the
// consortium's shared key, which the consortium admin sets with `az keyvault secret set` (see docs/deploy-azure.md).

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Key Vault name (3-24 characters).')
param name string

@description('Name of the EC-HSM P-256K signer key.')
param signerKeyName string

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
// it, so rotation is the documented procedure (new key name, addMember, switch SIGNER_KEY_NAME, removeMember).
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

@description('Key Vault resource id.')
output id string = vault.id

@description('Key Vault name.')
output name string = vault.name

@description('Key Vault URL without a trailing slash (KEY_VAULT_URL).')
output uri string = 'https://${vault.name}${environment().suffixes.keyvaultDns}'

@description('Name of the signer key (SIGNER_KEY_NAME).')
output signerKeyName string = signerKey.name
