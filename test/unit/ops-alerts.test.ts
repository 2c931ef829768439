import { alertChecks, evaluateAlerts, type AlertState } from '../../shared/ops/alerts';
import { statusFrom } from '../../shared/ops/status';

const thresholds = {
  validatorSilentBeats: 2,
  blockAgeFactor: 5,
  blockTimeFactor: 2,
  outboxOldestAgeSeconds: 60,
  deadLetters: 1,
  batchStuckBlocks: 30,
  unconfirmedAgeSeconds: 300,
};

describe('alert rules', () => {
  it('fire once when breached, keep firing quietly, and resolve once', () => {
    let previous = new Map<string, AlertState>();
    const beat = (failures: number, blockAge: number, now: string) => {
      const checks = alertChecks(
        { validatorFailures: new Map([['v1:8545', failures]]), chainBlockAgeSeconds: blockAge },
        thresholds,
        2,
        previous
      );
      const result = evaluateAlerts(checks, previous, now);
      previous = new Map(result.states.map((s) => [`${s.rule}|${s.subject}`, s]));
      return result.transitions.map(
        (t) => `${t.kind} ${t.alert.rule} ${t.alert.subject} ${t.alert.value}/${t.alert.threshold}`
      );
    };
    expect(beat(1, 3, 't1')).toEqual([]);
    expect(beat(2, 11, 't2')).toEqual(['fired ValidatorSilent v1:8545 2/2', 'fired ChainStalled chain 11/10']);
    expect(beat(3, 20, 't3')).toEqual([]);
    expect(previous.get('ChainStalled|chain')).toMatchObject({ state: 'firing', since: 't2', value: 20 });
    expect(beat(0, 1, 't4')).toEqual(['resolved ValidatorSilent v1:8545 0/2', 'resolved ChainStalled chain 1/10']);
  });

  it('leave an alert as it is when its value cannot be measured this beat', () => {
    const firing: AlertState = {
      rule: 'OutboxBacklogAge',
      subject: 'outbox',
      state: 'firing',
      value: 90,
      threshold: 60,
      since: 't0',
      updatedAt: 't0',
    };
    const previous = new Map([['OutboxBacklogAge|outbox', firing]]);
    const checks = alertChecks({ validatorFailures: new Map() }, thresholds, 2, previous);
    expect(evaluateAlerts(checks, previous, 't1')).toEqual({ states: [firing], transitions: [] });
  });

  it('dead letters fire at the threshold (>=), slow blocks above factor × target', () => {
    const checks = alertChecks(
      { validatorFailures: new Map(), deadLetters: { queue: 'credit-updates', count: 1 }, avgBlockTimeSeconds: 4.5 },
      thresholds,
      2,
      new Map()
    );
    const fired = evaluateAlerts(checks, new Map(), 't').transitions.map((t) => t.alert.rule);
    expect(fired.sort()).toEqual(['DeadLetters', 'SlowBlocks']);
  });

  it('write-side rules fire on a stuck batch, an old unconfirmed record and a nonce gap, and resolve at zero', () => {
    let previous = new Map<string, AlertState>();
    const beat = (inFlightBlocks: number, unconfirmedAge: number, gaps: number): string[] => {
      const checks = alertChecks(
        {
          validatorFailures: new Map(),
          oldestInFlightBlocks: inFlightBlocks,
          oldestUnconfirmedAgeSeconds: unconfirmedAge,
          nonceGaps: gaps,
        },
        thresholds,
        2,
        previous
      );
      const result = evaluateAlerts(checks, previous, 't');
      previous = new Map(result.states.map((s) => [`${s.rule}|${s.subject}`, s]));
      return result.transitions.map((t) => `${t.kind} ${t.alert.rule}`);
    };
    expect(beat(30, 300, 0)).toEqual([]); // at the thresholds: not yet
    expect(beat(31, 301, 1)).toEqual(['fired BatchStuck', 'fired RecordsUnconfirmed', 'fired NonceGap']);
    // Nothing in flight any more is a measurement (0), so the alerts resolve rather than stay as they were.
    expect(beat(0, 0, 0)).toEqual(['resolved BatchStuck', 'resolved RecordsUnconfirmed', 'resolved NonceGap']);
  });

  it('EventConflict fires on one conflicting event in the window and resolves when none is left in it', () => {
    const transitions = (conflicts: number, previous: Map<string, AlertState>) => {
      const checks = alertChecks({ validatorFailures: new Map(), eventConflicts: conflicts }, thresholds, 2, previous);
      return evaluateAlerts(checks, previous, 't');
    };
    expect(transitions(0, new Map()).transitions).toEqual([]);
    const fired = transitions(1, new Map());
    expect(fired.transitions.map((t) => `${t.kind} ${t.alert.rule}`)).toEqual(['fired EventConflict']);
    const previous = new Map(fired.states.map((s) => [`${s.rule}|${s.subject}`, s]));
    expect(transitions(0, previous).transitions.map((t) => t.kind)).toEqual(['resolved']);
  });
});

describe('the pipeline status', () => {
  const sample = {
    t: '2026-11-30T00:00:00.000Z',
    validators: [],
    chain: {},
    pipeline: { rejections: 0, projectionLagBlocks: 2, projectionLagSeconds: 4, outboxDepth: 0 },
  };
  const alert = (rule: AlertState['rule'], state: AlertState['state']): AlertState => ({
    rule,
    subject: 'x',
    state,
    value: 1,
    threshold: 0,
    since: sample.t,
    updatedAt: sample.t,
  });
  const now = Date.parse(sample.t);

  it.each(['BatchStuck', 'RecordsUnconfirmed', 'NonceGap', 'OutboxBacklogAge', 'EventConflict'] as const)(
    'is never ok while %s fires',
    (rule) => {
      expect(statusFrom(sample, [alert(rule, 'firing')], 'BANK-A', now).pipeline.overall).toBe('degraded');
      expect(statusFrom(sample, [alert(rule, 'resolved')], 'BANK-A', now).pipeline.overall).toBe('ok');
    }
  );

  it('judges a sample by the rules firing at its own beat, not by alert rows written beside it', () => {
    // Alert rows and the sample are separate writes: a reader can pair a new sample with the previous beat's rows.
    const stuck = { ...sample, firing: ['RecordsUnconfirmed' as const] };
    expect(statusFrom(stuck, [alert('RecordsUnconfirmed', 'resolved')], 'BANK-A', now).pipeline.overall).toBe(
      'degraded'
    );
    expect(statusFrom(stuck, [], 'BANK-A', now).pipeline.overall).toBe('degraded');
    const clear = { ...sample, firing: [] };
    expect(statusFrom(clear, [alert('RecordsUnconfirmed', 'firing')], 'BANK-A', now).pipeline.overall).toBe('ok');
  });
});
