import type { BaseWallet, TransactionRequest } from 'ethers';
import { signingPayload, unsignedTransaction, type TransactionSigner } from '../../shared/keyvault/transaction-signer';

/**
 * A TransactionSigner over an in-process private key, for tests only: it lives under test/, so the deployed
 * app cannot even import it, and `createKeyVaultSigner` never returns a local key.
 */
export class LocalTransactionSigner implements TransactionSigner {
  // A private field, not a property, so logging the signer never prints the wallet (and its key).
  readonly #wallet: BaseWallet;

  constructor(wallet: BaseWallet) {
    this.#wallet = wallet;
  }

  async getAddress(): Promise<string> {
    return this.#wallet.address;
  }

  async signTransaction(request: TransactionRequest): Promise<string> {
    const payload = signingPayload(await unsignedTransaction(request, this.#wallet.address, this.#wallet.provider));
    return payload.serialize(this.#wallet.signingKey.sign(payload.digest));
  }
}
