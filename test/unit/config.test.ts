import { ConfigError, loadConfig } from '../../shared/config';

const azure = {
  BANK_ID: 'BANK-A',
  AzureWebJobsStorage__accountName: 'stbanka',
  ServiceBusConnection__fullyQualifiedNamespace: 'sb-bank-a.servicebus.windows.net',
  KEY_VAULT_URL: 'https://kv-bank-a.vault.azure.net/',
  SIGNER_KEY_NAME: 'signer-bank-a',
  CHAIN_RPC_URLS: 'https://rpc.consortium.example, https://rpc2.consortium.example',
  CHAIN_ID: '1337',
  REGISTRY_ADDRESS: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
  APPLICATIONINSIGHTS_CONNECTION_STRING:
    'InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://x/',
};

function problemsOf(env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('config', () => {
  it('reads a complete identity-based Azure configuration with defaults', () => {
    const config = loadConfig(azure);
    expect(config).toMatchObject({
      environment: 'azure',
      bankId: 'BANK-A',
      storage: { tableUrl: 'https://stbanka.table.core.windows.net' },
      keyVault: { url: 'https://kv-bank-a.vault.azure.net', signerKeyName: 'signer-bank-a' },
      chain: {
        rpcUrls: ['https://rpc.consortium.example', 'https://rpc2.consortium.example'],
        chainId: 1337,
        confirmations: 2,
        blockTimeSeconds: 2,
      },
    });
  });

  it('names every missing setting and says what is expected, all at once', () => {
    const problems = problemsOf({});
    for (const name of [
      'BANK_ID',
      'KEY_VAULT_URL',
      'SIGNER_KEY_NAME',
      'CHAIN_RPC_URLS',
      'CHAIN_ID',
      'REGISTRY_ADDRESS',
      'APPLICATIONINSIGHTS_CONNECTION_STRING',
      'AzureWebJobsStorage__accountName',
    ]) {
      expect(problems.some((p) => p.startsWith(`${name} is missing: expected`))).toBe(true);
    }
  });

  it.each([
    ['BANK_ID', 'bank a', 'BANK_ID is invalid'],
    ['CHAIN_ID', '-1', 'CHAIN_ID is invalid'],
    ['REGISTRY_ADDRESS', '0x1234', 'REGISTRY_ADDRESS is invalid'],
    ['KEY_VAULT_URL', 'http://kv.example', 'KEY_VAULT_URL is invalid ("http://kv.example"): expected an https URL'],
    ['CHAIN_RPC_URLS', 'http://rpc.consortium.example', 'CHAIN_RPC_URLS is invalid'],
    ['CONFIRMATIONS', 'two', 'CONFIRMATIONS is invalid ("two"): expected a whole number from 0 to 128'],
    ['BLOCK_TIME_SECONDS', '0', 'BLOCK_TIME_SECONDS is invalid'],
    ['LEDGER_ENVIRONMENT', 'prod', 'LEDGER_ENVIRONMENT is invalid'],
    ['AZURE_CLIENT_ID', 'not-a-guid', 'AZURE_CLIENT_ID is invalid'],
    ['AzureWebJobsStorage__accountName', 'Bad_Name', 'AzureWebJobsStorage__accountName is invalid'],
    [
      'SUBMIT_SCHEDULE',
      '*/2 * * * *',
      'SUBMIT_SCHEDULE is invalid ("*/2 * * * *"): expected a six-field NCRONTAB schedule',
    ],
    ['SUBMIT_MODE', 'fast', 'SUBMIT_MODE is invalid'],
    ['PSEUDONYMIZATION_SECRET_NAME', 'bad name!', 'PSEUDONYMIZATION_SECRET_NAME is invalid'],
    [
      'VALIDATOR_RPC_URLS',
      'https://ok.example, ftp://bad.example',
      'VALIDATOR_RPC_URLS is invalid ("ftp://bad.example")',
    ],
    ['WATCH_REORG_WINDOW_BLOCKS', '2', 'WATCH_REORG_WINDOW_BLOCKS is invalid'],
  ])('rejects an invalid %s with a message naming it', (name, value, message) => {
    const problems = problemsOf({ ...azure, [name]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(message);
  });

  it('refuses connection strings in Azure and accepts them for the local stack', () => {
    const withConnectionString = {
      ...azure,
      AzureWebJobsStorage__accountName: undefined,
      AzureWebJobsStorage: 'DefaultEndpointsProtocol=http;AccountName=a;AccountKey=k;',
    };
    expect(problemsOf(withConnectionString)[0]).toContain('refused in Azure');
    const local = loadConfig({
      ...withConnectionString,
      LEDGER_ENVIRONMENT: 'local',
      APPLICATIONINSIGHTS_CONNECTION_STRING: undefined,
      CHAIN_RPC_URLS: 'http://127.0.0.1:8545',
    });
    expect(local.storage.connectionString).toContain('AccountName=a');
    expect(local.chain.rpcUrls).toEqual(['http://127.0.0.1:8545']);
  });

  it('refuses a pseudonymization key in settings in Azure', () => {
    expect(problemsOf({ ...azure, PSEUDONYMIZATION_SECRET: 'ab'.repeat(32) })[0]).toContain(
      'PSEUDONYMIZATION_SECRET is refused in Azure'
    );
  });

  it('defaults the validators to the RPC endpoints and reads pipeline defaults', () => {
    const config = loadConfig(azure);
    expect(config.heartbeat.validatorRpcUrls).toEqual(config.chain.rpcUrls);
    expect(config.submit).toMatchObject({ mode: 'batched', schedule: '* * * * * *', maxInFlight: 4 });
    expect(config.pseudonymization).toEqual({ secretName: 'pseudonymization-key', localSecret: undefined });
  });

  it('accepts 0 confirmations for immediate-finality chains', () => {
    expect(loadConfig({ ...azure, CONFIRMATIONS: '0' }).chain.confirmations).toBe(0);
  });
});
