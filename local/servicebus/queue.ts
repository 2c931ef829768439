import { randomUUID } from 'node:crypto';
import { factsOf, withApplicationProperties, withMessageId } from './messages';
import type { Journal } from './persistence';

/**
 * One Service Bus queue and its dead-letter sub-queue: sequence numbers, peek-lock with lock tokens, delivery
 * counts, maxDeliveryCount, deferral, scheduled messages, time to live and duplicate detection, with the rules
 * Service Bus applies. Every change is journaled; what a client is told waits for the journal (see
 * persistence.ts).
 */

/** The credit-updates queue as infra/modules/servicebus.bicep creates it (Standard tier). */
export const QUEUE_DEFAULTS = {
  maxDeliveryCount: 10, // maxDeliveryCount: 10
  lockDurationMs: 60_000, // lockDuration: 'PT1M'
  maxSizeBytes: 1024 * 1024 * 1024, // maxSizeInMegabytes unset: Azure's default, 1024
  defaultMessageTimeToLiveMs: 14 * 24 * 3600_000, // defaultMessageTimeToLive: 'P14D'
  deadLetteringOnMessageExpiration: true,
  duplicateDetectionWindowMs: 10 * 60_000, // requiresDuplicateDetection, duplicateDetectionHistoryTimeWindow: 'PT10M'
};

export type QueueSettings = typeof QUEUE_DEFAULTS & { name: string };

/** An error with the AMQP condition and management status Service Bus uses for it. */
export class EntityError extends Error {
  constructor(
    readonly condition: string,
    readonly status: number,
    message: string
  ) {
    super(message);
  }
}

const lockLost = (): EntityError =>
  new EntityError(
    'com.microsoft:message-lock-lost',
    410,
    'The lock supplied is invalid. Either the lock expired, or the message has already been removed from the queue.'
  );
const messageNotFound = (seq: number, what: string): EntityError =>
  new EntityError('com.microsoft:message-not-found', 404, `No ${what} message with sequence number ${seq}.`);

export type MessageState = 'active' | 'deferred' | 'scheduled';

export interface StoredMessage {
  readonly seq: number;
  /** The encoded AMQP message, with dead-letter and modified properties applied. */
  raw: Buffer;
  readonly messageId?: string;
  enqueuedAt: number;
  /** Infinity when the message never expires (the dead-letter queue). */
  expiresAt: number;
  /** How many times a receiver took the message (locked or removed it). */
  deliveries: number;
  state: MessageState;
  scheduledAt?: number;
  lock?: { token: string; until: number; timer: NodeJS.Timeout };
}

export type Outcome =
  | { kind: 'complete' }
  | { kind: 'abandon' | 'defer'; properties?: Record<string, unknown> }
  | { kind: 'deadLetter'; reason?: string; description?: string; properties?: Record<string, unknown> };

/** A journal line (persistence.ts); a `put` carries the message's whole state, with `raw` when it changed. */
export type JournalRecord =
  | {
      op: 'put';
      queue: string;
      seq: number;
      deadLettered: boolean;
      messageId?: string;
      enqueuedAt: number;
      expiresAt: number | null;
      deliveries: number;
      state: MessageState;
      scheduledAt?: number;
      raw?: string;
    }
  | { op: 'del'; queue: string; seq: number }
  | { op: 'seen'; queue: string; messageId: string; at: number }
  | { op: 'next'; queue: string; seq: number };

/** Messages read back from the journal, by sequence number, before they go to their entity. */
export type Restoring = Map<number, StoredMessage & { deadLettered: boolean }>;

/** A binary min-heap of sequence numbers: the oldest available message first. */
class SeqHeap {
  private readonly items: number[] = [];

  push(seq: number): void {
    const a = this.items;
    a.push(seq);
    for (let i = a.length - 1; i > 0;) {
      const parent = (i - 1) >> 1;
      if (a[parent]! <= a[i]!) break;
      [a[parent], a[i]] = [a[i]!, a[parent]!];
      i = parent;
    }
  }

