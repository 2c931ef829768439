import { randomUUID } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { CREDIT_UPDATES_QUEUE } from '../shared/domain/credit-update';
import { sampleCreditUpdates } from '../local/sample-events';
import { parseCreditUpdate } from '../shared/domain/validate';
import { BatchSender, serviceBusClientFor, serviceBusNameOf } from '../shared/servicebus';
import { print, UsageError } from './common';
import { bankTarget, stackFile, type BankTarget } from './target';
import { TABLES } from '../shared/storage/tables';
import { shardOf } from '../shared/storage/outbox';

const BANK_ID = /^[A-Z0-9][A-Z0-9-]{0,30}$/;

export function checkBankId(bankId: string): string {
  if (!BANK_ID.test(bankId)) throw new UsageError(`--bank must be a bank id like BANK-A, got "${bankId}"`);
  return bankId;
}

/** `sample-events <n>`: NDJSON of valid events on stdout. */
export function sampleEventsCommand(
  count: number,
  bankId: string,
  subjects: number | undefined,
  sequenceBase?: number
): void {
  const events = sampleCreditUpdates({ bankId: checkBankId(bankId), count, subjects, sequenceBase });
  process.stdout.write(events.map((e) => JSON.stringify(e)).join('\n') + (events.length ? '\n' : ''));
}

export interface PublishOutcome {
  line: number;
  messageId: string;
  eventId?: string;
  /** The client-side check, the same the bridge applies: what the bridge will do with it. */
  expected: 'accept' | 'reject';
  code?: string;
  reason?: string;
  /** When its batch went; absent for a line that was refused (not sent). */
  sentAt?: string;
  /** Why the line was not sent at all (larger than the namespace's max message size). */
  refused?: string;
  /** With --wait: what the bridge did. */
  outcome?: 'accepted' | 'rejected' | 'unknown';
  bridgeReason?: string;
}

async function* readLines(file: string): AsyncGenerator<string> {
  const input = file === '-' ? process.stdin : createReadStream(file);
  for await (const line of createInterface({ input, crlfDelay: Infinity })) yield line;
}

function progress(total: number | undefined): { tick(done: number): void; end(): void } {
  const tty = process.stderr.isTTY === true;
  if (!tty) return { tick: () => undefined, end: () => undefined };
  let last = 0;
  return {
    tick(done) {
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      const width = 30;
      const ratio = total ? Math.min(1, done / total) : 0;
      const bar = total
        ? `[${'#'.repeat(Math.round(ratio * width)).padEnd(width, '.')}] ${Math.floor(ratio * 100)}% `
        : '';
      process.stderr.write(`\r${bar}${done}${total ? `/${total}` : ''} messages sent`);
    },
    end: () => process.stderr.write('\n'),
  };
}

/** The eventId of a line the check refused, when it names one usable as a message id. */
function rawEventId(text: string): string | undefined {
  try {
    const raw = (JSON.parse(text) as { eventId?: unknown } | null)?.eventId;
    return typeof raw === 'string' && raw.length > 0 && raw.length <= 128 ? raw : undefined;
  } catch {
    return undefined; // not JSON: a fresh message id
  }
}

