import { createWriteStream, mkdirSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { spawnFunctionHost, type RunningHost } from './host/spawn';
import { rebuildCommand } from './rebuild-projections';
import {
  bankSettings,
  defaultStackFile,
  startStack,
  writeStackFile,
  type Stack,
  type StackOptions,
} from './stack/stack';

/**
 * `ledger-bridge`: the command-line tool for banks and operators. Every command has --help, rejects bad
 * arguments with a message naming them, and exits non-zero on failure.
 */

class UsageError extends Error {}

interface Command {
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  run(values: Record<string, string | boolean | undefined>, positionals: string[]): Promise<void>;
}

function wholeNumber(
  name: string,
  raw: string | boolean | undefined,
  fallback: number,
  min: number,
  max: number
): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (typeof raw !== 'string' || !/^\d+$/.test(raw) || value < min || value > max) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got "${String(raw)}"`);
  }
  return value;
}

const stackOptions = {
  banks: { type: 'string' },
  'block-time': { type: 'string' },
  confirmations: { type: 'string' },
  'data-dir': { type: 'string' },
  json: { type: 'boolean' },
} as const;

function readStackOptions(
  values: Record<string, string | boolean | undefined>,
  log: (line: string) => void
): StackOptions {
  return {
    banks: wholeNumber('banks', values.banks, 3, 1, 26),
    blockTimeSeconds: wholeNumber('block-time', values['block-time'], 2, 0, 60),
    confirmations: wholeNumber('confirmations', values.confirmations, 2, 0, 64),
    dataDir: typeof values['data-dir'] === 'string' ? resolve(values['data-dir']) : undefined,
    log,
  };
}

/** Runs until SIGINT/SIGTERM, then stops everything (second signal: exit at once). */
async function untilInterrupted(stop: () => Promise<void>): Promise<void> {
  await new Promise<void>((resolveSignal) => {
    let signalled = false;
    const onSignal = (): void => {
      if (signalled) process.exit(130);
      signalled = true;
      resolveSignal();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  console.error('stopping…');
  await stop();
}

function describeStack(stack: Stack): string {
  const { info } = stack;
  const lines = [
    `chain        ${info.chain.rpcUrl}  (chain id ${info.chain.chainId}, ${info.chain.blockTimeSeconds} s blocks)`,
    `registry     ${info.chain.registryAddress}  (deployed in block ${info.chain.deployBlock})`,
    `key vault    ${info.keyVaultUrl}`,
    `app insights ${info.appInsights.url}`,
    `storage      ${stack.azurite.accounts[0]!.tableUrl.replace(/\/[^/]+$/, '')} (tables), one account per bank`,
    `tls          trust ${info.caCertFile} (NODE_EXTRA_CA_CERTS)`,
    ...info.banks.map(
      (b) =>
        `${b.bankId.padEnd(12)} signer ${b.signerAddress} (key ${b.signerKeyName}), storage account ${b.storageAccount}`
    ),
  ];
  return lines.join('\n');
}

const commands: Record<string, Command> = {
  stack: {
    summary: 'start the embedded local stack (Azurite, anvil + CreditRegistry, Key Vault and App Insights stand-ins)',
    usage: 'ledger-bridge stack [--banks N] [--block-time S] [--confirmations N] [--data-dir DIR] [--json]',
    options: stackOptions,
    async run(values) {
      const stack = await startStack(readStackOptions(values, (line) => console.error(line)));
      const file = defaultStackFile();
      writeStackFile(stack.info, file);
      console.log(
        values.json
          ? JSON.stringify(stack.info)
          : `${describeStack(stack)}\nendpoints written to ${file}\nready; Ctrl-C stops the stack`
      );
      await untilInterrupted(async () => {
        await stack.stop();
        rmSync(file, { force: true });
      });
    },
  },
  start: {
    summary: 'start the local stack and one Function App per bank in the local Functions host',
    usage: 'ledger-bridge start [--banks N] [--block-time S] [--confirmations N] [--data-dir DIR] [--json]',
    options: stackOptions,
    async run(values) {
      const startedAt = Date.now();
      const log = (line: string): void => console.error(line);
      const stack = await startStack(readStackOptions(values, log));
      const hosts: RunningHost[] = [];
      const file = defaultStackFile();
      const stopAll = async (): Promise<void> => {
        await Promise.all(hosts.map((h) => h.stop()));
        await stack.stop();
        rmSync(file, { force: true });
      };
      try {
        const logDir = resolve('.local', 'logs');
        mkdirSync(logDir, { recursive: true });
        for (const bank of stack.info.banks) {
          log(`starting the Function App of ${bank.bankId} (log: .local/logs/${bank.bankId}.log)…`);
          const hostLog = createWriteStream(resolve(logDir, `${bank.bankId}.log`), { flags: 'a' });
          hosts.push(
            await spawnFunctionHost({
              name: `Function App ${bank.bankId}`,
              appDir: resolve(__dirname, '../..'),
              settings: bankSettings(stack.info, bank.bankId),
              onLine: (line) => hostLog.write(`${line}\n`),
            })
          );
        }
      } catch (err) {
        await stopAll();
        throw err;
      }
      stack.info.hosts = hosts.map((h, i) => ({
        bankId: stack.info.banks[i]!.bankId,
        url: h.url,
        functionKey: h.functionKey,
        masterKey: h.masterKey,
      }));
      writeStackFile(stack.info, file);
      const seconds = ((Date.now() - startedAt) / 1000).toFixed(1);
      if (values.json) {
        console.log(
          JSON.stringify({ ...stack.info, hosts: stack.info.hosts?.map(({ bankId, url }) => ({ bankId, url })) })
        );
      } else {
        console.log(describeStack(stack));
        for (const [i, h] of hosts.entries())
          console.log(`${stack.info.banks[i]!.bankId.padEnd(12)} Function App ${h.url}/api/health`);
        console.log(`ready in ${seconds} s; endpoints written to ${file}; Ctrl-C stops everything`);
      }
      await untilInterrupted(stopAll);
    },
  },
  'rebuild-projections': {
    summary: 'replay the read projections (credit records, history, members) from the chain, with progress',
    usage: 'ledger-bridge rebuild-projections [--from-block N] [--bank ID] [--json]',
    options: { 'from-block': { type: 'string' }, bank: { type: 'string' }, json: { type: 'boolean' } },
    async run(values) {
      await rebuildCommand({
        fromBlock:
          values['from-block'] === undefined
            ? undefined
            : wholeNumber('from-block', values['from-block'], 0, 0, Number.MAX_SAFE_INTEGER),
        bankId: typeof values.bank === 'string' ? values.bank : undefined,
        json: values.json === true,
      });
    },
  },
};

function help(): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length));
  return [
    'usage: ledger-bridge <command> [options]   (each command has --help)',
    '',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(help());
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (!command) {
    console.error(`ledger-bridge: unknown command "${name}"\n\n${help()}`);
    return 2;
  }
  try {
    const { values, positionals } = parseArgs({
      args: rest,
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    if (values.help) {
      console.log(`${command.summary}\n\nusage: ${command.usage}`);
      return 0;
    }
    await command.run(values, positionals);
    return 0;
  } catch (err) {
    const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    console.error(`ledger-bridge ${name}: ${(err as Error).message}${usage ? `\nusage: ${command.usage}` : ''}`);
    return usage ? 2 : 1;
  }
}

export function runCli(): void {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
      console.error(err.message);
      process.exit(1);
    }
  );
}

if (require.main === module) runCli();
