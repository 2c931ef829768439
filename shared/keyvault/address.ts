import { computeAddress } from 'ethers';

/** The Ethereum address of a secp256k1 public key given as a JWK (Key Vault's `key.x` / `key.y`). */
export function ethereumAddressFromJwk(jwk: { crv?: string; x?: Uint8Array; y?: Uint8Array }): string {
  if (jwk.crv !== 'P-256K' && jwk.crv !== 'SECP256K1') {
    throw new Error(`the signer key must be on curve P-256K (secp256k1), but it is ${jwk.crv ?? 'unknown'}`);
  }
  if (jwk.x?.length !== 32 || jwk.y?.length !== 32) throw new Error('the signer key JWK must have 32-byte x and y');
  return computeAddress('0x04' + Buffer.from(jwk.x).toString('hex') + Buffer.from(jwk.y).toString('hex'));
}
