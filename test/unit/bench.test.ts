import { parseBenchArgs } from '../../bench/options';
import { cpuCost } from '../../bench/report';
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

  it('refuses a bad option with the usage, naming the option', () => {
    expect(() => parseBenchArgs(['--events', 'many'])).toThrow(
      /--events must be a number >= 1, got many\nusage: bench/
    );
    expect(() => parseBenchArgs(['--banks', '0'])).toThrow(/--banks must be a number >= 1/);
    expect(parseBenchArgs(['--quick']).events).toBe(600);
    expect(() => parseBenchArgs(['--mixed', '--banks', '1'])).toThrow(/--mixed needs at least 2 banks/);
    expect(() => parseBenchArgs(['--mixed', '--mixed-rate', '0'])).toThrow(/--mixed-rate must be a number >= 1/);
    expect(parseBenchArgs(['--mixed'])).toMatchObject({ mixed: true, mixedRate: 100 });
  });
});
