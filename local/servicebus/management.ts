import { types, type Message } from 'rhea';
import { asDelivered, asPeeked, lockTokenOfUuid, uuidOfLockToken } from './messages';
import { EntityError, type Entity, type Outcome } from './queue';

/**
 * The request/response operations on `<entity>/$management` that @azure/service-bus sends: renew-lock,
 * peek-message, update-disposition, schedule-message, cancel-scheduled-message and receive-by-sequence-number.
 * Replies carry a camelCase `statusCode` (the SDK reads it so: 204 means "nothing to peek").
 */

export interface ManagementReply {
  statusCode: number;
  statusDescription: string;
  errorCondition?: string;
  body?: unknown;
}

const ok = (body?: unknown): ManagementReply => ({ statusCode: 200, statusDescription: 'OK', body });

const argumentError = (message: string): EntityError => new EntityError('com.microsoft:argument-error', 400, message);

/** A long arrives as a number, or as 8 big-endian bytes when it does not fit a double exactly. */
function toSeq(value: unknown): number {
  if (typeof value === 'number') return value;
  if (Buffer.isBuffer(value) && value.length === 8) return Number(value.readBigInt64BE());
  throw argumentError(`not a sequence number: ${String(value)}`);
}

function list(body: Record<string, unknown>, key: string): unknown[] {
  const value = body[key];
  if (!Array.isArray(value)) throw argumentError(`the request has no '${key}' list`);
  return value;
}

function lockTokens(body: Record<string, unknown>): string[] {
  return list(body, 'lock-tokens').map((uuid) => {
    const token = lockTokenOfUuid(uuid);
    if (!token) throw argumentError('a lock token is not a uuid');
    return token;
  });
}

function messageBytes(value: unknown): Buffer {
  if (!Buffer.isBuffer(value)) throw argumentError('a message entry has no encoded message');
  return value;
}

function outcomeOf(body: Record<string, unknown>): Outcome {
  const properties = body['properties-to-modify'] as Record<string, unknown> | undefined;
  switch (body['disposition-status']) {
    case 'completed':
      return { kind: 'complete' };
    case 'abandoned':
      return { kind: 'abandon', properties };
    case 'defered': // sic: the SDK's spelling
      return { kind: 'defer', properties };
    case 'suspended':
      return {
        kind: 'deadLetter',
        reason: body['deadletter-reason'] as string | undefined,
        description: body['deadletter-description'] as string | undefined,
        properties,
      };
    default:
      throw argumentError(`unknown disposition-status ${String(body['disposition-status'])}`);
  }
}

async function operate(entity: Entity, operation: unknown, body: Record<string, unknown>): Promise<ManagementReply> {
  switch (operation) {
    case 'com.microsoft:renew-lock':
      return ok({ expirations: lockTokens(body).map((t) => new Date(entity.renewLock(t))) });

    case 'com.microsoft:peek-message': {
      const found = entity.peek(toSeq(body['from-sequence-number']), Number(body['message-count'] ?? 1));
      if (found.length === 0) return { statusCode: 204, statusDescription: 'No Content' };
      return ok({ messages: found.map((m) => ({ message: asPeeked(m) })) });
    }

    case 'com.microsoft:update-disposition': {
      const outcome = outcomeOf(body);
      for (const token of lockTokens(body)) await entity.settle(token, outcome);
      return ok();
    }

    case 'com.microsoft:schedule-message': {
      if (entity.isDeadLetterQueue)
        throw new EntityError('amqp:not-allowed', 400, 'cannot send to a dead-letter queue');
      const entries = list(body, 'messages').map((e) => messageBytes((e as Record<string, unknown>).message));
      const seqs = await entity.queue.enqueue(entries); // each carries its x-opt-scheduled-enqueue-time
      return ok({ 'sequence-numbers': types.wrap_array(seqs, 0x81, undefined) });
    }

    case 'com.microsoft:cancel-scheduled-message':
      await entity.queue.cancelScheduled(list(body, 'sequence-numbers').map(toSeq));
      return ok();

    case 'com.microsoft:receive-by-sequence-number': {
      const peekLock = body['receiver-settle-mode'] !== 0;
      const taken = entity.takeDeferred(list(body, 'sequence-numbers').map(toSeq), peekLock);
      return ok({
        messages: taken.map((m) => ({
          message: asDelivered(m),
          ...(m.lock ? { 'lock-token': uuidOfLockToken(m.lock.token) } : {}),
        })),
      });
    }

    default:
      throw new EntityError('amqp:not-implemented', 501, `operation ${String(operation)} is not implemented here`);
  }
}

/** Runs one management request against `entity`; errors become replies with their status and condition. */
export async function handleManagementRequest(entity: Entity, request: Message): Promise<ManagementReply> {
  const body: unknown = request.body;
  try {
    return await operate(
      entity,
      request.application_properties?.operation,
      body && typeof body === 'object' ? (body as Record<string, unknown>) : {}
    );
  } catch (err) {
    if (!(err instanceof EntityError)) throw err;
    return { statusCode: err.status, statusDescription: err.message, errorCondition: err.condition };
  }
}
