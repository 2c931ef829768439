import type { Config } from '../config';
import type { OutboxBacklog } from '../storage/outbox';
import type { WriteSideHealth } from '../submit/reconcile';
import type { Telemetry } from '../telemetry';
import {
  ALERT_RULES,
  alertChecks,
  evaluateAlerts,
  EVENT_CONFLICT_WINDOW_MS,
  type AlertState,
  type AlertTransition,
} from './alerts';
import { HeaderWindow, chainStats, round } from './chain-stats';
import type { DeadLetterCounter } from './dead-letters';
import type { BeatSample, ChainSample, NodeStatus, PipelineSample, ValidatorSample } from './model';
import { SAMPLE_RETENTION_MS, type OpsStore, type ValidatorState } from './ops-store';
import { probeValidator, validatorEndpoint, type ProbeResult, type ValidatorEndpoint } from './probe';
import { RpcClient } from './rpc';
import { EVENTS, METRICS, availabilityName } from './telemetry-names';
import { activityFromMiners, consensusHealth, type ConsensusHealth } from './validator-methods';
import { MINUTE_MS } from '../util';
import { errorMessage } from '../redact';

/** Where the pipeline figures come from; each is optional, and a missing one is reported as unknown. */
export interface PipelineSources {
  backlog?: () => Promise<OutboxBacklog>;
  deadLetters?: DeadLetterCounter;
  /** Rejections since the previous beat. */
  rejections?: (sinceMs: number) => Promise<number>;
  /** Events rejected as a conflict (an accepted event id republished with other content) since a time. */
  conflicts?: (sinceMs: number) => Promise<number>;
  /** The watcher's last projected block (the watcher sends its own lag metrics; these feed /api/status). */
  projection?: () => Promise<{ block: number; blockTime: number } | undefined>;
  /** The batch log against the chain: what is in flight, since when, and nonce gaps. */
  writeSide?: () => Promise<WriteSideHealth>;
}

export interface HeartbeatOptions {
  bankId: string;
  validatorRpcUrls: string[];
  probeTimeoutMs: number;
  chainId: number;
  blockTimeSeconds: number;
  alerts: Config['alerts'];
  store: OpsStore;
  telemetry: Telemetry;
  pipeline: PipelineSources;
  /** Consortium member count (CreditRegistry.members()). */
  members?: () => Promise<number>;
  now?: () => number;
  log?: (line: string) => void;
}

/** One beat's clock and the events it sent (also returned, for tests and logs). */
interface Beat {
  nowMs: number;
  nowIso: string;
  events: BeatResult['events'];
  event(name: string, properties: Record<string, string>, measurements?: Record<string, number>): void;
}

export interface BeatResult {
  sample: BeatSample;
  /** JSON-RPC calls per validator (by name) in this beat, and the chain-level calls (header window). */
  rpcCalls: Record<string, number>;
  chainRpcCalls: number;
  events: { name: string; properties: Record<string, string> }[];
  transitions: AlertTransition[];
  alerts: AlertState[];
}

/**
 * One heartbeat: probe every validator in parallel, derive chain and pipeline figures, send availability,
 * metrics and state-change events, evaluate the alert rules, and keep a sample for the status page. Keeps a
 * small in-memory header cache between beats; all state that matters is in TABLES.ops.
 */
export class HeartbeatService {
  private readonly endpoints: ValidatorEndpoint[];
  private readonly headers = new HeaderWindow();
  private readonly now: () => number;
  private lastBeatMs: number | undefined;

  constructor(private readonly options: HeartbeatOptions) {
    this.endpoints = options.validatorRpcUrls.map(validatorEndpoint);
    this.now = options.now ?? Date.now;
  }

  async beat(): Promise<BeatResult> {
    const o = this.options;
    const nowMs = this.now();
    const beat: Beat = { nowMs, nowIso: new Date(nowMs).toISOString(), events: [], event: () => undefined };
    beat.event = (name, properties, measurements) => {
      beat.events.push({ name, properties });
      o.telemetry.event(name, { bankId: o.bankId, ...properties }, measurements);
    };
    const [states, previousAlerts, chainState] = await Promise.all([
      o.store.validatorStates(),
      o.store.alerts(),
      o.store.chainState(),
    ]);
    const { probes, best, newStates, validators } = await this.probeValidators(beat, states);
    const { chain, chainRpcCalls } = await this.chainFigures(beat, probes, best, chainState.validatorSet);
    const pipeline = await this.pipeline(nowMs, chain.head);
    const { alerts, transitions } = this.evaluate(beat, newStates, chain, pipeline, previousAlerts);

    const firing = [...new Set(alerts.filter((a) => a.state === 'firing').map((a) => a.rule))];
    const sample: BeatSample = { t: beat.nowIso, validators, chain, pipeline, firing };
    await Promise.all([
      o.store.putValidatorStates(newStates),
      o.store.putAlerts(alerts),
      chain.validatorSet ? o.store.putChainState({ validatorSet: chain.validatorSet }) : undefined,
      o.store.addSample(sample),
    ]);
    await o.store.pruneSamples(nowMs - SAMPLE_RETENTION_MS);
    this.lastBeatMs = nowMs;
    // Timer instances may be frozen right after the run: send now rather than on the SDK's next interval.
    await o.telemetry.flush().catch((err) => o.log?.(`heartbeat: telemetry flush failed: ${errorMessage(err)}`));

    const events = beat.events;
    const rpcCalls = Object.fromEntries(probes.map((p) => [p.endpoint.name, p.rpcCalls]));
    return { sample, rpcCalls, chainRpcCalls, events, transitions, alerts };
  }

