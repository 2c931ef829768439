import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConsortiumMonitor } from '../../local/consortium-view';
import type { StackInfo } from '../../local/stack/stack';

/**
 * Durability of `ledger-bridge start --data-dir`: events published, the consortium SIGKILLed in the middle of the
 * run (every child dies with it: setpriv --pdeathsig), started again on the same data dir, and every event ends
 * up projected exactly once at every bank. anvil dumps its state every 5 s, so the restarted chain may have lost
 * its last seconds of blocks; the submitter and the watcher must recover from that.
 */
const cli = join(__dirname, '../../dist/cli/main.js');

function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      /* gone */
    }
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

const alive = (pid: number): boolean =>
  existsSync(`/proc/${pid}`) && !/^\S+ \S+ Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/\(.*\)/, 'x'));

describe('restart after SIGKILL with --data-dir', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-restart-'));
  const dataDir = join(dir, 'data');
  let consortium: ChildProcess | undefined;
  let passed = false;

  async function start(): Promise<{ child: ChildProcess; info: StackInfo }> {
    const child = spawn(process.execPath, [cli, 'start', '--banks', '2', '--block-time', '2', '--data-dir', dataDir], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    consortium = child;
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const deadline = Date.now() + 60_000;
    while (!/ready in [\d.]+ s/.test(out)) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the consortium did not start: ${err}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    return { child, info: JSON.parse(readFileSync(join(dir, '.local', 'stack.json'), 'utf8')) as StackInfo };
  }

  afterAll(async () => {
    if (consortium && consortium.exitCode === null) {
      const exited = new Promise((r) => consortium!.once('exit', r));
      consortium.kill('SIGINT');
      await exited;
    }
    // Kept for a post-mortem (the apps' logs are in data/logs) when the test failed.
    if (passed) rmSync(dir, { recursive: true, force: true });
    else console.log(`restart test: data and logs kept in ${dir}`);
  });

  it('projects every event exactly once at every bank after a SIGKILL in mid-run', async () => {
    const first = await start();
    const eventIds: string[] = [];
    for (const bank of ['BANK-A', 'BANK-B']) {
      const file = join(dir, `${bank}.ndjson`);
      const sample = spawnSync(process.execPath, [cli, 'sample-events', '200', '--bank', bank], {
        cwd: dir,
        encoding: 'utf8',
      });
      writeFileSync(file, sample.stdout);
      eventIds.push(
        ...sample.stdout
          .trim()
          .split('\n')
          .map((l) => (JSON.parse(l) as { eventId: string }).eventId)
      );
    }
    for (const bank of ['BANK-A', 'BANK-B']) {
      const published = spawnSync(process.execPath, [cli, 'publish', join(dir, `${bank}.ndjson`), '--bank', bank], {
        cwd: dir,
        encoding: 'utf8',
      });
      expect(published.status).toBe(0);
    }
    // Mid-run: records are on chain, not everything is projected yet. Azurite saves each store every 5 s (LokiJS
    // autosave) and its queue and table stores at different moments, so an event accepted less than 5 s before a
    // SIGKILL can be gone from the outbox while its message is gone from the queue (the documented limit of
    // --data-dir): the kill waits until every event is on chain, hence accepted, and 5.5 s more.
    const monitor = new ConsortiumMonitor(first);
    let snap = await monitor.snapshot();
    const deadline = Date.now() + 60_000;
    let allOnChainAt: number | undefined;
    while ((allOnChainAt === undefined || Date.now() - allOnChainAt < 5_500) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      snap = await monitor.snapshot();
      if (allOnChainAt === undefined && snap.banks.every((b) => b.onChain >= 200)) allOnChainAt = Date.now();
    }
    monitor.destroy();
    const children = descendants(first.child.pid!);
    expect(children.length).toBeGreaterThanOrEqual(4); // azurite, anvil and 2 Function App hosts (the stand-ins run in-process)
    const killedAt = { onChain: snap.banks.map((b) => b.onChain), projected: snap.banks.map((b) => b.projected) };
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    const waitGone = Date.now() + 10_000;
    while (children.some(alive) && Date.now() < waitGone) await new Promise((r) => setTimeout(r, 100));
    expect(children.filter(alive)).toEqual([]);

    const second = await start();
    expect(second.info.chain.registryAddress).toBe(first.info.chain.registryAddress);
    expect(second.info.banks.map((b) => b.signerAddress)).toEqual(first.info.banks.map((b) => b.signerAddress));
    const after = new ConsortiumMonitor(second);
    const head = await after.provider.getBlockNumber();
    const lastSeen = Date.now() + 80_000;
    let done = false;
    let counts: Record<string, string> = {};
    while (!done && Date.now() < lastSeen) {
      await after.snapshot();
      done = eventIds.every((id) => after.seen.get(id)?.size === 2);
      if (!done) await new Promise((r) => setTimeout(r, 1_000));
    }
    counts = {};
    for (const id of eventIds)
      for (const bank of ['BANK-A', 'BANK-B']) {
        const rows = after.seen.get(id)?.get(bank)?.rows ?? 0;
        if (rows !== 1) counts[`${id}@${bank}`] = `${rows} history rows`;
      }
    after.destroy();
    console.log(
      `restart: killed with ${killedAt.onChain.join('/')} records on chain (A/B) and ${killedAt.projected.join('/')} projected; ` +
        `the restarted chain resumed at block ${head}`
    );
    expect(counts).toEqual({});
    passed = true;
  }, 150_000);
});
