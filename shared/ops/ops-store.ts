import type { TableClient } from '@azure/data-tables';
import { deleteRows, isNotFound, listRows, odata, submitGrouped, TABLES, type TableStore } from '../storage/tables';
import { alertKey, type AlertRule, type AlertState } from './alerts';
import type { BeatSample } from './model';
import type { UnsupportedMethods } from './probe';
import { MINUTE_MS } from '../util';

/**
 * The heartbeat's state in TABLES.ops, so it holds across instances and restarts (timers are singletons, so
 * one beat writes at a time):
 *
 *   PartitionKey              RowKey              what
 *   validator                 <hash of the URL>   up/down, since when, consecutive failures, unsupported methods
 *   alert                     <rule>|<subject>    firing/resolved, value, threshold, since
 *   chain                     state               last validator set
 *   samples-<yyyymmddHH>      <ISO time>          one beat's sample (JSON), pruned after 30 minutes
 */

export interface ValidatorState {
  key: string;
  name: string;
  status: 'up' | 'down';
  since: string;
  consecutiveFailures: number;
  unsupported: UnsupportedMethods;
}

export interface ChainState {
  validatorSet?: string[];
}

export const SAMPLE_RETENTION_MS = 30 * MINUTE_MS;
const SAMPLES = 'samples-';

/** The hour partition of a time: samples-2026010112. */
export const samplePartition = (ms: number): string =>
  SAMPLES + new Date(ms).toISOString().slice(0, 13).replace(/[-T]/g, '');

// RowKeys may not hold / \ # ? or control characters.
const safeKey = (value: string): string => encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0)}`);

export class OpsStore {
  constructor(private readonly store: TableStore) {}

  private table(): Promise<TableClient> {
    return this.store.table(TABLES.ops);
  }

  async validatorStates(): Promise<Map<string, ValidatorState>> {
    const table = await this.table();
    const states = new Map<string, ValidatorState>();
    const rows = table.listEntities<Record<string, unknown>>({
      queryOptions: { filter: `PartitionKey eq 'validator'` },
    });
    for await (const row of rows) {
      states.set(String(row.rowKey), {
        key: String(row.rowKey),
        name: String(row.name),
        status: row.status === 'down' ? 'down' : 'up',
        since: String(row.since),
        consecutiveFailures: Number(row.consecutiveFailures ?? 0),
        unsupported: parseJson<UnsupportedMethods>(row.unsupported, {}),
      });
    }
    return states;
  }

  async putValidatorStates(states: ValidatorState[]): Promise<void> {
    const table = await this.table();
    await submitGrouped(
      table,
      states.map((s) => [
        'upsert',
        {
          partitionKey: 'validator',
          rowKey: s.key,
          name: s.name,
          status: s.status,
          since: s.since,
          consecutiveFailures: s.consecutiveFailures,
          unsupported: JSON.stringify(s.unsupported),
        },
        'Replace',
      ])
    );
  }

  async alerts(): Promise<Map<string, AlertState>> {
    const table = await this.table();
    const alerts = new Map<string, AlertState>();
    for await (const row of table.listEntities<Record<string, unknown>>({
      queryOptions: { filter: `PartitionKey eq 'alert'` },
    })) {
      const alert: AlertState = {
        rule: String(row.rule) as AlertRule,
        subject: String(row.subject),
        state: row.state === 'firing' ? 'firing' : 'resolved',
        value: Number(row.value),
        threshold: Number(row.threshold),
        since: String(row.since),
        updatedAt: String(row.updatedAt),
      };
      alerts.set(alertKey(alert.rule, alert.subject), alert);
    }
    return alerts;
  }

  async putAlerts(alerts: AlertState[]): Promise<void> {
    if (alerts.length === 0) return;
    const table = await this.table();
    await submitGrouped(
      table,
      alerts.map((a) => [
        'upsert',
        { partitionKey: 'alert', rowKey: safeKey(alertKey(a.rule, a.subject)), ...a },
        'Replace',
      ])
    );
  }

  async chainState(): Promise<ChainState> {
    const table = await this.table();
    try {
      const row = await table.getEntity<{ validatorSet?: string }>('chain', 'state');
      return { validatorSet: parseJson<string[] | undefined>(row.validatorSet, undefined) };
    } catch (err) {
      if (isNotFound(err)) return {};
      throw err;
    }
  }

  async putChainState(state: ChainState): Promise<void> {
    const table = await this.table();
    await table.upsertEntity(
      { partitionKey: 'chain', rowKey: 'state', validatorSet: JSON.stringify(state.validatorSet ?? null) },
      'Replace'
    );
  }

  async addSample(sample: BeatSample): Promise<void> {
    const table = await this.table();
    const ms = Date.parse(sample.t);
    // A string property holds at most 32K characters; trim the bulky parts rather than lose the beat.
    let json = JSON.stringify(sample);
    if (json.length > 30_000) {
      json = JSON.stringify({
        ...sample,
        chain: { ...sample.chain, participation: undefined, validatorSet: undefined },
      });
    }
    await table.upsertEntity({ partitionKey: samplePartition(ms), rowKey: sample.t, sample: json }, 'Replace');
  }

  /** Samples since `sinceMs`, oldest first. */
  async samples(sinceMs: number, nowMs: number): Promise<BeatSample[]> {
    const table = await this.table();
    const partitions: string[] = [];
    for (let h = Math.floor(sinceMs / 3_600_000); h <= Math.floor(nowMs / 3_600_000); h++)
      partitions.push(samplePartition(h * 3_600_000));
    const since = new Date(sinceMs).toISOString();
    const perPartition = await Promise.all(
      partitions.map(async (pk) => {
        const list: BeatSample[] = [];
        for await (const row of table.listEntities<{ sample: string }>({
          queryOptions: { filter: `PartitionKey eq ${odata(pk)} and RowKey ge ${odata(since)}`, select: ['sample'] },
        })) {
          const sample = parseJson<BeatSample | undefined>(row.sample, undefined);
          if (sample) list.push(sample);
        }
        return list;
      })
    );
    return perPartition.flat().sort((a, b) => a.t.localeCompare(b.t));
  }

  /** Deletes samples older than `beforeMs` (whole old hour partitions and the old part of the current one). */
  async pruneSamples(beforeMs: number): Promise<number> {
    const table = await this.table();
    const cutoffPartition = samplePartition(beforeMs);
    const before = new Date(beforeMs).toISOString();
    const filter =
      `(PartitionKey ge ${odata(SAMPLES)} and PartitionKey lt ${odata(cutoffPartition)}) or ` +
      `(PartitionKey eq ${odata(cutoffPartition)} and RowKey lt ${odata(before)})`;
    const old = await listRows(table, filter, []);
    await deleteRows(table, old);
    return old.length;
  }
}

function parseJson<T>(value: unknown, fallback: T): T {
  if (typeof value !== 'string') return fallback;
  try {
    return (JSON.parse(value) as T) ?? fallback;
  } catch {
    return fallback;
  }
}