  /** Validators: every one probed at once, lag against the best head of this beat, state changes, telemetry. */
  private async probeValidators(beat: Beat, states: Map<string, ValidatorState>) {
    const o = this.options;
    const probes = await Promise.all(
      this.endpoints.map((endpoint) =>
        probeValidator(endpoint, {
          timeoutMs: o.probeTimeoutMs,
          expectedChainId: o.chainId,
          unsupported: states.get(endpoint.key)?.unsupported ?? {},
          now: beat.nowMs,
        })
      )
    );
    const best = probes
      .filter((p) => p.up && p.head)
      .sort((a, b) => b.head!.number - a.head!.number || b.head!.timestamp - a.head!.timestamp)[0];
    const newStates: ValidatorState[] = [];
    const validators: ValidatorSample[] = [];
    for (const p of probes) {
      const before = states.get(p.endpoint.key);
      const state = nextState(p, before, beat.nowIso);
      newStates.push(state);
      if (!p.up && before?.status !== 'down')
        beat.event(EVENTS.validatorDown, { validator: p.endpoint.name, reason: p.error ?? 'unknown' });
      if (p.up && before?.status === 'down') {
        const downFor = Math.round((beat.nowMs - Date.parse(before.since)) / 1000);
        beat.event(EVENTS.validatorUp, { validator: p.endpoint.name, downForSeconds: String(downFor) }, { downFor });
      }
      const sample = validatorSample(p, best, state, beat.nowMs);
      validators.push(sample);
      this.sendValidatorTelemetry(p, sample);
    }
    return { probes, best, newStates, validators };
  }

  /** Chain: figures from the best node's recent headers; validator set from a consensus API when offered. */
  private async chainFigures(
    beat: Beat,
    probes: ProbeResult[],
    best: ProbeResult | undefined,
    knownValidatorSet: string[] | undefined
  ): Promise<{ chain: ChainSample; chainRpcCalls: number }> {
    const o = this.options;
    let chainRpcCalls = 0;
    const chain: ChainSample = {};
    const problems: string[] = [];
    let consensus: ConsensusHealth | undefined = probes.find((p) => p.up && p.consensus?.validators)?.consensus;
    consensus ??= probes.find((p) => p.up && p.consensus)?.consensus;
    if (best?.head) {
      chain.head = best.head.number;
      chain.blockAgeSeconds = Math.max(0, round(beat.nowMs / 1000 - best.head.timestamp, 1));
      const client = new RpcClient(best.endpoint.url);
      try {
        const headers = await this.headers.load(client, best.head, AbortSignal.timeout(o.probeTimeoutMs));
        Object.assign(chain, chainStats(headers, beat.nowMs / 1000));
        consensus ??= consensusHealth('miners', undefined, activityFromMiners(headers));
      } catch (err) {
        problems.push(`recent blocks from ${best.endpoint.name}: ${errorMessage(err)}`);
      }
      chainRpcCalls = client.calls;
    }
    if (consensus) {
      chain.consensusSource = consensus.source;
      if (consensus.validators) chain.validatorSet = consensus.validators;
      if (consensus.activity) chain.participation = consensus.activity;
    }
    if (o.members) {
      try {
        chain.members = await o.members();
      } catch (err) {
        problems.push(`members: ${errorMessage(err)}`);
      }
    }
    if (problems.length) chain.problems = problems;
    this.sendChainTelemetry(chain);
    if (chain.validatorSet && knownValidatorSet && !sameSet(chain.validatorSet, knownValidatorSet)) {
      beat.event(EVENTS.validatorSetChanged, {
        added: chain.validatorSet.filter((v) => !knownValidatorSet.includes(v)).join(','),
        removed: knownValidatorSet.filter((v) => !chain.validatorSet!.includes(v)).join(','),
        validators: chain.validatorSet.join(','),
      });
    }
    return { chain, chainRpcCalls };
  }

