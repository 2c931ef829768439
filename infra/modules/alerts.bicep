// Azure Monitor alert rules on the telemetry the app emits (names from shared/telemetry-catalogue.ts) and on
// two Service Bus platform metrics. Thresholds are the same parameters the app's own evaluator gets as
// ALERT_* settings (shared/ops/alerts.ts), so the local stack and Azure raise the same alerts.

@description('Azure region of the scheduled query rules.')
param location string

@description('Tags for every resource.')
param tags object

@description('Application Insights resource id the log alerts query.')
param appInsightsId string

@description('Service Bus namespace resource id (platform metric alerts).')
param serviceBusNamespaceId string

@description('credit-updates queue name (EntityName dimension).')
param queueName string

@description('Action group notified by every rule.')
param actionGroupId string

@description('Target block time in seconds.')
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

@description('Rejected percentage of ingested messages over 15 minutes that raises RejectionRate.')
param alertRejectionRatePercent int

@description('Failed function invocations in 5 minutes that raise FunctionFailures.')
param alertFunctionFailures int = 5

// Each query returns rows only while the condition holds; a rule fires when it returns at least one row.
// KQL strings use double quotes so they sit inside Bicep single-quoted strings unescaped.
var logRules = [
  {
    name: 'ValidatorSilent'
    severity: 1
    window: 'PT5M'
    description: 'A validator failed its last ${alertValidatorSilentBeats} heartbeat probes.'
    query: 'availabilityResults | where name startswith "validator " | order by name asc, timestamp desc | extend beat = row_number(1, prev(name) != name) | where beat <= ${alertValidatorSilentBeats} | summarize beats = count(), failed = countif(not(tobool(success))) by name | where beats >= ${alertValidatorSilentBeats} and failed == beats'
  }
  {
    name: 'ChainStalled'
    severity: 0
    window: 'PT5M'
    description: 'The best head block is older than ${alertBlockAgeFactor} x ${blockTimeSeconds} s.'
    query: 'customMetrics | where name == "chain.blockAgeSeconds" | summarize arg_max(timestamp, value) | where value > ${alertBlockAgeFactor * blockTimeSeconds}'
  }
  {
    name: 'SlowBlocks'
    severity: 2
    window: 'PT5M'
    description: 'The average block time is above ${alertBlockTimeFactor} x ${blockTimeSeconds} s.'
    query: 'customMetrics | where name == "chain.avgBlockTimeSeconds" | summarize avgBlockTime = avg(value) | where avgBlockTime > ${alertBlockTimeFactor * blockTimeSeconds}'
  }
  {
    name: 'OutboxBacklogAge'
    severity: 2
    window: 'PT5M'
    description: 'The oldest pending outbox event is older than ${alertOutboxOldestAgeSeconds} s.'
    query: 'customMetrics | where name == "outbox.oldestPendingAgeSeconds" | summarize arg_max(timestamp, value) | where value > ${alertOutboxOldestAgeSeconds}'
  }
  {
    name: 'BatchStuck'
    severity: 1
    window: 'PT5M'
    description: 'A batch has been in flight (not confirmed on chain) for more than ${alertBatchStuckBlocks} blocks.'
    query: 'customMetrics | where name == "submit.oldestInFlightBlocks" | summarize arg_max(timestamp, value) | where value > ${alertBatchStuckBlocks}'
  }
  {
    name: 'RecordsUnconfirmed'
    severity: 1
    window: 'PT5M'
    description: 'An accepted credit record is not confirmed on chain ${alertUnconfirmedAgeSeconds} s after it was enqueued (pending, batched or in flight).'
    query: 'customMetrics | where name == "pipeline.oldestUnconfirmedAgeSeconds" | summarize arg_max(timestamp, value) | where value > ${alertUnconfirmedAgeSeconds}'
  }
  {
    name: 'NonceGap'
    severity: 1
    window: 'PT5M'
    description: 'The chain waits on a nonce of the signer that no live batch holds, or lost batches the watcher had confirmed (run rebuild-projections).'
    query: 'customMetrics | where name == "submit.nonceGaps" | summarize arg_max(timestamp, value) | where value > 0'
  }
  {
    name: 'DeadLetters'
    severity: 2
    window: 'PT5M'
    description: 'At least ${alertDeadLetters} messages are in the credit-updates dead-letter queue.'
    query: 'customMetrics | where name == "ingest.deadLetters" | summarize arg_max(timestamp, value) | where value >= ${alertDeadLetters}'
  }
  {
    name: 'RejectionRate'
    severity: 3
    window: 'PT15M'
    description: 'More than ${alertRejectionRatePercent}% of ingested messages were rejected (at least 20 messages).'
    query: 'customMetrics | where name in ("ingest.rejected", "ingest.accepted", "ingest.duplicate") | summarize rejected = sumif(valueSum, name == "ingest.rejected"), total = sum(valueSum) | where total >= 20 and rejected * 100.0 / total > ${alertRejectionRatePercent}'
  }
  {
    // The app's evaluator looks back a day (EVENT_CONFLICT_WINDOW_MS): the same window here.
    name: 'EventConflict'
    severity: 2
    window: 'P1D'
    description: 'An event was rejected as a conflict in the last 24 hours: a sender reused an accepted event id for other content.'
    query: 'customEvents | where name == "EventRejected" and tostring(customDimensions.code) == "conflict" | summarize conflicts = count() | where conflicts > 0'
  }
  {
    name: 'FunctionFailures'
    severity: 2
    window: 'PT5M'
    description: 'At least ${alertFunctionFailures} function invocations failed.'
    query: 'requests | where not(tobool(success)) | summarize failures = count() | where failures >= ${alertFunctionFailures}'
  }
  {
    name: 'WatcherHalted'
    severity: 1
    window: 'PT5M'
    description: 'The watcher stopped on a reorg deeper than its window; rebuild the projections.'
    query: 'customEvents | where name == "WatcherHalted" | summarize halts = count() | where halts > 0'
  }
  {
    name: 'HeartbeatMissing'
    severity: 1
    window: 'PT5M'
    description: 'No validator probe was reported: the heartbeat (or the whole app, or its telemetry) is not running.'
    query: 'availabilityResults | where name startswith "validator " | summarize probes = count() | where probes == 0'
  }
]

