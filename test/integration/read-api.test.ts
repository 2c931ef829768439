import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { spawnFunctionHost, type RunningHost } from '../../local/host/spawn';
import { bankSettings, startStack, type Stack } from '../../local/stack/stack';
import { subjectRef } from '../../shared/domain/pseudonymize';
import { TABLES, TableStore } from '../../shared/storage/tables';
import { bucketOf, recordKey } from '../../shared/storage/credit-ledger';
import {
  creditRecord,
  deployTestConsortium,
  mine,
  submit,
  subject,
  type ReadPathChain,
} from './support/read-path-fixtures';

/** The read API of the real Function App (dist/) in the local host, over what its own watch function projected. */
describe('read API', () => {
  const appDir = join(__dirname, '../..');
  const key = randomBytes(32);
  const raw = { country: 'SE', idType: 'national-id' as const, value: '19121212-1212' };
  const looked = subjectRef(key, raw);
  let stack: Stack;
  let chain: ReadPathChain;
  let host: RunningHost;
  let tables: TableStore;
  const hostLog: string[] = [];
  const shared = subject();
  let receipts: { a: string; b: string };

  const get = (path: string, withKey = true): Promise<Response> =>
    fetch(`${host.url}/api/${path}`, { headers: withKey ? { 'x-functions-key': host.functionKey } : {} });
  const lookup = (body: string, query = ''): Promise<Response> =>
    fetch(`${host.url}/api/credit-records/lookup${query}`, {
      method: 'POST',
      headers: { 'x-functions-key': host.functionKey, 'content-type': 'application/json' },
      body,
    });

  beforeAll(async () => {
    stack = await startStack({ banks: 2, blockTimeSeconds: 0 });
    // The stack's bank keys live in its Key Vault; records are written here with test wallets of our own registry.
    chain = await deployTestConsortium(stack.anvil, stack.azurite);
    const a = await submit(chain, 'BANK-A', [creditRecord(shared, 4n, 690), creditRecord(looked, 1n, 580)]);
    const b = await submit(chain, 'BANK-B', [creditRecord(shared, 2n, 710)]);
    await submit(chain, 'BANK-B', [creditRecord(shared, 3n, 715)]);
    receipts = { a: a.hash, b: b.hash };
    await mine(chain.provider, 2);
    const settings = {
      ...bankSettings(stack.info, 'BANK-B'),
      REGISTRY_ADDRESS: chain.registryAddress,
      WATCH_FROM_BLOCK: String(chain.deployBlock),
      WATCH_SCHEDULE: '0 0 0 1 1 *', // run on demand below
      PSEUDONYMIZATION_SECRET: key.toString('hex'),
    };
    tables = new TableStore({ connectionString: stack.info.banks[1]!.storageConnectionString });
    host = await spawnFunctionHost({ name: 'BANK-B app', appDir, settings, onLine: (line) => hostLog.push(line) });
    const run = await fetch(`${host.url}/admin/functions/watch?wait=true`, {
      method: 'POST',
      headers: { 'x-functions-key': host.masterKey },
    });
    expect(await run.json()).toEqual({ status: 'Succeeded' });
  });
  afterAll(async () => {
    await host?.stop();
    await chain?.stop();
    await stack?.stop();
  });

  it("returns a subject's records from every bank with provenance, never cached", async () => {
    const res = await get(`credit-records/${shared.toUpperCase().replace('0X', '0x')}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as { subjectRef: string; records: Record<string, unknown>[] };
    expect(body.subjectRef).toBe(shared);
    expect(body.records).toEqual([
      expect.objectContaining({
        bankId: 'BANK-A',
        sequence: '4',
        score: 690,
        delinquencies: { days30: 1, days60: 0, days90: 0 },
        provenance: expect.objectContaining({ txHash: receipts.a, logIndex: 0 }) as unknown,
      }),
      expect.objectContaining({ bankId: 'BANK-B', sequence: '3', score: 715 }),
    ]);
  });

  it('adds the history on request, newest first', async () => {
    const body = (await (await get(`credit-records/${shared}?history=true`)).json()) as {
      history: { bankId: string; sequence: string; provenance: { txHash: string } }[];
    };
    expect(body.history.map((h) => [h.bankId, h.sequence])).toEqual([
      ['BANK-B', '3'],
      ['BANK-B', '2'],
      ['BANK-A', '4'],
    ]);
    expect(body.history[1]!.provenance.txHash).toBe(receipts.b);
  });

  it('answers 400 for a malformed ref, 404 for an unknown one, 401 without a key', async () => {
    const bad = await get('credit-records/0x1234');
    expect(bad.status).toBe(400);
    expect(bad.headers.get('cache-control')).toBe('no-store');
    expect(((await bad.json()) as { error: string }).error).toMatch(/subjectRef must be 0x followed by 64 hex digits/);
    expect((await get(`credit-records/${subject()}`)).status).toBe(404);
    expect((await get(`credit-records/${shared}?verify=maybe`)).status).toBe(400);
    expect((await get(`credit-records/${shared}`, false)).status).toBe(401);
  });

  it('verifies rows against the contract and detects a tampered projection row', async () => {
    const ok = (await (await get(`credit-records/${shared}?verify=true`)).json()) as {
      verified: boolean;
      records: { verification: { matches: boolean } }[];
    };
    expect(ok.verified).toBe(true);
    expect(ok.records.every((r) => r.verification.matches)).toBe(true);

    const records = await tables.table(TABLES.creditLedger);
    const key = { partitionKey: bucketOf(shared), rowKey: recordKey(shared, 'BANK-B') };
    const row = await records.getEntity<{ data: string }>(key.partitionKey, key.rowKey);
    const forged = `${row.data.slice(0, -8)}deadbeef`;
    await records.updateEntity({ ...key, data: forged }, 'Merge');
    const tampered = (await (await get(`credit-records/${shared}?verify=true`)).json()) as {
      verified: boolean;
      records: { bankId: string; verification: { matches: boolean; chainData: string } }[];
    };
    expect(tampered.verified).toBe(false);
    expect(tampered.records.map((r) => [r.bankId, r.verification.matches])).toEqual([
      ['BANK-A', true],
      ['BANK-B', false],
    ]);
    expect(tampered.records[1]!.verification.chainData).toBe(row.data);
  });

  it('looks a raw identifier up by its pseudonym and never logs the raw value', async () => {
    const res = await lookup(JSON.stringify({ ...raw, value: ' 19121212 1212 ' }));
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as { subjectRef: string; records: { bankId: string; score: number }[] };
    expect(body.subjectRef).toBe(looked);
    expect(body.records).toEqual([expect.objectContaining({ bankId: 'BANK-A', score: 580 })]);

    const problems: [string, RegExp][] = [
      ['not json', /the body must be JSON/],
      [JSON.stringify({ ...raw, country: 'se' }), /\/country must match .*ISO 3166-1 alpha-2 code/],
      [JSON.stringify({ ...raw, idType: 'ssn' }), /\/idType must be one of national-id, tax-id/],
      [JSON.stringify({ ...raw, value: '   ' }), /\/value must match .*not blank/],
      [
        JSON.stringify({ ...raw, value: '19121212\u200D1212' }),
        /\/value has an invisible .* \(U\+200D\) at position 9/,
      ],
      [
        JSON.stringify({ ...raw, value: '\u{1F600}'.repeat(40) }),
        /\/value has a character that a national-id may not hold/,
      ],
      [JSON.stringify({ ...raw, AnnaSvensson: 'x' }), /^\{"error":"the body has an unknown field \(field 4\)/],
      [`{"country":"SE","idType":"national-id","value":"1","value":"19121212 1212"}`, /the body has a field twice/],
    ];
    for (const [payload, message] of problems) {
      const bad = await lookup(payload);
      expect(bad.status).toBe(400);
      const text = await bad.text();
      expect(text).toMatch(message);
      expect(text).not.toContain('19121212');
      expect(text).not.toContain('AnnaSvensson');
    }
    expect((await lookup(JSON.stringify({ ...raw, value: '000000-0000' }))).status).toBe(404);
    expect(hostLog.join('\n')).not.toMatch(/19121212|000000-0000/);
  });
});