  /** Alerts: the same rules and thresholds as the Azure Monitor alert definitions; an event per transition. */
  private evaluate(
    beat: Beat,
    validatorStates: ValidatorState[],
    chain: ChainSample,
    pipeline: PipelineSample,
    previous: Map<string, AlertState>
  ): { alerts: AlertState[]; transitions: AlertTransition[] } {
    const o = this.options;
    const checks = alertChecks(
      {
        validatorFailures: new Map(validatorStates.map((s) => [s.name, s.consecutiveFailures])),
        chainBlockAgeSeconds: chain.blockAgeSeconds,
        avgBlockTimeSeconds: chain.avgBlockTimeSeconds,
        outboxOldestAgeSeconds: pipeline.oldestPendingAgeSeconds,
        oldestInFlightBlocks: pipeline.oldestInFlightBlocks,
        oldestUnconfirmedAgeSeconds: pipeline.oldestUnconfirmedAgeSeconds,
        nonceGaps: pipeline.nonceGaps,
        eventConflicts: pipeline.conflictsLastDay,
        deadLetters:
          o.pipeline.deadLetters && pipeline.deadLetters !== undefined
            ? { queue: o.pipeline.deadLetters.queue, count: pipeline.deadLetters }
            : undefined,
      },
      o.alerts,
      o.blockTimeSeconds,
      previous
    );
    const { states: alerts, transitions } = evaluateAlerts(checks, previous, beat.nowIso);
    for (const t of transitions) {
      const a = t.alert;
      const properties = { rule: a.rule, subject: a.subject, value: String(a.value), threshold: String(a.threshold) };
      beat.event(t.kind === 'fired' ? EVENTS.alertFired : EVENTS.alertResolved, properties, {
        value: a.value,
        threshold: a.threshold,
      });
      if (a.rule === ALERT_RULES.chainStalled && t.kind === 'fired')
        beat.event(EVENTS.chainStalled, { blockAgeSeconds: String(a.value), threshold: String(a.threshold) });
      if (a.rule === ALERT_RULES.chainStalled && t.kind === 'resolved')
        beat.event(EVENTS.chainResumed, { blockAgeSeconds: String(a.value) });
    }
    return { alerts, transitions };
  }

  private async pipeline(nowMs: number, head: number | undefined): Promise<PipelineSample> {
    const sources = this.options.pipeline;
    const problems: string[] = [];
    const attempt = async <T>(what: string, read: (() => Promise<T>) | undefined): Promise<T | undefined> => {
      if (!read) return undefined;
      try {
        return await read();
      } catch (err) {
        problems.push(`${what}: ${errorMessage(err)}`);
        return undefined;
      }
    };
    const since = this.lastBeatMs ?? nowMs - MINUTE_MS;
    const [backlog, deadLetters, rejections, conflicts, projection, writeSide] = await Promise.all([
      attempt('outbox', sources.backlog),
      attempt('dead letters', sources.deadLetters && (() => sources.deadLetters!.count())),
      attempt('rejections', sources.rejections && (() => sources.rejections!(since))),
      attempt('conflicts', sources.conflicts && (() => sources.conflicts!(nowMs - EVENT_CONFLICT_WINDOW_MS))),
      attempt('projection', sources.projection),
      attempt('batches', sources.writeSide),
    ]);
    const pipeline: PipelineSample = {
      rejections: rejections ?? null,
      projectionLagBlocks: projection && head !== undefined ? Math.max(0, head - projection.block) : null,
      projectionLagSeconds: projection ? Math.max(0, round(nowMs / 1000 - projection.blockTime, 1)) : null,
    };
    if (backlog) {
      pipeline.outboxDepth = backlog.depth;
      if (backlog.capped) pipeline.outboxDepthCapped = true;
      pipeline.oldestPendingAgeSeconds = backlog.oldestEnqueuedAt
        ? Math.max(0, round((nowMs - Date.parse(backlog.oldestEnqueuedAt)) / 1000, 1))
        : 0;
    }
    if (writeSide) {
      pipeline.inFlightBatches = writeSide.inFlight;
      pipeline.oldestInFlightBlocks = writeSide.oldestInFlightBlocks ?? 0;
      pipeline.nonceGaps = writeSide.nonceGaps + writeSide.diverged;
    }
    // Unconfirmed, whatever the state: pending in the outbox, or in a batch not yet confirmed on chain.
    if (backlog && (writeSide || !sources.writeSide)) {
      const oldest = [backlog.oldestEnqueuedAt, writeSide?.oldestInFlightEnqueuedAt]
        .filter((t): t is string => t !== undefined)
        .map(Date.parse);
      pipeline.oldestUnconfirmedAgeSeconds = oldest.length
        ? Math.max(0, round((nowMs - Math.min(...oldest)) / 1000, 1))
        : 0;
    }
    if (deadLetters !== undefined) pipeline.deadLetters = deadLetters;
    if (conflicts !== undefined) pipeline.conflictsLastDay = conflicts;
    if (problems.length) pipeline.problems = problems;

    const t = this.options.telemetry;
    if (pipeline.outboxDepth !== undefined) t.metric(METRICS.outboxDepth, pipeline.outboxDepth);
    if (pipeline.oldestPendingAgeSeconds !== undefined)
      t.metric(METRICS.outboxOldestAge, pipeline.oldestPendingAgeSeconds);
    if (pipeline.oldestInFlightBlocks !== undefined) t.metric(METRICS.inFlightBlocks, pipeline.oldestInFlightBlocks);
    if (pipeline.oldestUnconfirmedAgeSeconds !== undefined)
      t.metric(METRICS.unconfirmedAge, pipeline.oldestUnconfirmedAgeSeconds);
    if (pipeline.nonceGaps !== undefined) t.metric(METRICS.nonceGaps, pipeline.nonceGaps);
    if (pipeline.rejections !== null) t.metric(METRICS.rejections, pipeline.rejections);
    if (pipeline.deadLetters !== undefined)
      t.metric(METRICS.deadLetters, pipeline.deadLetters, { queue: sources.deadLetters!.queue });
    return pipeline;
  }

