import { makeError } from 'ethers';
import { isRangeRefusal, LogRangeSizer } from '../../shared/watch/log-range';

const rpcError = (code: number, message: string): Error =>
  makeError('could not coalesce error', 'UNKNOWN_ERROR', { error: { code, message } });

describe('isRangeRefusal', () => {
  it.each([
    [-32005, 'query returned more than 10000 results'],
    [-32005, 'limit exceeded'],
    [-32602, 'exceed maximum block range: 5000'],
    [-32000, 'query returned more than 10000 results'],
    [-32000, 'query timeout exceeded'],
    [-32602, 'block range is too wide'],
  ])('recognizes code %d "%s"', (code, message) => {
    expect(isRangeRefusal(rpcError(code, message))).toBe(true);
  });

  it('recognizes an ethers timeout and a gateway timeout', () => {
    // Shaped as ethers makes them (code, info), without a live request.
    expect(isRangeRefusal(Object.assign(new Error('request timeout'), { code: 'TIMEOUT' }))).toBe(true);
    const gateway = { code: 'SERVER_ERROR', info: { responseStatus: '504 Gateway Timeout' } };
    expect(isRangeRefusal(Object.assign(new Error('server response 504'), gateway))).toBe(true);
  });

  it('does not mistake other failures for a range limit', () => {
    expect(isRangeRefusal(rpcError(-32602, 'invalid argument 0: hex string without 0x prefix'))).toBe(false);
    expect(isRangeRefusal(rpcError(-32000, 'header not found'))).toBe(false);
    expect(isRangeRefusal(rpcError(-32601, 'the method eth_getLogs does not exist'))).toBe(false);
    expect(isRangeRefusal(makeError('connection refused', 'NETWORK_ERROR', { event: 'x' }))).toBe(false);
    expect(isRangeRefusal(new Error('boom'))).toBe(false);
  });
});

describe('LogRangeSizer', () => {
  it('halves the refused range down to one block, then gives up', () => {
    const sizer = new LogRangeSizer(100);
    expect(sizer.shrink(100)).toBe(true);
    expect(sizer.blocks).toBe(50);
    expect(sizer.shrink(10)).toBe(true); // a short final range that was refused
    expect(sizer.blocks).toBe(5);
    sizer.shrink(5);
    sizer.shrink(2);
    expect(sizer.blocks).toBe(1);
    expect(sizer.shrink(1)).toBe(false);
  });

  it('doubles back after a run of successes, up to the configured range', () => {
    const sizer = new LogRangeSizer(8);
    sizer.shrink(8);
    sizer.shrink(4);
    expect(sizer.blocks).toBe(2);
    for (let i = 0; i < LogRangeSizer.GROW_AFTER - 1; i++) sizer.grow();
    expect(sizer.blocks).toBe(2);
    sizer.grow();
    expect(sizer.blocks).toBe(4);
    for (let i = 0; i < 3 * LogRangeSizer.GROW_AFTER; i++) sizer.grow();
    expect(sizer.blocks).toBe(8);
  });
});