  pop(): number | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let min = i;
        if (l < a.length && a[l]! < a[min]!) min = l;
        if (r < a.length && a[r]! < a[min]!) min = r;
        if (min === i) break;
        [a[min], a[i]] = [a[i]!, a[min]!];
        i = min;
      }
    }
    return top;
  }
}

/** The queue itself or its `$DeadLetterQueue`: what receivers, peek and the management operations act on. */
export class Entity {
  readonly messages = new Map<number, StoredMessage>();
  /** Called when a message becomes available to receivers. */
  onAvailable: () => void = () => undefined;
  /** Test fault: this many coming completions find their lock lost (see LocalServiceBusNamespace.loseLocks). */
  locksToLose = 0;
  /** Sequence numbers of active messages; may hold stale entries, each is checked when popped. */
  private readonly ready = new SeqHeap();
  private readonly locks = new Map<string, StoredMessage>();
  private readonly activations = new Map<number, NodeJS.Timeout>();

  constructor(
    readonly queue: Queue,
    readonly isDeadLetterQueue: boolean
  ) {}

  get path(): string {
    return this.isDeadLetterQueue ? `${this.queue.settings.name}/$DeadLetterQueue` : this.queue.settings.name;
  }

  /** Takes the oldest available message: locks it (peek-lock) or removes it (receive-and-delete). */
  take(peekLock: boolean, now = Date.now()): StoredMessage | undefined {
    for (let seq = this.ready.pop(); seq !== undefined; seq = this.ready.pop()) {
      const m = this.messages.get(seq);
      if (!m || m.lock || m.state !== 'active') continue;
      if (now >= m.expiresAt) {
        this.queue.note(this.queue.expire(m));
        continue;
      }
      return this.deliver(m, peekLock, now);
    }
    return undefined;
  }

  /** receive-by-sequence-number: deferred messages are only reachable this way. */
  takeDeferred(seqs: number[], peekLock: boolean, now = Date.now()): StoredMessage[] {
    const found = seqs.map((seq) => {
      const m = this.messages.get(seq);
      if (!m || m.state !== 'deferred' || m.lock) throw messageNotFound(seq, 'deferred');
      return m;
    });
    return found.map((m) => this.deliver(m, peekLock, now));
  }

  renewLock(token: string, now = Date.now()): number {
    const m = this.locked(token, now);
    clearTimeout(m.lock!.timer);
    this.lock(m, token, now);
    return m.lock!.until;
  }

  /** Settles a locked message; resolves once the outcome is journaled. Throws lock-lost for a stale token. */
  async settle(token: string, outcome: Outcome, now = Date.now()): Promise<void> {
    const m = this.locked(token, now);
    if (outcome.kind === 'complete' && this.locksToLose > 0) {
      this.locksToLose--;
      this.lockExpired(m, token);
      throw lockLost();
    }
    if (outcome.kind === 'deadLetter' && this.isDeadLetterQueue)
      throw new EntityError('amqp:not-allowed', 400, 'A message in the dead-letter queue cannot be dead-lettered.');
    this.unlock(m);
    const properties = outcome.kind === 'complete' ? undefined : outcome.properties;
    if (properties) this.queue.rewrite(m, withApplicationProperties(m.raw, properties));
    switch (outcome.kind) {
      case 'complete':
        return this.queue.commit(this.remove(m));
      case 'abandon':
        return this.queue.commit(this.release(m, properties !== undefined));
      case 'defer':
        m.state = 'deferred';
        return this.queue.commit(this.queue.put(m, this, properties !== undefined));
      case 'deadLetter':
        return this.queue.commit(this.queue.deadLetter(m, outcome.reason, outcome.description));
    }
  }

  /** Every message from `fromSeq` on, in order: active, locked, deferred and scheduled ones. */
  peek(fromSeq: number, count: number): StoredMessage[] {
    return [...this.messages.values()]
      .filter((m) => m.seq >= fromSeq)
      .sort((a, b) => a.seq - b.seq)
      .slice(0, count);
  }

