import { QUEUE_DEFAULTS } from '../../local/servicebus/queue';
import { NODE_MAX_OLD_SPACE_MB } from '../../local/stack/stack';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../shared/config';
import { CREDIT_UPDATES_DUPLICATE_WINDOW_MS, CREDIT_UPDATES_QUEUE } from '../../shared/domain/credit-update';
import { ALERT_RULES } from '../../shared/ops/alerts';
import { ALL_TELEMETRY } from '../../shared/telemetry-catalogue';

/** infra/check-schemas.js (plain Node, run by CI through test/unit/infra-schema.test.ts): its Bicep reader. */
const { parseBicep } = jest.requireActual<{
  parseBicep(text: string, file: string): { params: Map<string, { optional: boolean }>; outputs: Set<string> };
}>('../../infra/check-schemas');

/**
 * infra/ against the code, by plain text parsing (no Bicep compiler here): the settings the config module
 * reads and requires, the roles the code's Azure calls need, and the telemetry names the alerts and the
 * workbook query. Each list is taken from the code itself, so a new setting, client or rename fails here.
 * Then the security properties of the template: the user-assigned identity, App Service authentication in front
 * of every route the code does not serve anonymously, network access, the admin's roles, Key Vault recovery and
 * key rotation. (test/unit/infra-schema.test.ts checks the same files against the resource type schemas.)
 */

const root = join(__dirname, '..', '..');
const read = (path: string): string => readFileSync(join(root, path), 'utf8');
const modules = readdirSync(join(root, 'infra', 'modules')).filter((f) => f.endsWith('.bicep'));
const bicepFiles = ['infra/main.bicep', ...modules.map((f) => `infra/modules/${f}`)];
const bicep = (path: string): string => read(path);

/** The body of the first `{ … }` block after `marker`, braces balanced. */
function blockAfter(text: string, marker: string): string {
  const start = text.indexOf(marker);
  if (start < 0) throw new Error(`${marker} not found`);
  const open = text.indexOf('{', start + marker.length - 1);
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '{') depth++;
    if (text[i] === '}' && --depth === 0) return text.slice(open + 1, i);
  }
  throw new Error(`unbalanced block after ${marker}`);
}

/** `NAME: expression` lines of the Function App's appsettings resource. */
function templateAppSettings(): Map<string, string> {
  const resource = blockAfter(
    bicep('infra/modules/functionapp.bicep'),
    "resource appSettings 'Microsoft.Web/sites/config"
  );
  const properties = blockAfter(resource, 'properties: {');
  const settings = new Map<string, string>();
  for (const line of properties.split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(.+?)\s*$/.exec(line);
    if (m) settings.set(m[1]!, m[2]!);
  }
  return settings;
}

/** Every setting name shared/config.ts reads: `r.optional('X')`, `r.required('X', …)`, `r.integer('X', …)`, … */
function settingsConfigReads(): Set<string> {
  const source = read('shared/config.ts');
  const names = new Set<string>();
  for (const m of source.matchAll(/\br\.(?:optional|required|integer|schedule|localOnly)\(\s*'([A-Za-z0-9_]+)'/g))
    names.add(m[1]!);
  return names;
}

/**
 * Values the template computes at deployment, for the expressions of the appsettings block. An expression not
 * listed here (a new setting wired to a new parameter) fails the test until it gets a realistic example.
 */
const DEPLOY_TIME_EXAMPLES: Record<string, string> = {
  bankId: 'BANK-A',
  identityClientId: '11111111-2222-4333-8444-555555555555',
  tenantId: '99999999-8888-4777-8666-555555555555',
  storageAccountName: 'stabc123def456',
  serviceBusHost: 'sb-abc123.servicebus.windows.net',
  keyVaultUri: 'https://kv-abc123.vault.azure.net',
  signerKeyName: 'signer-1',
  pseudonymizationSecretName: 'pseudonymization-key',
  appInsightsConnectionString:
    'InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/',
  chainRpcUrls: 'https://rpc.consortium.example,https://rpc2.consortium.example',
  validatorRpcUrls: '',
  chainId: '1337',
  registryAddress: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
  watchFromBlock: '0',
  confirmations: '2',
  blockTimeSeconds: '2',
  submitSchedule: '*/2 * * * * *',
  watchSchedule: '*/2 * * * * *',
  heartbeatSchedule: '*/30 * * * * *',
  alertValidatorSilentBeats: '2',
  alertBlockAgeFactor: '5',
  alertBlockTimeFactor: '2',
  alertOutboxOldestAgeSeconds: '60',
  alertDeadLetters: '1',
  alertBatchStuckBlocks: '30',
  alertUnconfirmedAgeSeconds: '300',
};

function resolve(expression: string): string {
  const literal = /^'([^']*)'$/.exec(expression);
  if (literal) return literal[1]!;
  const param = /^(?:string\()?([A-Za-z][A-Za-z0-9]*)\)?$/.exec(expression);
  const value = param ? DEPLOY_TIME_EXAMPLES[param[1]!] : undefined;
  if (value === undefined) throw new Error(`no example value for the app setting expression ${expression}`);
  return value;
}

