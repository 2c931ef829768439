import { createHash } from 'node:crypto';
import type { TableClient } from '@azure/data-tables';
import type { RejectionCode } from '../domain/validate';
import { isConflict, odata, TABLES, type TableStore } from './tables';
import { DAY_MS } from '../util';

/**
 * Messages that can never succeed (bad JSON, schema violations, another bank's events), with the reason, so
 * the sending team can fix them. Keyed by the message's enqueue time and id, both fixed for the life of the
 * message, so a redelivered bad message finds its row instead of adding one. Never holds the body.
 *
 *   PartitionKey  yyyy-mm-dd (UTC) of the enqueue time
 *   RowKey        <inverted enqueue ms, 16 digits>_<sha256(messageId), 32 hex>   newest first within a day;
 *                 the hash because a sender's message id may hold characters a RowKey must not ('/', '#', '?')
 */
export interface Rejection {
  messageId: string;
  /** Only when the body held a well-formed event id. */
  eventId?: string;
  code: RejectionCode;
  reason: string;
  deliveryCount: number;
  enqueuedAt: string;
  rejectedAt: string;
  bodySize: number;
}

// The largest time a Date holds: inverted times then sort newest first as fixed-width strings.
const MAX_TIME_MS = 8_640_000_000_000_000;
const invertedMs = (ms: number): string => String(MAX_TIME_MS - ms).padStart(16, '0');
const dayOf = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
const rowKeyOf = (r: Pick<Rejection, 'enqueuedAt' | 'messageId'>): string =>
  `${invertedMs(Date.parse(r.enqueuedAt))}_${createHash('sha256').update(r.messageId).digest('hex').slice(0, 32)}`;
const FIELDS = ['messageId', 'eventId', 'code', 'reason', 'deliveryCount', 'enqueuedAt', 'rejectedAt', 'bodySize'];

export class Rejections {
  constructor(private readonly store: TableStore) {}

  private table(): Promise<TableClient> {
    return this.store.table(TABLES.rejections);
  }

  /** Records a rejection; 'already-recorded' when this message was rejected before (nothing changes then). */
  async record(rejection: Rejection): Promise<'recorded' | 'already-recorded'> {
    const table = await this.table();
    const { eventId, ...rest } = rejection;
    try {
      await table.createEntity({
        partitionKey: dayOf(Date.parse(rejection.enqueuedAt)),
        rowKey: rowKeyOf(rejection),
        ...rest,
        ...(eventId === undefined ? {} : { eventId }),
      });
      return 'recorded';
    } catch (err) {
      if (isConflict(err)) return 'already-recorded';
      throw err;
    }
  }

  /** The newest rejections (by enqueue time), at most `limit`, looking back `days` days from `now`. */
  async list(options: { limit: number; days?: number; now?: Date }): Promise<Rejection[]> {
    const table = await this.table();
    const now = (options.now ?? new Date()).getTime();
    const found: Rejection[] = [];
    for (let back = 0; back < (options.days ?? 7) && found.length < options.limit; back++) {
      const query = table.listEntities<Rejection>({
        queryOptions: { filter: `PartitionKey eq ${odata(dayOf(now - back * DAY_MS))}`, select: FIELDS },
      });
      for await (const page of query.byPage({ maxPageSize: Math.min(1000, options.limit - found.length) })) {
        found.push(...page.map(toRejection));
        if (found.length >= options.limit) break;
      }
    }
    return found.slice(0, options.limit);
  }

  /** How many messages enqueued at or after `since` were rejected, with `code` if given (metrics, alerts). */
  async countSince(since: Date, code?: RejectionCode): Promise<number> {
    const table = await this.table();
    const ms = since.getTime();
    // Newer rows have smaller inverted times: in every later day's partition, all rows qualify.
    const window = `PartitionKey ge ${odata(dayOf(ms))} and RowKey lt ${odata(`${invertedMs(ms)}~`)}`;
    const filter = code === undefined ? window : `${window} and code eq ${odata(code)}`;
    let count = 0;
    for await (const page of table.listEntities({ queryOptions: { filter, select: ['RowKey'] } }).byPage()) {
      count += page.length;
    }
    return count;
  }
}

function toRejection(entity: Rejection): Rejection {
  const { messageId, eventId, code, reason, deliveryCount, enqueuedAt, rejectedAt, bodySize } = entity;
  return { messageId, code, reason, deliveryCount, enqueuedAt, rejectedAt, bodySize, ...(eventId ? { eventId } : {}) };
}
