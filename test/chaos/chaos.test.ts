import { createHash, randomInt } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHAOS_CHAIN, ChaosConsortium, type Published } from './harness';
import {
  acceptedTimes,
  drained,
  samplesWhileStuck,
  readChain,
  tablesAgainstChain,
  tally,
  type ChainView,
  type StatusSample,
} from './invariants';
import { SCENARIOS, type Mode, type ScenarioContext } from './scenarios';

/**
 * The chaos suite: three banks under load, one fault per scenario, the same invariants after each (see
 * invariants.ts). `npm test` runs the short form; `npm run chaos` (CHAOS_MODE=full) runs every scenario with
 * more load and longer faults and writes test-output/chaos.md. Every run prints its seed; CHAOS_SEED=<seed>
 * replays the same choices (which bank, when, how deep).
 */

const mode: Mode = process.env.CHAOS_MODE === 'full' ? 'full' : 'short';
const seed = process.env.CHAOS_SEED ? Number(process.env.CHAOS_SEED) : randomInt(1, 2 ** 31);
const scenarios = SCENARIOS.filter((s) => mode === 'full' || s.short);
const DRAIN_TIMEOUT_MS = 180_000;

/** mulberry32: a small seeded generator, enough to replay a scenario's choices. */
function seeded(value: number): () => number {
  let a = value >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const scenarioSeed = (name: string): number => seed ^ createHash('sha256').update(name).digest().readUInt32BE(0);

interface Row {
  scenario: string;
  events: number;
  lost: number;
  duplicated: number;
  stuck: number;
  drainSeconds: number;
  /** Status samples taken while a record was stuck past its threshold, and how many of them said ok (must be 0). */
  samplesWhileStuck: number;
  okWhileStuck: number;
  alertsLeft: string[];
  tableProblems: string[];
}
const rows: Row[] = [];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe(`chaos (${mode}; seed ${seed}: replay with CHAOS_SEED=${seed})`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-chaos-'));
  let env: ChaosConsortium;
  let failed = false;

  beforeAll(async () => {
    console.log(`chaos ${mode}: seed ${seed}; data in ${dir}`);
    env = await ChaosConsortium.start(join(dir, 'data'), (line) => console.log(line));
    // Enough blocks below the first reorg that it cannot reach the registry's deployment and funding.
    while ((await env.provider.getBlockNumber()) < 30) await sleep(500);
  }, 180_000);

  afterAll(async () => {
    await env?.stop();
    const table = renderTable(rows);
    console.log(table);
    if (mode === 'full') {
      mkdirSync('test-output', { recursive: true });
      writeFileSync('test-output/chaos.md', table);
      writeFileSync('test-output/chaos.json', JSON.stringify({ seed, mode, rows }, null, 2));
    }
    if (!failed && !process.env.CHAOS_KEEP) rmSync(dir, { recursive: true, force: true });
    else console.log(`chaos: data and app logs kept in ${dir}`);
  }, 60_000);

  it.each(scenarios.map((s) => [s.name, s] as const))(
    '%s',
    async (_name, scenario) => {
      const published: Published[] = [];
      const statusSamples: StatusSample[] = [];
      const confirmedAt = new Map<string, number>();
      const fromBlock = env.stack.info.chain.deployBlock;
      const log = (line: string): void => console.log(`[${scenario.name}] ${line}`);
      log(`replay: CHAOS_SEED=${seed} npm run chaos -- -t '${scenario.name}'`);
      const ctx: ScenarioContext = {
        env,
        mode,
        random: seeded(scenarioSeed(scenario.name)),
        log,
        publish: async (perBank) => void published.push(...(await env.publish(perBank))),
        load: (perBank) => {
          let running = true;
          const loop = (async () => {
            while (running) {
              const tick = Date.now();
              await ctx.publish(perBank).catch((err: Error) => log(`publish failed: ${err.message}`));
              await sleep(Math.max(0, 1_000 - (Date.now() - tick)));
            }
          })();
          return async () => {
            running = false;
            await loop;
          };
        },
      };

      // Watch while the scenario runs: what the chain has confirmed (and when), what every status says.
      let watching = true;
      let view: ChainView | undefined;
      const watch = (async () => {
        while (watching) {
          view = await readChain(env.provider, env.stack.info.chain.registryAddress, fromBlock).catch(() => view);
          // Confirmed when the block `confirmations` above the log's was mined: the chain's own time, not this poll's.
          const depthTimes = new Map<number, number>();
          for (const { event } of published) {
            const log = view?.byEvent.get(event.eventId)?.[0];
            if (!log)
              confirmedAt.delete(event.eventId); // not yet, or a reorg took it back
            else if (!confirmedAt.has(event.eventId)) {
              const depthBlock = log.blockNumber + CHAOS_CHAIN.confirmations;
              if (!depthTimes.has(depthBlock)) {
                const block = await env.provider.getBlock(depthBlock).catch(() => null);
                depthTimes.set(depthBlock, block ? block.timestamp * 1000 : Date.now());
              }
              confirmedAt.set(event.eventId, depthTimes.get(depthBlock)!);
            }
          }
          for (const [bankId, status] of await env.statuses())
            if (status?.sampledAt)
              statusSamples.push({
                bankId,
                sampledAt: Date.parse(status.sampledAt),
                overall: status.pipeline.overall,
                pipeline: status.pipeline,
              });
          await sleep(1_000);
        }
      })();

      const started = Date.now();
      let faultOver = started;
      let row: Row | undefined;
      try {
        await scenario.run(ctx);
        faultOver = Date.now();
        // Drain: every event on chain at depth, every bank's tables agreeing with it.
        let problems: string[] = [];
        const stuck = new Set<string>();
        const settled = new Set<string>();
        for (;;) {
          view = await readChain(env.provider, env.stack.info.chain.registryAddress, fromBlock);
          const timedOut = Date.now() - faultOver > DRAIN_TIMEOUT_MS;
          if (!timedOut && !(await drained(env, view, published, settled))) {
            await sleep(1_000);
            continue;
          }
          const checks = await Promise.all(
            env.bankIds.map((bankId) => tablesAgainstChain(env, bankId, view!, published))
          );
          problems = checks.flatMap((c) => c.problems);
          stuck.clear();
          for (const c of checks) for (const id of c.stuck) stuck.add(id);
          if ((tally(view, published).lost.length === 0 && problems.length === 0) || timedOut) break;
          await sleep(1_000);
        }
        const drainSeconds = (Date.now() - faultOver) / 1000;
        // No alert left firing: the next beats must clear whatever the fault raised.
        let alertsLeft: string[] = [];
        for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(1_000)) {
          alertsLeft = [...(await env.statuses())].flatMap(([bankId, s]) =>
            s
              ? s.alerts.filter((a) => a.state === 'firing').map((a) => `${bankId}:${a.rule}(${a.subject})`)
              : [`${bankId}:no status`]
          );
          if (alertsLeft.length === 0) break;
        }
        watching = false;
        await watch;
        const final = tally(view, published);
        const whileStuck = samplesWhileStuck(
          statusSamples,
          published,
          await acceptedTimes(env, published),
          confirmedAt
        );
        const violations = whileStuck.filter((v) => v.sample.overall === 'ok');
        row = {
          scenario: scenario.name,
          events: published.length,
          lost: final.lost.length,
          duplicated: final.duplicated.length,
          stuck: published.filter(({ event }) => stuck.has(event.eventId)).length,
          drainSeconds: Math.round(drainSeconds * 10) / 10,
          samplesWhileStuck: whileStuck.length,
          okWhileStuck: violations.length,
          alertsLeft,
          tableProblems: problems,
        };
        rows.push(row);
        log(
          `${row.events} events: lost ${row.lost}, duplicated ${row.duplicated}, stuck ${row.stuck}, drained in ` +
            `${row.drainSeconds} s; ${statusSamples.length} status samples, ${row.samplesWhileStuck} while a record was stuck, ` +
            `${row.okWhileStuck} of them ok`
        );
        expect(problems).toEqual([]);
        expect(final).toEqual({ lost: [], duplicated: [] });
        expect(violations).toEqual([]);
        expect(alertsLeft).toEqual([]);
      } catch (err) {
        failed = true;
        throw err;
      } finally {
        watching = false;
        await watch;
      }
    },
    600_000
  );
});

function renderTable(list: Row[]): string {
  const header =
    '| scenario | events | lost | duplicated | stuck | time to drain | statuses while a record was stuck (ok) |';
  const lines = list.map(
    (r) =>
      `| ${r.scenario} | ${r.events} | ${r.lost} | ${r.duplicated} | ${r.stuck} | ${r.drainSeconds} s | ${r.samplesWhileStuck} (${r.okWhileStuck}) |`
  );
  return (
    [`seed ${seed} (${mode})`, '', header, '| --- | --- | --- | --- | --- | --- | --- |', ...lines].join('\n') + '\n'
  );
}
