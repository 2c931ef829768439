import { parseLogs, parseMinedTx } from '../../shared/chain/rpc-answers';

/** The submitter reads receipts raw (without their logs); the answer is checked as ethers would check it. */
describe('parseMinedTx', () => {
  const hash = `0x${'ab'.repeat(32)}`;
  const receipt = {
    transactionHash: hash,
    blockNumber: '0x1f',
    blockHash: `0x${'cd'.repeat(32)}`,
    status: '0x1',
    logs: [],
  };

  it('takes the hash, block and status of a mined transaction', () => {
    expect(parseMinedTx({ ...receipt, blockHash: receipt.blockHash.toUpperCase().replace('0X', '0x') }, hash)).toEqual({
      hash,
      blockNumber: 31,
      blockHash: receipt.blockHash,
      status: 1,
    });
    expect(parseMinedTx({ ...receipt, status: '0x0' }, hash)?.status).toBe(0);
  });

  it('says not mined for no receipt, or one a node gives while the transaction is pending', () => {
    expect(parseMinedTx(null, hash)).toBeNull();
    expect(parseMinedTx({ ...receipt, blockNumber: null, blockHash: null }, hash)).toBeNull();
  });

  it('refuses an answer that is not a receipt of this transaction, naming what is wrong', () => {
    expect(() => parseMinedTx('0x1', hash)).toThrow(
      `invalid eth_getTransactionReceipt answer for ${hash}: not an object`
    );
    expect(() => parseMinedTx({ ...receipt, transactionHash: `0x${'ef'.repeat(32)}` }, hash)).toThrow(
      /transactionHash is not the hash asked for/
    );
    expect(() => parseMinedTx({ ...receipt, status: undefined }, hash)).toThrow(/status is not a hex quantity/);
    expect(() => parseMinedTx({ ...receipt, blockNumber: 31 }, hash)).toThrow(/blockNumber is not a hex quantity/);
    expect(() => parseMinedTx({ ...receipt, blockHash: '0x1f' }, hash)).toThrow(
      /blockHash is not a 32-byte hex string/
    );
  });
});

/** The watcher reads eth_getLogs raw; every field it uses is checked, and a log of another contract or block is refused. */
describe('parseLogs', () => {
  const hash = (byte: string): string => `0x${byte.repeat(32)}`;
  const log = {
    address: '0x5fbdb2315678afecb367f032d93f642f64180aa3',
    blockNumber: '0xa',
    blockHash: hash('AB'),
    transactionHash: hash('cd'),
    logIndex: '0x2',
    topics: [hash('11'), hash('22')],
    data: '0x0001',
    removed: false,
  };
  const asked = { address: '0x5FbDB2315678afecb367f032d93F642f64180aa3', from: 10, to: 12 };

  it('takes the fields the watcher uses, hashes in lower case', () => {
    expect(parseLogs([log], asked)).toEqual([
      {
        blockNumber: 10,
        blockHash: hash('ab'),
        transactionHash: hash('cd'),
        index: 2,
        topics: [hash('11'), hash('22')],
        data: '0x0001',
        removed: false,
      },
    ]);
    expect(parseLogs([{ ...log, removed: true }], { ...asked, to: 10 })[0]!.removed).toBe(true);
    expect(parseLogs([], asked)).toEqual([]);
  });

  it('refuses an answer it cannot trust, naming the log and the field', () => {
    const bad =
      (answer: unknown): (() => unknown) =>
      () =>
        parseLogs(answer, asked);
    expect(bad({})).toThrow('invalid eth_getLogs answer for blocks 10–12: not an array');
    expect(bad([log, null])).toThrow(/log 1 is not an object/);
    expect(bad([{ ...log, address: '0x0000000000000000000000000000000000000001' }])).toThrow(
      'log 0 is from 0x0000000000000000000000000000000000000001, not 0x5FbDB2315678afecb367f032d93F642f64180aa3'
    );
    expect(bad([{ ...log, blockNumber: '0x9' }])).toThrow(/log 0 is from block 9, outside the range/);
    expect(bad([{ ...log, blockHash: '0x12' }])).toThrow(/log 0: blockHash is not a 32-byte hash/);
    expect(bad([{ ...log, logIndex: 2 }])).toThrow(/log 0: logIndex is not hex/);
    expect(bad([{ ...log, data: '0x123' }])).toThrow(/log 0: data is not hex/);
    expect(bad([{ ...log, topics: ['0x1'] }])).toThrow(/log 0: a topic is not a 32-byte hash/);
  });
});
