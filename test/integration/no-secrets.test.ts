import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TableClient, TableServiceClient } from '@azure/data-tables';
import { JsonRpcProvider } from 'ethers';
import { spawnFunctionHost, type RunningHost } from '../../local/host/spawn';
import { EventPublisher } from '../../local/publish-events';
import { bankSettings, startStack, type Stack } from '../../local/stack/stack';
import { normalizeSubjectValue, subjectRef } from '../../shared/domain/pseudonymize';
import { Outbox } from '../../shared/storage/outbox';
import { TABLES, TableStore } from '../../shared/storage/tables';
import { eventually } from './support/eventually';
import { startRpcProxy, type RpcProxy } from './support/rpc-proxy';
import { creditUpdateEvent, TEST_CREDIT } from '../support/credit-update';

/**
 * A small run of the real app on the local stack with secrets planted everywhere they could leak from: RPC
 * endpoints with userinfo, an API key in the path and a token in the query (both made to fail at times, so
 * their errors travel), the pseudonymization key, the host's function and master keys (sent as ?code=), and raw
 * subject identifiers in the events. Then every log line the host wrote, every entity of every table, every
 * telemetry item, the host's command line and the chain's transactions and logs are searched for each of them,
 * as is and, where bytes could be stored instead, in hex and base64.
 */
