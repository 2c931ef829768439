// The Function App's user-assigned managed identity. It is created, and given its roles (roles.bicep), before the
// Function App exists, so the app has every role from its first start: with a system-assigned identity the roles
// could only be assigned after the site was created and running, and the first runs failed with 403s.
// It is attached to the Function App only: any other resource it were attached to would share the app's access.

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Identity name.')
param name string

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

@description('Identity resource id (attached to the Function App).')
output id string = identity.id

@description('Object (principal) id: the role assignments and the federated credential of the auth app registration name it.')
output principalId string = identity.properties.principalId

@description('Client id: what the app, the Functions host and App Service authentication pass to pick this identity.')
output clientId string = identity.properties.clientId
