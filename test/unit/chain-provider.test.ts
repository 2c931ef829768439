import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { isError } from 'ethers';
import { Chain, isTransient } from '../../shared/chain/provider';

/** The provider's own answer decoding, against a JSON-RPC endpoint on loopback that answers what each test sets. */
describe('chain provider: decoding answers', () => {
  let server: Server;
  /** The answer to a request with this JSON-RPC id. */
  let answer: (id: number) => Buffer;
  const resultOf = (result: unknown) => (id: number) => Buffer.from(JSON.stringify({ jsonrpc: '2.0', id, result }));
  /** How the endpoint answers: whole, in small chunks, gzipped, or not at all. */
  let mode: 'whole' | 'chunks' | 'gzip' | 'silent' = 'whole';
  let received: { headers: IncomingHttpHeaders; body: string } | undefined;
  let chain: Chain;

  beforeAll(async () => {
    server = createServer((req, res) => {
      const body: Buffer[] = [];
      req.on('data', (chunk: Buffer) => body.push(chunk));
      req.on('end', () => {
        received = { headers: req.headers, body: Buffer.concat(body).toString('utf8') };
        if (mode === 'silent') return;
        const bytes = answer((JSON.parse(received.body) as { id: number }).id);
        const headers = {
          'content-type': 'application/json',
          ...(mode === 'gzip' ? { 'content-encoding': 'gzip' } : {}),
        };
        res.writeHead(200, headers);
        if (mode === 'gzip') return res.end(gzipSync(bytes));
        if (mode === 'whole') return res.end(bytes);
        for (let i = 0; i < bytes.length; i += 4096) res.write(bytes.subarray(i, i + 4096));
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    chain = new Chain({ rpcUrls: [`http://127.0.0.1:${port}`], chainId: 31337, timeoutMs: 5_000 });
  });
  afterAll(async () => {
    chain?.destroy();
    await new Promise((resolve) => server?.close(resolve));
  });

  const call = (): Promise<unknown> => chain.read((p) => p.send('test_echo', []));

  afterEach(() => {
    mode = 'whole';
  });

  it('sends the call as JSON and joins an answer of megabytes received in small chunks, or gzipped', async () => {
    const logs = Array.from({ length: 5000 }, (_, i) => ({ logIndex: i, data: '0x' + 'ab'.repeat(300) }));
    answer = resultOf(logs);
    expect(answer(1).length).toBeGreaterThan(3_000_000);
    for (const m of ['chunks', 'gzip'] as const) {
      mode = m;
      await expect(call()).resolves.toEqual(logs);
    }
    expect(received!.headers['content-type']).toBe('application/json');
    expect(JSON.parse(received!.body) as unknown).toMatchObject({ jsonrpc: '2.0', method: 'test_echo', params: [] });
  });

  it('gives up on an endpoint that does not answer within the timeout, with an error worth retrying', async () => {
    mode = 'silent';
    const { port } = server.address() as AddressInfo;
    const impatient = new Chain({ rpcUrls: [`http://127.0.0.1:${port}`], chainId: 31337, timeoutMs: 300 });
    try {
      const started = Date.now();
      const err: unknown = await impatient
        .read((p) => p.send('test_echo', []) as Promise<unknown>)
        .catch((e: unknown) => e);
      expect(isError(err, 'TIMEOUT')).toBe(true);
      expect(isTransient(err)).toBe(true);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      impatient.destroy();
    }
  });

  it('decodes UTF-8 answers, multi-byte characters included', async () => {
    answer = resultOf('Zürich · 東京 · 🏦');
    await expect(call()).resolves.toBe('Zürich · 東京 · 🏦');
  });

  it("turns an answer that is not JSON, or not UTF-8, into ethers' own error", async () => {
    answer = () => Buffer.from('<html>bad gateway</html>');
    const notJson = await call().catch((err: unknown) => err);
    expect(isError(notJson, 'UNSUPPORTED_OPERATION')).toBe(true);
    expect((notJson as Error).message).toMatch(/response body is not valid JSON/);

    answer = (id) =>
      Buffer.concat([
        Buffer.from(`{"jsonrpc":"2.0","id":${id},"result":"`),
        Buffer.from([0xc3, 0x28]),
        Buffer.from('"}'),
      ]);
    const notUtf8 = await call().catch((err: unknown) => err);
    expect(isError(notUtf8, 'UNSUPPORTED_OPERATION')).toBe(true);
  });
});