function templateEnv(): Record<string, string> {
  return Object.fromEntries([...templateAppSettings()].map(([name, expr]) => [name, resolve(expr)]));
}

/** Settings config.ts reads that the template must NOT set in Azure, each with the reason. */
const DELIBERATELY_UNSET: Record<string, string> = {
  AzureWebJobsStorage:
    'a connection string: refused in Azure (identity-based AzureWebJobsStorage__accountName instead)',
  AzureWebJobsStorage__tableServiceUri: 'alternative to AzureWebJobsStorage__accountName, which the template sets',
  PSEUDONYMIZATION_SECRET: 'the secret value itself: refused in Azure (Key Vault secret by name instead)',
  ServiceBusConnection:
    'a connection string: refused in Azure (identity-based ServiceBusConnection__fullyQualifiedNamespace instead)',
};

/**
 * Settings the template sets that config.ts does not read: the Functions host's and App Service's own. Each with
 * what reads it, so an app setting nobody reads cannot creep in.
 */
const HOST_SETTINGS: Record<string, string> = {
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'the host: Entra ID ingestion with the user-assigned identity',
  AzureWebJobsStorage__credential: 'the host: identity-based AzureWebJobsStorage',
  AzureWebJobsStorage__clientId: 'the host: which identity (a user-assigned one must be named)',
  ServiceBusConnection__credential: 'the Service Bus trigger: identity-based connection',
  ServiceBusConnection__clientId: 'the Service Bus trigger: which identity',
  OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID: 'App Service authentication: the identity instead of a client secret',
  WEBSITE_AUTH_AAD_ALLOWED_TENANTS: 'App Service authentication: the one tenant whose tokens are accepted',
  NODE_OPTIONS: "Node.js itself: the worker's heap bound",
};

describe('infra: app settings against shared/config.ts', () => {
  const settings = templateAppSettings();

  it('parses the appsettings block', () => {
    expect(settings.size).toBeGreaterThan(20);
  });

  it('sets every setting config.ts reads, except the ones refused or unneeded in Azure', () => {
    const reads = settingsConfigReads();
    expect(reads.size).toBeGreaterThan(30);
    const missing = [...reads].filter((name) => !settings.has(name) && !(name in DELIBERATELY_UNSET));
    expect(missing).toEqual([]);
    // The exceptions must still be read by config.ts (no stale entries) and must not be set.
    for (const name of Object.keys(DELIBERATELY_UNSET)) {
      expect(reads).toContain(name);
      expect(settings.has(name)).toBe(false);
    }
  });

  it('sets no setting config.ts does not read, apart from the Functions host and App Service ones', () => {
    const reads = settingsConfigReads();
    expect([...settings.keys()].filter((name) => !reads.has(name) && !(name in HOST_SETTINGS))).toEqual([]);
    // No stale entries: each is set, and none is one config.ts reads.
    for (const name of Object.keys(HOST_SETTINGS)) {
      expect({ name, set: settings.has(name), readByConfig: reads.has(name) }).toEqual({
        name,
        set: true,
        readByConfig: false,
      });
    }
  });

  it('covers every setting config.ts requires in Azure mode (from its own error list)', () => {
    let problems: string[] = [];
    try {
      loadConfig({ LEDGER_ENVIRONMENT: 'azure' });
    } catch (err) {
      problems = (err as ConfigError).problems;
    }
    const required = problems.map((p) => /^(\S+)/.exec(p)![1]!);
    expect(required).toEqual(expect.arrayContaining(['BANK_ID', 'KEY_VAULT_URL', 'CHAIN_RPC_URLS']));
    expect(required.filter((name) => !settings.has(name))).toEqual([]);
  });

  it('yields a valid Azure configuration with identity-based connections', () => {
    const config = loadConfig(templateEnv());
    expect(config.environment).toBe('azure');
    expect(config.storage).toEqual({ tableUrl: 'https://stabc123def456.table.core.windows.net' });
    expect(config.serviceBusNamespace).toBe('sb-abc123.servicebus.windows.net');
    expect(config.pseudonymization.localSecret).toBeUndefined();
    // The app's own clients use the user-assigned identity (shared/identity.ts: ManagedIdentityCredential).
    expect(config.managedIdentityClientId).toBe(DEPLOY_TIME_EXAMPLES.identityClientId);
    expect(settings.get('LEDGER_ENVIRONMENT')).toBe("'azure'");
    expect(settings.get('APPLICATIONINSIGHTS_AUTHENTICATION_STRING')).toBe(
      "'ClientId=${identityClientId};Authorization=AAD'"
    );
  });

  it('bounds the worker heap as the local stack and local.settings.json.example do', () => {
    expect(settings.get('NODE_OPTIONS')).toBe("'--max-old-space-size=${nodeMaxOldSpaceMB}'");
    const byDefault = /param nodeMaxOldSpaceMB int = (\d+)/.exec(bicep('infra/main.bicep'))?.[1];
    expect(Number(byDefault)).toBe(NODE_MAX_OLD_SPACE_MB);
    const example = JSON.parse(read('local.settings.json.example')) as { Values: Record<string, string> };
    expect(example.Values.NODE_OPTIONS).toBe(`--max-old-space-size=${NODE_MAX_OLD_SPACE_MB}`);
  });

  it("names the user-assigned identity in every identity-based connection of the host and the app's clients", () => {
    expect(settings.get('AZURE_CLIENT_ID')).toBe('identityClientId');
    // Every connection a trigger names (connection: 'X') and the host storage: X__credential and X__clientId.
    const triggerConnections = sourceFiles('functions').flatMap((file) =>
      [...read(file).matchAll(/\bconnection:\s*'(\w+)'/g)].map((m) => m[1]!)
    );
    expect(triggerConnections).toContain('ServiceBusConnection');
    for (const prefix of new Set(['AzureWebJobsStorage', ...triggerConnections])) {
      expect({
        prefix,
        credential: settings.get(`${prefix}__credential`),
        clientId: settings.get(`${prefix}__clientId`),
      }).toEqual({
        prefix,
        credential: "'managedidentity'",
        clientId: 'identityClientId',
      });
    }
  });

  it('feeds the alert thresholds to the app and to the Azure alert rules from the same parameters', () => {
    const alerts = bicep('infra/modules/alerts.bicep');
    for (const [setting, param] of [
      ['ALERT_VALIDATOR_SILENT_BEATS', 'alertValidatorSilentBeats'],
      ['ALERT_BLOCK_AGE_FACTOR', 'alertBlockAgeFactor'],
      ['ALERT_BLOCK_TIME_FACTOR', 'alertBlockTimeFactor'],
      ['ALERT_OUTBOX_OLDEST_AGE_SECONDS', 'alertOutboxOldestAgeSeconds'],
      ['ALERT_DEAD_LETTERS', 'alertDeadLetters'],
    ] as const) {
      expect(settings.get(setting)).toBe(`string(${param})`);
      expect(alerts).toContain(`\${${param}`);
    }
  });
});

