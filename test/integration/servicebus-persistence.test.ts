import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { ServiceBusClient } from '@azure/service-bus';
import ts from 'typescript';
import { startNamespace, type NamespaceOptions } from '../../local/servicebus/namespace';

/**
 * With a data dir the local namespace keeps what it acknowledged across a stop and start, and across a SIGKILL:
 * the journal is written and fsynced before a send or a settlement is acknowledged.
 */

const key = { sharedAccessKeyName: 'RootManageSharedAccessKey', sharedAccessKey: randomBytes(32).toString('base64') };
const retryOptions = { maxRetries: 0, timeoutInMs: 10_000 };

describe('local Service Bus namespace with a data dir', () => {
  let dataDir: string;
  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'servicebus-'));
  });
  afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

  const start = (extra: Partial<NamespaceOptions> = {}) =>
    startNamespace({ ...key, dataDir, queues: [{ name: 'credit-updates' }], ...extra });

  it('keeps messages, their state, delivery counts, sequence numbers and seen ids across a stop and start', async () => {
    const first = await start();
    const client = new ServiceBusClient(first.connectionString, { retryOptions });
    const sender = client.createSender('credit-updates');
    await sender.sendMessages(['m0', 'm1', 'm2', 'm3', 'm4', 'm5'].map((id) => ({ body: id, messageId: id })));
    const [scheduled] = await sender.scheduleMessages({ body: 'm6', messageId: 'm6' }, new Date(Date.now() + 3600_000));
    const receiver = client.createReceiver('credit-updates');
    const [m0, m1, m2, m3, m4] = await receiver.receiveMessages(5, { maxWaitTimeInMs: 5_000 });
    await receiver.completeMessage(m0!);
    await receiver.abandonMessage(m1!);
    await receiver.deferMessage(m2!);
    await receiver.deadLetterMessage(m3!, { deadLetterReason: 'SchemaInvalid', deadLetterErrorDescription: 'bad' });
    expect(m4!.messageId).toBe('m4'); // still locked when the namespace stops
    await client.close();
    await first.stop();

    const second = await start();
    const again = new ServiceBusClient(second.connectionString, { retryOptions });
    try {
      const peeked = await again.createReceiver('credit-updates').peekMessages(10);
      expect(peeked.map((m) => [m.messageId, m.sequenceNumber!.toNumber(), m.state, m.deliveryCount])).toEqual([
        ['m1', 2, 'active', 1],
        ['m2', 3, 'deferred', 1],
        ['m4', 5, 'active', 1], // its lock did not survive: available again, the delivery counted
        ['m5', 6, 'active', 0],
        ['m6', scheduled!.toNumber(), 'scheduled', 0],
      ]);
      const [dead] = await again.createReceiver('credit-updates', { subQueueType: 'deadLetter' }).peekMessages(5);
      expect(dead).toMatchObject({ messageId: 'm3', deadLetterReason: 'SchemaInvalid' });

      const s = again.createSender('credit-updates');
      await s.sendMessages([
        { body: 'm0 again', messageId: 'm0' }, // seen before the restart: dropped as a duplicate
        { body: 'm8', messageId: 'm8' },
      ]);
      const r = again.createReceiver('credit-updates', { receiveMode: 'receiveAndDelete' });
      const got = await r.receiveMessages(10, { maxWaitTimeInMs: 1_000 });
      expect(got.map((m) => [m.messageId, m.deliveryCount])).toEqual([
        ['m1', 1],
        ['m4', 1],
        ['m5', 0],
        ['m8', 0],
      ]);
      expect(got[3]!.sequenceNumber!.toNumber()).toBe(scheduled!.toNumber() + 1);
      const [deferred] = await r.receiveDeferredMessages(m2!.sequenceNumber!);
      expect(deferred!.messageId).toBe('m2');
    } finally {
      await again.close();
      await second.stop();
    }
  });

  it('replays a journal whose last line a kill tore, and rewrites it clean', async () => {
    const first = await start();
    const client = new ServiceBusClient(first.connectionString, { retryOptions });
    await client.createSender('credit-updates').sendMessages([{ body: 'a' }, { body: 'b' }]);
    await client.close();
    await first.stop();
    appendFileSync(join(dataDir, 'journal.ndjson'), '{"op":"put","queue":"credit-upd');

    const warnings: string[] = [];
    const second = await start({ log: (_level, message) => warnings.push(message) });
    try {
      expect(warnings).toEqual([expect.stringMatching(/torn last record/)]);
      expect(second.counts('credit-updates').active).toBe(2);
      const lines = readFileSync(join(dataDir, 'journal.ndjson'), 'utf8').trim().split('\n');
      expect(() => lines.map((l) => JSON.parse(l) as unknown)).not.toThrow();
    } finally {
      await second.stop();
    }
  });

  it('loses no acknowledged send when its process is SIGKILLed in the middle of a stream of sends', async () => {
    const child = await startInChild(dataDir);
    // Sends in flight when the process dies fail at their timeout.
    const client = new ServiceBusClient(child.connectionString, {
      retryOptions: { maxRetries: 0, timeoutInMs: 2_000 },
    });
    const sender = client.createSender('credit-updates');
    const acknowledged: string[] = [];
    let next = 0;
    const sendLoop = async (): Promise<void> => {
      for (;;) {
        const id = `k${next++}`;
        try {
          await sender.sendMessages({ body: id, messageId: id });
        } catch {
          return; // the namespace is gone
        }
        acknowledged.push(id);
      }
    };
    const loops = Array.from({ length: 8 }, () => sendLoop());
    while (acknowledged.length < 150) await new Promise((r) => setTimeout(r, 5));
    child.process.kill('SIGKILL');
    await Promise.all(loops);
    await client.close().catch(() => undefined);

    const restarted = await start();
    const again = new ServiceBusClient(restarted.connectionString, { retryOptions });
    try {
      const stored = new Set<unknown>();
      const r = again.createReceiver('credit-updates', { receiveMode: 'receiveAndDelete' });
      for (let page = await r.receiveMessages(100, { maxWaitTimeInMs: 1_000 }); page.length > 0;) {
        for (const m of page) stored.add(m.messageId);
        page = await r.receiveMessages(100, { maxWaitTimeInMs: 500 });
      }
      expect(acknowledged.filter((id) => !stored.has(id))).toEqual([]);
      expect(stored.size).toBeGreaterThanOrEqual(acknowledged.length);
    } finally {
      await again.close();
      await restarted.stop();
    }
  });
});

