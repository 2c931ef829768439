import { parseBenchArgs } from '../../bench/options';
import { Tracker, timelineOf, type Env, type Sample } from '../../bench/phases';
import { cpuCost, untilNinetyPercent, type BenchReport } from '../../bench/report';
import { percentile } from '../../bench/util';

describe('bench arithmetic', () => {
  it('splits CPU per record by part of the stack and derives the CPU-bound ceiling', () => {
    const cost = cpuCost(
      {
        records: 1000,
        machineBusyPercent: 97,
        cpuSeconds: {
          'azurite banka': 4,
          'azurite bankb': 3,
          anvil: 0.5,
          'bench (publisher, Key Vault stand-in, counter)': 1,
          'host BANK-A': 2,
          'host BANK-B': 1.5,
        },
      },
      2,
      500
    );
    expect(cost.msPerRecord).toEqual({ storageEmulators: 7, functionHosts: 3.5, bench: 1, chain: 0.5, total: 12 });
    expect(cost.cpuBoundRecordsPerSec).toBe(166.7); // 2 cores × 1000 ms / 12 ms
    expect(cost.coresForCapacity).toBe(6); // 500 records/s × 12 ms
    expect(cost.hostCoresForCapacity).toBe(1.8); // 500 × 3.5 ms = 1.75
    expect(cost.machineBusyPercent).toBe(97);
  });

  it('takes the nearest-rank percentile', () => {
    const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
    expect([percentile(sorted, 50), percentile(sorted, 99), percentile(sorted, 100)]).toEqual([50, 99, 100]);
    expect(percentile([], 50)).toBeNaN();
  });

  it('says where the time until 90% is projected went: first records on chain, blocks taken against the fewest, lag', () => {
    const perBlock = [10, 50, 20, 20].map((records, i) => ({ block: i + 1, txs: 1, records, gasUsed: 0, batches: [] }));
    const timeline = [
      { t: 0.5, projectedAll: 0, onChain: 0 },
      { t: 2.5, projectedAll: 0, onChain: 10 },
      { t: 8.5, projectedAll: 0, onChain: 100 },
      { t: 12.5, projectedAll: 95, onChain: 100 },
    ];
    const saturation = { records: 100, firstSentSec: 0.5, timeline, blocks: { perBlock } };
    const report = { phases: { saturation }, settings: { confirmations: 2 }, measuredBlockTimeSec: 2 };
    expect(untilNinetyPercent(report as unknown as BenchReport)).toBe(
      '**Until 90% is projected** (the end of the throughput measure): the first records were on chain 2 s after ' +
        "the first send; record 90 came in the phase's block 4, where 2 blocks as full as its fullest (50 records) " +
        'would have held it (its first 2 held 60); it was on chain at 8 s and projected at every bank at 12 s (the ' +
        'confirmations alone take 4 s).'
    );
  });

  it("times a bank's projection of a block by the checkpoint's write, not by the poll that read it", () => {
    const tracker = new Tracker({ stores: [{}, {}] } as unknown as Env, new Map(), new Map(), 1);
    const samples: Sample[] = [
      { t: 1000, checkpoints: [0, 0], writtenAt: [NaN, NaN], head: 2 },
      { t: 2600, checkpoints: [1, 2], writtenAt: [1900, 2450], head: 3 },
      { t: 3100, checkpoints: [2, 2], writtenAt: [NaN, 2450], head: 3 }, // no updatedAt: the poll's time
    ];
    tracker.samples.push(...samples);
    expect(tracker.projectedAt(1)).toEqual([1900, 2450]);
    // Bank 0 covered block 2 at a write no poll saw before 3100; bank 1's write at 2450 covered both blocks.
    expect(tracker.projectedAt(2)).toEqual([3100, 2450]);
    expect(tracker.projectedAt(3)).toEqual([NaN, NaN]);

    // Records in blocks 1, 1, 2, 3; block 3 never projected everywhere.
    const everyBank = (block: number): number => Math.max(...tracker.projectedAt(block));
    expect(timelineOf(samples, [1, 1, 2, 3], everyBank)).toEqual([
      { t: 1, projectedAll: 0, onChain: 3 }, // the first poll: head 2
      { t: 2.45, projectedAll: 2, onChain: 3 }, // block 1 at every bank, at the last bank's write
      { t: 2.6, projectedAll: 2, onChain: 4 },
      { t: 3.1, projectedAll: 3, onChain: 4 },
    ]);
  });

  it('refuses a bad option with the usage, naming the option', () => {
    expect(() => parseBenchArgs(['--events', 'many'])).toThrow(
      /--events must be a number >= 1, got many\nusage: bench/
    );
    expect(() => parseBenchArgs(['--banks', '0'])).toThrow(/--banks must be a number >= 1/);
    expect(parseBenchArgs(['--quick']).events).toBe(600);
    expect(() => parseBenchArgs(['--mixed', '--banks', '1'])).toThrow(/--mixed needs at least 2 banks/);
    expect(() => parseBenchArgs(['--mixed', '--mixed-rate', '0'])).toThrow(/--mixed-rate must be a number >= 1/);
    expect(parseBenchArgs(['--mixed'])).toMatchObject({ mixed: true, mixedRate: 100 });
    expect(parseBenchArgs([]).txOrder).toBe('fees');
    expect(parseBenchArgs(['--tx-order', 'fifo']).txOrder).toBe('fifo');
    expect(() => parseBenchArgs(['--tx-order', 'random'])).toThrow(/--tx-order must be fees or fifo, got random/);
  });
});
