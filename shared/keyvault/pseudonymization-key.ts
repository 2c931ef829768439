import type { TokenCredential } from '@azure/core-auth';
import { SecretClient } from '@azure/keyvault-secrets';
import type { Config } from '../config';
import { parsePseudonymizationKey } from '../domain/pseudonymize';
import { keyVaultClientOptions } from '../identity';
import { errorMessage, redactUrl } from '../redact';

/** Where the consortium's pseudonymization key comes from; the rule that uses it is pure (domain/pseudonymize). */

const keyVaultReads = new Map<string, Promise<Buffer>>();

/**
 * The consortium key: PSEUDONYMIZATION_SECRET on the local stack, else the Key Vault secret, read once per
 * process. A failed read is not cached, so the next message tries again (the caller throws meanwhile and the
 * broker redelivers). A rotated secret takes effect on restart; rotating it changes every ref, so it is a
 * consortium-wide, planned event anyway.
 */
export function loadPseudonymizationKey(
  config: Pick<Config, 'environment' | 'keyVault' | 'pseudonymization'>,
  credential: TokenCredential
): Promise<Buffer> {
  const { localSecret, secretName } = config.pseudonymization;
  if (localSecret !== undefined) {
    return Promise.resolve(parsePseudonymizationKey(localSecret, 'PSEUDONYMIZATION_SECRET'));
  }
  const id = `${config.keyVault.url}/secrets/${secretName}`;
  let read = keyVaultReads.get(id);
  if (!read) {
    const client = new SecretClient(config.keyVault.url, credential, keyVaultClientOptions(config.environment));
    read = client.getSecret(secretName).then(
      (secret) => parsePseudonymizationKey(secret.value ?? '', `Key Vault secret ${redactUrl(id)}`),
      (err: unknown) => {
        throw new Error(
          `cannot read the pseudonymization key, Key Vault secret ${redactUrl(id)}: ${errorMessage(err)}`,
          { cause: err }
        );
      }
    );
    read.catch(() => keyVaultReads.delete(id));
    keyVaultReads.set(id, read);
  }
  return read;
}
