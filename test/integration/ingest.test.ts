import { createHmac, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { SecretClient } from '@azure/keyvault-secrets';
import { spawnFunctionHost, type RunningHost } from '../../local/host/spawn';
import { ServiceBusClient, type ServiceBusSender } from '@azure/service-bus';
import { bankSettings, PSEUDONYMIZATION_SECRET_NAME, startStack, type Stack } from '../../local/stack/stack';
import { decodeRecord } from '../../shared/domain/record-codec';
import { localStackCredential } from '../../shared/identity';
import { INGEST_TELEMETRY } from '../../shared/ingest/telemetry-names';
import { Outbox } from '../../shared/storage/outbox';
import { Rejections } from '../../shared/storage/rejections';
import { TABLES, TableStore } from '../../shared/storage/tables';
import { deadLetterOf } from './support/dead-letters';
import { eventually } from './support/eventually';
import { creditUpdateEvent } from '../support/credit-update';

/**
 * The real app (dist/functions) in the local host, fed through the bank's credit-updates queue on the local
 * Service Bus namespace, with the SDK as a bank system publishes. A redelivery is made as Service Bus makes one:
 * the namespace loses the lock of a message the app has processed, and delivers it again.
 */
describe('ingest', () => {
  const appDir = join(__dirname, '../..');
  let stack: Stack;
  let host: RunningHost;
  let client: ServiceBusClient;
  let sender: ServiceBusSender;
  let tables: TableStore;
  let outbox: Outbox;
  let rejections: Rejections;
  const logs: string[] = [];
  /** Raw identifiers used below, as sent (with separators) and normalized: none may appear anywhere stored. */
  const rawIds: { value: string; normalized: string }[] = [];
  let nextRaw = 0;

  function rawSubject(): { country: string; idType: string; value: string } {
    // Distinctive per run and per event: 'qx' + 9 digits, sent with mixed case, spaces, dots and a dash.
    const digits = String(Date.now() % 1e6).padStart(6, '0') + String(nextRaw++).padStart(3, '0');
    const value = ` qX ${digits.slice(0, 3)}.${digits.slice(3, 6)}-${digits.slice(6)} `;
    rawIds.push({ value, normalized: `QX${digits}` });
    return { country: 'SE', idType: 'national-id', value };
  }
  const event = (overrides: Record<string, unknown> = {}): Record<string, unknown> =>
    creditUpdateEvent(rawSubject(), overrides);
  const bytes = (body: Buffer | object): Buffer => (Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body)));
  const send = async (body: Buffer | object, messageId: string = randomUUID()): Promise<string> => {
    await sender.sendMessages({ body: bytes(body), messageId });
    return messageId;
  };

  /** The app's structured log lines of one event kind, parsed. */
  const logLines = <T>(event: 'ingest' | 'ingestBatch'): T[] =>
    logs
      .map((line) => new RegExp(`(\\{"event":"${event}".*\\})$`).exec(line)?.[1])
      .filter((json): json is string => json !== undefined)
      .map((json) => JSON.parse(json) as T);
  /** The ingest lines the app wrote for one message (every outcome but accepted, which it counts). */
  const ingestLogs = (messageId: string) =>
    logLines<{ messageId: string; outcome: string; deliveryCount: number; error?: string }>('ingest').filter(
      (entry) => entry.messageId === messageId
    );
  /** The batch lines: how many messages each delivered batch had, and how many were accepted. */
  const batchLogs = () =>
    logLines<{ messages: number; accepted: number; duplicate: number; rejected: number }>('ingestBatch');
  /** Message ids of the events in the outbox: the accepted messages. */
  const acceptedIds = async (): Promise<Set<string>> =>
    new Set((await everyEntity(TABLES.outbox)).map((row) => String(row.messageId)));
  const allSettled = (ids: string[]): Promise<unknown> =>
    eventually(
      async () => {
        const accepted = await acceptedIds();
        const logged = (id: string) => ingestLogs(id).some((l) => ['duplicate', 'rejected'].includes(l.outcome));
        return ids.filter((id) => !accepted.has(id) && !logged(id));
      },
      (left) => left.length === 0,
      'every message to be settled'
    );

  async function everyEntity(table: (typeof TABLES)[keyof typeof TABLES]): Promise<Record<string, unknown>[]> {
    const rows: Record<string, unknown>[] = [];
    for await (const row of (await tables.table(table)).listEntities()) rows.push(row);
    return rows;
  }
  function expectNoRawIds(where: string, text: string): void {
    for (const { value, normalized } of rawIds) {
      // Also a prefix: a parser's error snippet would quote only the first characters.
      for (const spelling of [value.trim(), normalized.slice(0, 8), normalized.slice(2)]) {
        if (text.includes(spelling)) throw new Error(`${where} contains the raw identifier "${spelling}"`);
      }
    }
  }

  beforeAll(async () => {
    stack = await startStack({
      banks: 1,
      blockTimeSeconds: 0,
      queue: { maxDeliveryCount: 3 },
    });
    const settings = bankSettings(stack.info, 'BANK-A');
    host = await spawnFunctionHost({ name: 'BANK-A app', appDir, settings, onLine: (line) => logs.push(line) });
    client = new ServiceBusClient(settings.ServiceBusConnection!);
    sender = client.createSender('credit-updates');
    tables = new TableStore({ connectionString: settings.AzureWebJobsStorage });
    outbox = new Outbox(tables);
    rejections = new Rejections(tables);
  });
  afterAll(async () => {
    await host?.stop();
    await client?.close();
    await stack?.stop();
  });

  // First, while the app has not read the pseudonymization key yet (it does so on the first raw subject).
  it('dead-letters an event after the maximum deliveries while Key Vault keeps failing, storing nothing', async () => {
    stack.keyVault.faults.failNext({ status: 503, count: 1000, retryAfterSeconds: 0, operation: 'getSecret' });
    try {
      const body = event();
      const messageId = await send(body);
      const letter = await deadLetterOf(stack.info.banks[0]!.serviceBusConnectionString, 'credit-updates', messageId);
      expect(letter.deadLetterReason).toBe('MaxDeliveryCountExceeded');
      expect(letter.deadLetterErrorDescription).toBe('Message could not be consumed after 3 delivery attempts.');
      // The host's log reaches this process through a pipe, possibly after the dead letter is visible.
      await eventually(
        () => ingestLogs(messageId).length,
        (n) => n >= 3,
        'the three deliveries in the log'
      );
      expect(ingestLogs(messageId).map((l) => [l.deliveryCount, l.outcome])).toEqual([
        [1, 'retry'],
        [2, 'retry'],
        [3, 'retry'],
      ]);
      // Why, the app's log says (Service Bus's dead-letter description does not carry the function's error).
      for (const { error } of ingestLogs(messageId)) {
        expect(error).toMatch(
          /cannot read the pseudonymization key, Key Vault secret .*pseudonymization-key: The service is temporarily unavailable/
        );
        expectNoRawIds('the logged error', error!);
      }
      expect(await outbox.get(body.eventId as string)).toBeUndefined();
    } finally {
      stack.keyVault.faults.clear();
    }
  });

  it('redelivers an event after a transient Key Vault failure and then accepts it', async () => {
    const before = stack.keyVault.stats.faultsInjected;
    // More failures than the SDK's own retries of one read (4 requests): the first delivery fails for sure.
    stack.keyVault.faults.failNext({ status: 503, count: 6, retryAfterSeconds: 0, operation: 'getSecret' });
    const body = event();
    const messageId = await send(body);
    const row = await eventually(
      () => outbox.get(body.eventId as string),
      (r) => r !== undefined,
      'the outbox row'
    );
    expect(row!.messageId).toBe(messageId);
    expect(row!.subjectRef).toMatch(/^0x[0-9a-f]{64}$/);
    expect(stack.keyVault.stats.faultsInjected - before).toBe(6);
    // Failed deliveries are logged one by one; the accepted one is counted in its batch's line.
    expect(ingestLogs(messageId).map((l) => [l.deliveryCount, l.outcome])).toEqual([[1, 'retry']]);
    await eventually(
      () => batchLogs(),
      (lines) => lines.some((l) => l.messages === 1 && l.accepted === 1),
      'the batch line that counts it accepted'
    );
  });

  it('puts valid events in the outbox under the pseudonymous ref and rejects invalid ones with reasons', async () => {
    const secret = await new SecretClient(stack.info.keyVaultUrl, localStackCredential, {
      disableChallengeResourceVerification: true,
    }).getSecret(PSEUDONYMIZATION_SECRET_NAME);
    const key = Buffer.from(secret.value!, 'hex');
    const expectedRef = (normalized: string): string =>
      '0x' + createHmac('sha256', key).update(`credit-subject/v1\nSE\nnational-id\n${normalized}`).digest('hex');

    const valid = [event(), event({ sequence: 8 }), event({ credit: { ...(event().credit as object), score: 850 } })];
    const byRef = event({ subject: { ref: '0x' + 'ab'.repeat(32) } });
    const wrongBank = event({ bankId: 'BANK-Z' });
    const invalid: [string, Buffer | object, string, RegExp][] = [
      ['broken JSON', Buffer.from(`{"subject":{"value":${rawIds[0]!.normalized}}`), 'not-json', /not JSON/],
      ['wrong bank', wrongBank, 'wrong-bank', /event is for bank BANK-Z, but this ledger-bridge reports for BANK-A/],
      ['schema', event({ credit: { score: 900 } }), 'schema', /\/credit\/score must be <= 850/],
      ['not UTF-8', Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]), 'not-utf8', /offset 2/],
      ['future', event({ asOf: new Date(Date.now() + 3_600_000).toISOString() }), 'future-asof', /in the future/],
      ['empty', Buffer.alloc(0), 'empty', /empty/],
      // Service Bus Standard carries up to 256 KiB: the bridge's own limit is what refuses these.
      ['far too large', Buffer.alloc(200 * 1024, 0x20), 'too-large', /204800 bytes/],
      ['too large', Buffer.alloc(9000, 0x20), 'too-large', /9000 bytes/],
    ];
    const validIds = await Promise.all([...valid, byRef].map((e) => send(e)));
    const invalidIds = await Promise.all(invalid.map(([, body]) => send(body)));
    await allSettled([...validIds, ...invalidIds]);

    for (const [i, e] of valid.entries()) {
      const row = (await outbox.get(e.eventId as string))!;
      // Pending, unless the app's submitter has already picked it up.
      expect(row).toMatchObject({ messageId: validIds[i], sequence: String(e.sequence) });
      expect(['pending', 'batched', 'confirmed']).toContain(row.status);
      const normalized = rawIds.find((r) => r.value === (e.subject as { value: string }).value)!.normalized;
      expect(row.subjectRef).toBe(expectedRef(normalized));
      expect(decodeRecord(BigInt(row.data))).toEqual({
        ...(e.credit as object),
        sequence: BigInt(e.sequence as number),
        asOf: Date.parse(e.asOf as string) / 1000,
      });
    }
    expect((await outbox.get(byRef.eventId as string))!.subjectRef).toBe('0x' + 'ab'.repeat(32));

    const rows = await rejections.list({ limit: 100 });
    for (const [i, [kind, body, code, reason]] of invalid.entries()) {
      const row = rows.find((r) => r.messageId === invalidIds[i]);
      expect(row).toMatchObject({ code, deliveryCount: 1, bodySize: bytes(body).length });
      expect([kind, row!.reason]).toEqual([kind, expect.stringMatching(reason)]);
    }
    expect(rows.find((r) => r.messageId === invalidIds[1])!.eventId).toBe(wrongBank.eventId);
    expect(await rejections.countSince(new Date(Date.now() - 60_000))).toBe(invalid.length);

    // Every message completed: none left, none dead-lettered besides the first test's.
    await eventually(
      async () => stack.serviceBus[0]!.counts('credit-updates'),
      (c) => c.active === 0,
      'an empty queue'
    );
    expect(stack.serviceBus[0]!.counts('credit-updates').deadLettered).toBe(1);

    const rejectedEvents = await stack.appInsights.waitFor(
      (r) => r.name === INGEST_TELEMETRY.rejectedEvent && r.properties.messageId === invalidIds.at(-1)
    );
    expect(rejectedEvents[0]!.properties).toEqual({ code: 'too-large', messageId: invalidIds.at(-1) });

    // Raw identifiers reach neither the tables, nor the app's log, nor telemetry.
    expectNoRawIds('the Outbox table', JSON.stringify(await everyEntity(TABLES.outbox)));
    expectNoRawIds('the Rejections table', JSON.stringify(await everyEntity(TABLES.rejections)));
    expectNoRawIds('the app log', logs.join('\n'));
    expectNoRawIds('telemetry', JSON.stringify(stack.appInsights.envelopes()));
  });

  it('records an event once when it is published twice or its message is delivered again', async () => {
    const body = event();
    stack.serviceBus[0]!.loseLocks('credit-updates', 1);
    const first = await send(body);
    // Accepted on the first delivery (its outbox row names the message), a duplicate on the second.
    await eventually(
      () => ingestLogs(first).length,
      (n) => n === 1,
      'the redelivery after the lost lock'
    );
    expect(ingestLogs(first).map((l) => [l.deliveryCount, l.outcome])).toEqual([[2, 'duplicate']]);
    const republished = await send(body); // by the bank, under a new message id
    await allSettled([republished]);
    expect(ingestLogs(republished).map((l) => l.outcome)).toEqual(['duplicate']);
    const rows = (await everyEntity(TABLES.outbox)).filter((r) => String(r.rowKey) === `e_${String(body.eventId)}`);
    expect(rows).toEqual([expect.objectContaining({ messageId: first })]);
  });

  it('rejects an event id republished with other content as a conflict, keeping what was accepted', async () => {
    const body = event();
    const first = await send(body);
    await allSettled([first]);
    const accepted = await outbox.get(String(body.eventId));
    // The same event spelt differently (key order, separators in the raw id) is still a duplicate.
    const subject = body.subject as { value: string };
    const respelt = { ...body, subject: { ...subject, value: subject.value.replace(/[ .-]/g, '') } };
    const changed = { ...body, credit: { ...(body.credit as object), score: 300 } };
    const [respeltId, changedId] = [await send(respelt), await send(changed)];
    await allSettled([respeltId, changedId]);

    expect(ingestLogs(respeltId).map((l) => l.outcome)).toEqual(['duplicate']);
    expect(ingestLogs(changedId).map((l) => l.outcome)).toEqual(['rejected']);
    const rows = (await rejections.list({ limit: 100 })).filter((r) => r.messageId === changedId);
    expect(rows).toEqual([expect.objectContaining({ code: 'conflict', eventId: body.eventId })]);
    expect(rows[0]!.reason).toMatch(/accepted [0-9a-f]{64}, this message [0-9a-f]{64}/);
    // What the chain gets stays the first message's (the submitter may have batched it meanwhile).
    const { subjectRef, data, sequence, messageId } = accepted!;
    expect(await outbox.get(String(body.eventId))).toMatchObject({ subjectRef, data, sequence, messageId: first });
    expect(messageId).toBe(first);
    // The event the Azure alert rule EventConflict counts (the app's own rule counts the Rejections rows).
    await stack.appInsights.waitFor(
      (r) =>
        r.name === INGEST_TELEMETRY.rejectedEvent &&
        r.properties.code === 'conflict' &&
        r.properties.messageId === changedId,
      30_000
    );
  });

  it('records a rejected message once when it is delivered again', async () => {
    stack.serviceBus[0]!.loseLocks('credit-updates', 1);
    const messageId = await send(event({ sequence: 0 }));
    await eventually(
      () => ingestLogs(messageId).length,
      (n) => n === 2,
      'the redelivery after the lost lock'
    );
    expect(ingestLogs(messageId).map((l) => l.outcome)).toEqual(['rejected', 'rejected']);
    const rows = (await rejections.list({ limit: 100 })).filter((r) => r.messageId === messageId);
    expect(rows).toEqual([expect.objectContaining({ code: 'schema', reason: '/sequence must be >= 1' })]);
  });
});