  insert(m: StoredMessage, now = Date.now()): void {
    this.messages.set(m.seq, m);
    if (m.state === 'scheduled') this.scheduleActivation(m, now);
    if (m.state === 'active') this.makeAvailable(m);
  }

  remove(m: StoredMessage): JournalRecord {
    if (m.lock) this.unlock(m);
    clearTimeout(this.activations.get(m.seq));
    this.activations.delete(m.seq);
    this.messages.delete(m.seq);
    this.queue.sizeBytes -= m.raw.length;
    return { op: 'del', queue: this.queue.settings.name, seq: m.seq };
  }

  /** Stops every timer (locks, scheduled messages). */
  dispose(): void {
    for (const m of this.messages.values()) if (m.lock) clearTimeout(m.lock.timer);
    for (const t of this.activations.values()) clearTimeout(t);
  }

  private deliver(m: StoredMessage, peekLock: boolean, now: number): StoredMessage {
    m.deliveries++;
    if (!peekLock) {
      this.queue.note(this.remove(m));
      return m;
    }
    this.lock(m, randomUUID(), now);
    this.queue.note(this.queue.put(m, this));
    return m;
  }

  private lock(m: StoredMessage, token: string, now: number): void {
    const duration = this.queue.settings.lockDurationMs;
    m.lock = { token, until: now + duration, timer: setTimeout(() => this.lockExpired(m, token), duration) };
    this.locks.set(token, m);
  }

  private locked(token: string, now: number): StoredMessage {
    const m = this.locks.get(token);
    if (!m?.lock || m.lock.until <= now) throw lockLost();
    return m;
  }

  private unlock(m: StoredMessage): void {
    clearTimeout(m.lock!.timer);
    this.locks.delete(m.lock!.token);
    m.lock = undefined;
  }

  private lockExpired(m: StoredMessage, token: string): void {
    if (m.lock?.token !== token) return;
    this.unlock(m);
    this.queue.note(this.release(m, false));
  }

  /** After an abandon or a lock expiry: dead-letter after the last allowed delivery, else offer it again. */
  private release(m: StoredMessage, rawChanged: boolean): JournalRecord {
    const max = this.queue.settings.maxDeliveryCount;
    if (!this.isDeadLetterQueue && m.deliveries >= max)
      return this.queue.deadLetter(
        m,
        'MaxDeliveryCountExceeded',
        `Message could not be consumed after ${max} delivery attempts.`
      );
    if (m.state === 'active') this.makeAvailable(m);
    return this.queue.put(m, this, rawChanged);
  }

  private makeAvailable(m: StoredMessage): void {
    this.ready.push(m.seq);
    this.onAvailable();
  }

  private scheduleActivation(m: StoredMessage, now: number): void {
    // setTimeout holds at most 2^31-1 ms (24.8 days); a later message is looked at again then.
    const delay = Math.min(Math.max(0, (m.scheduledAt ?? now) - now), 2 ** 31 - 1);
    this.activations.set(
      m.seq,
      setTimeout(() => {
        this.activations.delete(m.seq);
        const at = Date.now();
        if ((m.scheduledAt ?? 0) > at) return this.scheduleActivation(m, at);
        m.state = 'active';
        m.enqueuedAt = at;
        m.expiresAt = this.queue.expiryOf(m.raw, at);
        this.queue.note(this.queue.put(m, this));
        this.makeAvailable(m);
      }, delay)
    );
  }
}

export class Queue {
  readonly active: Entity;
  readonly deadLetters: Entity;
  sizeBytes = 0;
  private nextSeq = 1;
  /** Message ids accepted within the duplicate detection window, oldest first. */
  private readonly seen = new Map<string, number>();

  constructor(
    readonly settings: QueueSettings,
    private readonly journal: Journal<JournalRecord>
  ) {
    this.active = new Entity(this, false);
    this.deadLetters = new Entity(this, true);
  }

