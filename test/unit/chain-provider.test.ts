import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isError } from 'ethers';
import { Chain } from '../../shared/chain/provider';

/** The provider's own answer decoding, against a JSON-RPC endpoint on loopback that answers what each test sets. */
describe('chain provider: decoding answers', () => {
  let server: Server;
  let answer: Buffer;
  let chain: Chain;

  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(answer));
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

  it('decodes UTF-8 answers, multi-byte characters included', async () => {
    answer = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, result: 'Zürich · 東京 · 🏦' }), 'utf8');
    await expect(call()).resolves.toBe('Zürich · 東京 · 🏦');
  });

  it("turns an answer that is not JSON, or not UTF-8, into ethers' own error", async () => {
    answer = Buffer.from('<html>bad gateway</html>');
    const notJson = await call().catch((err: unknown) => err);
    expect(isError(notJson, 'UNSUPPORTED_OPERATION')).toBe(true);
    expect((notJson as Error).message).toMatch(/response body is not valid JSON/);

    answer = Buffer.concat([
      Buffer.from('{"jsonrpc":"2.0","id":1,"result":"'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('"}'),
    ]);
    const notUtf8 = await call().catch((err: unknown) => err);
    expect(isError(notUtf8, 'UNSUPPORTED_OPERATION')).toBe(true);
  });
});
