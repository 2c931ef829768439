import type { Config } from '../config';
import { DAY_MS } from '../util';

/**
 * Alert rules with the thresholds of `config.alerts`, evaluated by every heartbeat. The same rules and numbers
 * go into the Azure Monitor alert definitions (infra), so the local run shows what Azure will raise.
 */
export const ALERT_RULES = {
  validatorSilent: 'ValidatorSilent',
  chainStalled: 'ChainStalled',
  slowBlocks: 'SlowBlocks',
  outboxBacklogAge: 'OutboxBacklogAge',
  deadLetters: 'DeadLetters',
  batchStuck: 'BatchStuck',
  recordsUnconfirmed: 'RecordsUnconfirmed',
  nonceGap: 'NonceGap',
  eventConflict: 'EventConflict',
} as const;

/**
 * EventConflict fires while any event in this window was rejected as a conflict: a sender reused an event id for
 * other data, so its systems and the chain disagree until someone looks (one is enough to matter).
 */
export const EVENT_CONFLICT_WINDOW_MS = DAY_MS;

export type AlertRule = (typeof ALERT_RULES)[keyof typeof ALERT_RULES];

export interface AlertCheck {
  rule: AlertRule;
  subject: string;
  /** Undefined: not measurable this beat, so the alert keeps its state. */
  value: number | undefined;
  threshold: number;
  /** Whether the value breaches; rules differ in > versus >=. */
  breaches: boolean;
}

export interface AlertState {
  rule: AlertRule;
  subject: string;
  state: 'firing' | 'resolved';
  value: number;
  threshold: number;
  /** When the current state began. */
  since: string;
  updatedAt: string;
}

export interface AlertTransition {
  kind: 'fired' | 'resolved';
  alert: AlertState;
}

export const alertKey = (rule: string, subject: string): string => `${rule}|${subject}`;

export interface AlertMeasurements {
  /** Consecutive failed beats per validator name. */
  validatorFailures: Map<string, number>;
  chainBlockAgeSeconds?: number;
  avgBlockTimeSeconds?: number;
  outboxOldestAgeSeconds?: number;
  deadLetters?: { queue: string; count: number };
  oldestInFlightBlocks?: number;
  oldestUnconfirmedAgeSeconds?: number;
  nonceGaps?: number;
  /** Conflicting events in the last EVENT_CONFLICT_WINDOW_MS. */
  eventConflicts?: number;
}

/** The checks for one beat. */
export function alertChecks(
  m: AlertMeasurements,
  alerts: Config['alerts'],
  blockTimeSeconds: number,
  previous: Map<string, AlertState>
): AlertCheck[] {
  const checks: AlertCheck[] = [];
  for (const [validator, failures] of m.validatorFailures) {
    checks.push({
      rule: ALERT_RULES.validatorSilent,
      subject: validator,
      value: failures,
      threshold: alerts.validatorSilentBeats,
      breaches: failures >= alerts.validatorSilentBeats,
    });
  }
  // A validator no longer configured cannot stay silent forever: its alert resolves.
  for (const alert of previous.values()) {
    if (alert.rule === ALERT_RULES.validatorSilent && !m.validatorFailures.has(alert.subject))
      checks.push({ ...alert, value: 0, breaches: false });
  }
  const stallAfter = alerts.blockAgeFactor * blockTimeSeconds;
  checks.push(check(ALERT_RULES.chainStalled, 'chain', m.chainBlockAgeSeconds, stallAfter, (v, t) => v > t));
  const slowAfter = alerts.blockTimeFactor * blockTimeSeconds;
  checks.push(check(ALERT_RULES.slowBlocks, 'chain', m.avgBlockTimeSeconds, slowAfter, (v, t) => v > t));
  checks.push(
    check(
      ALERT_RULES.outboxBacklogAge,
      'outbox',
      m.outboxOldestAgeSeconds,
      alerts.outboxOldestAgeSeconds,
      (v, t) => v > t
    )
  );
  checks.push(
    check(ALERT_RULES.batchStuck, 'batches', m.oldestInFlightBlocks, alerts.batchStuckBlocks, (v, t) => v > t),
    check(
      ALERT_RULES.recordsUnconfirmed,
      'records',
      m.oldestUnconfirmedAgeSeconds,
      alerts.unconfirmedAgeSeconds,
      (v, t) => v > t
    ),
    check(ALERT_RULES.nonceGap, 'nonces', m.nonceGaps, 0, (v, t) => v > t),
    check(ALERT_RULES.eventConflict, 'ingest', m.eventConflicts, 0, (v, t) => v > t)
  );
  if (m.deadLetters)
    checks.push(
      check(ALERT_RULES.deadLetters, m.deadLetters.queue, m.deadLetters.count, alerts.deadLetters, (v, t) => v >= t)
    );
  return checks;
}

function check(
  rule: AlertRule,
  subject: string,
  value: number | undefined,
  threshold: number,
  breaches: (value: number, threshold: number) => boolean
): AlertCheck {
  return { rule, subject, value, threshold, breaches: value !== undefined && breaches(value, threshold) };
}

/**
 * New alert states from the checks and the previous states. Only changes are transitions: a rule that keeps
 * firing fires once; a rule never fired has nothing to resolve.
 */
export function evaluateAlerts(
  checks: AlertCheck[],
  previous: Map<string, AlertState>,
  now: string
): { states: AlertState[]; transitions: AlertTransition[] } {
  const states: AlertState[] = [];
  const transitions: AlertTransition[] = [];
  for (const c of checks) {
    const before = previous.get(alertKey(c.rule, c.subject));
    if (c.value === undefined) {
      if (before) states.push(before);
      continue;
    }
    const state = c.breaches ? 'firing' : 'resolved';
    if (!before && state === 'resolved') continue;
    const changed = before?.state !== state;
    const alert: AlertState = {
      rule: c.rule,
      subject: c.subject,
      state,
      value: c.value,
      threshold: c.threshold,
      since: changed ? now : before.since,
      updatedAt: now,
    };
    states.push(alert);
    if (changed) transitions.push({ kind: state === 'firing' ? 'fired' : 'resolved', alert });
  }
  return { states, transitions };
}
