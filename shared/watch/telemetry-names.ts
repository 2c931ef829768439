import { telemetryName, type TelemetryName } from '../telemetry';

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
  /**
   * The watcher stopped (property: reason): a reorg deeper than its window (sent on every run until rebuilt), or
   * projections in a newer table layout than this version's (on every run until a newer version is deployed).
   */
  watcherHalted: 'WatcherHalted',
  /**
   * Projections in an older table layout: the watcher dropped the older layout's CreditLedger rows and replays from
   * the deploy block (properties: from, to, replayFromBlock, droppedRows).
   */
  projectionLayoutChanged: 'ProjectionLayoutChanged',
} as const;

/**
 * What each name means. The heartbeat does not repeat projection lag as a metric: it reads the watcher's
 * checkpoint for /api/status instead.
 */
export const WATCH_NAMES: TelemetryName[] = [
  telemetryName('watch', WATCH_METRICS.blocksProcessed, 'metric', 'blocks', [], 'blocks projected in a run'),
  telemetryName(
    'watch',
    WATCH_METRICS.recordsProjected,
    'metric',
    'records',
    [],
    'CreditRecordUpdated logs projected in a run'
  ),
  telemetryName(
    'watch',
    WATCH_METRICS.projectionLagBlocks,
    'metric',
    'blocks',
    [],
    'chain head minus the last projected block'
  ),
  telemetryName(
    'watch',
    WATCH_METRICS.projectionLagSeconds,
    'metric',
    's',
    [],
    'now minus the time of the last projected block'
  ),
  telemetryName(
    'watch',
    WATCH_METRICS.endToEndLatencyMs,
    'metric',
    'ms',
    ['status'],
    "this bank's records: projected minus enqueued"
  ),
  telemetryName('watch', WATCH_METRICS.reorgs, 'metric', 'reorgs', ['depth'], '1 per reorg undone'),
  telemetryName('watch', WATCH_METRICS.reorgDepth, 'metric', 'blocks', [], 'blocks undone by a reorg'),
  telemetryName(
    'watch',
    WATCH_EVENTS.reorgDetected,
    'event',
    '—',
    ['ancestor', 'tip', 'depth'],
    'a reorg within the window was undone'
  ),
  telemetryName(
    'watch',
    WATCH_EVENTS.watcherHalted,
    'event',
    '—',
    ['reason'],
    'the watcher stopped: a reorg deeper than its window, or projections in a newer table layout'
  ),
  telemetryName(
    'watch',
    WATCH_EVENTS.projectionLayoutChanged,
    'event',
    '—',
    ['from', 'to', 'replayFromBlock', 'droppedRows'],
    'projections in an older table layout: its rows dropped, replaying from the deploy block into the new one'
  ),
];
