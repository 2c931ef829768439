import type { QueueClient } from '@azure/storage-queue';
import { CREDIT_UPDATES_QUEUE } from '../../shared/domain/credit-update';
import { Rejections } from '../../shared/storage/rejections';
import { TableStore } from '../../shared/storage/tables';
import type { SubjectRecords } from '../../shared/read/read-model';
import { LocalServiceBusQueue, type MessageEnvelope } from '../host/service-bus-queue';
import { callApp, localBank, print, UsageError, type LocalBank } from './common';

const SUBJECT_REF = /^0x[0-9a-fA-F]{64}$/;
const RAW_SUBJECT = /^([A-Z]{2}):(national-id|tax-id|passport|company-registration):(.+)$/;

/**
 * `records <subject>`: the subject as a 0x ref, or raw as COUNTRY:idType:value, which is sent only to this bank's
 * own read API (POST /api/credit-records/lookup) to be pseudonymized there; the raw value is never printed.
 */
export async function recordsCommand(options: {
  subject: string;
  bankId?: string;
  verify: boolean;
  history: boolean;
  json: boolean;
}): Promise<void> {
  const bank = localBank(options.bankId);
  const query = new URLSearchParams();
  if (options.verify) query.set('verify', 'true');
  if (options.history) query.set('history', 'true');
  const qs = query.size ? `?${query.toString()}` : '';
  let res: { status: number; body: unknown };
  if (SUBJECT_REF.test(options.subject)) {
    res = await callApp(bank, `/api/credit-records/${options.subject.toLowerCase()}${qs}`);
  } else {
    const raw = RAW_SUBJECT.exec(options.subject);
    if (!raw)
      throw new UsageError(
        'the subject must be a subject ref (0x + 64 hex digits) or a raw identifier COUNTRY:idType:value, e.g. SE:national-id:19121212-1212'
      );
    res = await callApp(bank, `/api/credit-records/lookup${qs}`, {
      method: 'POST',
      body: { country: raw[1], idType: raw[2], value: raw[3] },
    });
  }
  const body = res.body as SubjectRecords & { error?: string; subjectRef?: string };
  if (res.status === 404) {
    if (options.json) print(JSON.stringify(body));
    else print(`no bank has a credit record for subject ${body.subjectRef ?? ''} (read at ${bank.bankId})`);
    process.exitCode = 3;
    return;
  }
  if (res.status !== 200)
    throw new Error(`the read API of ${bank.bankId} answered ${res.status}: ${body.error ?? JSON.stringify(body)}`);
  if (options.json) return print(JSON.stringify(body));
  print(`subject ${body.subjectRef}  (read at ${bank.bankId}, ${body.records.length} bank(s) report)`);
  for (const r of body.records) {
    const p = r.provenance;
    print(
      `  ${r.bankId.padEnd(8)} seq ${String(r.sequence).padStart(3)}  score ${r.score ?? '?'}  open ${r.openAccounts ?? '?'}  ` +
        `late 30/60/90 ${r.delinquencies ? `${r.delinquencies.days30}/${r.delinquencies.days60}/${r.delinquencies.days90}` : '?'}  ` +
        `defaulted ${r.defaulted ?? '?'}  balance ${r.totalBalance ?? '?'}/${r.creditLimit ?? '?'}  as of ${r.asOf ?? '?'}` +
        (r.layoutError ? `  (${r.layoutError})` : '')
    );
    print(
      `           event ${p.eventId}  tx ${p.txHash}  block ${p.blockNumber}#${p.logIndex}` +
        (r.verification
          ? `  chain ${r.verification.matches ? 'matches' : `DIFFERS (${r.verification.chainData})`}`
          : '')
    );
  }
  if (body.verified !== undefined)
    print(
      `verified against the contract at block ${body.verifiedAtBlock}: ${body.verified ? 'all match' : 'MISMATCH'}`
    );
  if (body.history) {
    print(`history (${body.history.length} updates, newest first):`);
    for (const h of body.history)
      print(
        `  ${h.bankId.padEnd(8)} seq ${h.sequence}  score ${h.score ?? '?'}  block ${h.provenance.blockNumber}  event ${h.provenance.eventId}`
      );
  }
  if (body.verified === false) process.exitCode = 4;
}

/** `status`: the bank's GET /api/status. */
export async function statusCommand(options: { bankId?: string; json: boolean }): Promise<void> {
  const bank = localBank(options.bankId);
  const res = await callApp(bank, '/api/status');
  if (res.status !== 200) throw new Error(`the status endpoint of ${bank.bankId} answered ${res.status}`);
  if (options.json) return print(JSON.stringify(res.body));
  const s = res.body as import('../../shared/ops/status').StatusReport;
  print(`${s.bankId}  as of beat ${s.sampledAt ?? '(no heartbeat yet)'}`);
  print(
    `validators ${s.validators.overall}: ${s.validators.nodes.map((n) => `${n.name} ${n.status}${n.head !== undefined ? ` head ${n.head}` : ''}`).join(', ') || 'none probed yet'}`
  );
  const c = s.chain;
  print(
    `chain      ${c.overall}: head ${c.head ?? '?'}, block age ${c.blockAgeSeconds ?? '?'} s, avg block time ${c.avgBlockTimeSeconds ?? '?'} s, ${c.txPerMinute ?? '?'} tx/min, ${c.members ?? '?'} members`
  );
  const p = s.pipeline;
  print(
    `pipeline   ${p.overall}: outbox ${p.outboxDepth ?? '?'} (oldest ${p.oldestPendingAgeSeconds ?? '?'} s), rejections ${p.rejections ?? '?'}, dead letters ${p.deadLetters ?? '?'}, projection lag ${p.projectionLagBlocks ?? '?'} blocks / ${p.projectionLagSeconds ?? '?'} s`
  );
  print(
    `write side batches in flight ${p.inFlightBatches ?? '?'} (oldest ${p.oldestInFlightBlocks ?? '?'} blocks), oldest unconfirmed record ${p.oldestUnconfirmedAgeSeconds ?? '?'} s, nonce gaps ${p.nonceGaps ?? '?'}`
  );
  for (const problem of p.problems) print(`  problem: ${problem}`);
  for (const a of s.alerts) print(`alert      ${JSON.stringify(a)}`);
  print(`dashboard  ${bank.host.url}/api/dashboard?code=${bank.host.functionKey}`);
}

