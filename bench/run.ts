import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { renderPng } from './chart';
import {
  type Calibration,
  type PhaseResult,
  calibrate,
  chainBlockTime,
  eventsFor,
  processes,
  type Publish,
  publishAll,
  publishSteady,
  runPhase,
  startEnv,
} from './phases';
import { parseBenchArgs, type BenchOptions } from './options';
import { log, round } from './util';
import { chart, cpuCost, markdown, type BenchReport } from './report';

/**
 * `npm run bench`: ledger-bridge against the chain's physical limit and the naive design, on the embedded local
 * stack with the real Function App per bank in the local host. Numbers come from measurement only: gas from
 * receipts, block time from block timestamps, throughput and latency from when records appear on chain and
 * when every bank's watcher checkpoint covers them, sign calls from the Key Vault stand-in, table operations
 * from a counting proxy in front of one bank's table endpoint, memory from /proc.
 */

export async function runBench(o: BenchOptions): Promise<BenchReport> {
  const startedAt = new Date();
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  mkdirSync(o.out, { recursive: true });
  const phases: Record<string, PhaseResult> = {};
  const peakRss: Record<string, number> = {};
  let calibration: Calibration;
  let blockTime = o.blockTime;

  const env = await startEnv(o, 'batched', true);
  try {
    log('calibrating gas from receipts…');
    calibration = await calibrate(env);
    log(`gas per new record ${calibration.gasPerNewRecord}, per update ${calibration.gasPerUpdate}`);
    const latencyEvents = eventsFor(o, Math.round(o.latencyRate * o.latencySeconds), 'LAT-');
    phases.latency = await runPhase(
      env,
      'latency',
      latencyEvents.flat().length,
      (p) => publishSteady(p, latencyEvents, o.latencyRate),
      120
    );
    const satEvents = eventsFor(o, o.events, 'SAT-');
    phases.saturation = await runPhase(env, 'saturation', o.events, (p) => publishAll(p, satEvents), 120);
    const measured = await chainBlockTime(env.provider, phases.saturation.blocks.last);
    if (Number.isFinite(measured)) blockTime = measured;
    for (const [name, s] of Object.entries(processes(env))) if (s) peakRss[`batched ${name}`] = round(s.peakRssMiB, 1);
  } finally {
    await env.stop();
  }

  if (!o.skipNaive) {
    const naive = await startEnv(o, 'naive', false);
    try {
      const events = eventsFor(o, o.naiveEvents, 'NAIVE-');
      phases.naive = await runPhase(naive, 'naive', o.naiveEvents, (p) => publishAll(p, events), 120);
      for (const [name, s] of Object.entries(processes(naive)))
        if (s) peakRss[`naive ${name}`] = round(s.peakRssMiB, 1);
    } finally {
      await naive.stop();
    }
  }

  const sat = phases.saturation;
  const latency = phases.latency;
  const capacity = calibration.gasLimit / calibration.gasPerNewRecord / blockTime;
  if (o.mixed) await runMixed(o, capacity, phases);
  const naiveRate = phases.naive ? phases.naive.throughputRecordsPerSec : null;
  const hostPeak = Math.max(
    ...Object.entries(peakRss)
      .filter(([k]) => k.startsWith('batched host'))
      .map(([, v]) => v)
  );
  const floor = (o.confirmations + 1) * o.blockTime;
  const signPerRecord = round(sat.signCalls / Math.max(1, sat.records), 4);
  const report: BenchReport = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      memoryGiB: round(totalmem() / 2 ** 30, 1),
      node: process.version,
      platform: `${process.platform} ${process.arch}`,
    },
    settings: {
      ...o,
      submitDefaults: 'SUBMIT_TX_GAS_BUDGET 15M, SUBMIT_MAX_IN_FLIGHT 4, SUBMIT/WATCH schedule every second',
    },
    capacityRecordsPerSec: round(capacity, 1),
    throughputRecordsPerSec: sat.throughputRecordsPerSec,
    fractionOfCapacity: round(sat.throughputRecordsPerSec / capacity, 3),
    naiveThroughputRecordsPerSec: naiveRate,
    batchedOverNaive:
      naiveRate && Number.isFinite(naiveRate) ? round(sat.throughputRecordsPerSec / naiveRate, 1) : null,
    latencyP50Sec: latency.latencyAnotherBank.p50,
    latencyP95Sec: latency.latencyAnotherBank.p95,
    latencyP99Sec: latency.latencyAnotherBank.p99,
    latencyFloorSec: floor,
    saturationLatencyP50Sec: sat.latencyAnotherBank.p50,
    saturationLatencyP95Sec: sat.latencyAnotherBank.p95,
    saturationLatencyP99Sec: sat.latencyAnotherBank.p99,
    signCallsPerRecord: signPerRecord,
    tableOperationsPerRecord: sat.tables ? round(sat.tables.operations / Math.max(1, sat.records), 2) : null,
    tableRequestsPerRecord: sat.tables ? round(sat.tables.requests / Math.max(1, sat.records), 2) : null,
    gasPerNewRecord: calibration.gasPerNewRecord,
    gasPerUpdate: calibration.gasPerUpdate,
    gasPerTransaction: calibration.gasPerTransaction,
    pipelineGasPerRecord: sat.blocks.gasUsed > 0 ? Math.round(sat.blocks.gasUsed / sat.records) : null,
    gasLimit: calibration.gasLimit,
    measuredBlockTimeSec: blockTime,
    peakRssMiB: Number.isFinite(hostPeak) ? hostPeak : 0,
    peakRssMiBByProcess: peakRss,
    cpu: cpuCost(sat, cpus().length, capacity),
    targets: {},
    calibration: calibration!,
    phases: Object.fromEntries(Object.entries(phases).map(([k, { latencyPoints: _l, ...rest }]) => [k, rest])),
  };
  const ratio = report.batchedOverNaive;
  // A saturation phase that stalled has no sustained throughput and meets no per-record target: say so rather than
  // print NaN, or a rate of nothing.
  const stalled = !sat.complete || !Number.isFinite(report.throughputRecordsPerSec);
  const incomplete = 'incomplete (the saturation phase stalled)';
  const hostMsPerBank = round(report.cpu.msPerRecord.functionHosts / o.banks, 2);
  // From the first send until every record is projected at every bank (the phase's end), against the chain's pace.
  const backlogBound = round((1.25 * sat.records) / capacity + floor, 1);
  report.targets = {
    'sustained ≥ 80% of capacity': {
      target: '≥ 80%',
      measured: stalled ? incomplete : `${round(report.fractionOfCapacity * 100, 1)}%`,
      met: !stalled && report.fractionOfCapacity >= 0.8,
    },
    'sustained ≥ 400 records/s': {
      target: '≥ 400/s',
      measured: stalled ? incomplete : `${report.throughputRecordsPerSec}/s`,
      met: !stalled && report.throughputRecordsPerSec >= 400,
    },
    'batched ≥ 10× naive': {
      target: '≥ 10×',
      measured: typeof ratio === 'number' && Number.isFinite(ratio) ? `${ratio}×` : stalled ? incomplete : 'not run',
      met: (ratio ?? 0) >= 10,
    },
    'latency run p99 ≤ 9 s': { target: '≤ 9 s', measured: `${report.latencyP99Sec} s`, met: report.latencyP99Sec <= 9 },
    'sign calls per record ≤ 0.01': {
      target: '≤ 0.01',
      measured: stalled ? incomplete : String(signPerRecord),
      met: !stalled && signPerRecord <= 0.01,
    },
    'table requests per record at one bank ≤ 0.5': {
      target: '≤ 0.5',
      measured: String(report.tableRequestsPerRecord ?? 'not counted'),
      met: report.tableRequestsPerRecord !== null && report.tableRequestsPerRecord <= 0.5,
    },
    'host CPU per record per bank ≤ 0.4 ms': {
      target: '≤ 0.4 ms',
      measured: `${hostMsPerBank} ms`,
      met: hostMsPerBank <= 0.4,
    },
    'backlog projected at every bank ≤ 1.25 × events / capacity + floor': {
      target: `≤ ${backlogBound} s`,
      measured: stalled ? incomplete : `${sat.seconds} s`,
      met: !stalled && sat.seconds <= backlogBound,
    },
    'peak RSS of a host ≤ 256 MiB': {
      target: '≤ 256 MiB',
      measured: `${report.peakRssMiB} MiB`,
      met: report.peakRssMiB <= 256,
    },
  };

  const base = join(o.out, stamp);
  const files = { json: `${base}.json`, png: `${base}.png`, md: `${base}.md`, svg: `${base}.svg` };
  writeFileSync(files.json, JSON.stringify(report, null, 2) + '\n');
  const svg = chart(report, phases);
  writeFileSync(files.svg, svg);
  try {
    await renderPng(svg, files.png);
  } catch (err) {
    log(`PNG chart not rendered (${(err as Error).message}); the SVG is at ${files.svg}`);
  }
  writeFileSync(files.md, markdown(report, files));
  log(`report: ${files.md}`);
  return report;
}