describe('infra: no connection strings, no keys', () => {
  it('reads no keys and builds no connection strings anywhere in infra/', () => {
    for (const path of bicepFiles) {
      const text = bicep(path);
      expect({
        path,
        hits: text.match(/listKeys|listConnectionStrings|AccountKey=|SharedAccessKey|primaryKey|secondaryKey/gi),
      }).toEqual({
        path,
        hits: null,
      });
    }
  });

  it('sets no app setting that is a connection string, except the Application Insights locator', () => {
    const names = [...templateAppSettings().keys()];
    expect(names.filter((n) => /connection_?string|^AzureWebJobsStorage$|key$/i.test(n))).toEqual([
      'APPLICATIONINSIGHTS_CONNECTION_STRING',
    ]);
  });

  it('turns local (key) authentication off on Storage, Service Bus and Application Insights', () => {
    expect(bicep('infra/modules/storage.bicep')).toMatch(/allowSharedKeyAccess: false/);
    expect(bicep('infra/modules/servicebus.bicep')).toMatch(/disableLocalAuth: true/);
    expect(bicep('infra/modules/monitoring.bicep')).toMatch(/DisableLocalAuth: true/);
  });

  it('creates the signer key as EC-HSM P-256K, sign/verify only, with no rotation policy', () => {
    const kv = bicep('infra/modules/keyvault.bicep');
    const key = blockAfter(kv, "resource signerKey 'Microsoft.KeyVault/vaults/keys");
    expect(key).toMatch(/kty: 'EC-HSM'/);
    expect(key).toMatch(/curveName: 'P-256K'/);
    expect(key).toMatch(/keyOps: \['sign', 'verify'\]/);
    expect(key).not.toMatch(/rotationPolicy/);
    expect(kv).toMatch(/name: 'premium'/);
    expect(kv).toMatch(/enableRbacAuthorization: true/);
    expect(kv).toMatch(/enablePurgeProtection: true/);
    expect(kv).not.toMatch(/Microsoft\.KeyVault\/vaults\/secrets/);
  });
});

