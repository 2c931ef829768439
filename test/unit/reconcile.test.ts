import type { BatchRow, BatchStatus } from '../../shared/storage/batches';
import { capFees, bumpFees } from '../../shared/submit/fees';
import { noncePlan } from '../../shared/submit/reconcile';

const row = (nonce: number, status: BatchStatus): BatchRow => ({
  signer: '0xs',
  nonce,
  status,
  eventIds: [],
  enqueuedAts: [],
  rawTx: '0x',
  txHashes: [],
  claimed: true,
  createdAt: '',
  createdBlock: 0,
  broadcasts: 1,
  feeBumps: 0,
});

describe('the nonce plan (rule 4 of shared/submit/reconcile.ts)', () => {
  it('starts new batches after the highest row, or at the chain nonce when the log is behind or empty', () => {
    expect(noncePlan([row(4, 'mined'), row(5, 'signed')], 5, 4)).toMatchObject({ next: 6, gaps: [], diverged: [] });
    expect(noncePlan([], undefined, 7)).toMatchObject({ next: 7, gaps: [] });
    expect(noncePlan([], 4, 9)).toMatchObject({ next: 9, gaps: [] }); // the key was used outside the log
  });

  it('finds nonces the chain waits on without a live row: given up, or never written', () => {
    const given = row(3, 'abandoned');
    const plan = noncePlan([given, row(5, 'signed'), row(6, 'mined')], 6, 3);
    expect(plan.gaps).toEqual([
      { nonce: 3, row: given },
      { nonce: 4, row: undefined },
    ]);
    expect(plan.live.map((r) => r.nonce)).toEqual([5, 6]);
    expect(plan.next).toBe(7);
  });

  it('leaves given-up rows below the chain nonce alone, and reports confirmed rows the chain has not reached', () => {
    const plan = noncePlan([row(1, 'abandoned'), row(2, 'confirmed'), row(3, 'confirmed')], 3, 2);
    expect(plan.gaps).toEqual([]);
    expect(plan.diverged.map((r) => r.nonce)).toEqual([2, 3]);
  });
});

describe('the fee cap (rule 3)', () => {
  const gwei = 10n ** 9n;
  it('caps every fee field, also the first one', () => {
    expect(capFees({ kind: 'eip1559', maxFeePerGas: 90n * gwei, maxPriorityFeePerGas: 2n * gwei }, 50n * gwei)).toEqual(
      {
        kind: 'eip1559',
        maxFeePerGas: 50n * gwei,
        maxPriorityFeePerGas: 2n * gwei,
      }
    );
    expect(capFees({ kind: 'eip1559', maxFeePerGas: 9n, maxPriorityFeePerGas: 8n }, 5n)).toEqual({
      kind: 'eip1559',
      maxFeePerGas: 5n,
      maxPriorityFeePerGas: 5n,
    });
    expect(capFees({ kind: 'legacy', gasPrice: 90n }, 50n)).toEqual({ kind: 'legacy', gasPrice: 50n });
    expect(capFees({ kind: 'free' }, 1n)).toEqual({ kind: 'free' });
  });

  it('bumps at least 25% above the previous fees, or to the current ones when those are higher', () => {
    const previous = { kind: 'eip1559', maxFeePerGas: 100n, maxPriorityFeePerGas: 10n } as const;
    expect(bumpFees(previous, { kind: 'eip1559', maxFeePerGas: 50n, maxPriorityFeePerGas: 5n })).toEqual({
      kind: 'eip1559',
      maxFeePerGas: 126n,
      maxPriorityFeePerGas: 13n,
    });
    expect(bumpFees(previous, { kind: 'eip1559', maxFeePerGas: 400n, maxPriorityFeePerGas: 5n })).toMatchObject({
      maxFeePerGas: 400n,
    });
  });
});
