import {
  Transaction,
  copyRequest,
  getAddress,
  resolveAddress,
  resolveProperties,
  type NameResolver,
  type TransactionLike,
  type TransactionRequest,
} from 'ethers';

/**
 * What the submitter needs from a signer: its address, and a transaction signed and serialized, ready for
 * eth_sendRawTransaction and for the batch (write-ahead) row. In production this is always the Key Vault signer
 * (`createKeyVaultSigner` in ./key-vault-signer), whose private key never leaves the HSM.
 */
export interface TransactionSigner {
  getAddress(): Promise<string>;
  /** Returns the serialized signed transaction. */
  signTransaction(tx: TransactionRequest): Promise<string>;
}

/**
 * The unsigned transaction both signers sign, built the way ethers' Wallet does (addresses resolved, a `from`
 * other than the signer refused), plus two checks Wallet does not make: chainId and nonce must be given.
 * Defaulting either to 0 would silently produce a replayable pre-EIP-155 signature or a wrong nonce, and the
 * submitter is the nonce authority (AbstractSigner.sendTransaction fills both from the provider).
 */
export async function unsignedTransaction(
  request: TransactionRequest,
  signerAddress: string,
  resolver: NameResolver | null
): Promise<Transaction> {
  const tx = copyRequest(request);
  const { to, from } = await resolveProperties({
    to: tx.to ? resolveAddress(tx.to, resolver) : undefined,
    from: tx.from ? resolveAddress(tx.from, resolver) : undefined,
  });
  if (to != null) tx.to = to;
  if (from != null) {
    if (getAddress(from) !== getAddress(signerAddress)) {
      throw new Error(`transaction from ${from} does not match the signer's address ${signerAddress}`);
    }
    delete tx.from;
  }
  if (tx.chainId == null || tx.chainId === 0n) {
    throw new Error('the transaction has no chainId: set it explicitly (refusing a replayable signature)');
  }
  if (tx.nonce == null) throw new Error('the transaction has no nonce: set it explicitly');
  return Transaction.from(tx as TransactionLike<string>);
}
