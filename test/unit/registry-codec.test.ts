import { Wallet, makeError } from 'ethers';
import {
  SkipReason,
  bankIdToBytes32,
  bytes32ToBankId,
  decodeRegistryRevert,
  describeSkipReason,
  registryErrorMessage,
  registryInterface,
  sequenceOf,
} from '../../shared/chain/registry';

describe('bank ids', () => {
  it('round-trip through bytes32', () => {
    const encoded = bankIdToBytes32('BANK-A');
    expect(encoded).toBe(`0x42414e4b2d41${'00'.repeat(26)}`);
    expect(bytes32ToBankId(encoded)).toBe('BANK-A');
    expect(bytes32ToBankId(bankIdToBytes32('Z'.repeat(31)))).toBe('Z'.repeat(31));
  });

  it.each(['', 'bank-a', 'BANK A', 'BANK_A', 'B'.repeat(32), 'BÄNK'])('rejects %j with a clear error', (bad) => {
    expect(() => bankIdToBytes32(bad)).toThrow(/invalid bank id .*1-31 characters of A-Z, 0-9 and '-'/);
  });

  it.each([`0x${'00'.repeat(32)}`, `0x${'41'.repeat(32)}`, '0x4142', `0x${'61'.repeat(3)}${'00'.repeat(29)}`])(
    'refuses to decode %s as a bank id',
    (bad) => expect(() => bytes32ToBankId(bad)).toThrow(/is not an encoded bank id/)
  );
});

describe('sequenceOf', () => {
  it('reads the low 64 bits of the data word', () => {
    expect(sequenceOf((0xabcdefn << 64n) | 42n)).toBe(42n);
    expect(sequenceOf(2n ** 256n - 1n)).toBe(2n ** 64n - 1n);
    expect(sequenceOf(1n << 64n)).toBe(0n);
  });
});

describe('skip reasons', () => {
  it('match the contract enum and read well', () => {
    expect([SkipReason.Duplicate, SkipReason.Stale, SkipReason.Conflict, SkipReason.InvalidSequence]).toEqual([
      1, 2, 3, 4,
    ]);
    expect(describeSkipReason(2n)).toMatch(/^stale/);
    expect(describeSkipReason(SkipReason.Conflict)).toMatch(/^conflict/);
    expect(describeSkipReason(9)).toBe('unknown skip reason 9');
  });
});

describe('revert decoding', () => {
  const member = Wallet.createRandom().address;
  const callException = (data: string) =>
    makeError('execution reverted', 'CALL_EXCEPTION', {
      action: 'estimateGas',
      data,
      reason: null,
      transaction: { to: null, data: '0x' },
      invocation: null,
      revert: null,
    });

  it('names the custom error and explains it', () => {
    const err = callException(registryInterface.encodeErrorResult('NotMember', [member]));
    expect(decodeRegistryRevert(err)).toEqual({
      name: 'NotMember',
      args: [member],
      message: `CreditRegistry rejected the call: NotMember(${member}) — the sender is not a consortium member`,
    });
    expect(registryErrorMessage(err)).toBe(decodeRegistryRevert(err)!.message);
  });

  it('finds revert data nested in the JSON-RPC error', () => {
    const data = registryInterface.encodeErrorResult('EmptyBatch', []);
    expect(decodeRegistryRevert({ info: { error: { code: 3, data } } })?.message).toBe(
      'CreditRegistry rejected the call: EmptyBatch() — the batch has no records (a caller bug)'
    );
  });

  it('leaves errors it cannot decode alone', () => {
    expect(decodeRegistryRevert(new Error('socket hang up'))).toBeUndefined();
    expect(decodeRegistryRevert(callException('0x08c379a0'))).toBeUndefined();
    expect(registryErrorMessage(new Error('socket hang up'))).toBe('socket hang up');
  });
});
