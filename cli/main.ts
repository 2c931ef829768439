import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError, wholeNumber, stringOption, type Values } from './common';
import { deadLetterListCommand, deadLetterRedriveCommand } from './deadletter';
import { recordsCommand } from './records';
import { rejectedListCommand } from './rejected';
import { statusCommand } from './status';
import { checkBankId, publishCommand, sampleEventsCommand } from './publish';
import {
  dashboardUrl,
  demoEvents,
  liveView,
  runDemo,
  startConsortium,
  ConsortiumMonitor,
} from '../local/consortium-view';
import { rebuildCommand } from './rebuild';
import { errorMessage, redactUrl } from '../shared/redact';
import { defaultStackFile, startStack, writeStackFile, type Stack, type StackOptions } from '../local/stack/stack';

/**
 * `ledger-bridge`: the command-line tool for banks and operators. Every command works against one bank's settings,
 * the running local consortium's or, without one, the environment's, as in Azure (cli/target.ts); `stack` and
 * `start` run the local consortium itself (local/). Every command has --help, rejects bad arguments with a message
 * naming them, and exits non-zero on failure.
 */

interface Command {
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  run(values: Values, positionals: string[]): Promise<void>;
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

function bankOption(values: Values): string | undefined {
  const bank = stringOption(values, 'bank');
  return bank === undefined ? undefined : checkBankId(bank);
}

function noPositionals(positionals: string[]): void {
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
}

function describeStack(stack: Stack): string {
  const { info } = stack;
  const lines = [
    `chain        ${redactUrl(info.chain.rpcUrl)}  (chain id ${info.chain.chainId}, ${info.chain.blockTimeSeconds} s blocks)`,
    `registry     ${info.chain.registryAddress}  (deployed in block ${info.chain.deployBlock})`,
    `key vault    ${redactUrl(info.keyVaultUrl)}`,
    `app insights ${redactUrl(info.appInsights.url)}`,
    `storage      ${stack.azurite.accounts[0]!.tableUrl.replace(/\/[^/]+$/, '')} (tables), one account per bank`,
    `tls          trust ${info.caCertFile} (NODE_EXTRA_CA_CERTS)`,
    ...info.banks.map(
      (b) =>
        `${b.bankId.padEnd(12)} signer ${b.signerAddress} (key ${b.signerKeyName}), storage account ${b.storageAccount}, ` +
        `Service Bus sb://127.0.0.1:${stack.serviceBus[info.banks.indexOf(b)]!.port}`
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
    summary: 'start the local consortium: the stack and one Function App per bank, with a live view (npm start)',
    usage:
      'ledger-bridge start [--banks N (3)] [--block-time S (2)] [--confirmations N (2)] [--data-dir DIR] ' +
      '[--demo-events N] [--exit-when-done] [--json]\n\n' +
      'State is in memory unless --data-dir keeps it (a restart with the same dir resumes). --demo-events publishes N\n' +
      'generated events spread over the banks (every 4th about a subject all banks report on). --exit-when-done exits 0\n' +
      'once every demo event is projected at every bank and prints one JSON line {events, banks, projectedEverywhere,\n' +
      "rejected, deadLetters, seconds, latencyMs: {p50, p95, p99}} (latency: enqueue → first seen in another bank's\n" +
      'CreditLedger history rows by a 500 ms poll); it exits 1 with the reason on a rejection, a dead letter, a duplicate\n' +
      'projection or 60 s without progress. The live view redraws on a terminal; otherwise it prints a line every 10 s\n' +
      '(to stderr with --exit-when-done, so stdout holds only the JSON line).',
    options: { ...stackOptions, 'demo-events': { type: 'string' }, 'exit-when-done': { type: 'boolean' } },
    async run(values) {
      const startedAt = Date.now();
      const options = readStackOptions(values, (line) => console.error(line));
      const demoCount = wholeNumber('demo-events', values['demo-events'], 0, 0, 1_000_000);
      const exitWhenDone = values['exit-when-done'] === true;
      if (exitWhenDone && demoCount === 0) throw new UsageError('--exit-when-done needs --demo-events N (N > 0)');
      const consortium = await startConsortium({ banks: 3, ...options }, defaultStackFile(), options.log);
      const { info, hosts } = consortium;
      const readySeconds = ((Date.now() - startedAt) / 1000).toFixed(1);
      const interrupted = new AbortController();
      let signalled = false;
      const onSignal = (): void => {
        if (signalled) process.exit(130);
        signalled = true;
        interrupted.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        if (values.json) {
          console.log(
            JSON.stringify({
              ...info,
              readySeconds: Number(readySeconds),
              hosts: info.hosts?.map(({ bankId, url }) => ({ bankId, url })),
            })
          );
        } else if (!exitWhenDone) {
          console.log(describeStack(consortium.stack));
          for (const [i, h] of hosts.entries())
            console.log(`${info.banks[i]!.bankId.padEnd(12)} dashboard ${dashboardUrl(h)}`);
          console.log(
            `ready in ${readySeconds} s (accepting events); endpoints written to ${consortium.stackFile}; Ctrl-C stops everything`
          );
        } else console.error(`ready in ${readySeconds} s; publishing ${demoCount} demo events`);
        const viewOut = exitWhenDone && !process.stdout.isTTY ? process.stderr : process.stdout;
        const view = values.json ? () => undefined : liveView(viewOut, info);
        let demoRunning = false;
        const published = new Map<string, number>();
        if (demoCount > 0) {
          const events = demoEvents(info, demoCount, Math.floor(Date.now() / 1000));
          const demo = runDemo(consortium, events, { onSnapshot: view, signal: interrupted.signal, published });
          if (exitWhenDone) {
            const summary = await demo.catch((err: Error) => {
              if (interrupted.signal.aborted) return undefined;
              throw new Error(`demo failed: ${errorMessage(err)}`);
            });
            if (summary) console.log(JSON.stringify(summary));
            else process.exitCode = 130; // interrupted before the demo was done
            return;
          }
          demoRunning = true;
          demo
            .then(
              (summary) => console.error(`demo done: ${JSON.stringify(summary)}`),
              (err: unknown) => !interrupted.signal.aborted && console.error(`demo failed: ${errorMessage(err)}`)
            )
            .finally(() => (demoRunning = false));
        }
        // The live view until Ctrl-C.
        const monitor = new ConsortiumMonitor(consortium);
        monitor.published = published;
        try {
          while (!interrupted.signal.aborted) {
            // While a demo runs, it drives the view (it also counts what it published).
            const snapshot = demoRunning ? undefined : await monitor.snapshot().catch(() => undefined);
            if (snapshot) view(snapshot);
            await new Promise((r) => setTimeout(r, 1000));
          }
        } finally {
          monitor.destroy();
        }
      } finally {
        console.error('stopping…');
        await consortium.stop();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    },
  },
  'sample-events': {
    summary: 'write n realistic, valid credit-update v1 events as NDJSON on stdout (test data for integrations)',
    usage:
      'ledger-bridge sample-events <n> [--bank ID (BANK-A)] [--subjects N] [--sequence-base N]\n\n' +
      'Subjects are synthetic personal numbers. --subjects N spreads the events over N subjects (later events update\n' +
      'earlier subjects); sequences start after --sequence-base (default: the current unix time in seconds, so a newer\n' +
      'file supersedes an older one). Works offline; --json is accepted (the output is JSON already).',
    options: {
      bank: { type: 'string' },
      subjects: { type: 'string' },
      'sequence-base': { type: 'string' },
      json: { type: 'boolean' },
    },
    async run(values, positionals) {
      if (positionals.length !== 1) throw new UsageError('give the number of events, e.g. `sample-events 100`');
      if (!/^\d+$/.test(positionals[0]!) || Number(positionals[0]) < 1 || Number(positionals[0]) > 1_000_000)
        throw new UsageError(`<n> must be a whole number from 1 to 1000000, got "${positionals[0]!}"`);
      const count = Number(positionals[0]);
      const subjects =
        values.subjects === undefined ? undefined : wholeNumber('subjects', values.subjects, 1, 1, 1_000_000);
      const base = wholeNumber('sequence-base', values['sequence-base'], Math.floor(Date.now() / 1000), 0, 2 ** 52);
      sampleEventsCommand(count, stringOption(values, 'bank') ?? 'BANK-A', subjects, base);
      await Promise.resolve();
    },
  },
  publish: {
    summary: "send credit-update events (NDJSON, one per line) to a bank's credit-updates queue",
    usage:
      'ledger-bridge publish <file.ndjson|-> --bank ID [--wait] [--json]\n\n' +
      'Each non-empty line is one message (message id = its eventId when it has one), sent in batches; invalid lines\n' +
      "are sent too and the bridge rejects them. Sent to the local consortium's Service Bus namespace\n" +
      '(.local/stack.json) when one runs, else to the namespace of the bank whose settings are in the environment\n' +
      '(identity-based, e.g. az login). A line larger than the namespace takes (256 KiB) is refused and not sent;\n' +
      'the rest go on. --wait waits until the bridge accepted or rejected every message and prints its outcome.\n' +
      'Progress on stderr when it is a terminal. Exit 5 when a line was refused.',
    options: { bank: { type: 'string' }, wait: { type: 'boolean' }, json: { type: 'boolean' } },
    async run(values, positionals) {
      if (positionals.length !== 1) throw new UsageError('give one file (or - for stdin)');
      await publishCommand({
        file: positionals[0]!,
        bankId: stringOption(values, 'bank'),
        json: values.json === true,
        wait: values.wait === true,
      });
    },
  },
  records: {
    summary: "a subject's credit records across banks, with provenance (the bank's projections)",
    usage:
      'ledger-bridge records <subjectRef | COUNTRY:idType:value> [--bank ID] [--verify] [--history] [--json]\n\n' +
      "A raw identifier (e.g. SE:national-id:19121212-1212) is pseudonymized with the bank's consortium key from its\n" +
      'Key Vault (in Azure the caller needs Key Vault Secrets User there); only the subject ref is printed.\n' +
      'Exit 3 when no bank has a record, 4 when --verify finds a mismatch.',
    options: {
      bank: { type: 'string' },
      verify: { type: 'boolean' },
      history: { type: 'boolean' },
      json: { type: 'boolean' },
    },
    async run(values, positionals) {
      if (positionals.length !== 1) throw new UsageError('give one subject');
      await recordsCommand({
        subject: positionals[0]!,
        bankId: bankOption(values),
        verify: values.verify === true,
        history: values.history === true,
        json: values.json === true,
      });
    },
  },
  status: {
    summary: 'validator, chain and pipeline health of a bank as of its last heartbeat (what GET /api/status says)',
    usage: 'ledger-bridge status [--bank ID] [--json]',
    options: { bank: { type: 'string' }, json: { type: 'boolean' } },
    async run(values, positionals) {
      noPositionals(positionals);
      await statusCommand({ bankId: bankOption(values), json: values.json === true });
    },
  },
  rejected: {
    summary: 'rejected list: messages the bridge rejected, with the reason (the Rejections table)',
    usage: 'ledger-bridge rejected list [--bank ID] [--limit N (50)] [--json]',
    options: { bank: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } },
    async run(values, positionals) {
      if (positionals[0] !== 'list' || positionals.length !== 1) throw new UsageError('the subcommand is `list`');
      await rejectedListCommand({
        bankId: bankOption(values),
        limit: wholeNumber('limit', values.limit, 50, 1, 10_000),
        json: values.json === true,
      });
    },
  },
  deadletter: {
    summary: 'deadletter list | redrive: dead-lettered messages of credit-updates, and moving them back',
    usage:
      'ledger-bridge deadletter list [--bank ID] [--json]\n' +
      '       ledger-bridge deadletter redrive (--all | <messageId>) [--bank ID] [--json]\n\n' +
      'list peeks (up to 32) dead-lettered credit-updates messages with the dead-letter reason; redrive moves them back\n' +
      'to credit-updates with the same message id and a fresh delivery count.',
    options: { bank: { type: 'string' }, all: { type: 'boolean' }, json: { type: 'boolean' } },
    async run(values, positionals) {
      const [sub, ...rest] = positionals;
      if (sub === 'list') {
        noPositionals(rest);
        await deadLetterListCommand({ bankId: bankOption(values), json: values.json === true });
      } else if (sub === 'redrive') {
        if (rest.length > 1) throw new UsageError('give at most one message id');
        await deadLetterRedriveCommand({
          bankId: bankOption(values),
          all: values.all === true,
          messageId: rest[0],
          json: values.json === true,
        });
      } else throw new UsageError('the subcommand is `list` or `redrive`');
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
    // A command reports "ran, but found nothing / a mismatch" through process.exitCode.
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    // A chain or vault error may quote an endpoint URL with its credentials: printed redacted.
    console.error(
      `ledger-bridge ${name}: ${errorMessage(err)}${usage ? `\nusage: ${command.usage.split('\n')[0]!}  (--help for more)` : ''}`
    );
    return usage ? 2 : 1;
  }
}

export function runCli(): void {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(errorMessage(err));
      process.exit(1);
    }
  );
}

if (require.main === module) runCli();