/** Runs a namespace on `dataDir` in a child process (local/servicebus transpiled as is), to be SIGKILLed. */
async function startInChild(dataDir: string): Promise<{ process: ReturnType<typeof spawn>; connectionString: string }> {
  const out = join(dataDir, 'child');
  mkdirSync(out);
  const source = resolve(__dirname, '../../local/servicebus');
  for (const file of readdirSync(source).filter((f) => f.endsWith('.ts'))) {
    const { outputText } = ts.transpileModule(readFileSync(join(source, file), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    });
    writeFileSync(join(out, file.replace(/\.ts$/, '.js')), outputText);
  }
  writeFileSync(
    join(out, 'main.js'),
    `require('./namespace').startNamespace(${JSON.stringify({ ...key, dataDir, queues: [{ name: 'credit-updates' }] })})` +
      `.then((ns) => console.log(ns.connectionString));`
  );
  const child = spawn(process.execPath, [join(out, 'main.js')], {
    env: { ...process.env, NODE_PATH: resolve(__dirname, '../../node_modules') },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await Promise.race([
    once(createInterface({ input: child.stdout }), 'line'),
    once(child, 'exit').then(() => Promise.reject(new Error('the child namespace exited'))),
  ])) as [string];
  return { process: child, connectionString: line };
}
