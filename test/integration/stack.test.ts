import { createServer, type Server } from 'node:net';
import { TableClient } from '@azure/data-tables';
import { KeyClient } from '@azure/keyvault-keys';
import { JsonRpcProvider } from 'ethers';
import { connectRegistry, readMembers } from '../../shared/chain/registry';
import { localStackCredential } from '../../shared/identity';
import { ethereumAddressFromJwk } from '../../shared/keyvault/address';
import { startAnvil } from '../../local/stack/anvil';
import { startAzurite } from '../../local/stack/azurite';
import { startKeyVaultStandIn } from '../../local/stack/keyvault';
import { bankSettings, startStack, type Stack } from '../../local/stack/stack';
import { generateLocalTls } from '../../local/stack/tls';
import { loadConfig } from '../../shared/config';

describe('embedded local stack', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ banks: 2, blockTimeSeconds: 1 });
  });
  afterAll(async () => stack?.stop());

  it('registers every bank signer, derived from its Key Vault key, as a consortium member', async () => {
    const provider = new JsonRpcProvider(stack.info.chain.rpcUrl, undefined, { staticNetwork: true });
    try {
      const members = await readMembers(connectRegistry(stack.info.chain.registryAddress, provider));
      expect(members).toEqual(stack.info.banks.map((b) => ({ address: b.signerAddress, bankId: b.bankId })));
      const keys = new KeyClient(stack.info.keyVaultUrl, localStackCredential, {
        disableChallengeResourceVerification: true,
      });
      const key = await keys.getKey(stack.info.banks[1]!.signerKeyName);
      expect(key.keyType).toBe('EC-HSM');
      expect(ethereumAddressFromJwk(key.key!)).toBe(stack.info.banks[1]!.signerAddress);
    } finally {
      provider.destroy();
    }
  });

  it('round-trips entities through Azurite with @azure/data-tables, each bank in its own storage account', async () => {
    const [a, b] = stack.info.banks;
    const tableA = TableClient.fromConnectionString(a!.storageConnectionString, 'RoundTrip', {
      allowInsecureConnection: true,
    });
    const tableB = TableClient.fromConnectionString(b!.storageConnectionString, 'RoundTrip', {
      allowInsecureConnection: true,
    });
    await tableA.createTable();
    await tableB.createTable();
    await tableA.upsertEntity({
      partitionKey: 'subject-1',
      rowKey: 'BANK-A',
      score: 712,
      asOf: new Date('2026-01-02T03:04:05Z'),
      defaulted: false,
    });
    const read = await tableA.getEntity<{ score: number; asOf: Date; defaulted: boolean }>('subject-1', 'BANK-A');
    expect(read).toMatchObject({ score: 712, defaulted: false });
    expect(new Date(read.asOf).toISOString()).toBe('2026-01-02T03:04:05.000Z');
    await expect(tableB.getEntity('subject-1', 'BANK-A')).rejects.toMatchObject({ statusCode: 404 });
  });

  it('gives each bank app settings that the config module accepts', () => {
    const config = loadConfig(bankSettings(stack.info, 'BANK-B'));
    expect(config).toMatchObject({
      environment: 'local',
      bankId: 'BANK-B',
      chain: { registryAddress: stack.info.chain.registryAddress },
    });
    expect(() => bankSettings(stack.info, 'BANK-Z')).toThrow('unknown bank BANK-Z; the stack has BANK-A, BANK-B');
  });
});

describe('a component whose port is taken fails with an error naming it', () => {
  let blocker: Server;
  let port: number;

  beforeAll(async () => {
    blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    port = (blocker.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((resolve) => blocker.close(() => resolve())));

  it('anvil', async () => {
    await expect(startAnvil({ port })).rejects.toThrow(`anvil: port ${port} on 127.0.0.1 is already in use`);
  });
  it('Azurite', async () => {
    await expect(startAzurite({ ports: { table: port } })).rejects.toThrow(
      `Azurite table service: port ${port} on 127.0.0.1 is already in use`
    );
  });
  it('the Key Vault stand-in', async () => {
    await expect(startKeyVaultStandIn({ tls: await generateLocalTls(), port })).rejects.toThrow(
      `Key Vault stand-in: port ${port}`
    );
  });
});
