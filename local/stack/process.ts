import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync } from 'node:fs';

const SETPRIV = '/usr/bin/setpriv';
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export interface ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** The last lines the process wrote (stdout and stderr), for error messages. */
  recentOutput(): string;
  stop(graceMs?: number): Promise<void>;
}

export interface StartOptions extends Omit<SpawnOptions, 'stdio'> {
  /** Resolves once the process is ready (a probe over its port, usually). */
  ready: () => Promise<boolean>;
  readyTimeoutMs?: number;
  /** Called with every output line, e.g. to forward to a log. */
  onLine?: (line: string) => void;
}

/**
 * Starts a child process and waits until `ready()` answers true. A failure to start names the component and
 * carries its last output. Children are killed when this process exits, so none are left behind.
 */
export async function startProcess(
  name: string,
  command: string,
  args: string[],
  options: StartOptions
): Promise<ManagedProcess> {
  const { ready, readyTimeoutMs = 30_000, onLine, ...spawnOptions } = options;
  // On Linux, setpriv makes the kernel kill the child if we die without cleaning up (SIGKILL, OOM), so
  // no anvil or Azurite is left behind holding ports. It execs the command: the pid stays the child's.
  const guarded = process.platform === 'linux' && existsSync(SETPRIV);
  const child = guarded
    ? spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', command, ...args], {
        ...spawnOptions,
        stdio: ['pipe', 'pipe', 'pipe'],
      })
    : spawn(command, args, { ...spawnOptions, stdio: ['pipe', 'pipe', 'pipe'] });
  running.add(child);
  const lines: string[] = [];
  const collect = (chunk: Buffer): void => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      lines.push(line);
      if (lines.length > 40) lines.shift();
      onLine?.(line);
    }
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let exited: string | undefined;
  const exitPromise = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = `exited with ${signal ?? `code ${code}`}`;
      running.delete(child);
      resolve();
    })
  );
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));

  const managed: ManagedProcess = {
    name,
    child,
    recentOutput: () => lines.join('\n'),
    async stop(graceMs = 5_000) {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exitPromise;
      clearTimeout(timer);
    },
  };

  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (spawnError) throw new Error(`${name} failed to start: ${spawnError.message}`);
    if (exited) throw new Error(`${name} failed to start: it ${exited}. Its last output:\n${managed.recentOutput()}`);
    if (await ready().catch(() => false)) return managed;
    if (Date.now() > deadline) {
      await managed.stop();
      throw new Error(
        `${name} did not become ready within ${readyTimeoutMs} ms. Its last output:\n${managed.recentOutput()}`
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
