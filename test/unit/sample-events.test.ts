import { parseCreditUpdate } from '../../shared/domain/validate';
import { sampleCreditUpdates } from '../../local/sample-events';

describe('sample credit updates', () => {
  it('are all valid, unique by event id, with growing sequences per subject', () => {
    const events = sampleCreditUpdates({ bankId: 'BANK-B', count: 500, subjects: 100 });
    for (const event of events) {
      const result = parseCreditUpdate(Buffer.from(JSON.stringify(event)), 'BANK-B');
      expect(result).toMatchObject({ ok: true });
    }
    expect(new Set(events.map((e) => e.eventId)).size).toBe(500);
    const last = new Map<string, number>();
    for (const event of events) {
      const key = JSON.stringify(event.subject);
      expect(event.sequence).toBe((last.get(key) ?? 0) + 1);
      last.set(key, event.sequence);
    }
    expect(last.size).toBe(100);
  });
});