/** Role assignments of roles.bicep: role definition GUID and the symbol of the scope. */
function roleAssignments(): { role: string; scope: string; principal: string }[] {
  const text = bicep('infra/modules/roles.bicep');
  return text
    .split(/\nresource /)
    .filter((block) => block.includes("'Microsoft.Authorization/roleAssignments@"))
    .map((block) => ({
      role: /roleDefinitions', '([0-9a-f-]{36})'\)/.exec(block)![1]!,
      scope: /\n\s*scope: (\w+)/.exec(block)![1]!,
      principal: /\n\s*principalId: (\w+)/.exec(block)![1]!,
    }));
}

const ROLE = {
  keyVaultCryptoUser: '12338af0-0e69-4776-bea7-57ae8d297424',
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6',
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0',
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88',
  keyVaultReader: '21090545-7ca7-4776-b22c-e363652d74d2',
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7',
  keyVaultCryptoOfficer: '14b46e9e-c2b7-41b4-b07b-48a6ebf60603',
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3',
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb',
} as const;

/**
 * Every Azure SDK client class production code may construct, and the role (at which scope) its calls need.
 * A client class the code constructs that is not listed fails the test: decide its role in infra first.
 */
const CLIENT_ROLES: Record<string, { role: string; scope: string } | { localOnly: string }> = {
  KeyClient: { role: ROLE.keyVaultCryptoUser, scope: 'signerKey' }, // getKey: keys/read
  CryptographyClient: { role: ROLE.keyVaultCryptoUser, scope: 'signerKey' }, // sign
  SecretClient: { role: ROLE.keyVaultSecretsUser, scope: 'vault' }, // getSecret
  ServiceBusClient: { role: ROLE.serviceBusDataReceiver, scope: 'queue' }, // peek the dead-letter sub-queue
  ServiceBusAdministrationClient: { localOnly: 'never: needs Manage (Data Owner), which infra does not grant' },
  TableClient: { role: ROLE.storageTableDataContributor, scope: 'storage' }, // createTable, entities
  TelemetryClient: { role: ROLE.monitoringMetricsPublisher, scope: 'appInsights' }, // Entra ID ingestion
  QueueClient: { localOnly: 'Azurite dead-letter queue of the local stack, built from a connection string' },
};

/** What the Functions host itself needs, from the triggers and host.json rather than from a client class. */
const HOST_ROLES = [
  { evidence: ['functions/ingest.ts', /app\.serviceBusQueue\(/], role: ROLE.serviceBusDataReceiver, scope: 'queue' },
  { evidence: ['host.json', /"version": "2\.0"/], role: ROLE.storageBlobDataOwner, scope: 'storage' },
] as const;

function sourceFiles(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []
  );
}

/** Classes a file imports from an Azure SDK package (or the Application Insights SDK). */
function azureImports(source: string): string[] {
  return [...source.matchAll(/import\s*\{([^}]*)\}\s*from\s*'(@azure\/[^']+|applicationinsights)'/g)].flatMap((m) =>
    m[1]!
      .split(',')
      .map((part) => part.trim())
      .filter((part) => part && !part.startsWith('type '))
      .map((part) => part.split(/\s+as\s+/).pop()!)
  );
}

/** `new X(` / `X.fromConnectionString(` of Azure SDK classes in functions/ and shared/ (the deployed code). */
function constructedClients(): { client: string; file: string; line: string }[] {
  return [...sourceFiles('functions'), ...sourceFiles('shared')].flatMap((file) => {
    const source = read(file);
    const classes = azureImports(source).filter((name) => /^[A-Z]/.test(name) && /Client$/.test(name));
    return source
      .split('\n')
      .flatMap((line) =>
        classes
          .filter((c) => new RegExp(`new ${c}\\(|\\b${c}\\.from\\w+\\(`).test(line))
          .map((client) => ({ client, file, line: line.trim() }))
      );
  });
}

