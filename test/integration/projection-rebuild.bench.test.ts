import { runProjectionRebuildBench } from '../../bench/projection-rebuild';

/**
 * On demand only (about a minute): LEDGER_BENCH=1 npx jest --runTestsByPath test/integration/projection-rebuild.bench.test.ts
 * Prints projection throughput of a rebuild of 20,000 records into Azurite.
 */
const bench = process.env.LEDGER_BENCH === '1' ? it : it.skip;

describe('projection rebuild throughput', () => {
  bench(
    'rebuilds 20,000 records',
    async () => {
      const records = Number(process.env.LEDGER_BENCH_RECORDS ?? 20_000);
      const result = await runProjectionRebuildBench({
        records,
        batch: 500,
        ownBank: process.env.LEDGER_BENCH_OWN === '1',
      });
      console.log(`projection rebuild: ${JSON.stringify(result)}`);
      expect(result.records).toBe(records);
    },
    900_000
  );
});