/**
 * `--mixed`: every bank but the last publishes the saturation run's share at once while the last trickles
 * `--mixed-rate` events/s for as long as the chain needs for the burst; once with partial batches sent whenever
 * they make the next block, once with the default wait while blocks are full. Each on a stack of its own.
 */
async function runMixed(o: BenchOptions, capacity: number, phases: Record<string, PhaseResult>): Promise<void> {
  const last = o.banks - 1;
  const burst = eventsFor(o, o.events, 'MIX-').map((list, bank) => (bank === last ? [] : list));
  const busyRecords = burst.flat().length;
  const trickleCount = Math.max(1, Math.round((o.mixedRate * busyRecords) / capacity));
  const trickle = eventsFor(o, trickleCount * o.banks, 'MIXT-').map((list, bank) => (bank === last ? list : []));
  const runs: [string, Record<string, string>][] = [
    ['mixed, SUBMIT_FILL_WAIT_SECONDS=0', { SUBMIT_FILL_WAIT_SECONDS: '0' }],
    ['mixed, default', {}],
  ];
  for (const [name, settings] of runs) {
    const env = await startEnv(o, 'batched', false, settings);
    try {
      const drive = async (publish: Publish): Promise<void> => {
        await Promise.all([publishAll(publish, burst), publishSteady(publish, trickle, o.mixedRate)]);
      };
      phases[name] = await runPhase(env, name, busyRecords + trickle.flat().length, drive, 120);
    } finally {
      await env.stop();
    }
  }
}

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const options = parseBenchArgs(argv);
  const report = await runBench(options);
  const t = report.targets;
  console.log(
    Object.entries(t)
      .map(([k, v]) => `${v.met ? 'met    ' : 'MISSED '} ${k}: ${v.measured}`)
      .join('\n')
  );
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  });
}
