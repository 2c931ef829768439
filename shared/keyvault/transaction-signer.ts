import {
  Transaction,
  copyRequest,
  keccak256,
  type Signature,
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

/** What signing a transaction takes: the digest to sign, and the raw transaction once its signature is known. */
export interface SigningPayload {
  digest: string;
  serialize(signature: Signature): string;
}

/**
 * The signing digest and signed encoding of a legacy (EIP-155), EIP-2930 or EIP-1559 transaction; blob and
 * set-code transactions (types 3, 4) are refused. Encoded here, not by ethers: for a batch's ~55 KB of calldata
 * ethers converts between hex and bytes in JavaScript several times a transaction (~25 ms of a host's CPU a
 * 567-record batch, and its garbage); Buffer does it natively. Unit tests hold every type byte for byte to ethers'
 * encoding.
 */
export function signingPayload(tx: Transaction): SigningPayload {
  const type = tx.type ?? tx.inferType();
  const call = [tx.to ? bytes(tx.to) : Buffer.alloc(0), quantity(tx.value), bytes(tx.data)];
  const rs = (sig: Signature): Buffer[] => [quantity(sig.r), quantity(sig.s)];
  if (type === 0) {
    const body = [...[tx.nonce, tx.gasPrice, tx.gasLimit].map(quantity), ...call];
    // EIP-155: the digest covers the chain id, and v carries it with the recovery parity.
    const v = (sig: Signature): Buffer => quantity(tx.chainId * 2n + 35n + BigInt(sig.yParity));
    return {
      digest: keccak256(rlp([...body, ...[tx.chainId, 0, 0].map(quantity)])),
      serialize: (sig) => hex(rlp([...body, v(sig), ...rs(sig)])),
    };
  }
  const fees = type === 1 ? [tx.gasPrice] : type === 2 ? [tx.maxPriorityFeePerGas, tx.maxFeePerGas] : undefined;
  if (!fees) throw new Error(`transaction type ${type}: only types 0, 1 and 2 are signed here`);
  const accessList = (tx.accessList ?? []).map((entry) => [bytes(entry.address), entry.storageKeys.map(bytes)]);
  const body = [...[tx.chainId, tx.nonce, ...fees, tx.gasLimit].map(quantity), ...call, accessList];
  const typed = (items: RlpItem[]): Buffer => Buffer.concat([Buffer.from([type]), rlp(items)]);
  return {
    digest: keccak256(typed(body)),
    serialize: (sig) => hex(typed([...body, quantity(sig.yParity), ...rs(sig)])),
  };
}

type RlpItem = Buffer | RlpItem[];

/** Recursive Length Prefix encoding (the Ethereum yellow paper, appendix B). */
function rlp(item: RlpItem): Buffer {
  if (Buffer.isBuffer(item)) {
    if (item.length === 1 && item[0]! < 0x80) return item;
    return Buffer.concat([rlpLength(item.length, 0x80), item]);
  }
  const payload = Buffer.concat(item.map(rlp));
  return Buffer.concat([rlpLength(payload.length, 0xc0), payload]);
}

function rlpLength(length: number, offset: number): Buffer {
  if (length <= 55) return Buffer.from([offset + length]);
  const size = quantity(length);
  return Buffer.concat([Buffer.from([offset + 55 + size.length]), size]);
}

/** A non-negative integer as RLP takes it: big-endian, no leading zeros (zero is no bytes at all). */
function quantity(value: bigint | number | string | null): Buffer {
  const n = BigInt(value ?? 0);
  if (n < 0n) throw new Error(`${n} is negative: not a transaction quantity`);
  if (n === 0n) return Buffer.alloc(0);
  const digits = n.toString(16);
  return Buffer.from(digits.length % 2 ? `0${digits}` : digits, 'hex');
}

const bytes = (hexString: string): Buffer => Buffer.from(hexString.slice(2), 'hex');
const hex = (buffer: Buffer): string => `0x${buffer.toString('hex')}`;
