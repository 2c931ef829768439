import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCreditUpdate } from '../../shared/domain/validate';

/** The `ledger-bridge` command line, as a user runs it (the compiled dist/cli/main.js), without a stack. */
const cli = join(__dirname, '../../dist/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'ledger-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const COMMANDS = [
  'stack',
  'start',
  'rebuild-projections',
  'sample-events',
  'publish',
  'records',
  'status',
  'rejected',
  'deadletter',
];

describe('ledger-bridge', () => {
  it('lists every command, and each has --help with its usage', () => {
    const top = run('--help');
    expect(top.status).toBe(0);
    for (const name of COMMANDS) {
      expect(top.stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
      const help = run(name, '--help');
      expect({ name, status: help.status }).toEqual({ name, status: 0 });
      expect(help.stdout).toContain(`usage: ledger-bridge ${name}`);
    }
  });

  it('rejects bad input with a clear message and a non-zero exit', () => {
    const cases: [string[], RegExp][] = [
      [['frobnicate'], /unknown command "frobnicate"/],
      [['sample-events', 'ten'], /<n> must be a whole number from 1 to 1000000, got "ten"/],
      [['sample-events', '5', '--subjects', '-1'], /--subjects must be a whole number|option/i],
      [['sample-events', '5', '--bank', 'bank a'], /--bank must be a bank id like BANK-A, got "bank a"/],
      [['start', '--banks', '0'], /--banks must be a whole number from 1 to 26, got "0"/],
      [['start', '--exit-when-done'], /--exit-when-done needs --demo-events N/],
      [['publish', join(dir, 'missing.ndjson'), '--bank', 'BANK-A'], /file not found: .*missing\.ndjson/],
      [['publish'], /give one file/],
      [['rejected', 'list', '--limit', 'lots'], /--limit must be a whole number/],
      [['rejected', 'show'], /the subcommand is `list`/],
      [['deadletter', 'redrive', '--bank', 'BANK-A'], /give either --all or one message id|no running local stack/],
      [['records', 'not-a-subject'], /the subject must be a subject ref|no running local stack/],
      [['status', '--colour'], /Unknown option '--colour'/],
    ];
    for (const [args, message] of cases) {
      const r = run(...args);
      expect({ args, status: r.status === 0 ? 0 : 'non-zero' }).toEqual({ args, status: 'non-zero' });
      expect(r.stderr).toMatch(message);
    }
  });

  it('names the missing stack and an unknown bank', () => {
    const noStack = run('status', '--bank', 'BANK-A');
    expect(noStack.status).toBe(1);
    expect(noStack.stderr).toMatch(/no running local stack: .*stack\.json does not exist/);
    // A stack file of a running process (this test's) with two banks.
    const file = join(dir, 'stack.json');
    writeFileSync(
      file,
      JSON.stringify({
        pid: process.pid,
        banks: [{ bankId: 'BANK-A' }, { bankId: 'BANK-B' }],
        hosts: [],
        chain: {},
      })
    );
    const r = spawnSync(process.execPath, [cli, 'status', '--bank', 'BANK-Q'], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, LEDGER_BRIDGE_STACK_FILE: file },
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown bank "BANK-Q"; the local consortium has BANK-A, BANK-B/);
  });

  it('sample-events writes valid, distinct events as NDJSON', () => {
    const r = run('sample-events', '50', '--bank', 'BANK-C', '--subjects', '10');
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(50);
    const ids = new Set<string>();
    const perSubject = new Map<string, number[]>();
    for (const line of lines) {
      const parsed = parseCreditUpdate(Buffer.from(line), 'BANK-C');
      expect(parsed).toMatchObject({ ok: true });
      if (!parsed.ok) continue;
      ids.add(parsed.event.eventId);
      const key = JSON.stringify(parsed.event.subject);
      perSubject.set(key, [...(perSubject.get(key) ?? []), parsed.event.sequence]);
    }
    expect(ids.size).toBe(50);
    expect(perSubject.size).toBe(10);
    for (const sequences of perSubject.values()) expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
  });
});
