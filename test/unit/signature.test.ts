import {
  SigningKey,
  Transaction,
  Wallet,
  computeAddress,
  hexlify,
  getBytes,
  randomBytes,
  type TransactionRequest,
} from 'ethers';
import { toEthereumSignature } from '../../shared/keyvault/signature';
import { signingPayload, unsignedTransaction } from '../../shared/keyvault/transaction-signer';
import { LocalTransactionSigner } from '../support/local-signer';

const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const word = (x: bigint) => getBytes(`0x${x.toString(16).padStart(64, '0')}`);
const p1363 = (r: bigint, s: bigint) => new Uint8Array([...word(r), ...word(s)]);

const key = new SigningKey(randomBytes(32));
const address = computeAddress(key.publicKey);

describe('toEthereumSignature', () => {
  it('keeps a low s and finds the parity that recovers the address', () => {
    for (let i = 0; i < 8; i++) {
      const digest = randomBytes(32);
      const expected = key.sign(digest); // ethers signs low-s
      const { signature, folded } = toEthereumSignature(p1363(BigInt(expected.r), BigInt(expected.s)), digest, address);
      expect(folded).toBe(false);
      expect(signature.serialized).toBe(expected.serialized);
    }
  });

  it('folds a high s to n - s (EIP-2) and still recovers the address', () => {
    for (let i = 0; i < 8; i++) {
      const digest = randomBytes(32);
      const expected = key.sign(digest);
      const high = N - BigInt(expected.s);
      expect(high > N / 2n).toBe(true);
      const { signature, folded } = toEthereumSignature(p1363(BigInt(expected.r), high), digest, address);
      expect(folded).toBe(true);
      expect(signature.serialized).toBe(expected.serialized);
    }
  });

  it('refuses a signature that recovers to another address, or is malformed', () => {
    const digest = randomBytes(32);
    const { r, s } = key.sign(digest);
    const other = Wallet.createRandom().address;
    expect(() => toEthereumSignature(p1363(BigInt(r), BigInt(s)), digest, other)).toThrow(
      `does not recover to the key's address ${other}`
    );
    expect(() => toEthereumSignature(new Uint8Array(65), digest, address)).toThrow('65-byte ES256K signature');
    expect(() => toEthereumSignature(p1363(0n, BigInt(s)), digest, address)).toThrow('out of range');
    expect(() => toEthereumSignature(p1363(BigInt(r), N), digest, address)).toThrow('out of range');
  });
});

describe('unsignedTransaction and the local signer', () => {
  const wallet = new Wallet(key.privateKey);
  const base: TransactionRequest = { to: Wallet.createRandom().address, chainId: 31337, nonce: 3, gasLimit: 21_000 };

  it('refuses a foreign from, and a missing chainId or nonce', async () => {
    await expect(unsignedTransaction({ ...base, from: Wallet.createRandom().address }, address, null)).rejects.toThrow(
      `does not match the signer's address ${address}`
    );
    await expect(unsignedTransaction({ ...base, chainId: undefined }, address, null)).rejects.toThrow('no chainId');
    await expect(unsignedTransaction({ ...base, nonce: undefined }, address, null)).rejects.toThrow('no nonce');
    const ok = await unsignedTransaction({ ...base, from: address.toLowerCase() }, address, null);
    expect(ok.nonce).toBe(3);
  });

  it('signs what a Wallet signs, behind the same interface', async () => {
    const tx = { ...base, maxFeePerGas: 2n, maxPriorityFeePerGas: 1n };
    const serialized = await new LocalTransactionSigner(wallet).signTransaction(tx);
    expect(serialized).toBe(await wallet.signTransaction(tx));
    expect(Transaction.from(serialized).from).toBe(address);
  });
});

describe('signingPayload', () => {
  const to = Wallet.createRandom().address;
  const uint = (bytes: number) => BigInt(hexlify(randomBytes(bytes)));
  const accessList = [
    { address: to, storageKeys: [hexlify(randomBytes(32)), hexlify(randomBytes(32))] },
    { address: Wallet.createRandom().address, storageKeys: [] },
  ];
  // Boundaries of RLP's forms: one byte under 0x80 stands for itself; 55 bytes is the longest short string.
  const datas = ['0x', '0x00', '0x7f', '0x80', 55, 56, 55_000].map((d) =>
    typeof d === 'number' ? hexlify(randomBytes(d)) : d
  );
  const cases: TransactionRequest[] = datas.flatMap((data, i) => [
    {
      type: 2,
      to,
      data,
      chainId: 31337,
      nonce: i,
      gasLimit: uint(3),
      maxFeePerGas: uint(8),
      maxPriorityFeePerGas: uint(4),
      value: i % 2 ? uint(12) : 0n,
    },
    {
      type: 2,
      to: null,
      data,
      chainId: 1,
      nonce: 0,
      gasLimit: 0,
      maxFeePerGas: 0n,
      maxPriorityFeePerGas: 0n,
      accessList,
    },
    {
      type: 1,
      to,
      data,
      chainId: uint(2) || 1n,
      nonce: i,
      gasLimit: 21_000,
      gasPrice: uint(5),
      accessList: i % 2 ? accessList : [],
    },
    { type: 0, to, data, chainId: uint(4) || 1n, nonce: 2 ** i, gasLimit: 21_000 + i, gasPrice: i % 2 ? 0n : uint(9) },
    { to, data, chainId: 5, nonce: i, gasLimit: 30_000, gasPrice: 1n }, // no type: ethers infers one
  ]);

  it("signs over ethers' digest and serializes as ethers does, for every type it signs", async () => {
    for (const request of cases) {
      const tx = await unsignedTransaction(request, address, null);
      const payload = signingPayload(tx);
      expect(payload.digest).toBe(tx.unsignedHash);
      tx.signature = key.sign(payload.digest);
      expect(payload.serialize(tx.signature)).toBe(tx.serialized);
      expect(Transaction.from(payload.serialize(tx.signature)).from).toBe(address);
    }
  });

  it('refuses blob and set-code transactions', async () => {
    const blob = await unsignedTransaction({ to, chainId: 1, nonce: 0, type: 2, maxFeePerGas: 2n }, address, null);
    blob.type = 3;
    expect(() => signingPayload(blob)).toThrow('transaction type 3: only types 0, 1 and 2 are signed here');
  });
});
