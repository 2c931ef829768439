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

  describe('never echoes a secret', () => {
    const everyProblem = (env: Record<string, string | undefined>): string => new ConfigError(problemsOf(env)).message;

    it.each([
      ['azure', { ...azure, PSEUDONYMIZATION_SECRET: 'not-hex-but-SECRET-value-0123456789' }],
      [
        'local',
        { ...azure, LEDGER_ENVIRONMENT: 'local', PSEUDONYMIZATION_SECRET: 'not-hex-but-SECRET-value-0123456789' },
      ],
    ])('an invalid PSEUDONYMIZATION_SECRET (%s): named, the value never shown', (_, env) => {
      const message = everyProblem(env);
      expect(message).toContain('PSEUDONYMIZATION_SECRET is invalid: expected at least 32 bytes as hex');
      expect(message).not.toContain('SECRET-value');
    });

    it('an invalid Application Insights connection string or a refused storage connection string', () => {
      const message = everyProblem({
        ...azure,
        APPLICATIONINSIGHTS_CONNECTION_STRING: 'IngestionEndpoint=https://ai.example/;AuthKey=AI-SECRET-1',
        AzureWebJobsStorage__accountName: undefined,
        AzureWebJobsStorage: 'DefaultEndpointsProtocol=https;AccountName=a;AccountKey=STORAGE-SECRET-1;',
      });
      expect(message).toContain('APPLICATIONINSIGHTS_CONNECTION_STRING is invalid: expected');
      expect(message).toContain('AzureWebJobsStorage is a connection string, which is refused in Azure');
      for (const secret of ['AI-SECRET-1', 'STORAGE-SECRET-1']) expect(message).not.toContain(secret);
    });

    it.each(['CHAIN_RPC_URLS', 'VALIDATOR_RPC_URLS', 'KEY_VAULT_URL', 'AzureWebJobsStorage__tableServiceUri'])(
      'an invalid %s is shown with its credentials, keys and query values redacted',
      (name) => {
        const url = 'http://alice:PASSWORD1@rpc.example/v3/0123456789abcdef0123456789abcdef?apikey=QUERYKEY1';
        const message = everyProblem({ ...azure, [name]: url });
        expect(message).toContain(`${name} is invalid ("http://***@rpc.example/v3/***?apikey=***")`);
        for (const secret of ['alice', 'PASSWORD1', '0123456789abcdef', 'QUERYKEY1'])
          expect(message).not.toContain(secret);
      }
    );

    it('a connection string pasted as the Service Bus namespace: refused, its key masked', () => {
      const message = everyProblem({
        ...azure,
        ServiceBusConnection__fullyQualifiedNamespace:
          'Endpoint=sb://sb-bank-a.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=SB-SECRET-1',
      });
      expect(message).toContain('ServiceBusConnection__fullyQualifiedNamespace is invalid');
      expect(message).not.toContain('SB-SECRET-1');
    });

    it('a Service Bus connection string: refused in Azure, checked locally, its key never shown', () => {
      const connection = 'Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=Root;SharedAccessKey=SB-SECRET-2';
      const refused = everyProblem({ ...azure, ServiceBusConnection: connection });
      expect(refused).toContain('ServiceBusConnection (a connection string) is refused in Azure');
      const local = { ...azure, LEDGER_ENVIRONMENT: 'local', ServiceBusConnection__fullyQualifiedNamespace: undefined };
      expect(loadConfig({ ...local, ServiceBusConnection: connection }).serviceBusConnectionString).toBe(connection);
      const broken = everyProblem({ ...local, ServiceBusConnection: 'sb://127.0.0.1;SharedAccessKey=SB-SECRET-3' });
      expect(broken).toContain('ServiceBusConnection is invalid');
      for (const message of [refused, broken]) expect(message).not.toMatch(/SB-SECRET/);
    });
  });

  it('reads the Key Vault attempt timeout, 5 s by default', () => {
    expect(loadConfig(azure).keyVault.attemptTimeoutMs).toBe(5000);
    expect(loadConfig({ ...azure, KEY_VAULT_ATTEMPT_TIMEOUT_MS: '2000' }).keyVault.attemptTimeoutMs).toBe(2000);
    expect(problemsOf({ ...azure, KEY_VAULT_ATTEMPT_TIMEOUT_MS: '60000' })).toEqual([
      'KEY_VAULT_ATTEMPT_TIMEOUT_MS is invalid ("60000"): expected a whole number from 100 to 30000',
    ]);
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