  /**
   * Accepts sent or scheduled messages (one transfer: a message or a batch) once they are journaled. A message
   * with x-opt-scheduled-enqueue-time in the future waits until then. A message id seen within the duplicate
   * detection window is accepted and dropped, as Service Bus does.
   */
  async enqueue(raws: Buffer[], now = Date.now()): Promise<number[]> {
    const bytes = raws.reduce((n, r) => n + r.length, 0);
    if (this.sizeBytes + bytes > this.settings.maxSizeBytes)
      throw new EntityError(
        'amqp:resource-limit-exceeded',
        403,
        `The maximum entity size has been reached or exceeded for Queue: '${this.settings.name}'. Size of entity in bytes: ${this.sizeBytes}, max entity size in bytes: ${this.settings.maxSizeBytes}.`
      );
    this.forgetOldIds(now);
    const fresh: StoredMessage[] = [];
    for (let raw of raws) {
      const facts = factsOf(raw);
      if (facts.messageId === undefined) {
        // Service Bus names every message (the SDK's lock renewer needs the id).
        facts.messageId = randomUUID().replace(/-/g, '');
        raw = withMessageId(raw, facts.messageId);
      } else if (this.settings.duplicateDetectionWindowMs > 0) {
        if (this.seen.has(facts.messageId)) continue;
        this.seen.set(facts.messageId, now);
      }
      const scheduled = (facts.scheduledEnqueueTime ?? 0) > now;
      fresh.push({
        seq: this.nextSeq++,
        raw,
        messageId: facts.messageId,
        enqueuedAt: now,
        expiresAt: this.expiryOf(raw, now),
        deliveries: 0,
        state: scheduled ? 'scheduled' : 'active',
        scheduledAt: scheduled ? facts.scheduledEnqueueTime : undefined,
      });
    }
    this.sizeBytes += fresh.reduce((n, m) => n + m.raw.length, 0);
    try {
      await this.commit(fresh.map((m) => this.put(m, this.active, true)));
    } catch (err) {
      // Not stored: a resend must not count as a duplicate.
      this.sizeBytes -= fresh.reduce((n, m) => n + m.raw.length, 0);
      for (const m of fresh) if (m.messageId !== undefined) this.seen.delete(m.messageId);
      throw err;
    }
    for (const m of fresh) this.active.insert(m, now);
    return fresh.map((m) => m.seq);
  }

  cancelScheduled(seqs: number[]): Promise<void> {
    const found = seqs.map((seq) => {
      const m = this.active.messages.get(seq);
      if (!m || m.state !== 'scheduled') throw messageNotFound(seq, 'scheduled');
      return m;
    });
    return this.commit(found.map((m) => this.active.remove(m)));
  }

  /** Moves a message to the dead-letter queue with the reason and description as application properties. */
  deadLetter(m: StoredMessage, reason?: string, description?: string): JournalRecord {
    this.active.messages.delete(m.seq);
    this.rewrite(
      m,
      withApplicationProperties(m.raw, { DeadLetterReason: reason, DeadLetterErrorDescription: description })
    );
    m.state = 'active';
    m.expiresAt = Infinity;
    this.deadLetters.insert(m);
    return this.put(m, this.deadLetters, true);
  }

  /** A message past its time to live: dead-lettered (as the Bicep sets the queue) or dropped. */
  expire(m: StoredMessage): JournalRecord {
    return this.settings.deadLetteringOnMessageExpiration
      ? this.deadLetter(m, 'TTLExpiredException', 'The message expired and was dead lettered.')
      : this.active.remove(m);
  }

  expiryOf(raw: Buffer, enqueuedAt: number): number {
    const ttl = Math.min(factsOf(raw).timeToLiveMs ?? Infinity, this.settings.defaultMessageTimeToLiveMs);
    return enqueuedAt + ttl;
  }

  rewrite(m: StoredMessage, raw: Buffer): void {
    this.sizeBytes += raw.length - m.raw.length;
    m.raw = raw;
  }

