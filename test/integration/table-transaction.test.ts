import { RestError } from '@azure/core-rest-pipeline';
import { TableClient, type TransactionAction } from '@azure/data-tables';
import { startAzurite, type Azurite } from '../../local/stack/azurite';
import { submitTransaction } from '../../shared/storage/table-transaction';
import { listRows } from '../../shared/storage/tables';

/**
 * The app's own $batch encoding against the SDK's, side by side on Azurite: the same actions on two tables must
 * leave the same rows and fail the same way, and the ETags ours returns must be usable as the SDK's are.
 */
describe('table transactions (Azurite, against the SDK)', () => {
  let azurite: Azurite;
  let sdk: TableClient;
  let ours: TableClient;
  let n = 0;
  /** The request line of every part of every $batch each client sent (method and entity URL). */
  const sent = new Map<TableClient, string[]>();

  beforeAll(async () => {
    azurite = await startAzurite();
  });
  afterAll(() => azurite?.stop());
  beforeEach(async () => {
    n++;
    const open = async (name: string) => {
      const client = TableClient.fromConnectionString(azurite.accounts[0]!.connectionString, name, {
        allowInsecureConnection: true,
      });
      await client.createTable();
      const lines: string[] = [];
      sent.set(client, lines);
      client.pipeline.addPolicy({
        name: 'capture-batch',
        sendRequest: (request, next) => {
          if (request.url.endsWith('$batch') && typeof request.body === 'string') {
            lines.push(...(request.body.match(/^[A-Z]+ \S+ HTTP\/1\.1(?=\r$)/gm) ?? []));
          }
          return next(request);
        },
      });
      return client;
    };
    sdk = await open(`Sdk${n}`);
    ours = await open(`Ours${n}`);
  });

  // Keys the URL must quote and escape: a quote, a space, a percent sign, a plus, non-ASCII.
  const pk = "bank 'A' 100%+é";
  const row = (rowKey: string, extra: Record<string, unknown> = {}) => ({ partitionKey: pk, rowKey, ...extra });

  /** Runs `actions` both ways: the outcome (statuses, ETag presence, or the error's status and code) of each. */
  async function both(actions: TransactionAction[]): Promise<[unknown, unknown]> {
    const outcome = async (run: () => Promise<{ subResponses: { status: number; etag?: string }[] }>) => {
      try {
        const result = await run();
        return result.subResponses.map((r) => ({ status: r.status, etag: r.etag !== undefined }));
      } catch (err) {
        if (!(err instanceof RestError)) throw err;
        return { statusCode: err.statusCode, code: err.code };
      }
    };
    // eslint-disable-next-line no-restricted-syntax -- the SDK's own path, as the reference
    const fromSdk = await outcome(() => sdk.submitTransaction(actions));
    const fromOurs = await outcome(() => submitTransaction(ours, actions));
    return [fromOurs, fromSdk];
  }
  const contents = async (table: TableClient) =>
    (await listRows(table)).map(({ etag: _etag, timestamp: _timestamp, ...rest }) => rest);

  it('writes every kind of action as the SDK does: same rows, a status and an ETag per action', async () => {
    const seed: TransactionAction[] = [
      ['create', row("r'1", { kept: 'yes', count: 1 })],
      ['create', row('r 2', { count: 2 })],
      ['create', row('r%3', { count: 3 })],
    ];
    const [seeded, seededSdk] = await both(seed);
    expect(seeded).toEqual(seededSdk);
    expect(seeded).toEqual(seed.map(() => ({ status: 204, etag: true })));

    const mixed: TransactionAction[] = [
      ['create', row('new', { text: 'ü "quoted" \\ line\nbreak', int: 42, float: 1.5, flag: true, nothing: null })],
      ['upsert', row("r'1", { count: 10 })], // Merge (the default): `kept` stays
      ['upsert', row('r 2', { count: 20 }), 'Replace'],
      ['update', row('r%3', { count: 30 }), 'Merge', { etag: '*' }],
      ['upsert', row('fresh', { count: 5 }), 'Replace'],
    ];
    const [result, resultSdk] = await both(mixed);
    expect(result).toEqual(resultSdk);
    expect(await contents(ours)).toEqual(await contents(sdk));
    expect((await ours.getEntity(pk, "r'1")).kept).toBe('yes');
    expect((await ours.getEntity(pk, 'new')).text).toBe('ü "quoted" \\ line\nbreak');

    const [deleted, deletedSdk] = await both([
      ['delete', row('fresh')],
      ['delete', row('r 2')],
    ]);
    expect(deleted).toEqual(deletedSdk);
    expect((await contents(ours)).map((r) => r.rowKey).sort()).toEqual(['new', 'r%3', "r'1"].sort());

    // Azurite reads keys more leniently than the service: the entity URLs themselves must be the SDK's.
    const urls = (client: TableClient) => sent.get(client)!.map((line) => line.replace(client.tableName, 'T'));
    expect(urls(ours)).toHaveLength(10);
    expect(urls(ours)).toEqual(urls(sdk));
    expect(urls(ours)).toContain(
      `PATCH ${ours.url}/T(PartitionKey='bank%20''A''%20100%25%2B%C3%A9',RowKey='r''1') HTTP/1.1`
    );
  });

  it('returns ETags that guard the next update, and fails a stale one with 412 as the SDK does', async () => {
    const [first] = await Promise.all([
      submitTransaction(ours, [['create', row('w', { at: 1 })]]),
      // eslint-disable-next-line no-restricted-syntax -- the SDK's own path, as the reference
      sdk.submitTransaction([['create', row('w', { at: 1 })]]),
    ]);
    const etag = first.subResponses[0]!.etag!;
    expect(etag).toBe((await ours.getEntity(pk, 'w')).etag);
    const moved = await submitTransaction(ours, [['update', row('w', { at: 2 }), 'Replace', { etag }]]);
    expect(moved.subResponses[0]!.etag).toBe((await ours.getEntity(pk, 'w')).etag);

    const stale: TransactionAction[] = [['update', row('w', { at: 3 }), 'Replace', { etag }]];
    const [ours412] = await both(stale);
    expect(ours412).toEqual({ statusCode: 412, code: 'UpdateConditionNotSatisfied' });
    expect((await ours.getEntity(pk, 'w')).at).toBe(2);
  });

  it('fails the whole transaction on one refused action, with its status and code, and changes nothing', async () => {
    await both([['create', row('taken', { v: 1 })]]);
    const cases: [TransactionAction[], number, string][] = [
      [
        [
          ['create', row('a')],
          ['create', row('taken', { v: 2 })],
        ],
        409,
        'EntityAlreadyExists',
      ],
      [
        [
          ['upsert', row('b')],
          ['update', row('missing', { v: 1 }), 'Merge', { etag: '*' }],
        ],
        404,
        'ResourceNotFound',
      ],
      [
        [
          ['upsert', row('c')],
          ['delete', row('missing')],
        ],
        404,
        'ResourceNotFound',
      ],
    ];
    for (const [actions, statusCode, code] of cases) {
      const [result, resultSdk] = await both(actions);
      expect(result).toEqual(resultSdk);
      expect(result).toEqual({ statusCode, code });
    }
    expect(await contents(ours)).toEqual([{ partitionKey: pk, rowKey: 'taken', v: 1 }]);
    await expect(submitTransaction(ours, [['create', row('taken')]])).rejects.toThrow(/already exists/i);
  });

  it('refuses what the service would, naming the problem, before sending anything', async () => {
    const many = Array.from({ length: 101 }, (_, i): TransactionAction => ['create', row(`k${i}`)]);
    await expect(submitTransaction(ours, many)).rejects.toThrow(`takes 1 to 100 actions, not 101`);
    await expect(submitTransaction(ours, [])).rejects.toThrow('not 0');
    await expect(
      submitTransaction(ours, [
        ['create', row('x')],
        ['create', { partitionKey: 'other', rowKey: 'y' }],
      ])
    ).rejects.toThrow('must stay in one partition');
    await expect(submitTransaction(ours, [['create', row('d', { when: new Date() })]])).rejects.toThrow(
      'property "when" is of type object'
    );
    expect(await contents(ours)).toEqual([]);
  });
});
