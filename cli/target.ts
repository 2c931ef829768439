import { existsSync, readFileSync } from 'node:fs';
import type { TokenCredential } from '@azure/core-auth';
import { ConfigError, loadConfig, type Config } from '../shared/config';
import { azureCredential, localStackCredential } from '../shared/identity';
import { TableStore } from '../shared/storage/tables';
import { bankSettings, defaultStackFile, readStackFile, type StackInfo } from '../local/stack/stack';
import { trustCertificate } from '../local/stack/tls';
import { UsageError } from './common';

/**
 * The bank a command works against, from its settings: the running local consortium's (.local/stack.json, or
 * LEDGER_BRIDGE_STACK_FILE) when there is one, else the environment's, read exactly as the Function App reads
 * them (in Azure: identity-based, with `az login` or a managed identity). One code path for both.
 */
export interface BankTarget {
  config: Config;
  credential: TokenCredential;
  tables: TableStore;
  /** The local stack this bank runs on, when it does. */
  local?: StackInfo;
}

export const stackFile = (): string => process.env.LEDGER_BRIDGE_STACK_FILE ?? defaultStackFile();

/** The banks `--bank` names (every bank of a local consortium when `all` and no --bank; else the first). */
export function bankTargets(bankId: string | undefined, all = false): BankTarget[] {
  const file = stackFile();
  if (!existsSync(file)) {
    let config: Config;
    try {
      config = loadConfig(process.env);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      throw new Error(
        `no running local stack: ${file} does not exist (start one with \`npm start\`), and the environment ` +
          `holds no bank's settings: ${err.message}`
      );
    }
    if (bankId && bankId !== config.bankId)
      throw new UsageError(`--bank ${bankId} does not match BANK_ID=${config.bankId} of these settings`);
    return [target(config)];
  }
  const info = readStackFile(file);
  const known = info.banks.map((b) => b.bankId);
  if (bankId && !known.includes(bankId))
    throw new UsageError(`unknown bank "${bankId}"; the local consortium has ${known.join(', ')}`);
  const ids = bankId ? [bankId] : all ? known : known.slice(0, 1);
  // The stand-ins (Key Vault) serve HTTPS with the stack's own certificate, as its apps trust it.
  if (info.caCertFile) trustCertificate(readFileSync(info.caCertFile, 'utf8'));
  // The stack's settings start projections at the registry's deploy block, not at block 0.
  return ids.map((id) =>
    target(loadConfig({ ...bankSettings(info, id), WATCH_FROM_BLOCK: String(info.chain.deployBlock) }), info)
  );
}

export const bankTarget = (bankId: string | undefined): BankTarget => bankTargets(bankId)[0]!;

function target(config: Config, local?: StackInfo): BankTarget {
  const credential =
    config.environment === 'local' ? localStackCredential : azureCredential(config.managedIdentityClientId);
  return { config, credential, tables: new TableStore(config.storage, credential), local };
}
