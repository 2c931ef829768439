// The consortium dashboard as an Azure Workbook over Application Insights (queries in workbook.json).

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Workbook resource name (a GUID).')
param name string

@description('Application Insights resource id the workbook queries.')
param appInsightsId string

@description('Member bank id, shown in the workbook title.')
param bankId string

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: name
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'ledger-bridge consortium dashboard (${bankId})'
    category: 'workbook'
    sourceId: appInsightsId
    serializedData: loadTextContent('workbook.json')
  }
}

@description('Workbook resource id.')
output id string = workbook.id
