import { TableClient } from '@azure/data-tables';
import { TABLES, type TableName } from '../../shared/storage/tables';
import { defaultStackFile, readStackFile, type StackInfo } from '../stack/stack';

/** A mistake in the command line: exits 2 and repeats the usage. */
export class UsageError extends Error {}

export type Values = Record<string, string | boolean | undefined>;

export function wholeNumber(
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

export const stringOption = (values: Values, name: string): string | undefined =>
  typeof values[name] === 'string' ? values[name] : undefined;

/** One bank of the running local consortium (`ledger-bridge start`), with its Function App endpoint. */
export interface LocalBank {
  info: StackInfo;
  bankId: string;
  storageConnectionString: string;
  host: { url: string; functionKey: string; masterKey: string };
}

export function localStack(file = process.env.LEDGER_BRIDGE_STACK_FILE ?? defaultStackFile()): StackInfo {
  return readStackFile(file);
}

/** The bank `--bank` names (default: the first bank) of the running local consortium. */
export function localBank(bankId: string | undefined, info: StackInfo = localStack()): LocalBank {
  const id = bankId ?? info.banks[0]!.bankId;
  const bank = info.banks.find((b) => b.bankId === id);
  if (!bank) {
    throw new UsageError(
      `unknown bank "${id}"; the local consortium has ${info.banks.map((b) => b.bankId).join(', ')}`
    );
  }
  const host = info.hosts?.find((h) => h.bankId === id);
  if (!host) {
    throw new Error(
      `bank ${id} has no running Function App: the stack was started with \`ledger-bridge stack\`; use \`ledger-bridge start\``
    );
  }
  return { info, bankId: id, storageConnectionString: bank.storageConnectionString, host };
}

export function localTable(bank: Pick<LocalBank, 'storageConnectionString'>, name: TableName): TableClient {
  return TableClient.fromConnectionString(bank.storageConnectionString, name, { allowInsecureConnection: true });
}

export { TABLES };

/** Calls the bank's Function App with its function key; throws with the app's error message on non-2xx. */
export async function callApp(
  bank: LocalBank,
  path: string,
  init: { method?: string; body?: unknown } = {}
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${bank.host.url}${path}`, {
    method: init.method ?? 'GET',
    headers: { 'x-functions-key': bank.host.functionKey, 'content-type': 'application/json' },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body };
}

export const print = (line: string): void => void process.stdout.write(`${line}\n`);