describe('infra: roles against the code', () => {
  const assignments = roleAssignments();
  const clients = constructedClients();

  it('finds the clients the code constructs', () => {
    expect(clients.map((c) => c.client)).toEqual(
      expect.arrayContaining([
        'CryptographyClient',
        'SecretClient',
        'TableClient',
        'TelemetryClient',
        'ServiceBusClient',
      ])
    );
  });

  it('knows the role of every Azure client the code constructs', () => {
    expect(clients.filter((c) => !(c.client in CLIENT_ROLES))).toEqual([]);
  });

  it('assigns the role each constructed client needs, at its scope', () => {
    for (const { client, file, line } of clients) {
      const need = CLIENT_ROLES[client]!;
      if ('localOnly' in need) {
        expect({ client, file, line, localOnly: /connectionString/.test(line) }).toEqual({
          client,
          file,
          line,
          localOnly: true,
        });
        continue;
      }
      expect({ client, assigned: assignments.some((a) => a.role === need.role && a.scope === need.scope) }).toEqual({
        client,
        assigned: true,
      });
    }
  });

  it.each(HOST_ROLES.map((n) => [n.role, n]))('assigns %s the Functions host needs', (_role, need) => {
    const [file, pattern] = need.evidence;
    expect(read(file)).toMatch(pattern);
    expect(assignments).toContainEqual({ role: need.role, scope: need.scope, principal: 'principalId' });
  });

  it('assigns the Function App nothing beyond what the code and the host need', () => {
    const needed = new Set<string>([
      ...clients.flatMap((c) => {
        const need = CLIENT_ROLES[c.client];
        return need && 'role' in need ? [need.role] : [];
      }),
      ...HOST_ROLES.map((n) => n.role),
    ]);
    const appRoles = assignments.filter((a) => a.principal === 'principalId');
    expect(appRoles.filter((a) => !needed.has(a.role))).toEqual([]);
    expect(new Set(appRoles.map((a) => a.role))).toEqual(needed);
  });

  it('names every role assignment with guid(scope, principal, role)', () => {
    const text = bicep('infra/modules/roles.bicep');
    const names = [...text.matchAll(/\n\s*name: (guid\([^\n]+\))/g)].map((m) => m[1]!);
    expect(names).toHaveLength(assignments.length);
    for (const name of names) expect(name).toMatch(/^guid\(\w+\.id, \w+, '[0-9a-f-]{36}'\)$/);
  });

  it('assigns no storage queue role: only the local stack uses storage queues', () => {
    // The one QueueClient is the local stack's (CLIENT_ROLES: built from a connection string, checked above), and
    // the host uses no queue with timer, HTTP and Service Bus triggers only.
    const triggers = sourceFiles('functions').flatMap((file) =>
      [...read(file).matchAll(/\bapp\.(\w+)\(/g)].map((m) => m[1]!)
    );
    expect(new Set(triggers)).toEqual(new Set(['http', 'timer', 'serviceBusQueue']));
    expect(assignments.filter((a) => a.role === ROLE.storageQueueDataContributor)).toEqual([]);
  });

  it('gives the admin the secrets role and a read-only key role, never one that can sign', () => {
    const admin = assignments.filter((a) => a.principal === 'adminPrincipalId');
    expect(admin).toEqual(
      expect.arrayContaining([
        { role: ROLE.keyVaultSecretsOfficer, scope: 'vault', principal: 'adminPrincipalId' },
        { role: ROLE.keyVaultReader, scope: 'vault', principal: 'adminPrincipalId' },
      ])
    );
    expect(admin).toHaveLength(2);
    // Crypto User and Officer include sign: the admin could sign transactions as the bank.
    for (const a of admin) expect([ROLE.keyVaultCryptoUser, ROLE.keyVaultCryptoOfficer]).not.toContain(a.role);
  });

  it('assigns the signing role on the key created ahead of a rotation too, and on no other scope', () => {
    const signing = assignments.filter((a) => a.role === ROLE.keyVaultCryptoUser);
    expect(signing).toEqual([
      { role: ROLE.keyVaultCryptoUser, scope: 'signerKey', principal: 'principalId' },
      { role: ROLE.keyVaultCryptoUser, scope: 'nextSignerKey', principal: 'principalId' },
    ]);
    expect(bicep('infra/modules/roles.bicep')).toMatch(
      /resource nextKeyCryptoUser '[^']+' = if \(!empty\(nextSignerKeyName\)\)/
    );
  });

  it('creates the queue the code consumes, with the duplicate detection window deadletter redrive waits out', () => {
    expect(bicep('infra/modules/servicebus.bicep')).toContain(`param queueName string = '${CREDIT_UPDATES_QUEUE}'`);
    const window = /duplicateDetectionHistoryTimeWindow: 'PT(\d+)M'/.exec(bicep('infra/modules/servicebus.bicep'));
    expect(Number(window?.[1]) * 60_000).toBe(CREDIT_UPDATES_DUPLICATE_WINDOW_MS);
  });

  it("gives the local Service Bus namespace's queues the Bicep's settings", () => {
    const queue = bicep('infra/modules/servicebus.bicep');
    const setting = (name: string): string | undefined => new RegExp(`\\b${name}: '?([^'\\n]+)'?`).exec(queue)?.[1];
    expect({
      maxDeliveryCount: Number(setting('maxDeliveryCount')),
      lockDurationMs: setting('lockDuration') === 'PT1M' ? 60_000 : setting('lockDuration'),
      defaultMessageTimeToLiveMs: setting('defaultMessageTimeToLive') === 'P14D' ? 14 * 24 * 3600_000 : undefined,
      deadLetteringOnMessageExpiration: setting('deadLetteringOnMessageExpiration') === 'true',
      duplicateDetectionWindowMs:
        Number(/PT(\d+)M/.exec(setting('duplicateDetectionHistoryTimeWindow') ?? '')?.[1]) * 60_000,
    }).toEqual({
      maxDeliveryCount: QUEUE_DEFAULTS.maxDeliveryCount,
      lockDurationMs: QUEUE_DEFAULTS.lockDurationMs,
      defaultMessageTimeToLiveMs: QUEUE_DEFAULTS.defaultMessageTimeToLiveMs,
      deadLetteringOnMessageExpiration: QUEUE_DEFAULTS.deadLetteringOnMessageExpiration,
      duplicateDetectionWindowMs: QUEUE_DEFAULTS.duplicateDetectionWindowMs,
    });
  });
});

