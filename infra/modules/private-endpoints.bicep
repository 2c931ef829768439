// Private endpoints, each with its private DNS zone linked to the VNet. main.bicep calls this twice: for the
// services the app calls (Storage blob and table, Service Bus, Key Vault) before the Function App starts, and for
// the Function App itself (inbound) once it exists.

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Subnet of the private endpoints.')
param subnetId string

@description('Virtual network the private DNS zones are linked to.')
param vnetId string

@description('The endpoints: name, target (resource id), groupId (sub-resource) and zone (private DNS zone name).')
param endpoints array

resource zones 'Microsoft.Network/privateDnsZones@2020-06-01' = [
  for e in endpoints: {
    name: e.zone
    location: 'global'
    tags: tags
  }
]

resource zoneLinks 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = [
  for (e, i) in endpoints: {
    parent: zones[i]
    name: 'link-${e.name}'
    location: 'global'
    tags: tags
    properties: {
      registrationEnabled: false
      virtualNetwork: { id: vnetId }
    }
  }
]

resource privateEndpoints 'Microsoft.Network/privateEndpoints@2024-05-01' = [
  for e in endpoints: {
    name: 'pe-${e.name}-${last(split(e.target, '/'))}'
    location: location
    tags: tags
    properties: {
      subnet: { id: subnetId }
      privateLinkServiceConnections: [
        {
          name: e.name
          properties: {
            privateLinkServiceId: e.target
            groupIds: [e.groupId]
          }
        }
      ]
    }
  }
]

resource zoneGroups 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = [
  for (e, i) in endpoints: {
    parent: privateEndpoints[i]
    name: 'default'
    properties: {
      privateDnsZoneConfigs: [
        {
          name: e.name
          properties: { privateDnsZoneId: zones[i].id }
        }
      ]
    }
  }
]

@description('Names of the private endpoints.')
output privateEndpointNames array = [for (e, i) in endpoints: privateEndpoints[i].name]
