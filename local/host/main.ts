import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { FunctionHost } from './host';
import { FUNCTION_KEY_VARIABLE, MASTER_KEY_VARIABLE, takeKey } from './host-keys';

/**
 * Runs one Function App in the local host, as its own process (in Azure, too, each app is a worker process
 * of its own). Settings come from the environment and, like Core Tools, from the Values of a
 * local.settings.json given with --settings. Prints one JSON line `{"event":"ready",...}` when it serves.
 *
 * The host keys come from the environment (host-keys.ts), never from the command line; without them, random
 * keys are made.
 */
const usage = `usage: node dist/local/host/main.js [--app DIR] [--port N] [--settings FILE] [--exit-with-stdin]
environment: ${MASTER_KEY_VARIABLE}, ${FUNCTION_KEY_VARIABLE} (the host keys)`;

function positiveInt(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new Error(`--${name} must be a whole number, got "${raw}"`);
  return Number(raw);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      app: { type: 'string', default: '.' },
      port: { type: 'string' },
      settings: { type: 'string' },
      'exit-with-stdin': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(usage);
    return;
  }
  if (values.settings) {
    const file = JSON.parse(readFileSync(values.settings, 'utf8')) as { Values?: Record<string, string> };
    for (const [name, value] of Object.entries(file.Values ?? {})) process.env[name] ??= value;
  }
  const host = new FunctionHost({
    appDir: resolve(values.app),
    port: positiveInt('port', values.port, 0),
    masterKey: takeKey(MASTER_KEY_VARIABLE),
    functionKey: takeKey(FUNCTION_KEY_VARIABLE),
  });
  await host.start();
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    host.stop().then(
      () => process.exit(0),
      (err: Error) => {
        console.error(`host stop failed: ${err.message}`);
        process.exit(1);
      }
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // When the parent dies its end of our stdin closes: do not outlive it.
  if (values['exit-with-stdin']) process.stdin.on('end', stop).resume();
  console.log(JSON.stringify({ event: 'ready', url: host.url, functions: host.functions().map((f) => f.name) }));
}

main().catch((err: Error) => {
  console.error(`Functions host failed to start: ${err.message}`);
  process.exit(1);
});
