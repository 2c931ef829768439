import { ALERT_RULES, type AlertRule, type AlertState } from './alerts';
import type { BeatSample, ValidatorSample } from './model';
import { SAMPLE_RETENTION_MS, type OpsStore } from './ops-store';
import { MINUTE_MS } from '../util';

/** The status endpoint's and the dashboard's views, built from TABLES.ops alone (no Application Insights query). */

export type Overall = 'ok' | 'degraded' | 'down' | 'unknown';

export interface StatusReport {
  bankId: string;
  validators: { overall: Overall; nodes: ValidatorSample[] };
  chain: {
    overall: Overall;
    head: number | null;
    blockAgeSeconds: number | null;
    avgBlockTimeSeconds: number | null;
    txPerMinute: number | null;
    members: number | null;
    consensusSource: string | null;
    validatorSet: string[] | null;
  };
  pipeline: {
    overall: Overall;
    outboxDepth: number | null;
    /** True when outboxDepth is a lower bound (the heartbeat counts at most 160,000 pending events). */
    outboxDepthCapped: boolean;
    oldestPendingAgeSeconds: number | null;
    inFlightBatches: number | null;
    oldestInFlightBlocks: number | null;
    oldestUnconfirmedAgeSeconds: number | null;
    nonceGaps: number | null;
    rejections: number | null;
    deadLetters: number | null;
    projectionLagBlocks: number | null;
    projectionLagSeconds: number | null;
    problems: string[];
  };
  /** Firing alerts first, then those resolved in the last 30 minutes. */
  alerts: AlertState[];
  /** The beat this report shows (null before the first beat). */
  sampledAt: string | null;
  generatedAt: string;
}

export async function buildStatus(store: OpsStore, bankId: string, nowMs: number): Promise<StatusReport> {
  const [samples, alerts] = await Promise.all([store.samples(nowMs - SAMPLE_RETENTION_MS, nowMs), store.alerts()]);
  return statusFrom(samples[samples.length - 1], [...alerts.values()], bankId, nowMs);
}

export interface HistoryReport {
  bankId: string;
  windowMinutes: number;
  samples: BeatSample[];
  status: StatusReport;
}

export async function buildHistory(store: OpsStore, bankId: string, nowMs: number): Promise<HistoryReport> {
  const [samples, alerts] = await Promise.all([store.samples(nowMs - SAMPLE_RETENTION_MS, nowMs), store.alerts()]);
  return {
    bankId,
    windowMinutes: SAMPLE_RETENTION_MS / MINUTE_MS,
    samples,
    status: statusFrom(samples[samples.length - 1], [...alerts.values()], bankId, nowMs),
  };
}

export function statusFrom(
  latest: BeatSample | undefined,
  allAlerts: AlertState[],
  bankId: string,
  nowMs: number
): StatusReport {
  const recent = nowMs - SAMPLE_RETENTION_MS;
  const alerts = allAlerts
    .filter((a) => a.state === 'firing' || Date.parse(a.updatedAt) >= recent)
    .sort((a, b) => (a.state === b.state ? b.since.localeCompare(a.since) : a.state === 'firing' ? -1 : 1));
  // The sample's own verdict; the alert rows only for a sample from before samples carried one.
  const firing = (rule: AlertRule): boolean =>
    latest?.firing ? latest.firing.includes(rule) : alerts.some((a) => a.rule === rule && a.state === 'firing');
  const nodes = latest?.validators ?? [];
  const chain = latest?.chain;
  const pipeline = latest?.pipeline;

  let validatorsOverall: Overall = 'unknown';
  if (nodes.length) {
    const up = nodes.filter((n) => n.status !== 'down').length;
    validatorsOverall = up === 0 ? 'down' : nodes.every((n) => n.status === 'up') ? 'ok' : 'degraded';
  }
  let chainOverall: Overall = 'unknown';
  if (chain?.head !== undefined)
    chainOverall = firing(ALERT_RULES.chainStalled) ? 'down' : firing(ALERT_RULES.slowBlocks) ? 'degraded' : 'ok';
  else if (validatorsOverall === 'down') chainOverall = 'down';
  let pipelineOverall: Overall = 'unknown';
  if (pipeline) {
    // Never ok while a record is stuck: every write-side rule degrades the pipeline.
    const troubled =
      [
        ALERT_RULES.outboxBacklogAge,
        ALERT_RULES.deadLetters,
        ALERT_RULES.batchStuck,
        ALERT_RULES.recordsUnconfirmed,
        ALERT_RULES.nonceGap,
        ALERT_RULES.eventConflict,
      ].some(firing) || (pipeline.problems?.length ?? 0) > 0;
    pipelineOverall = troubled ? 'degraded' : 'ok';
  }

  return {
    bankId,
    validators: { overall: validatorsOverall, nodes },
    chain: {
      overall: chainOverall,
      head: chain?.head ?? null,
      blockAgeSeconds: chain?.blockAgeSeconds ?? null,
      avgBlockTimeSeconds: chain?.avgBlockTimeSeconds ?? null,
      txPerMinute: chain?.txPerMinute ?? null,
      members: chain?.members ?? null,
      consensusSource: chain?.consensusSource ?? null,
      validatorSet: chain?.validatorSet ?? null,
    },
    pipeline: {
      overall: pipelineOverall,
      outboxDepth: pipeline?.outboxDepth ?? null,
      outboxDepthCapped: pipeline?.outboxDepthCapped ?? false,
      oldestPendingAgeSeconds: pipeline?.oldestPendingAgeSeconds ?? null,
      inFlightBatches: pipeline?.inFlightBatches ?? null,
      oldestInFlightBlocks: pipeline?.oldestInFlightBlocks ?? null,
      oldestUnconfirmedAgeSeconds: pipeline?.oldestUnconfirmedAgeSeconds ?? null,
      nonceGaps: pipeline?.nonceGaps ?? null,
      rejections: pipeline?.rejections ?? null,
      deadLetters: pipeline?.deadLetters ?? null,
      projectionLagBlocks: pipeline?.projectionLagBlocks ?? null,
      projectionLagSeconds: pipeline?.projectionLagSeconds ?? null,
      problems: pipeline?.problems ?? [],
    },
    alerts,
    sampledAt: latest?.t ?? null,
    generatedAt: new Date(nowMs).toISOString(),
  };
}