  private sendValidatorTelemetry(p: ProbeResult, s: ValidatorSample): void {
    const t = this.options.telemetry;
    t.availability({
      name: availabilityName(p.endpoint.name),
      runLocation: this.options.bankId,
      success: p.up,
      durationMs: p.durationMs,
      message: p.error ?? p.problems.join('; '),
      properties: { validator: p.endpoint.name, status: s.status },
    });
    const dims = { validator: p.endpoint.name };
    if (s.head !== undefined) t.metric(METRICS.validatorHead, s.head, dims);
    if (s.lagBlocks !== undefined) t.metric(METRICS.validatorLag, s.lagBlocks, dims);
    if (s.blockAgeSeconds !== undefined) t.metric(METRICS.validatorBlockAge, s.blockAgeSeconds, dims);
    if (s.peers !== undefined) t.metric(METRICS.validatorPeers, s.peers, dims);
    if (s.latencyMs !== undefined) t.metric(METRICS.validatorLatency, s.latencyMs, dims);
  }

  private sendChainTelemetry(c: ChainSample): void {
    const t = this.options.telemetry;
    if (c.head !== undefined) t.metric(METRICS.chainHead, c.head);
    if (c.blockAgeSeconds !== undefined) t.metric(METRICS.chainBlockAge, c.blockAgeSeconds);
    if (c.avgBlockTimeSeconds !== undefined) t.metric(METRICS.chainAvgBlockTime, c.avgBlockTimeSeconds);
    if (c.txPerMinute !== undefined) t.metric(METRICS.chainTxPerMinute, c.txPerMinute);
    if (c.members !== undefined) t.metric(METRICS.members, c.members);
  }
}

function nextState(p: ProbeResult, before: ValidatorState | undefined, nowIso: string): ValidatorState {
  const status = p.up ? 'up' : 'down';
  return {
    key: p.endpoint.key,
    name: p.endpoint.name,
    status,
    since: before?.status === status ? before.since : nowIso,
    consecutiveFailures: p.up ? 0 : (before?.consecutiveFailures ?? 0) + 1,
    unsupported: p.unsupported,
  };
}

function validatorSample(
  p: ProbeResult,
  best: ProbeResult | undefined,
  state: ValidatorState,
  nowMs: number
): ValidatorSample {
  const degraded = p.problems.length > 0 || p.sync?.syncing === true;
  const status: NodeStatus = !p.up ? 'down' : degraded ? 'degraded' : 'up';
  const sample: ValidatorSample = { name: p.endpoint.name, status };
  if (p.head) {
    sample.head = p.head.number;
    sample.blockAgeSeconds = Math.max(0, round(nowMs / 1000 - p.head.timestamp, 1));
    if (p.up && best?.head) sample.lagBlocks = Math.max(0, best.head.number - p.head.number);
  }
  if (p.peers !== undefined) sample.peers = p.peers;
  if (p.latencyMs !== undefined) sample.latencyMs = p.latencyMs;
  if (p.sync) sample.syncing = p.sync.syncing;
  if (p.clientVersion) sample.clientVersion = p.clientVersion;
  if (p.consensus) sample.consensus = p.consensus.source;
  const message = p.error ?? (p.problems.length ? p.problems.join('; ') : undefined);
  if (message) sample.message = message.slice(0, 300);
  if (!p.up) sample.downSince = state.since;
  return sample;
}

function sameSet(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