/** Telemetry names a KQL query refers to: `name == "x"`, `name in ("x", "y")`, `name startswith "x"`. */
function namesInQuery(query: string): string[] {
  const names: string[] = [];
  for (const m of query.matchAll(/\bname\s*(==|in\s*\(|startswith)\s*([^|]*)/g)) {
    const operand = m[1] === '==' || m[1] === 'startswith' ? /^(["'][^"']*["'])/.exec(m[2]!)?.[1] : m[2];
    for (const s of (operand ?? '').matchAll(/["']([^"']+)["']/g)) names.push(s[1]!);
  }
  return names;
}

const known = new Set(ALL_TELEMETRY.map((t) => t.name));
/** Availability results are `validator <host:port>`: queries match them by the prefix. */
const isKnown = (name: string): boolean =>
  known.has(name) || ALL_TELEMETRY.some((t) => t.kind === 'availability' && t.name.startsWith(name));

/** The `query: '…'` strings of the log alert rules. */
function alertQueries(): { rule: string; query: string }[] {
  const text = bicep('infra/modules/alerts.bicep');
  return [...text.matchAll(/name: '(\w+)'[\s\S]*?query: '([^']*)'/g)].map((m) => ({ rule: m[1]!, query: m[2]! }));
}

function workbookQueries(): string[] {
  const workbook = JSON.parse(read('infra/modules/workbook.json')) as { items: { content: { query?: string } }[] };
  return workbook.items.map((i) => i.content.query).filter((q): q is string => q !== undefined);
}

describe('infra: alert rules and workbook against the telemetry names', () => {
  const queries = alertQueries();

  it('has every alert rule of the issue and of the app evaluator', () => {
    const rules = [
      ...queries.map((q) => q.rule),
      ...[...bicep('infra/modules/alerts.bicep').matchAll(/name: '(\w+)'\n\s*location: 'global'/g)].map((m) => m[1]!),
    ];
    expect(rules).toEqual(
      expect.arrayContaining([
        ...Object.values(ALERT_RULES),
        'RejectionRate',
        'FunctionFailures',
        'ServiceBusThrottling',
      ])
    );
  });

  it('every alert query refers to names the code emits', () => {
    expect(queries.length).toBeGreaterThanOrEqual(8);
    for (const { rule, query } of queries) {
      const names = namesInQuery(query);
      if (/^(customMetrics|customEvents|availabilityResults)\b/.test(query))
        expect({ rule, names: names.length > 0 }).toEqual({ rule, names: true });
      expect({ rule, unknown: names.filter((n) => !isKnown(n)) }).toEqual({ rule, unknown: [] });
    }
  });

  it('every workbook query refers to names the code emits, and the dashboard has its panels', () => {
    const all = workbookQueries();
    const names = all.flatMap(namesInQuery);
    expect(names.filter((n) => !isKnown(n))).toEqual([]);
    expect(names).toEqual(
      expect.arrayContaining([
        'validator ',
        'chain.txPerMinute',
        'chain.avgBlockTimeSeconds',
        'consortium.members',
        'outbox.depth',
        'watch.projectionLagSeconds',
      ])
    );
  });

  it('catches an unknown name (the parser is not vacuous)', () => {
    expect(namesInQuery('customMetrics | where name == "chain.hed"').filter((n) => !isKnown(n))).toEqual(['chain.hed']);
    expect(namesInQuery("customMetrics | where name in ('outbox.depth', 'outbox.dpth')")).toEqual([
      'outbox.depth',
      'outbox.dpth',
    ]);
  });
});

describe('infra: AVM conventions', () => {
  it.each(bicepFiles)('%s: every param and output has a @description', (path) => {
    const lines = bicep(path).split('\n');
    const missing: string[] = [];
    lines.forEach((line, i) => {
      if (!/^(param|output) /.test(line)) return;
      let j = i - 1;
      let described = false;
      while (j >= 0 && lines[j]!.startsWith('@')) {
        if (lines[j]!.startsWith('@description(')) described = true;
        j--;
      }
      if (!described) missing.push(line);
    });
    expect(missing).toEqual([]);
  });
});

/** The body of a `resource sym 'Type@…'` declaration in a file. */
function resourceBody(path: string, symbol: string): string {
  return blockAfter(bicep(path), `resource ${symbol} '`);
}

describe('infra: identity', () => {
  const main = bicep('infra/main.bicep');
  const app = bicep('infra/modules/functionapp.bicep');

  it('runs the Function App as a user-assigned identity only', () => {
    expect(bicep('infra/modules/identity.bicep')).toMatch(
      /resource identity 'Microsoft\.ManagedIdentity\/userAssignedIdentities@/
    );
    const site = resourceBody('infra/modules/functionapp.bicep', 'site');
    expect(site).toMatch(/type: 'UserAssigned'\n\s*userAssignedIdentities: \{ '\$\{identityId\}': \{\} \}/);
    expect(site).toMatch(/type: 'UserAssignedIdentity'\n\s*userAssignedIdentityResourceId: identityId/);
    for (const path of bicepFiles)
      expect({ path, system: /SystemAssigned/.test(bicep(path)) }).toEqual({ path, system: false });
    expect(app).not.toMatch(/identity\.principalId/);
  });

  it('assigns the roles to that identity before the Function App is created', () => {
    expect(blockAfter(main, "module roles '")).toMatch(/principalId: identity\.outputs\.principalId/);
    // An explicit dependency: nothing else makes the app wait for the role assignments.
    expect(blockAfter(main, "module functionApp '")).toMatch(/dependsOn: \[roles, privateEndpoints\]/);
    expect(blockAfter(main, "module functionApp '")).not.toMatch(/roles\.outputs/);
  });
});

/** Routes of functions/ with their authLevel, as the host serves them (/api prefix). */
function httpRoutes(): { route: string; authLevel: string }[] {
  return sourceFiles('functions').flatMap((file) =>
    [...read(file).matchAll(/app\.http\('\w+',\s*\{([\s\S]*?)\}\);/g)].map((m) => ({
      route: `/api/${/route:\s*'([^']+)'/.exec(m[1]!)![1]!}`,
      // A protected route's level is PROTECTED_AUTH_LEVEL: anonymous in Azure behind Easy Auth and its app role.
      authLevel: /authLevel:\s*'anonymous'/.test(m[1]!) ? 'anonymous' : 'protected',
    }))
  );
}

describe('infra: App Service authentication (Microsoft Entra ID)', () => {
  const auth = resourceBody('infra/modules/functionapp.bicep', 'auth');
  const settings = templateAppSettings();

  it('is configured in the template as authsettingsV2', () => {
    expect(bicep('infra/modules/functionapp.bicep')).toMatch(
      /resource auth 'Microsoft\.Web\/sites\/config@[^']+' = \{\n\s*parent: site\n\s*name: 'authsettingsV2'/
    );
  });

  it('requires a token on every route but the anonymous ones, and answers 401 without one', () => {
    expect(auth).toMatch(/requireAuthentication: true/);
    expect(auth).toMatch(/unauthenticatedClientAction: 'Return401'/);
    const excluded = [...(/excludedPaths: \[([^\]]*)\]/.exec(auth)?.[1] ?? '').matchAll(/'([^']+)'/g)].map(
      (m) => m[1]!
    );
    const routes = httpRoutes();
    expect(routes.map((r) => r.route)).toEqual(
      expect.arrayContaining(['/api/status', '/api/dashboard', '/api/credit-records/{subjectRef}'])
    );
    // Exactly the routes the code serves anonymously (health): a new anonymous route must be decided here.
    expect(excluded.sort()).toEqual(
      routes
        .filter((r) => r.authLevel === 'anonymous')
        .map((r) => r.route)
        .sort()
    );
  });

  it('accepts tokens of this tenant for the app registration only, and needs no client secret', () => {
    expect(auth).toMatch(/openIdIssuer: '\$\{environment\(\)\.authentication\.loginEndpoint\}\$\{tenantId\}\/v2\.0'/);
    expect(auth).toMatch(/clientId: authClientId/);
    expect(auth).toMatch(/allowedAudiences: \[\n\s*'api:\/\/\$\{authClientId\}'\n\s*authClientId\n\s*\]/);
    expect(settings.get('WEBSITE_AUTH_AAD_ALLOWED_TENANTS')).toBe('tenantId');
    // The "secret" setting holds the identity's client id: a federated credential, no secret anywhere.
    expect(auth).toMatch(/clientSecretSettingName: 'OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID'/);
    expect(settings.get('OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID')).toBe('identityClientId');
    expect(auth).not.toMatch(/clientSecret(?!SettingName)|appSecret|CertificateThumbprint/);
    expect(auth).toMatch(/tokenStore: \{ enabled: false \}/);
    expect(auth).toMatch(/requireHttps: true/);
  });

  it('takes the app registration as a required parameter that cannot be left empty', () => {
    expect(bicep('infra/main.bicep')).toMatch(/@minLength\(36\)\n@maxLength\(36\)\nparam authClientId string\n/);
  });

  it('defines the app roles of the registration, one for the read API and one for operations', () => {
    const roles = JSON.parse(read('infra/entra/app-roles.json')) as {
      id: string;
      value: string;
      allowedMemberTypes: string[];
      isEnabled: boolean;
      description: string;
    }[];
    expect(roles.map((r) => r.value)).toEqual(['CreditRecords.Read', 'Operations.Read']);
    for (const role of roles) {
      expect(role.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(role.allowedMemberTypes).toContain('Application');
      expect(role.isEnabled).toBe(true);
    }
    expect(new Set(roles.map((r) => r.id)).size).toBe(roles.length);
    // Every authenticated route belongs to one role's description.
    const described = roles.map((r) => r.description).join(' ');
    for (const { route, authLevel } of httpRoutes()) {
      if (authLevel !== 'anonymous')
        expect({ route, described: described.includes(route) }).toEqual({ route, described: true });
    }
    // The deployment guide creates the registration from this file.
    expect(read('docs/deploy-azure.md')).toContain('--app-roles @infra/entra/app-roles.json');
  });
});

