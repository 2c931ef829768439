import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { KeyClient } from '@azure/keyvault-keys';
import { SecretClient } from '@azure/keyvault-secrets';
import { randomBytes } from 'node:crypto';
import { localStackCredential } from '../../shared/identity';
import { ethereumAddressFromJwk } from '../../shared/keyvault/address';
import { startAnvil, type Anvil, type AnvilOptions } from './anvil';
import { startAppInsightsStandIn, type AppInsightsStandIn } from './appinsights';
import { startAzuritePerAccount, type Azurite } from './azurite';
import { deployConsortium } from './consortium';
import { startKeyVaultStandIn, type KeyVaultStandIn } from './keyvault';
import { CREDIT_UPDATES_QUEUE } from '../../shared/domain/credit-update';
import { startNamespace, type LocalServiceBusNamespace } from '../servicebus/namespace';
import type { QueueSettings } from '../servicebus/queue';
import { generateLocalTls, trustCertificate, type LocalTls } from './tls';

/**
 * The embedded local stack: Azurite (one storage account per bank), a Service Bus namespace per bank (AMQP, with
 * the credit-updates queue as the Bicep creates it), anvil with the CreditRegistry deployed and every bank's Key
 * Vault signer registered as a member, and the HTTPS stand-ins for Key Vault and Application Insights.
 * Everything listens on 127.0.0.1 on free ports. With a data dir, state survives a restart.
 */

export interface StackOptions {
  banks?: number;
  blockTimeSeconds?: number;
  gasLimit?: number;
  chainId?: number;
  confirmations?: number;
  /** How anvil orders its pool (its default when absent): see AnvilOptions.txOrder. */
  txOrder?: AnvilOptions['txOrder'];
  /** Keep state here across restarts; in memory (and a temp dir for the certificate) when absent. */
  dataDir?: string;
  /** The credit-updates queue's settings where a test needs other than the Bicep's (e.g. fewer deliveries). */
  queue?: Partial<Pick<QueueSettings, 'maxDeliveryCount' | 'lockDurationMs' | 'duplicateDetectionWindowMs'>>;
  log?: (line: string) => void;
}

export interface BankInfo {
  bankId: string;
  storageAccount: string;
  storageConnectionString: string;
  /** The bank's local Service Bus namespace (SAS key, plain AMQP on 127.0.0.1: UseDevelopmentEmulator=true). */
  serviceBusConnectionString: string;
  signerKeyName: string;
  signerAddress: string;
}

/** What `.local/stack.json` holds: everything a tool needs to talk to the running stack. */
export interface StackInfo {
  pid: number;
  startedAt: string;
  dataDir?: string;
  caCertFile: string;
  chain: {
    rpcUrl: string;
    chainId: number;
    blockTimeSeconds: number;
    confirmations: number;
    registryAddress: string;
    deployBlock: number;
  };
  keyVaultUrl: string;
  appInsights: { url: string; connectionString: string };
  banks: BankInfo[];
  /** The Function Apps of `ledger-bridge start`, one per bank, with their local host keys. */
  hosts?: { bankId: string; url: string; functionKey: string; masterKey: string }[];
}

export interface Stack {
  info: StackInfo;
  azurite: Azurite;
  anvil: Anvil;
  keyVault: KeyVaultStandIn;
  appInsights: AppInsightsStandIn;
  /** One namespace per bank, in the order of info.banks. */
  serviceBus: LocalServiceBusNamespace[];
  stop(): Promise<void>;
}

/** Persisted in the data dir so a restart finds the same accounts, certificate and contract. */
interface SavedState {
  tls: LocalTls;
  accountKeys: Record<string, string>;
  /** Per bank: the namespace's SAS key, so connection strings stay the same across restarts. */
  serviceBusKeys?: Record<string, string>;
  registryAddress?: string;
  deployBlock?: number;
  chainId: number;
}

export const bankIdOf = (index: number): string => `BANK-${String.fromCharCode(65 + index)}`;
const storageAccountOf = (bankId: string): string => bankId.toLowerCase().replace(/[^a-z0-9]/g, '');
const signerKeyNameOf = (bankId: string): string => `signer-${bankId.toLowerCase()}`;

function loadState(dataDir: string | undefined): SavedState | undefined {
  const file = dataDir && join(dataDir, 'stack-state.json');
  return file && existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as SavedState) : undefined;
}

function saveState(dataDir: string | undefined, state: SavedState): void {
  if (!dataDir) return;
  const file = join(dataDir, 'stack-state.json');
  writeFileSync(file, JSON.stringify(state, null, 2), { mode: 0o600 });
}

