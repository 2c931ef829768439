import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:net';
import { assertPortFree, freePort, retryOnPortRace } from './ports';
import { startProcess, type ManagedProcess } from './process';

export interface StorageAccount {
  name: string;
  /** Random per stack (or reloaded from the data dir); never a fixed, published key. */
  accountKey: string;
  /** Connection string for the local stack only (a fresh account key per run, never a fixed one). */
  connectionString: string;
  blobUrl: string;
  queueUrl: string;
  tableUrl: string;
}

export interface Azurite {
  /** One storage account per name asked for (each bank has its own, as in Azure). */
  accounts: StorageAccount[];
  /** The Azurite processes serving them (one, or one per account with startAzuritePerAccount). */
  processes: ManagedProcess[];
  stop(): Promise<void>;
}

export interface AzuriteOptions {
  /** Keep data in this folder across restarts; in memory when absent. */
  dataDir?: string;
  ports?: { blob?: number; queue?: number; table?: number };
  /** Storage account names (3-24 lowercase letters and digits); default one account, "ledgerbridge". */
  accountNames?: string[];
  /** Reuse account keys by name (with dataDir, so a restarted stack can read what it wrote). */
  accountKeys?: Record<string, string>;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => resolve(socket.end() !== undefined));
    socket.once('error', () => resolve(false));
  });
}

async function pickPort(name: string, requested: number | undefined): Promise<number> {
  if (requested === undefined) return freePort();
  await assertPortFree(`Azurite ${name} service`, requested);
  return requested;
}

/** Starts Azurite (blob, queue, table) from its npm package, telemetry off, on loopback. */
export async function startAzurite(options: AzuriteOptions = {}): Promise<Azurite> {
  return options.ports ? startAzuriteOnce(options) : retryOnPortRace(() => startAzuriteOnce(options));
}

async function startAzuriteOnce(options: AzuriteOptions): Promise<Azurite> {
  const blob = await pickPort('blob', options.ports?.blob);
  const queue = await pickPort('queue', options.ports?.queue);
  const table = await pickPort('table', options.ports?.table);
  const names = options.accountNames ?? ['ledgerbridge'];
  const bad = names.find((name) => !/^[a-z0-9]{3,24}$/.test(name));
  if (bad !== undefined)
    throw new Error(`Azurite: "${bad}" is not a storage account name (3-24 lowercase letters and digits)`);
  const keys = names.map((name) => options.accountKeys?.[name] ?? randomBytes(64).toString('base64'));
  const storageArgs = options.dataDir ? ['--location', options.dataDir] : ['--inMemoryPersistence'];
  if (options.dataDir) mkdirSync(options.dataDir, { recursive: true });
  const args = [
    require.resolve('azurite/dist/src/azurite.js'),
    ...storageArgs,
    '--silent',
    '--disableTelemetry',
    '--skipApiVersionCheck',
    '--disableProductStyleUrl',
    ...['--blobHost', '127.0.0.1', '--blobPort', String(blob)],
    ...['--queueHost', '127.0.0.1', '--queuePort', String(queue)],
    ...['--tableHost', '127.0.0.1', '--tablePort', String(table)],
  ];
  const child = await startProcess('Azurite', process.execPath, args, {
    env: { ...process.env, AZURITE_ACCOUNTS: names.map((name, i) => `${name}:${keys[i]}`).join(';') },
    cwd: options.dataDir,
    ready: async () => (await portOpen(blob)) && (await portOpen(queue)) && (await portOpen(table)),
  });
  const accounts = names.map((name, i): StorageAccount => {
    const blobUrl = `http://127.0.0.1:${blob}/${name}`;
    const queueUrl = `http://127.0.0.1:${queue}/${name}`;
    const tableUrl = `http://127.0.0.1:${table}/${name}`;
    return {
      name,
      accountKey: keys[i]!,
      connectionString:
        `DefaultEndpointsProtocol=http;AccountName=${name};AccountKey=${keys[i]};` +
        `BlobEndpoint=${blobUrl};QueueEndpoint=${queueUrl};TableEndpoint=${tableUrl};`,
      blobUrl,
      queueUrl,
      tableUrl,
    };
  });
  return { accounts, processes: [child], stop: () => child.stop() };
}

/**
 * One Azurite process per account, as each bank has its own storage account in Azure: the load of several banks
 * spreads over the machine's cores instead of queueing in one single-threaded emulator.
 */
export async function startAzuritePerAccount(
  options: Omit<AzuriteOptions, 'ports'> & { accountNames: string[] }
): Promise<Azurite> {
  const started = await Promise.allSettled(
    options.accountNames.map((name) =>
      startAzurite({ ...options, accountNames: [name], dataDir: options.dataDir && join(options.dataDir, name) })
    )
  );
  const ok = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const stop = async (): Promise<void> => void (await Promise.all(ok.map((a) => a.stop())));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await stop();
    throw failed.reason;
  }
  return { accounts: ok.flatMap((a) => a.accounts), processes: ok.flatMap((a) => a.processes), stop };
}