describe('infra: network access', () => {
  const site = resourceBody('infra/modules/functionapp.bicep', 'site');
  const main = bicep('infra/main.bicep');

  it('restricts inbound addresses by parameter, the deployment endpoint included', () => {
    expect(site).toMatch(/ipSecurityRestrictions: \[\n\s*for \(cidr, i\) in allowedIpRanges: \{/);
    expect(site).toMatch(/ipSecurityRestrictionsDefaultAction: empty\(allowedIpRanges\) \? 'Allow' : 'Deny'/);
    expect(site).toMatch(/scmIpSecurityRestrictionsUseMain: true/);
    expect(main).toMatch(/param allowedIpRanges string = ''/);
  });

  it('closes the public endpoint of the app and its backends with private networking', () => {
    expect(site).toMatch(/publicNetworkAccess: publicNetworkAccess/);
    expect(blockAfter(main, "module functionApp '")).toMatch(
      /publicNetworkAccess: enablePrivateNetworking \? 'Disabled' : 'Enabled'/
    );
    expect(blockAfter(main, "module appPrivateEndpoint '")).toMatch(/groupId: 'sites'/);
    const backends = blockAfter(main, "module privateEndpoints '");
    for (const groupId of ['blob', 'table', 'namespace', 'vault']) expect(backends).toContain(`groupId: '${groupId}'`);
    expect(backends).not.toContain("groupId: 'queue'");
  });
});

describe('infra: Key Vault recovery and signer key rotation', () => {
  const kv = bicep('infra/modules/keyvault.bicep');

  it('can recover the soft-deleted vault after azd down', () => {
    expect(kv).toMatch(/createMode: recoverSoftDeleted \? 'recover' : 'default'/);
    expect(blockAfter(bicep('infra/main.bicep'), "module keyVault '")).toMatch(/recoverSoftDeleted: recoverKeyVault/);
    expect(read('infra/main.parameters.json')).toContain('"${LEDGER_RECOVER_KEY_VAULT=false}"');
  });

  it('creates the key of a rotation exactly like the signer key', () => {
    const shape = (symbol: string) => blockAfter(resourceBody('infra/modules/keyvault.bicep', symbol), 'properties: {');
    expect(shape('nextSignerKey')).toEqual(shape('signerKey'));
    expect(kv).toMatch(/resource nextSignerKey '[^']+' = if \(!empty\(nextSignerKeyName\)\)/);
  });
});

describe('infra: parameters and outputs', () => {
  const parsed = parseBicep(bicep('infra/main.bicep'), 'infra/main.bicep');
  const file = JSON.parse(read('infra/main.parameters.json')) as { parameters: Record<string, { value: string }> };

  it('main.parameters.json passes only parameters main.bicep declares, and every required one', () => {
    expect(Object.keys(file.parameters).filter((name) => !parsed.params.has(name))).toEqual([]);
    const required = [...parsed.params].filter(([, p]) => !p.optional).map(([name]) => name);
    expect(required.filter((name) => !(name in file.parameters))).toEqual([]);
    expect(file.parameters.authClientId?.value).toBe('${LEDGER_AUTH_CLIENT_ID}');
  });

  it('outputs what the deployment guide reads with azd env get-value', () => {
    const guide = read('docs/deploy-azure.md');
    const used = new Set([...guide.matchAll(/azd env get-value (\w+)/g)].map((m) => m[1]!));
    expect(used.size).toBeGreaterThanOrEqual(5);
    const known = new Set([...parsed.outputs, 'AZURE_ENV_NAME', 'AZURE_LOCATION', 'AZURE_SUBSCRIPTION_ID']);
    expect([...used].filter((name) => !known.has(name))).toEqual([]);
  });
});