/** Creates the bank's EC-HSM P-256K signer key in the Key Vault stand-in unless it exists; returns its address. */
async function ensureSignerKey(keyVaultUrl: string, keyName: string): Promise<string> {
  const client = new KeyClient(keyVaultUrl, localStackCredential, { disableChallengeResourceVerification: true });
  const existing = await client.getKey(keyName).catch((err: { statusCode?: number }) => {
    if (err.statusCode === 404) return undefined;
    throw err;
  });
  const key =
    existing ?? (await client.createEcKey(keyName, { curve: 'P-256K', hsm: true, keyOps: ['sign', 'verify'] }));
  return ethereumAddressFromJwk(key.key ?? {});
}

/**
 * The consortium's pseudonymization key as a Key Vault secret, as in Azure (where each bank's vault holds a copy
 * distributed by the consortium). Created once with 32 random bytes; kept across restarts with a data dir.
 */
async function ensurePseudonymizationSecret(keyVaultUrl: string, name: string): Promise<void> {
  const client = new SecretClient(keyVaultUrl, localStackCredential, { disableChallengeResourceVerification: true });
  const exists = await client.getSecret(name).then(
    () => true,
    (err: { statusCode?: number }) => {
      if (err.statusCode === 404) return false;
      throw err;
    }
  );
  if (!exists) await client.setSecret(name, randomBytes(32).toString('hex'));
}

