import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonRpcProvider, Wallet, toQuantity } from 'ethers';
import { freePort } from '../../local/stack/ports';
import { startAnvil, type Anvil } from '../../local/stack/anvil';

const started: Anvil[] = [];
const providers: JsonRpcProvider[] = [];
let stateDir: string;

async function anvil(options: Parameters<typeof startAnvil>[0]): Promise<{ node: Anvil; provider: JsonRpcProvider }> {
  const node = await startAnvil(options);
  started.push(node);
  const provider = new JsonRpcProvider(node.rpcUrl, undefined, { staticNetwork: true, cacheTimeout: -1 });
  providers.push(provider);
  return { node, provider };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

beforeAll(() => {
  stateDir = mkdtempSync(join(tmpdir(), 'anvil-state-'));
});

afterAll(async () => {
  for (const provider of providers) provider.destroy();
  await Promise.all(started.map((node) => node.stop()));
  rmSync(stateDir, { recursive: true, force: true });
});

test('mines on an interval with the configured chain id and gas limit, and stop() ends the real process', async () => {
  const { node, provider } = await anvil({ blockTimeSeconds: 1, chainId: 4242, gasLimit: 12_000_000 });
  expect(node.rpcUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  // The platform binary itself runs (possibly under setpriv, which execs it), not the node wrapper.
  expect(
    node.process.child.spawnargs.some((arg) => /anvil-[a-z0-9]+-[a-z0-9]+[\\/]bin[\\/]anvil(\.exe)?$/.test(arg))
  ).toBe(true);
  expect((await provider.getNetwork()).chainId).toBe(4242n);
  expect((await provider.getBlock('latest'))!.gasLimit).toBe(12_000_000n);

  const before = await provider.getBlockNumber();
  await new Promise((resolve) => setTimeout(resolve, 2_500));
  expect(await provider.getBlockNumber()).toBeGreaterThan(before);

  const pid = node.process.child.pid!;
  await node.stop();
  expect(isAlive(pid)).toBe(false);
});

test('a busy port fails with an error naming anvil and the port', async () => {
  const port = await freePort();
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  try {
    await expect(startAnvil({ port })).rejects.toThrow(new RegExp(`anvil: port ${port} .*already in use`));
  } finally {
    server.close();
  }
});

test('keeps chain state across a restart when a state file is given', async () => {
  const stateFile = join(stateDir, 'chain.json');
  const address = Wallet.createRandom().address;
  const first = await anvil({ blockTimeSeconds: 0, stateFile });
  await first.provider.send('anvil_setBalance', [address, toQuantity(123_456n)]);
  await first.provider.send('evm_mine', []);
  const height = await first.provider.getBlockNumber();
  await first.node.stop();

  const second = await anvil({ blockTimeSeconds: 0, stateFile });
  expect(await second.provider.getBalance(address)).toBe(123_456n);
  expect(await second.provider.getBlockNumber()).toBeGreaterThanOrEqual(height);
});

test.each([
  [undefined, ['later, higher max fee', 'earlier, lower max fee']],
  ['fifo' as const, ['earlier, lower max fee', 'later, higher max fee']],
])('orders its pool (txOrder %s): by max fee per gas by default, by arrival with fifo', async (txOrder, expected) => {
  const { provider } = await anvil({ blockTimeSeconds: 0, txOrder });
  await provider.send('evm_setAutomine', [false]);
  const [first, second] = await Promise.all([provider.getSigner(0), provider.getSigner(1)]);
  const gwei = 1_000_000_000n;
  const names = new Map<string, string>();
  const send = async (signer: typeof first, maxFeePerGas: bigint, name: string): Promise<void> => {
    const tx = await signer.sendTransaction({ to: signer.address, maxFeePerGas, maxPriorityFeePerGas: gwei });
    names.set(tx.hash, name);
  };
  await send(first, 10n * gwei, 'earlier, lower max fee');
  await send(second, 20n * gwei, 'later, higher max fee');
  await provider.send('evm_mine', []);
  const block = await provider.getBlock('latest');
  expect(block!.transactions.map((hash) => names.get(hash))).toEqual(expected);
});