  put(m: StoredMessage, entity: Entity, withRaw = false): JournalRecord {
    return {
      op: 'put',
      queue: this.settings.name,
      seq: m.seq,
      deadLettered: entity.isDeadLetterQueue,
      messageId: m.messageId,
      enqueuedAt: m.enqueuedAt,
      expiresAt: Number.isFinite(m.expiresAt) ? m.expiresAt : null,
      deliveries: m.deliveries,
      state: m.state,
      scheduledAt: m.scheduledAt,
      raw: withRaw ? m.raw.toString('base64') : undefined,
    };
  }

  commit(record: JournalRecord | JournalRecord[]): Promise<void> {
    return this.journal.commit(Array.isArray(record) ? record : [record]);
  }

  note(record: JournalRecord): void {
    this.journal.note(record);
  }

  /** Applies journal records replayed at start (all of them first, then `restored()`). */
  replay(r: JournalRecord, loading: Restoring): void {
    if (r.op === 'next') this.nextSeq = Math.max(this.nextSeq, r.seq);
    else if (r.op === 'seen') this.seen.set(r.messageId, r.at);
    else if (r.op === 'del') loading.delete(r.seq);
    else {
      const previous = loading.get(r.seq);
      if (!previous && r.raw === undefined) return; // an update of a message removed earlier
      const raw = r.raw === undefined ? previous!.raw : Buffer.from(r.raw, 'base64');
      if (!previous && r.messageId !== undefined && !this.seen.has(r.messageId))
        this.seen.set(r.messageId, r.enqueuedAt);
      loading.set(r.seq, {
        seq: r.seq,
        raw,
        messageId: r.messageId,
        enqueuedAt: r.enqueuedAt,
        expiresAt: r.expiresAt ?? Infinity,
        deliveries: r.deliveries,
        state: r.state,
        scheduledAt: r.scheduledAt,
        deadLettered: r.deadLettered,
      });
      this.nextSeq = Math.max(this.nextSeq, r.seq + 1);
    }
  }

  restored(loading: Restoring, now = Date.now()): void {
    for (const { deadLettered, ...m } of [...loading.values()].sort((a, b) => a.seq - b.seq)) {
      this.sizeBytes += m.raw.length;
      (deadLettered ? this.deadLetters : this.active).insert(m, now);
    }
    this.forgetOldIds(now);
  }

  /** The live state as journal records (what a compacted journal holds). */
  snapshot(): JournalRecord[] {
    const name = this.settings.name;
    return [
      { op: 'next', queue: name, seq: this.nextSeq },
      ...[...this.seen].map(([messageId, at]): JournalRecord => ({ op: 'seen', queue: name, messageId, at })),
      ...[this.active, this.deadLetters].flatMap((e) => [...e.messages.values()].map((m) => this.put(m, e, true))),
    ];
  }

  counts(): { active: number; scheduled: number; deferred: number; locked: number; deadLettered: number } {
    const all = [...this.active.messages.values()];
    return {
      active: all.filter((m) => m.state === 'active').length,
      scheduled: all.filter((m) => m.state === 'scheduled').length,
      deferred: all.filter((m) => m.state === 'deferred').length,
      locked: all.filter((m) => m.lock).length,
      deadLettered: this.deadLetters.messages.size,
    };
  }

  dispose(): void {
    this.active.dispose();
    this.deadLetters.dispose();
  }

  private forgetOldIds(now: number): void {
    for (const [id, at] of this.seen) {
      if (now - at < this.settings.duplicateDetectionWindowMs) break;
      this.seen.delete(id);
    }
  }
}

/** Rebuilds the queues (by lower-case name) from replayed journal records; returns the names it did not know. */
export function restoreQueues(queues: Map<string, Queue>, records: JournalRecord[]): string[] {
  const loading = new Map([...queues.values()].map((q): [Queue, Restoring] => [q, new Map() as Restoring]));
  const unknown = new Set<string>();
  for (const r of records) {
    const q = queues.get(r.queue.toLowerCase());
    if (q) q.replay(r, loading.get(q)!);
    else unknown.add(r.queue);
  }
  for (const [q, messages] of loading) q.restored(messages);
  return [...unknown];
}
