import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { DefaultAzureCredential, ManagedIdentityCredential } from '@azure/identity';

/**
 * The credential for the local stack's stand-ins (Key Vault, Application Insights). They check that a bearer
 * token is present, as the real services challenge for one, but not its signature. Never used in Azure: the
 * config module only selects it when LEDGER_ENVIRONMENT=local.
 */
export const localStackCredential: TokenCredential = {
  getToken: async (): Promise<AccessToken> => ({
    token: 'local-stack-token',
    expiresOnTimestamp: Date.now() + 3600_000,
  }),
};

/**
 * Managed identity in Azure (user-assigned when a client id is given); DefaultAzureCredential elsewhere so a
 * developer's `az login` works against real resources from the CLI.
 */
export function azureCredential(managedIdentityClientId?: string): TokenCredential {
  if (process.env.WEBSITE_INSTANCE_ID || process.env.IDENTITY_ENDPOINT) {
    return managedIdentityClientId
      ? new ManagedIdentityCredential({ clientId: managedIdentityClientId })
      : new ManagedIdentityCredential();
  }
  return new DefaultAzureCredential(managedIdentityClientId ? { managedIdentityClientId } : {});
}

/**
 * Key Vault client options. The SDK insists that the vault host ends in the challenge's resource domain
 * (*.vault.azure.net); the local stand-in on 127.0.0.1 cannot, so the check is off for the local stack only.
 */
export function keyVaultClientOptions(environment: 'azure' | 'local'): {
  disableChallengeResourceVerification?: boolean;
} {
  return environment === 'local' ? { disableChallengeResourceVerification: true } : {};
}
