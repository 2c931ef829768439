import { Signature, getAddress, hexlify, recoverAddress, toBeHex } from 'ethers';

const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const SECP256K1_HALF_N = SECP256K1_N >> 1n;

/**
 * Turns Key Vault's ES256K r‖s into an Ethereum signature: s folded to the low half (EIP-2; Key Vault, like any
 * HSM, returns either), and the recovery parity found by recovering both candidates and matching the address.
 */
export function toEthereumSignature(
  p1363: Uint8Array,
  digest: Uint8Array,
  address: string
): { signature: Signature; folded: boolean } {
  if (p1363.length !== 64) throw new Error(`Key Vault returned a ${p1363.length}-byte ES256K signature, not 64`);
  const r = BigInt(hexlify(p1363.subarray(0, 32)));
  const rawS = BigInt(hexlify(p1363.subarray(32)));
  if (r === 0n || r >= SECP256K1_N || rawS === 0n || rawS >= SECP256K1_N) {
    throw new Error('Key Vault returned an ES256K signature with r or s out of range');
  }
  const folded = rawS > SECP256K1_HALF_N;
  const s = folded ? SECP256K1_N - rawS : rawS;
  const expected = getAddress(address);
  for (const v of [27, 28]) {
    const signature = Signature.from({ r: toBeHex(r, 32), s: toBeHex(s, 32), v });
    try {
      if (recoverAddress(digest, signature) === expected) return { signature, folded };
    } catch {
      // r is not the x of a curve point for this parity; the other parity decides
    }
  }
  throw new Error(`the ES256K signature from Key Vault does not recover to the key's address ${expected}`);
}