export const PSEUDONYMIZATION_SECRET_NAME = 'pseudonymization-key';

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const banks = options.banks ?? 1;
  if (!Number.isInteger(banks) || banks < 1 || banks > 26)
    throw new Error(`banks must be a whole number from 1 to 26, got ${banks}`);
  const log = options.log ?? (() => undefined);
  const dataDir = options.dataDir;
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  const saved = loadState(dataDir);
  const bankIds = Array.from({ length: banks }, (_, i) => bankIdOf(i));
  const accountNames = bankIds.map(storageAccountOf);

  const tls = saved?.tls ?? (await generateLocalTls());
  trustCertificate(tls.certPem);
  const certDir = dataDir ?? mkdtempSync(join(tmpdir(), 'ledger-bridge-'));
  const caCertFile = join(certDir, 'local-stack-ca.pem');
  writeFileSync(caCertFile, tls.certPem);

  const started: { stop(): Promise<void> }[] = [];
  const stopAll = async (): Promise<void> => {
    for (const part of started.reverse()) await part.stop().catch(() => undefined);
    if (!dataDir) rmSync(certDir, { recursive: true, force: true });
  };
  try {
    log('starting Azurite…');
    const azurite = await startAzuritePerAccount({
      dataDir: dataDir && join(dataDir, 'azurite'),
      accountNames,
      accountKeys: saved?.accountKeys,
    });
    started.push(azurite);
    log('starting the Service Bus namespaces…');
    const serviceBusKeys: Record<string, string> = {};
    const serviceBus: LocalServiceBusNamespace[] = [];
    for (const bankId of bankIds) {
      serviceBusKeys[bankId] = saved?.serviceBusKeys?.[bankId] ?? randomBytes(32).toString('base64');
      const namespace = await startNamespace({
        queues: [{ name: CREDIT_UPDATES_QUEUE, ...options.queue }],
        sharedAccessKeyName: 'RootManageSharedAccessKey',
        sharedAccessKey: serviceBusKeys[bankId],
        dataDir: dataDir && join(dataDir, 'servicebus', bankId),
        log: (level, message) => log(`Service Bus ${bankId} ${level}: ${message}`),
      });
      started.push(namespace);
      serviceBus.push(namespace);
    }
    log('starting anvil…');
    const chainId = saved?.chainId ?? options.chainId ?? 31337;
    const anvil = await startAnvil({
      blockTimeSeconds: options.blockTimeSeconds ?? 2,
      gasLimit: options.gasLimit,
      chainId,
      stateFile: dataDir && join(dataDir, 'anvil-state.json'),
      txOrder: options.txOrder,
    });
    started.push(anvil);
    log('starting the Key Vault and Application Insights stand-ins…');
    const keyVault = await startKeyVaultStandIn({ tls, dataDir: dataDir && join(dataDir, 'keyvault') });
    started.push(keyVault);
    const appInsights = await startAppInsightsStandIn({ tls });
    started.push(appInsights);

    await ensurePseudonymizationSecret(keyVault.url, PSEUDONYMIZATION_SECRET_NAME);
    const bankInfos: BankInfo[] = [];
    for (const [i, bankId] of bankIds.entries()) {
      const signerKeyName = signerKeyNameOf(bankId);
      const account = azurite.accounts[i]!;
      bankInfos.push({
        bankId,
        storageAccount: account.name,
        storageConnectionString: account.connectionString,
        serviceBusConnectionString: serviceBus[i]!.connectionString,
        signerKeyName,
        signerAddress: await ensureSignerKey(keyVault.url, signerKeyName),
      });
    }
    let registryAddress = saved?.registryAddress;
    let deployBlock = saved?.deployBlock ?? 0;
    if (!registryAddress) {
      log('deploying CreditRegistry and registering the banks…');
      const consortium = await deployConsortium(
        anvil.rpcUrl,
        bankInfos.map((b) => ({ address: b.signerAddress, bankId: b.bankId }))
      );
      registryAddress = consortium.registryAddress;
      deployBlock = consortium.deployBlock;
    }
    saveState(dataDir, {
      tls,
      accountKeys: Object.fromEntries(azurite.accounts.map((a) => [a.name, a.accountKey])),
      serviceBusKeys,
      registryAddress,
      deployBlock,
      chainId,
    });

    const info: StackInfo = {
      pid: process.pid,
      startedAt: new Date().toISOString(),
      dataDir,
      caCertFile,
      chain: {
        rpcUrl: anvil.rpcUrl,
        chainId,
        blockTimeSeconds: anvil.blockTimeSeconds,
        confirmations: options.confirmations ?? 2,
        registryAddress,
        deployBlock,
      },
      keyVaultUrl: keyVault.url,
      appInsights: { url: appInsights.url, connectionString: appInsights.connectionString },
      banks: bankInfos,
    };
    return { info, azurite, anvil, keyVault, appInsights, serviceBus, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** The worker's old-space bound, as infra/main.bicep sets it in Azure (docs/deploy-azure.md#memory). */
export const NODE_MAX_OLD_SPACE_MB = 1024;

/** The app settings of one bank's Function App on this stack (what local.settings.json would hold). */
export function bankSettings(info: StackInfo, bankId: string): Record<string, string> {
  const bank = info.banks.find((b) => b.bankId === bankId);
  if (!bank) throw new Error(`unknown bank ${bankId}; the stack has ${info.banks.map((b) => b.bankId).join(', ')}`);
  return {
    LEDGER_ENVIRONMENT: 'local',
    BANK_ID: bank.bankId,
    NODE_OPTIONS: `--max-old-space-size=${NODE_MAX_OLD_SPACE_MB}`,
    AzureWebJobsStorage: bank.storageConnectionString,
    ServiceBusConnection: bank.serviceBusConnectionString,
    KEY_VAULT_URL: info.keyVaultUrl,
    SIGNER_KEY_NAME: bank.signerKeyName,
    PSEUDONYMIZATION_SECRET_NAME,
    CHAIN_RPC_URLS: info.chain.rpcUrl,
    CHAIN_ID: String(info.chain.chainId),
    REGISTRY_ADDRESS: info.chain.registryAddress,
    CONFIRMATIONS: String(info.chain.confirmations),
    WATCH_FROM_BLOCK: String(info.chain.deployBlock),
    // An automining test chain (block time 0) has no target; the app paces itself at 1 s then.
    BLOCK_TIME_SECONDS: String(Math.max(1, info.chain.blockTimeSeconds)),
    APPLICATIONINSIGHTS_CONNECTION_STRING: info.appInsights.connectionString,
    NODE_EXTRA_CA_CERTS: info.caCertFile,
  };
}

export const defaultStackFile = (cwd = process.cwd()): string => join(cwd, '.local', 'stack.json');

/** Writes the stack's endpoints for the CLI; readable only by this user (it holds local connection strings). */
export function writeStackFile(info: StackInfo, file = defaultStackFile()): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(info, null, 2) + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
}

export function readStackFile(file = defaultStackFile()): StackInfo {
  if (!existsSync(file))
    throw new Error(
      `no running local stack: ${file} does not exist (start one with \`npm start\` or \`ledger-bridge stack\`)`
    );
  const info = JSON.parse(readFileSync(file, 'utf8')) as StackInfo;
  try {
    process.kill(info.pid, 0);
  } catch {
    throw new Error(`the local stack in ${file} is not running (process ${info.pid} is gone); start it again`);
  }
  return info;
}
