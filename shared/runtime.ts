import type { TokenCredential } from '@azure/core-auth';
import { Chain } from './chain/provider';
import { getConfig, type Config } from './config';
import { azureCredential, localStackCredential } from './identity';
import { createKeyVaultSigner } from './signing/key-vault-signer';
import type { TransactionSigner } from './signing/transaction-signer';
import { TableStore } from './storage/tables';
import { createTelemetry, type Telemetry } from './telemetry';

/** The process-wide clients every function shares, built once from the validated config. */
export interface Runtime {
  config: Config;
  credential: TokenCredential;
  tables: TableStore;
  chain: Chain;
  telemetry: Telemetry;
  /** This bank's Key Vault signer (the key is read on first use). */
  signer: TransactionSigner;
}

export function createRuntime(config: Config): Runtime {
  const credential =
    config.environment === 'local' ? localStackCredential : azureCredential(config.managedIdentityClientId);
  const telemetry = createTelemetry({
    connectionString: config.appInsightsConnectionString,
    roleName: `ledger-bridge-${config.bankId.toLowerCase()}`,
    // Entra ID ingestion in Azure; the local stand-in takes the connection string alone.
    credential: config.environment === 'azure' ? credential : undefined,
  });
  return {
    config,
    credential,
    tables: new TableStore(config.storage, credential),
    chain: new Chain({ rpcUrls: config.chain.rpcUrls, chainId: config.chain.chainId }),
    telemetry,
    signer: createKeyVaultSigner(config, credential, telemetry),
  };
}

let runtime: Runtime | undefined;

export function getRuntime(): Runtime {
  runtime ??= createRuntime(getConfig());
  return runtime;
}