resource scheduledQueryRules 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [
  for rule in logRules: {
    name: rule.name
    location: location
    tags: tags
    kind: 'LogAlert'
    properties: {
      displayName: rule.name
      description: rule.description
      severity: rule.severity
      enabled: true
      scopes: [appInsightsId]
      evaluationFrequency: 'PT5M'
      windowSize: rule.window
      autoMitigate: true
      criteria: {
        allOf: [
          {
            query: rule.query
            timeAggregation: 'Count'
            operator: 'GreaterThan'
            threshold: 0
            failingPeriods: {
              numberOfEvaluationPeriods: 1
              minFailingPeriodsToAlert: 1
            }
          }
        ]
      }
      actions: { actionGroups: [actionGroupId] }
    }
  }
]

// Service Bus throttling (platform metric): the namespace refused requests.
resource serviceBusThrottling 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'ServiceBusThrottling'
  location: 'global'
  tags: tags
  properties: {
    description: 'Service Bus throttled requests on the namespace.'
    severity: 2
    enabled: true
    scopes: [serviceBusNamespaceId]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'throttled'
          metricName: 'ThrottledRequests'
          metricNamespace: 'Microsoft.ServiceBus/namespaces'
          timeAggregation: 'Total'
          operator: 'GreaterThan'
          threshold: 0
        }
      ]
    }
    actions: [{ actionGroupId: actionGroupId }]
  }
}

// The same dead-letter condition from the platform metric, independent of the app's heartbeat (whose peek
// count stops at 1000).
resource deadLettersPlatform 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'DeadLettersPlatform'
  location: 'global'
  tags: tags
  properties: {
    description: 'Messages in the ${queueName} dead-letter queue (Service Bus metric).'
    severity: 2
    enabled: true
    scopes: [serviceBusNamespaceId]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'deadlettered'
          metricName: 'DeadletteredMessages'
          metricNamespace: 'Microsoft.ServiceBus/namespaces'
          dimensions: [{ name: 'EntityName', operator: 'Include', values: [queueName] }]
          timeAggregation: 'Maximum'
          operator: 'GreaterThanOrEqual'
          threshold: alertDeadLetters
        }
      ]
    }
    actions: [{ actionGroupId: actionGroupId }]
  }
}

@description('Names of the log alert rules.')
output logAlertRuleNames array = [for rule in logRules: rule.name]
