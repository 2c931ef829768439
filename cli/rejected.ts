import { Rejections } from '../shared/storage/rejections';
import { print } from './common';
import { bankTarget } from './target';

/** `rejected list`: the newest rows of the bank's Rejections table. */
export async function rejectedListCommand(options: { bankId?: string; limit: number; json: boolean }): Promise<void> {
  const { config, tables } = bankTarget(options.bankId);
  const rows = await new Rejections(tables).list({ limit: options.limit });
  if (options.json) return print(JSON.stringify(rows));
  if (rows.length === 0) return print(`${config.bankId}: no rejected messages in the last 7 days`);
  for (const r of rows)
    print(
      `${r.enqueuedAt}  ${r.messageId}  ${r.code.padEnd(13)} ${r.reason}  (${r.bodySize} bytes, delivery ${r.deliveryCount})`
    );
  print(`${rows.length} rejected message(s) at ${config.bankId}`);
}
