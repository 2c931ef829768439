import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProbeError, RpcError, isMethodNotFound } from '../../shared/ops/rpc';
import { blockHeader, syncStatus } from '../../shared/ops/rpc-parse';
import {
  FAMILIES,
  activityFromMiners,
  consensusHealth,
  parseActivity,
  parseValidators,
} from '../../shared/ops/validator-methods';

/** Answers recorded from the clients' public documentation (each fixture names its page). */
interface Fixture {
  source: string;
  method: string;
  response: { result: unknown };
  correctedResponse?: { result: unknown };
}
const fixture = (method: string): Fixture =>
  JSON.parse(readFileSync(join(__dirname, '../fixtures/validator-rpc', `${method}.json`), 'utf8')) as Fixture;

const BESU_VALIDATORS = [
  '0x42d4287eac8078828cf5f3486cfe601a275a49a5',
  '0xb1b2bc9582d2901afdc579f528a35ca41403fa85',
  '0xef1bfb6a12794615c9b0b5a21e6741f01e570185',
];
const SIGNER_METRICS = [
  { address: '0x42eb768f2244c8811c63729a21a3569731535f06', blocks: 33, lastBlock: 99 },
  { address: '0x7ffc57839b00206d1ad20c69a1981b489f772031', blocks: 33, lastBlock: 97 },
  { address: '0xb279182d99e65703f0076e4812653aab85fca0f0', blocks: 33, lastBlock: 98 },
];

