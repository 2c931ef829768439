import { join } from 'node:path';
import { spawnFunctionHost } from '../../local/host/spawn';
import { bankSettings, startStack, type Stack } from '../../local/stack/stack';

/** The real Function App (dist/functions) in the local host, against the embedded stack. */
describe('the Function App', () => {
  const appDir = join(__dirname, '../..');
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ banks: 1, blockTimeSeconds: 0 });
  });
  afterAll(async () => stack?.stop());

  it('starts with the stack settings and answers its health endpoint', async () => {
    const host = await spawnFunctionHost({ name: 'BANK-A app', appDir, settings: bankSettings(stack.info, 'BANK-A') });
    try {
      const res = await fetch(`${host.url}/api/health`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: 'ok', bankId: 'BANK-A', environment: 'local' });
    } finally {
      await host.stop();
    }
  });

  it('refuses to start with missing or invalid settings, naming each one', async () => {
    const { BANK_ID: _omitted, ...settings } = bankSettings(stack.info, 'BANK-A');
    const start = spawnFunctionHost({ name: 'misconfigured app', appDir, settings: { ...settings, CHAIN_ID: 'x' } });
    await expect(start).rejects.toThrow(/BANK_ID is missing: expected[\s\S]*CHAIN_ID is invalid \("x"\)/);
  });
});
