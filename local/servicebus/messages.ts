import { message as amqp, string_to_uuid, types, uuid_to_string, type AmqpError, type Message } from 'rhea';
import type { StoredMessage } from './queue';

/**
 * AMQP message helpers. The namespace stores every message encoded, as the sender's SDK encoded it, and adds
 * the broker's header and annotations (delivery count, sequence number, enqueued time, lock) each time it hands
 * the message out.
 */

/** Message format of a batch send: one data section a message, each holding an encoded message. */
const BATCH_FORMAT = 0x80013700;

/** Service Bus's annotation and property names (as @azure/core-amqp's Constants name them). */
const SEQUENCE_NUMBER = 'x-opt-sequence-number';
const ENQUEUED_TIME = 'x-opt-enqueued-time';
const LOCKED_UNTIL = 'x-opt-locked-until';
const MESSAGE_STATE = 'x-opt-message-state';
const SCHEDULED_ENQUEUE_TIME = 'x-opt-scheduled-enqueue-time';

/** rhea's typings omit the outcome constructors and the link credit; these are the parts used here. */
type Described = { described(): unknown };
const outcomes = amqp as unknown as {
  accepted(): Described;
  released(): Described;
  rejected(fields: { error?: AmqpError }): Described;
};

/** A settled state that fails the settlement with `error` (the SDK raises it from the disposition). */
export const rejectedState = (error: AmqpError): unknown => outcomes.rejected({ error }).described();

/**
 * The state the broker settles a delivery with once the receiver's outcome is applied: the outcome itself, but
 * without a rejection's error (the SDK would raise it). A settlement needs a state: rhea's receiving side
 * complains about a disposition without one.
 */
export function appliedState(outcome: 'accepted' | 'released' | 'modified' | 'rejected', remote: unknown): unknown {
  if (outcome === 'accepted') return outcomes.accepted().described();
  if (outcome === 'rejected') return outcomes.rejected({}).described();
  if (outcome === 'modified') return (remote as Described).described();
  return outcomes.released().described();
}

/** The link credit rhea tracks on a sender (the receiver's flow minus what was sent). */
export const creditOf = (link: object): number => (link as { credit?: number }).credit ?? 0;

/**
 * The encoded messages in one transfer. rhea decodes a single message (format 0); a batch arrives raw, an
 * envelope whose data sections are the encoded messages. Re-encoding a decoded message gives the sender's bytes
 * back for what the SDK sends (checked by the size tests).
 */
export function encodedMessages(format: number, payload: Message | Buffer): Buffer[] {
  if (format === 0) return [amqp.encode(payload)];
  if (format !== BATCH_FORMAT || !Buffer.isBuffer(payload))
    throw new Error(`unsupported message format 0x${format.toString(16)}`);
  const body = (amqp.decode(payload) as { body?: { typecode?: number; content?: unknown; multiple?: boolean } }).body;
  if (body?.typecode !== 0x75) throw new Error('a batch must carry its messages in data sections');
  const content = body.multiple ? (body.content as unknown[]) : [body.content];
  return content.map((c) => {
    if (!Buffer.isBuffer(c)) throw new Error('a batch data section is not binary');
    return c;
  });
}

interface MessageFacts {
  messageId?: string;
  /** From the header's ttl, when the sender set one. */
  timeToLiveMs?: number;
  scheduledEnqueueTime?: number;
}

/** What the broker needs to know about a message it accepts. */
export function factsOf(raw: Buffer): MessageFacts {
  const m = amqp.decode(raw);
  const annotations = (m.message_annotations ?? {}) as Record<string, unknown>;
  const scheduled = annotations[SCHEDULED_ENQUEUE_TIME];
  const id: unknown = m.message_id;
  return {
    messageId:
      typeof id === 'string' || typeof id === 'number'
        ? String(id)
        : Buffer.isBuffer(id)
          ? id.toString('hex')
          : undefined,
    timeToLiveMs: typeof m.ttl === 'number' && m.ttl > 0 ? m.ttl : undefined,
    scheduledEnqueueTime: scheduled instanceof Date ? scheduled.getTime() : undefined,
  };
}

/** The header and annotations the broker adds to a message it hands out. */
interface BrokerProperties {
  /** Deliveries before this one (the header's delivery-count; the SDK reports it as deliveryCount). */
  deliveryCount: number;
  /** 1 deferred, 2 scheduled; absent for an active message. */
  state?: 1 | 2;
}

function stamped(m: StoredMessage, broker: BrokerProperties): Buffer {
  const decoded = amqp.decode(m.raw);
  decoded.delivery_count = broker.deliveryCount;
  const annotations: Record<string, unknown> = {
    ...(decoded.message_annotations as Record<string, unknown> | undefined),
    [SEQUENCE_NUMBER]: types.wrap_long(m.seq),
    [ENQUEUED_TIME]: new Date(m.enqueuedAt),
  };
  if (m.lock) annotations[LOCKED_UNTIL] = new Date(m.lock.until);
  if (broker.state !== undefined) annotations[MESSAGE_STATE] = types.wrap_int(broker.state);
  decoded.message_annotations = annotations;
  return amqp.encode(decoded);
}

/** A message as a receiver gets it, just taken (so this delivery is not counted in the header). */
export const asDelivered = (m: StoredMessage): Buffer =>
  stamped(m, { deliveryCount: m.deliveries - 1, state: m.state === 'deferred' ? 1 : undefined });

/** A message as peek shows it: any state, with its lock when one is held. */
export const asPeeked = (m: StoredMessage): Buffer =>
  stamped(m, {
    deliveryCount: m.deliveries,
    state: m.state === 'deferred' ? 1 : m.state === 'scheduled' ? 2 : undefined,
  });

/** The message with a message id, which Service Bus gives every message a sender left without one. */
export function withMessageId(raw: Buffer, messageId: string): Buffer {
  const m = amqp.decode(raw);
  m.message_id = messageId;
  return amqp.encode(m);
}

/** The message with `properties` merged into its application properties (abandon, defer, dead-letter). */
export function withApplicationProperties(raw: Buffer, properties: Record<string, unknown>): Buffer {
  const set = Object.entries(properties).filter(([, v]) => v !== undefined && v !== null);
  if (set.length === 0) return raw;
  const m = amqp.decode(raw);
  m.application_properties = {
    ...(m.application_properties as Record<string, unknown> | undefined),
    ...Object.fromEntries(set),
  };
  return amqp.encode(m);
}

/**
 * Lock tokens travel two ways: as the 16-byte delivery tag, in .NET's GUID byte order (the SDK reorders it),
 * and in management requests as an AMQP uuid in network order.
 */
function swapGuidOrder(bytes: Buffer): Buffer {
  return Buffer.from([
    bytes[3]!,
    bytes[2]!,
    bytes[1]!,
    bytes[0]!,
    bytes[5]!,
    bytes[4]!,
    bytes[7]!,
    bytes[6]!,
    ...bytes.subarray(8),
  ]);
}

export const lockTokenTag = (token: string): Buffer => swapGuidOrder(string_to_uuid(token));

export function lockTokenOfTag(tag: Buffer | string): string | undefined {
  const bytes = typeof tag === 'string' ? Buffer.from(tag) : tag;
  return bytes.length === 16 ? uuid_to_string(swapGuidOrder(bytes)) : undefined;
}

export const lockTokenOfUuid = (uuid: unknown): string | undefined =>
  Buffer.isBuffer(uuid) && uuid.length === 16 ? uuid_to_string(uuid) : undefined;

export const uuidOfLockToken = (token: string): unknown => types.wrap_uuid(string_to_uuid(token));