describe('validator-set and participation answers → one health model', () => {
  it('every fixture cites its documentation page and names a method the probe uses', () => {
    const used = new Set(FAMILIES.flatMap((f) => [f.validators.method, f.activity.method]));
    for (const method of used) {
      const f = fixture(method);
      expect(f.method).toBe(method);
      expect(f.source).toMatch(
        /^https:\/\/(besu\.hyperledger\.org|docs\.goquorum\.consensys\.io|geth\.ethereum\.org)\//
      );
    }
  });

  it.each(['qbft', 'ibft'])('Besu %s: validators by block number and signer metrics', (family) => {
    const validators = parseValidators(
      `${family}_getValidatorsByBlockNumber`,
      fixture(`${family}_getValidatorsByBlockNumber`).response.result
    );
    const activity = parseActivity(`${family}_getSignerMetrics`, fixture(`${family}_getSignerMetrics`).response.result);
    const health = consensusHealth(family as 'qbft', validators, activity);
    expect(health).toEqual({
      source: family,
      validators: BESU_VALIDATORS,
      activity: SIGNER_METRICS,
      windowBlocks: 99,
      // The docs' two examples come from different networks: none of these validators proposed there.
      silent: BESU_VALIDATORS,
    });
  });

  it('GoQuorum istanbul: the documented validator list has a malformed address and is rejected, naming it', () => {
    const f = fixture('istanbul_getValidators');
    expect(() => parseValidators('istanbul_getValidators', f.response.result)).toThrow(
      new ProbeError(
        'istanbul_getValidators[2]: expected a 20-byte address (0x + 40 hex digits), got "0xdc25ef3F5b8a186998338a2ada83795fba2d695"'
      )
    );
    const validators = parseValidators('istanbul_getValidators', f.correctedResponse!.result);
    const activity = parseActivity('istanbul_status', fixture('istanbul_status').response.result);
    expect(consensusHealth('istanbul', validators, activity)).toEqual({
      source: 'istanbul',
      validators: [
        '0x71c7656ec7ab88b098defb751b7401b5f6d8976f',
        '0x89205a3a3b2a69de6dbf7f01ed13b2108b2c43e7',
        '0xdc25ef3f5b8a186998338a2ada83795fba2d6950',
      ],
      activity: [
        { address: '0x71c7656ec7ab88b098defb751b7401b5f6d8976f', blocks: 1 },
        { address: '0x89205a3a3b2a69de6dbf7f01ed13b2108b2c43e7', blocks: 3 },
      ],
      windowBlocks: 2,
      silent: ['0xdc25ef3f5b8a186998338a2ada83795fba2d6950'],
    });
  });

  it('geth Clique: signers and status with in-turn share', () => {
    const validators = parseValidators('clique_getSigners', fixture('clique_getSigners').response.result);
    const health = consensusHealth(
      'clique',
      validators,
      parseActivity('clique_status', fixture('clique_status').response.result)
    );
    expect(health.source).toBe('clique');
    expect(health.validators).toHaveLength(3);
    expect(health.inturnPercent).toBe(100);
    expect(health.windowBlocks).toBe(64);
    expect(health.activity).toHaveLength(7);
    expect(health.activity!.find((a) => a.address === '0xb279182d99e65703f0076e4812653aab85fca0f0')?.blocks).toBe(10);
    expect(health.silent).toEqual([]);
  });

  it.each([
    ['qbft_getSignerMetrics', { address: '0x1' }, 'qbft_getSignerMetrics: expected an array of signer objects'],
    [
      'qbft_getSignerMetrics',
      [{ address: '0x42eb768f2244c8811c63729a21a3569731535f06', proposedBlockCount: 'many' }],
      'qbft_getSignerMetrics[0].proposedBlockCount: expected a hex quantity, got "many"',
    ],
    ['istanbul_status', { numBlocks: 2 }, 'istanbul_status: sealerActivity is not an object'],
    ['istanbul_status', { numBlocks: 2, sealerActivity: { nobody: 1 } }, 'sealerActivity key: expected a 20-byte'],
    [
      'clique_status',
      { numBlocks: 64, inturnPercent: 250, sealerActivity: {} },
      'clique_status: inturnPercent must be a number from 0 to 100',
    ],
  ])('a malformed %s answer is a probe error with a clear message', (method, result, message) => {
    expect(() => parseActivity(method, result)).toThrow(ProbeError);
    expect(() => parseActivity(method, result)).toThrow(message);
  });

  it('rejects validator lists that are not arrays of addresses', () => {
    expect(() => parseValidators('clique_getSigners', null)).toThrow('expected an array of addresses, got null');
    expect(() => parseValidators('clique_getSigners', ['0x42eb768f2244c8811c63729a21a3569731535f06', 7])).toThrow(
      'clique_getSigners[1]: expected a 20-byte address'
    );
  });

  it('falls back to block miners when no consensus API is offered', () => {
    const header = (n: number, miner: string) =>
      blockHeader(
        {
          number: `0x${n.toString(16)}`,
          hash: `0x${String(n).padStart(64, '0')}`,
          parentHash: `0x${String(n - 1).padStart(64, '0')}`,
          timestamp: `0x${(1000 + n).toString(16)}`,
          miner,
          transactions: [],
        },
        `block ${n}`
      );
    const a = '0x' + 'a'.repeat(40);
    const b = '0x' + 'b'.repeat(40);
    const health = consensusHealth('miners', undefined, activityFromMiners([header(1, a), header(2, b), header(3, a)]));
    expect(health).toEqual({
      source: 'miners',
      activity: [
        { address: a, blocks: 2, lastBlock: 3 },
        { address: b, blocks: 1, lastBlock: 2 },
      ],
      windowBlocks: 3,
    });
  });

  it('recognises "method not found" from geth, Besu and anvil, and nothing else', () => {
    expect(isMethodNotFound(new RpcError('x', -32601, 'Method not found'))).toBe(true);
    expect(
      isMethodNotFound(new RpcError('x', -32601, 'the method clique_status does not exist/is not available'))
    ).toBe(true);
    expect(isMethodNotFound(new RpcError('x', -32604, 'Method not enabled'))).toBe(true);
    expect(isMethodNotFound(new RpcError('x', -32000, 'execution reverted'))).toBe(false);
    expect(isMethodNotFound(new ProbeError('timeout'))).toBe(false);
  });

  it('reads eth_syncing defensively', () => {
    expect(syncStatus(false)).toEqual({ syncing: false });
    expect(syncStatus({ currentBlock: '0x10', highestBlock: '0x20', startingBlock: '0x0' })).toEqual({
      syncing: true,
      currentBlock: 16,
      highestBlock: 32,
    });
    expect(() => syncStatus(true)).toThrow('eth_syncing: expected false or a sync object, got boolean true');
  });
});
