import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CreditUpdate } from '../../shared/domain/credit-update';
import type { StackInfo } from '../../local/stack/stack';

/**
 * The consortium as a newcomer runs it: `ledger-bridge start --banks 2 --block-time 1` as its own process, events
 * published through `ledger-bridge publish` (valid and invalid mixed), read back through every bank's read API,
 * and the invalid ones listed by `ledger-bridge rejected list --json` with their reasons.
 */
const cli = join(__dirname, '../../dist/cli/main.js');

describe('the local consortium, end to end through the CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-e2e-'));
  let consortium: ChildProcess;
  let info: StackInfo;
  let stdout = '';

  const run = (...args: string[]): { status: number | null; stdout: string; stderr: string } => {
    const r = spawnSync(process.execPath, [cli, ...args], { cwd: dir, encoding: 'utf8', timeout: 90_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  beforeAll(async () => {
    consortium = spawn(process.execPath, [cli, 'start', '--banks', '2', '--block-time', '1'], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    consortium.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    let stderr = '';
    consortium.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const deadline = Date.now() + 60_000;
    while (!/ready in [\d.]+ s/.test(stdout)) {
      if (consortium.exitCode !== null || Date.now() > deadline)
        throw new Error(`the consortium did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    info = JSON.parse(readFileSync(join(dir, '.local', 'stack.json'), 'utf8')) as StackInfo;
  });

  afterAll(async () => {
    if (consortium && consortium.exitCode === null) {
      const exited = new Promise((r) => consortium.once('exit', r));
      consortium.kill('SIGINT');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('projects every valid event at every bank and lists every invalid one with its reason', async () => {
    expect(info.hosts).toHaveLength(2);
    expect(stdout).toMatch(/BANK-B\s+dashboard http:\/\/127\.0\.0\.1:\d+\/api\/dashboard\?code=/);

    const valid: CreditUpdate[] = [];
    const invalid: { line: string; expect: RegExp; messageId?: string }[] = [];
    for (const bank of ['BANK-A', 'BANK-B']) {
      const sample = run('sample-events', '6', '--bank', bank);
      expect(sample.status).toBe(0);
      const events = sample.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as CreditUpdate);
      valid.push(...events);
      const tooHigh = {
        ...events[0]!,
        eventId: '3f1c7a52-6a53-4a5e-9c1e-0b8d2f6e4c11',
        credit: { ...events[0]!.credit, score: 900 },
      };
      const lines = events.map((e) => JSON.stringify(e));
      const bad =
        bank === 'BANK-A'
          ? [
              { line: JSON.stringify(tooHigh), expect: /^schema: \/credit\/score must be <= 850$/ },
              { line: 'this is not json', expect: /^not-json: / },
              {
                line: JSON.stringify({ ...events[1]!, eventId: randomish(), bankId: 'BANK-B' }),
                expect: /^wrong-bank: /,
              },
            ]
          : [
              {
                line: JSON.stringify({ ...events[2]!, eventId: randomish(), sequence: 0 }),
                expect: /^schema: \/sequence/,
              },
            ];
      invalid.push(...bad);
      const file = join(dir, `${bank}.ndjson`);
      // A line larger than Service Bus takes (256 KiB) is refused on its own; the lines after it still go.
      const oversize = bank === 'BANK-A' ? [JSON.stringify({ ...events[0]!, padding: 'x'.repeat(300 * 1024) })] : [];
      writeFileSync(
        file,
        [...lines.slice(0, 3), ...bad.map((b) => b.line), ...oversize, ...lines.slice(3)].join('\n') + '\n'
      );
      const published = run('publish', file, '--bank', bank, '--json');
      expect(published.stderr).toBe('');
      expect(published.status).toBe(oversize.length ? 5 : 0);
      const out = published.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const summary = out.pop() as { summary: { sent: number; refused: number; valid: number; invalid: number } };
      expect(summary.summary).toEqual(
        expect.objectContaining({ sent: 6 + bad.length, refused: oversize.length, valid: 6, invalid: bad.length })
      );
      const refused = out.filter((o) => o.refused);
      expect(refused.map((o) => [o.line, o.sentAt])).toEqual(oversize.map(() => [4 + bad.length, undefined]));
      for (const o of refused)
        expect(o.refused).toMatch(/^30\d{4} bytes: larger than the namespace's max message size$/);
      for (const [i, b] of bad.entries()) (b as { messageId?: string }).messageId = out[3 + i]!.messageId as string;
    }

    // Every valid event, read at every bank through its read API (raw subject looked up at that bank).
    const deadline = Date.now() + 60_000;
    const missing = (): Promise<string[]> =>
      Promise.all(
        info.hosts!.flatMap((host) =>
          valid.map(async (e) => {
            const res = await fetch(`${host.url}/api/credit-records/lookup`, {
              method: 'POST',
              headers: { 'x-functions-key': host.functionKey, 'content-type': 'application/json' },
              body: JSON.stringify(e.subject),
            });
            const body = (await res.json()) as { records?: { bankId: string; provenance: { eventId: string } }[] };
            const found = body.records?.some((r) => r.bankId === e.bankId && r.provenance.eventId === e.eventId);
            return found ? '' : `${e.eventId}@${host.bankId}`;
          })
        )
      ).then((all) => all.filter(Boolean));
    let left = await missing();
    while (left.length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1_000));
      left = await missing();
    }
    expect(left).toEqual([]);

    // Every invalid one, with its reason, at the bank it was sent to.
    const rejected = ['BANK-A', 'BANK-B'].flatMap((bank) => {
      const r = run('rejected', 'list', '--bank', bank, '--json');
      expect(r.status).toBe(0);
      return JSON.parse(r.stdout) as { messageId: string; code: string; reason: string }[];
    });
    for (const b of invalid) {
      const row = rejected.find((r) => r.messageId === b.messageId);
      expect(row && `${row.code}: ${row.reason}`).toMatch(b.expect);
    }
    expect(rejected).toHaveLength(invalid.length);

    // The record with provenance through `records`, by raw id at the other bank; the raw value is not printed.
    const subject = valid[0]!.subject as { value: string };
    const records = run('records', `SE:national-id:${subject.value}`, '--bank', 'BANK-B', '--verify');
    expect(records.status).toBe(0);
    expect(records.stdout).toContain(valid[0]!.eventId);
    expect(records.stdout).toMatch(/all match/);
    expect(records.stdout).not.toContain(subject.value);
  }, 90_000);
});

function randomish(): string {
  return crypto.randomUUID();
}