describe('no secret in logs, tables, telemetry or on chain', () => {
  const appDir = join(__dirname, '../..');
  const pseudonymizationKey = randomBytes(32).toString('hex');
  const rawIds = [plantedRawId(), plantedRawId(), plantedRawId()];
  const rejectedRawId = plantedRawId();
  const events = rawIds.map((value, i) => creditUpdate(value, { sequence: i + 1 }));
  const logs: string[] = [];
  let stack: Stack;
  let primary: RpcProxy;
  let fallback: RpcProxy;
  let host: RunningHost;
  let storage: string;

  beforeAll(async () => {
    stack = await startStack({ banks: 1, blockTimeSeconds: 1, confirmations: 1 });
    [primary, fallback] = await Promise.all([
      startRpcProxy(stack.info.chain.rpcUrl),
      startRpcProxy(stack.info.chain.rpcUrl),
    ]);
    const settings = {
      ...bankSettings(stack.info, 'BANK-A'),
      CHAIN_RPC_URLS: `${primary.url},${fallback.url}`,
      VALIDATOR_RPC_URLS: `${primary.url},${fallback.url}`,
      PSEUDONYMIZATION_SECRET: pseudonymizationKey,
      SUBMIT_REBROADCAST_AFTER_BLOCKS: '1',
      HEARTBEAT_SCHEDULE: '0 0 0 1 1 *', // on demand only (below), so a beat runs while the chain fails
    };
    storage = stack.info.banks[0]!.storageConnectionString;
    host = await spawnFunctionHost({ name: 'BANK-A app', appDir, settings, onLine: (line) => logs.push(line) });
  });

  afterAll(async () => {
    await host?.stop();
    await Promise.all([primary?.stop(), fallback?.stop()]);
    await stack?.stop();
  });

  const bothEndpoints = (methods: string[]): void => {
    for (const proxy of [primary, fallback]) {
      proxy.failing.clear();
      for (const method of methods) proxy.failing.add(method);
    }
  };

  const runHeartbeat = async (): Promise<void> => {
    const res = await fetch(`${host.url}/admin/functions/heartbeat?wait=true`, {
      method: 'POST',
      headers: { 'x-functions-key': host.masterKey, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(await res.json()).toEqual({ status: 'Succeeded' });
  };

  it('records a broadcast that failed on every endpoint without the endpoints’ credentials', async () => {
    bothEndpoints(['eth_sendRawTransaction']);
    const publisher = new EventPublisher(stack.info.banks[0]!.serviceBusConnectionString);
    await publisher.publish([...events, creditUpdate(rejectedRawId, { credit: { score: 900 } })]);
    await publisher.close();

    try {
      const lastErrors = await eventually(
        () => batchLastErrors(storage),
        (errors) => errors.length > 0,
        'a batch whose broadcast failed'
      );
      expect(lastErrors[0]).toMatch(
        /^http:\/\/\*\*\*@127\.0\.0\.1:\d+\/v3\/\*\*\*\?apikey=\*\*\*: server response 500/
      );
    } finally {
      bothEndpoints([]);
    }

    const outbox = new Outbox(new TableStore({ connectionString: storage }));
    await eventually(
      () => Promise.all(events.map(async (e) => (await outbox.get(e.eventId))?.status)),
      (statuses) => statuses.every((s) => s === 'confirmed'),
      'every event confirmed on chain',
      40_000
    );
  });

  it('answers reads with the key in the query, and fails a verification without quoting the endpoints', async () => {
    const code = `code=${encodeURIComponent(host.functionKey)}`;
    const lookup = await fetch(`${host.url}/api/credit-records/lookup?${code}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(events[0]!.subject),
    });
    expect(lookup.status).toBe(200);
    const multibyte = encodeURIComponent('é'.repeat(host.functionKey.length));
    expect((await fetch(`${host.url}/api/status?code=${multibyte}`)).status).toBe(401);

    bothEndpoints(['eth_call']);
    try {
      const ref = subjectRef(Buffer.from(pseudonymizationKey, 'hex'), events[0]!.subject);
      expect((await fetch(`${host.url}/api/credit-records/${ref}?verify=true&${code}`)).status).toBe(500);
      await runHeartbeat(); // its member count fails too: the problem goes to the OpsState table and telemetry
    } finally {
      bothEndpoints([]);
    }
    await runHeartbeat(); // and a healthy beat flushes the telemetry buffered so far

    await eventually(
      () => logs.some((l) => l.includes('HTTP GET /api/credit-records/***?verify=***&code=*** failed')),
      (found) => found,
      'the failed verification in the host log, its query redacted'
    );
    // Both kinds of client (ethers for the app, the heartbeat's own) sent the credentials the endpoint wants.
    expect(primary.counts.refused + fallback.counts.refused).toBe(0);
    expect(primary.counts.forwarded).toBeGreaterThan(0);
    expect(fallback.counts.failed).toBeGreaterThan(0);
  });

  it('fails a function with the short error the chain client gives, not the request it quotes', async () => {
    const before = logs.length;
    for (const proxy of [primary, fallback]) proxy.refusing.add('eth_call');
    try {
      const ref = subjectRef(Buffer.from(pseudonymizationKey, 'hex'), events[0]!.subject);
      const code = `code=${encodeURIComponent(host.functionKey)}`;
      expect((await fetch(`${host.url}/api/credit-records/${ref}?verify=true&${code}`)).status).toBe(500);
    } finally {
      for (const proxy of [primary, fallback]) proxy.refusing.clear();
    }
    const failure = await eventually(
      () => logs.slice(before).find((l) => l.includes('verify=***') && l.includes(' failed: ')),
      (line) => line !== undefined,
      'the failed verification in the host log'
    );
    // ethers quotes the call (its calldata: the subject ref and the registry) in its message; the app's
    // postInvocation hook leaves the host its short message and the node's answer.
    expect(failure).toMatch(/ failed: missing revert data \(execution refused\)$/);
    expect(logs.filter((l) => l.includes('transaction=') || l.includes('payload='))).toEqual([]);
  });

  it('leaves none of the planted values in a log, a table, telemetry, the command line or the chain', async () => {
    const commandLine = readFileSync(`/proc/${host.process.child.pid}/cmdline`, 'utf8').split('\0').join(' ');
    await host.stop();
    const planted: Planted[] = [
      ...primary.secrets.map((value) => ({ what: 'primary RPC credential', value })),
      ...fallback.secrets.map((value) => ({ what: 'fallback RPC credential', value })),
      { what: 'pseudonymization key', value: pseudonymizationKey, bytes: Buffer.from(pseudonymizationKey, 'hex') },
      { what: 'function key', value: host.functionKey },
      { what: 'master key', value: host.masterKey },
      { what: 'storage account key', value: /AccountKey=([^;]+)/.exec(storage)![1]! },
      {
        what: 'Service Bus key',
        value: /SharedAccessKey=([^;]+)/.exec(stack.info.banks[0]!.serviceBusConnectionString)![1]!,
      },
      { what: 'Application Insights instrumentation key', value: stack.appInsights.instrumentationKey },
      ...[...rawIds, rejectedRawId].flatMap((raw) => [
        { what: 'raw subject identifier', value: raw.trim(), bytes: Buffer.from(raw.trim()) },
        {
          what: 'normalized raw identifier',
          value: normalizeSubjectValue(raw),
          bytes: Buffer.from(normalizeSubjectValue(raw)),
        },
      ]),
    ];
    const telemetry = stack.appInsights.envelopes().map(({ iKey: _addressedTo, ...item }) => item);
    const sources: Record<string, string> = {
      "the host's command line": commandLine,
      'the host log': logs.join('\n'),
      'the tables': await everyTableEntity(storage),
      telemetry: JSON.stringify(telemetry),
      'the chain': await chainData(stack.info.chain.rpcUrl),
    };
    const hits = Object.entries(sources).flatMap(([where, text]) => findPlanted(where, text, planted));
    expect(hits).toEqual([]);
    // And the places searched did hold the error texts that quoted the endpoints.
    expect(telemetry.length).toBeGreaterThan(0);
    expect(sources['the tables']).toContain('"lastError":"http://***@');
    expect(sources['the tables']).toContain('members: server response 500');
  });
});

/** A value planted in the run: its text and, where bytes of it could be stored instead, those bytes. */
interface Planted {
  what: string;
  value: string;
  bytes?: Buffer;
}

/** Where each planted value occurs (case-insensitive, so hex in any case counts), as "<what> in <where>". */
function findPlanted(where: string, text: string, planted: Planted[]): string[] {
  const haystack = text.toLowerCase();
  return planted.flatMap(({ what, value, bytes }) => {
    const spellings = [value, ...(bytes ? [bytes.toString('hex'), bytes.toString('base64')] : [])];
    return spellings.filter((s) => haystack.includes(s.toLowerCase())).map((s) => `${what} (${s}) in ${where}`);
  });
}

/** A national id, random per run, sent with separators and lower case, as a bank's systems might. */
function plantedRawId(): string {
  const digits = String(randomInt(1e9)).padStart(9, '0');
  return ` zq ${digits.slice(0, 3)}.${digits.slice(3, 6)}-${digits.slice(6)} `;
}

function creditUpdate(value: string, overrides: { sequence?: number; credit?: object } = {}) {
  return creditUpdateEvent(
    { country: 'SE', idType: 'national-id' as const, value },
    { sequence: overrides.sequence ?? 1, credit: { ...TEST_CREDIT, ...overrides.credit } }
  );
}

/** The lastError of every Batches row that has one. */
async function batchLastErrors(connectionString: string): Promise<string[]> {
  const table = await new TableStore({ connectionString }).table(TABLES.batches);
  const errors: string[] = [];
  for await (const row of table.listEntities<{ lastError?: string }>()) if (row.lastError) errors.push(row.lastError);
  return errors;
}

/** Every entity of every table in the storage account, as JSON text. */
async function everyTableEntity(connectionString: string): Promise<string> {
  const options = { allowInsecureConnection: true };
  const service = TableServiceClient.fromConnectionString(connectionString, options);
  const entities: unknown[] = [];
  for await (const table of service.listTables()) {
    const client = TableClient.fromConnectionString(connectionString, table.name!, options);
    for await (const entity of client.listEntities()) entities.push({ table: table.name, ...entity });
  }
  return JSON.stringify(entities);
}

/** Every transaction's input and every log's topics and data, from block 0 to the head. */
async function chainData(rpcUrl: string): Promise<string> {
  const provider = new JsonRpcProvider(rpcUrl, undefined, { staticNetwork: true });
  try {
    const head = await provider.getBlockNumber();
    const parts: string[] = [];
    for (let n = 0; n <= head; n++) {
      const block = await provider.getBlock(n, true);
      for (const tx of block?.prefetchedTransactions ?? []) parts.push(tx.data);
    }
    for (const log of await provider.getLogs({ fromBlock: 0, toBlock: head })) parts.push(...log.topics, log.data);
    return parts.join('\n');
  } finally {
    provider.destroy();
  }
}
