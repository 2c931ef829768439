import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startProcess, type ManagedProcess } from '../stack/process';
import { FUNCTION_KEY_VARIABLE, MASTER_KEY_VARIABLE } from './host-keys';

export interface RunningHost {
  url: string;
  masterKey: string;
  functionKey: string;
  functions: string[];
  process: ManagedProcess;
  stop(): Promise<void>;
}

export interface SpawnHostOptions {
  name: string;
  appDir: string;
  /** App settings: the host process's environment. */
  settings: Record<string, string>;
  port?: number;
  onLine?: (line: string) => void;
}

// Tests run this file from source (ts-jest); the host always runs compiled, from dist/ (npm run build).
const hostMain = __filename.endsWith('.ts')
  ? join(__dirname, '../../dist/local/host/main.js')
  : join(__dirname, 'main.js');

/** Starts one Function App in the local host as a child process and waits until it serves. */
export async function spawnFunctionHost(options: SpawnHostOptions): Promise<RunningHost> {
  const masterKey = randomBytes(24).toString('base64url');
  const functionKey = randomBytes(24).toString('base64url');
  let ready: { url: string; functions: string[] } | undefined;
  const args = [hostMain, ...['--app', options.appDir, '--port', String(options.port ?? 0)], '--exit-with-stdin'];
  const child = await startProcess(options.name, process.execPath, args, {
    // The keys go in the environment: the command line is visible to every user (ps).
    env: {
      PATH: process.env.PATH ?? '',
      ...options.settings,
      [MASTER_KEY_VARIABLE]: masterKey,
      [FUNCTION_KEY_VARIABLE]: functionKey,
    },
    cwd: options.appDir,
    readyTimeoutMs: 60_000,
    onLine: (line) => {
      if (line.startsWith('{"event":"ready"')) ready = JSON.parse(line) as typeof ready;
      options.onLine?.(line);
    },
    ready: async () => ready !== undefined,
  });
  return {
    url: ready!.url,
    functions: ready!.functions,
    masterKey,
    functionKey,
    process: child,
    stop: () => child.stop(),
  };
}