/** `publish <file|->`: sends each non-empty line as one message; invalid lines too (the bridge rejects them). */
export async function publishCommand(options: {
  file: string;
  bankId?: string;
  json: boolean;
  wait: boolean;
}): Promise<PublishOutcome[]> {
  if (options.file !== '-' && (!existsSync(options.file) || !statSync(options.file).isFile()))
    throw new UsageError(`file not found: ${options.file}`);
  if (!options.bankId && existsSync(stackFile()))
    throw new UsageError('--bank is required (the bank whose queue receives the events)');
  const target = bankTarget(options.bankId && checkBankId(options.bankId));
  const client = serviceBusClientFor(target.config, target.credential);
  const where = `Service Bus ${serviceBusNameOf(target.config)}/${CREDIT_UPDATES_QUEUE}`;
  const sbSender = client.createSender(CREDIT_UPDATES_QUEUE);
  const sender = new BatchSender(sbSender);
  const expectedBank = target.config.bankId;
  const lines: string[] = [];
  for await (const line of readLines(options.file)) lines.push(line);
  const outcomes: PublishOutcome[] = [];
  const bar = progress(lines.length > 200 ? lines.length : undefined);
  let sent = 0;
  try {
    for (const [i, text] of lines.entries()) {
      if (text.trim() === '') continue;
      const body = Buffer.from(text, 'utf8');
      const parsed = parseCreditUpdate(body, expectedBank);
      const eventId = parsed.ok ? parsed.event.eventId : (parsed.eventId ?? rawEventId(text));
      const outcome: PublishOutcome = {
        line: i + 1,
        messageId: eventId ?? randomUUID(),
        ...(eventId ? { eventId } : {}),
        expected: parsed.ok ? 'accept' : 'reject',
        ...(parsed.ok ? {} : { code: parsed.code, reason: parsed.reason }),
      };
      outcomes.push(outcome);
      const message = { body, messageId: outcome.messageId, contentType: 'application/json' };
      const queued = await sender.add(message, () => {
        outcome.sentAt = new Date().toISOString();
        bar.tick(++sent);
      });
      if (!queued) outcome.refused = `${body.length} bytes: larger than the namespace's max message size`;
    }
    await sender.flush();
  } finally {
    bar.end();
    await sbSender.close();
    await client.close();
  }
  if (outcomes.some((o) => o.refused)) process.exitCode = 5;
  if (options.wait)
    await waitForOutcomes(
      target,
      outcomes.filter((o) => !o.refused)
    );
  const summary = {
    target: where,
    sent: outcomes.filter((o) => !o.refused).length,
    refused: outcomes.filter((o) => o.refused).length,
    valid: outcomes.filter((o) => !o.refused && o.expected === 'accept').length,
    invalid: outcomes.filter((o) => !o.refused && o.expected === 'reject').length,
    ...(options.wait
      ? {
          accepted: outcomes.filter((o) => o.outcome === 'accepted').length,
          rejected: outcomes.filter((o) => o.outcome === 'rejected').length,
          unknown: outcomes.filter((o) => o.outcome === 'unknown').length,
        }
      : {}),
  };
  if (options.json) {
    for (const o of outcomes) print(JSON.stringify(o));
    print(JSON.stringify({ summary }));
  } else {
    for (const o of outcomes) {
      const what = o.refused
        ? `refused, not sent: ${o.refused}`
        : o.outcome
          ? o.outcome === 'rejected'
            ? `rejected: ${o.bridgeReason ?? ''}`
            : o.outcome
          : o.expected === 'accept'
            ? 'sent (valid)'
            : `sent (invalid, the bridge will reject it: ${o.code}: ${o.reason})`;
      print(`line ${o.line}  ${o.messageId}  ${what}`);
    }
    print(
      `${summary.sent} messages sent to ${summary.target}: ${summary.valid} valid, ${summary.invalid} invalid` +
        (summary.refused ? `; ${summary.refused} line(s) refused, not sent` : '') +
        (options.wait
          ? `; bridge: ${summary.accepted} accepted, ${summary.rejected} rejected, ${summary.unknown} unknown`
          : '')
    );
  }
  return outcomes;
}

/** Waits (up to 60 s) until the bridge accepted (Outbox) or rejected (Rejections) every message. */
async function waitForOutcomes({ tables }: BankTarget, outcomes: PublishOutcome[]): Promise<void> {
  const outbox = tables.client(TABLES.outbox);
  const rejections = tables.client(TABLES.rejections);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const rejected = new Map<string, string>();
    try {
      for await (const row of rejections.listEntities<{ messageId: string; code: string; reason: string }>({
        queryOptions: { select: ['messageId', 'code', 'reason'] },
      }))
        rejected.set(row.messageId, `${row.code}: ${row.reason}`);
    } catch {
      /* table not created yet */
    }
    await Promise.all(
      outcomes
        .filter((o) => !o.outcome || o.outcome === 'unknown')
        .map(async (o) => {
          const row =
            o.eventId && o.expected === 'accept'
              ? await outbox.getEntity(shardOf(o.eventId), `e_${o.eventId}`).catch(() => undefined)
              : undefined;
          if (row) o.outcome = 'accepted';
          else if (rejected.has(o.messageId) && o.expected === 'reject') {
            o.outcome = 'rejected';
            o.bridgeReason = rejected.get(o.messageId);
          } else o.outcome = 'unknown';
        })
    );
    if (outcomes.every((o) => o.outcome !== 'unknown') || Date.now() > deadline) return;
    await new Promise((r) => setTimeout(r, 500));
  }
}
