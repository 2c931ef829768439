/** Telemetry the watcher sends (Application Insights customMetrics / customEvents names). */
export const WATCH_METRICS = {
  /** Blocks projected in a run. */
  blocksProcessed: 'watch.blocksProcessed',
  /** CreditRecordUpdated logs projected in a run (every bank's). */
  recordsProjected: 'watch.recordsProjected',
  /** Chain head minus the last projected block, after a run. */
  projectionLagBlocks: 'watch.projectionLagBlocks',
  /** Now minus the timestamp of the last projected block, after a run. */
  projectionLagSeconds: 'watch.projectionLagSeconds',
  /** This bank's records: projected time minus the Service Bus enqueue time (dimension status). */
  endToEndLatencyMs: 'watch.endToEndLatencyMs',
  /** 1 per reorg undone (dimension depth). */
  reorgs: 'watch.reorgs',
  /** Blocks undone by a reorg. */
  reorgDepth: 'watch.reorgDepth',
} as const;

export const WATCH_EVENTS = {
  /** A reorg within the window was undone (properties: ancestor, tip, depth). */
  reorgDetected: 'ReorgDetected',
  /** The watcher stopped: a reorg deeper than its window (property: reason). Sent on every run until rebuilt. */
  watcherHalted: 'WatcherHalted',
} as const;
