import type { AlertRule } from './alerts';
import type { SignerActivity } from './validator-methods';

/** What one heartbeat saw; kept 30 minutes in TABLES.ops for /api/status and the dashboard. */
export interface BeatSample {
  /** ISO time of the beat. */
  t: string;
  validators: ValidatorSample[];
  chain: ChainSample;
  pipeline: PipelineSample;
  /**
   * The rules firing once this beat's measurements were evaluated. The status judges a sample by its own verdict:
   * alert rows are written beside the sample, not with it, so a reader (or a failed write) could pair them wrongly.
   * Absent in samples written before 2026-12-01.
   */
  firing?: AlertRule[];
}

export type NodeStatus = 'up' | 'degraded' | 'down';

export interface ValidatorSample {
  name: string;
  status: NodeStatus;
  head?: number;
  lagBlocks?: number;
  blockAgeSeconds?: number;
  peers?: number;
  latencyMs?: number;
  syncing?: boolean;
  clientVersion?: string;
  consensus?: string;
  /** Why it is down, or what degrades it. */
  message?: string;
  downSince?: string;
}

export interface ChainSample {
  head?: number;
  blockAgeSeconds?: number;
  avgBlockTimeSeconds?: number;
  txPerMinute?: number;
  members?: number;
  /** Where validator set and participation come from: a consensus API, or block miners. */
  consensusSource?: string;
  validatorSet?: string[];
  participation?: SignerActivity[];
  problems?: string[];
}

export interface PipelineSample {
  outboxDepth?: number;
  /** The outbox holds more than outboxDepth: a beat counts a bounded number of rows. */
  outboxDepthCapped?: boolean;
  oldestPendingAgeSeconds?: number;
  /** Batches signed or mined and not yet confirmed, and blocks since the oldest of them was written. */
  inFlightBatches?: number;
  oldestInFlightBlocks?: number;
  /** Age of the oldest accepted event not confirmed on chain, whatever its state (0 when there is none). */
  oldestUnconfirmedAgeSeconds?: number;
  /** Nonces the chain waits on that no live batch holds, plus confirmed batches the chain lost (0 when healthy). */
  nonceGaps?: number;
  /** Null: not measured (its source is not available yet), never a made-up zero. */
  rejections: number | null;
  /** Events rejected as a conflict (an event id reused for other content) in the last day. */
  conflictsLastDay?: number;
  deadLetters?: number;
  projectionLagBlocks: number | null;
  projectionLagSeconds: number | null;
  problems?: string[];
}