/** `rejected list`: the newest rows of the bank's Rejections table. */
export async function rejectedListCommand(options: { bankId?: string; limit: number; json: boolean }): Promise<void> {
  const bank = localBank(options.bankId);
  const store = new TableStore({ connectionString: bank.storageConnectionString });
  const rows = await new Rejections(store).list({ limit: options.limit });
  if (options.json) return print(JSON.stringify(rows));
  if (rows.length === 0) return print(`${bank.bankId}: no rejected messages in the last 7 days`);
  for (const r of rows)
    print(
      `${r.enqueuedAt}  ${r.messageId}  ${r.code.padEnd(13)} ${r.reason}  (${r.bodySize} bytes, delivery ${r.deliveryCount})`
    );
  print(`${rows.length} rejected message(s) at ${bank.bankId}`);
}

function localQueue(bank: LocalBank): LocalServiceBusQueue {
  return new LocalServiceBusQueue(bank.storageConnectionString, CREDIT_UPDATES_QUEUE);
}

const deadLetterView = (m: MessageEnvelope): Record<string, unknown> => ({
  messageId: m.messageId,
  enqueuedTimeUtc: m.enqueuedTimeUtc,
  deliveryCount: m.deliveryCount,
  reason: m.deadLetterReason,
  description: m.deadLetterErrorDescription,
  bodySize: Buffer.from(m.body, 'base64').length,
});

/** `deadletter list`: a peek (up to 32) of `credit-updates-deadletter` with the dead-letter reason. */
export async function deadLetterListCommand(options: { bankId?: string; json: boolean }): Promise<void> {
  const bank = localBank(options.bankId);
  const queue = localQueue(bank);
  await queue.ensureExists();
  const messages = (await queue.peekDeadLetters(32)).map(deadLetterView);
  const total = (await queue.deadLetter.getProperties()).approximateMessagesCount ?? messages.length;
  if (options.json) return print(JSON.stringify(messages));
  for (const m of messages)
    print(`${String(m.enqueuedTimeUtc)}  ${String(m.messageId)}  ${String(m.reason)}: ${String(m.description)}`);
  print(
    `${total} dead-lettered message(s) in ${CREDIT_UPDATES_QUEUE}-deadletter of ${bank.bankId}${total > messages.length ? ` (first ${messages.length} shown)` : ''}`
  );
}

/**
 * `deadletter redrive`: moves dead letters back to `credit-updates`, keeping the message id; the new queue message
 * starts with delivery count 0 (Azurite's dequeue count) and a fresh enqueue time, as a Service Bus resend does.
 */
export async function deadLetterRedrive(
  bank: LocalBank,
  which: { all: true } | { messageId: string }
): Promise<string[]> {
  const queue = localQueue(bank);
  await queue.ensureExists();
  const moved: string[] = [];
  const skipped: { messageId: string; popReceipt: string }[] = [];
  const dlq: QueueClient = queue.deadLetter;
  for (;;) {
    const { receivedMessageItems: items } = await dlq.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 60 });
    if (items.length === 0) break;
    for (const item of items) {
      const envelope = JSON.parse(item.messageText) as MessageEnvelope;
      if ('messageId' in which && envelope.messageId !== which.messageId) {
        skipped.push({ messageId: item.messageId, popReceipt: item.popReceipt });
        continue;
      }
      const {
        deadLetterReason: _r,
        deadLetterErrorDescription: _d,
        deadLetterSource: _s,
        deliveryCount: _c,
        ...rest
      } = envelope;
      await queue.queue.sendMessage(JSON.stringify({ ...rest, enqueuedTimeUtc: new Date().toISOString() }));
      await dlq.deleteMessage(item.messageId, item.popReceipt);
      moved.push(envelope.messageId);
    }
    if ('messageId' in which && moved.length > 0) break;
  }
  // The ones looked at and left: visible again at once.
  for (const s of skipped) await dlq.updateMessage(s.messageId, s.popReceipt, undefined, 0).catch(() => undefined);
  return moved;
}

export async function deadLetterRedriveCommand(options: {
  bankId?: string;
  all: boolean;
  messageId?: string;
  json: boolean;
}): Promise<void> {
  if (options.all === (options.messageId !== undefined)) throw new UsageError('give either --all or one message id');
  const bank = localBank(options.bankId);
  const moved = await deadLetterRedrive(bank, options.all ? { all: true } : { messageId: options.messageId! });
  if (!options.all && moved.length === 0)
    throw new Error(
      `no dead-lettered message ${options.messageId} in ${CREDIT_UPDATES_QUEUE}-deadletter of ${bank.bankId}`
    );
  if (options.json) return print(JSON.stringify({ bankId: bank.bankId, redriven: moved }));
  for (const id of moved) print(`redriven ${id} → ${CREDIT_UPDATES_QUEUE}`);
  print(`${moved.length} message(s) moved back to ${CREDIT_UPDATES_QUEUE} of ${bank.bankId}`);
}
