import { randomBytes, randomUUID } from 'node:crypto';
import { startAzurite, type Azurite } from '../../local/stack/azurite';
import { ingestMessages, type IngestDeps, type IngestMessage } from '../../shared/ingest/ingest';
import { INGEST_TELEMETRY } from '../../shared/ingest/telemetry-names';
import { Outbox } from '../../shared/storage/outbox';
import { Rejections } from '../../shared/storage/rejections';
import { TableStore } from '../../shared/storage/tables';
import { UrgentWork } from '../../shared/urgent-work';
import { creditUpdateEvent, TEST_CREDIT } from '../support/credit-update';

/**
 * One batch as the trigger hands it over, through the real outbox and rejections tables on Azurite. Telemetry is
 * the one part replaced: a recorder behind the narrow interface ingest uses.
 */
describe('ingest of a batch (Azurite)', () => {
  let azurite: Azurite;
  let deps: IngestDeps;
  let outbox: Outbox;
  const metrics: [string, number][] = [];

  beforeAll(async () => {
    azurite = await startAzurite();
    const tables = new TableStore({ connectionString: azurite.accounts[0]!.connectionString });
    const key = randomBytes(32);
    deps = {
      config: { bankId: 'BANK-A' },
      outbox: (outbox = new Outbox(tables)),
      rejections: new Rejections(tables),
      telemetry: { metric: (name, value) => void metrics.push([name, value]), event: () => undefined },
      pseudonymizationKey: async () => key,
    };
  });
  afterAll(async () => azurite?.stop());

  const subject = { country: 'SE', idType: 'national-id' as const, value: '19121212-1212' };
  const message = (body: unknown): IngestMessage => ({
    body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
    messageId: randomUUID(),
    deliveryCount: 1,
  });

  it('gives each message of a batch its own outcome, an event id twice in it included', async () => {
    const a = creditUpdateEvent(subject, { sequence: 1 });
    const respelt = { ...a, subject: { ...subject, value: '191212121212' } }; // the same event, spelt otherwise
    const changed = { ...a, credit: { ...TEST_CREDIT, score: 300 } };
    const b = creditUpdateEvent(subject, { sequence: 2 });
    const results = await ingestMessages(deps, [a, respelt, 'not json', changed, b].map(message));
    expect(results.map((r) => r.outcome)).toEqual(['accepted', 'duplicate', 'rejected', 'rejected', 'accepted']);
    expect(results[3]).toMatchObject({ code: 'conflict', eventId: a.eventId });
    // Accepted and duplicate: one value per batch, the count; a rejection: one per message (with its code).
    expect(metrics).toEqual([
      [INGEST_TELEMETRY.rejected, 1],
      [INGEST_TELEMETRY.rejected, 1],
      [INGEST_TELEMETRY.accepted, 2],
      [INGEST_TELEMETRY.duplicate, 1],
    ]);
  });

  it('compares a repeated event id with what the outbox holds when the batch conflicts with an earlier one', async () => {
    const stored = creditUpdateEvent(subject, { sequence: 5 });
    await ingestMessages(deps, [message(stored)]);
    const other = { ...stored, credit: { ...TEST_CREDIT, score: 400 } };
    const results = await ingestMessages(deps, [message(other), message(other), message(stored)]);
    expect(results.map((r) => (r.outcome === 'rejected' ? r.code : r.outcome))).toEqual([
      'conflict',
      'conflict',
      'duplicate',
    ]);
  });

  it('holds its outbox writes while a batch is being committed in its process, and accepts after', async () => {
    const urgent = new UrgentWork();
    const events: string[] = [];
    const watched: IngestDeps = {
      ...deps,
      urgent,
      outbox: {
        acceptMany: (rows) => {
          events.push('outbox write');
          return outbox.acceptMany(rows);
        },
      },
    };
    const commit = urgent.run(async () => {
      await new Promise((resolve) => setTimeout(resolve, 100));
      events.push('commit done');
    });
    const results = await ingestMessages(watched, [message(creditUpdateEvent(subject, { sequence: 9 }))]);
    await commit;
    expect(results.map((r) => r.outcome)).toEqual(['accepted']);
    expect(events).toEqual(['commit done', 'outbox write']);
  });
});
