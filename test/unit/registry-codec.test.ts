import { Wallet, hexlify, makeError, randomBytes } from 'ethers';
import { bytes16ToEventId } from '../../shared/domain/event-id';
import type { ChainLog } from '../../shared/chain/rpc-answers';
import { decodeEvent } from '../../shared/watch/events';
import {
  SkipReason,
  bankIdToBytes32,
  bytes32ToBankId,
  decodeRegistryRevert,
  describeSkipReason,
  encodeSubmitBatch,
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

describe('decodeEvent', () => {
  const at = { blockNumber: 7, blockHash: `0x${'bb'.repeat(32)}`, transactionHash: `0x${'cc'.repeat(32)}`, index: 3 };
  const logOf = (name: string, args: unknown[]): ChainLog => {
    const { topics, data } = registryInterface.encodeEventLog(name, args);
    return { ...at, topics: topics.map((t) => t.toLowerCase()), data: data.toLowerCase(), removed: false };
  };

  it("reads CreditRecordUpdated from its ABI layout exactly as ethers' decoder does", () => {
    for (let i = 0; i < 50; i++) {
      const subject = hexlify(randomBytes(32));
      const bankId = i % 5 === 0 ? hexlify(randomBytes(32)) : bankIdToBytes32(`BANK-${i}`); // odd ids kept as hex
      const eventId = hexlify(randomBytes(16));
      const data = i === 0 ? 2n ** 256n - 1n : BigInt(hexlify(randomBytes(32)));
      const log = logOf('CreditRecordUpdated', [subject, bankId, eventId, data]);
      const reference = registryInterface.parseLog(log)!.args;
      expect(decodeEvent(log)).toEqual({
        kind: 'updated',
        at: { blockNumber: 7, blockHash: at.blockHash, txHash: at.transactionHash, logIndex: 3 },
        subjectRef: String(reference.subject).toLowerCase(),
        bankId: i % 5 === 0 ? bankId.toLowerCase() : `BANK-${i}`,
        eventId: bytes16ToEventId(String(reference.eventId)),
        data: reference.data as bigint,
      });
    }
  });

  it('refuses a CreditRecordUpdated log of another shape, naming the log', () => {
    const log = logOf('CreditRecordUpdated', [
      hexlify(randomBytes(32)),
      bankIdToBytes32('BANK-A'),
      hexlify(randomBytes(16)),
      1n,
    ]);
    expect(() => decodeEvent({ ...log, data: log.data.slice(0, 66) })).toThrow(
      `log 3 of ${at.transactionHash}: CreditRecordUpdated with 3 topics and 32 bytes of data (3 topics and 64 bytes expected)`
    );
    expect(() => decodeEvent({ ...log, topics: log.topics.slice(0, 2) })).toThrow(/with 2 topics/);
  });

  it('decodes the other watched events and ignores the rest', () => {
    const member = Wallet.createRandom().address;
    expect(decodeEvent(logOf('MemberAdded', [member, bankIdToBytes32('BANK-B')]))).toMatchObject({
      kind: 'memberAdded',
      address: member,
      bankId: 'BANK-B',
    });
    const skipped = logOf('CreditRecordSkipped', [
      hexlify(randomBytes(32)),
      bankIdToBytes32('BANK-B'),
      hexlify(randomBytes(16)),
      4n,
      5n,
      2,
    ]);
    expect(decodeEvent(skipped)).toMatchObject({ kind: 'skipped', bankId: 'BANK-B', sequence: 4n, reason: 2 });
    expect(decodeEvent(logOf('AdminChanged', [member, member]))).toBeUndefined();
  });
});

describe('submitBatch calldata', () => {
  const record = (data: bigint) => ({ subject: hexlify(randomBytes(32)), eventId: hexlify(randomBytes(16)), data });
  const byEthers = (records: ReturnType<typeof record>[]) =>
    registryInterface.encodeFunctionData('submitBatch', [records]);

  it("is ethers' ABI encoding, for no records, one, and a full batch of any data word", () => {
    const edges = [0n, 1n, 0x7fn, 0x80n, 2n ** 255n, 2n ** 256n - 1n].map(record);
    const full = Array.from({ length: 567 }, () => record(BigInt(hexlify(randomBytes(32)))));
    for (const records of [[], edges.slice(0, 1), edges, full])
      expect(encodeSubmitBatch(records)).toBe(byEthers(records));
  });

  it('refuses a record it cannot encode, naming the problem', () => {
    expect(() => encodeSubmitBatch([record(-1n)])).toThrow('record data -1 is not a uint256');
    expect(() => encodeSubmitBatch([record(2n ** 256n)])).toThrow('is not a uint256');
    expect(() => encodeSubmitBatch([{ ...record(1n), subject: '0x1234' }])).toThrow(
      '"0x1234" is not 32 bytes of 0x-prefixed hex'
    );
    expect(() => encodeSubmitBatch([{ ...record(1n), eventId: `0x${'zz'.repeat(16)}` }])).toThrow('16 bytes');
  });
});
