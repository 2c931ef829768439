import { chartSvg, type Series } from './chart';
import type { BenchOptions } from './options';
import type { Calibration, PhaseResult } from './phases';
import { percentile, round } from './util';

/** The benchmark's report: figures, the chart, what limits throughput, and the Markdown. */
// ---------- the report ----------

export interface BenchReport {
  startedAt: string;
  finishedAt: string;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string; platform: string };
  settings: BenchOptions & { submitDefaults: string };
  capacityRecordsPerSec: number;
  throughputRecordsPerSec: number;
  fractionOfCapacity: number;
  naiveThroughputRecordsPerSec: number | null;
  batchedOverNaive: number | null;
  latencyP50Sec: number;
  latencyP95Sec: number;
  latencyP99Sec: number;
  latencyFloorSec: number;
  saturationLatencyP50Sec: number;
  saturationLatencyP95Sec: number;
  saturationLatencyP99Sec: number;
  signCallsPerRecord: number;
  tableOperationsPerRecord: number | null;
  tableRequestsPerRecord: number | null;
  gasPerNewRecord: number;
  gasPerUpdate: number;
  gasPerTransaction: number;
  pipelineGasPerRecord: number | null;
  gasLimit: number;
  measuredBlockTimeSec: number;
  peakRssMiB: number;
  peakRssMiBByProcess: Record<string, number>;
  /** What bounds throughput on this machine: CPU per record during saturation, and what it implies. */
  cpu: CpuCost;
  targets: Record<string, { target: string; measured: string; met: boolean }>;
  calibration: Calibration;
  phases: Record<string, Omit<PhaseResult, 'latencyPoints'>>;
}

export interface CpuCost {
  machineBusyPercent: number;
  /** CPU milliseconds per record of the saturation phase, by part of the stack, and in total. */
  msPerRecord: { storageEmulators: number; functionHosts: number; bench: number; chain: number; total: number };
  /** cores × 1000 / total: the most this machine could carry at this cost, were nothing else running. */
  cpuBoundRecordsPerSec: number;
  /** Cores the chain's capacity would need at this cost: in total, and for the Function App hosts alone. */
  coresForCapacity: number;
  hostCoresForCapacity: number;
}

/** CPU per record by part of the stack (process names from `processes`), and what it implies. */
export function cpuCost(
  phase: Pick<PhaseResult, 'cpuSeconds' | 'machineBusyPercent' | 'records'>,
  cores: number,
  capacity: number
): CpuCost {
  const part = (prefix: string): number =>
    Object.entries(phase.cpuSeconds)
      .filter(([name]) => name.startsWith(prefix))
      .reduce((sum, [, seconds]) => sum + (1000 * seconds) / Math.max(1, phase.records), 0);
  const ms = {
    storageEmulators: part('azurite'),
    functionHosts: part('host'),
    bench: part('bench'),
    chain: part('anvil'),
  };
  const total = ms.storageEmulators + ms.functionHosts + ms.bench + ms.chain;
  return {
    machineBusyPercent: phase.machineBusyPercent,
    msPerRecord: {
      storageEmulators: round(ms.storageEmulators),
      functionHosts: round(ms.functionHosts),
      bench: round(ms.bench),
      chain: round(ms.chain),
      total: round(total),
    },
    cpuBoundRecordsPerSec: round((cores * 1000) / Math.max(1e-9, total), 1),
    coresForCapacity: round((capacity * total) / 1000, 1),
    hostCoresForCapacity: round((capacity * ms.functionHosts) / 1000, 1),
  };
}

export function chart(report: BenchReport, phases: Record<string, PhaseResult>): string {
  const rate = (p: PhaseResult | undefined, key: 'projectedAll' | 'onChain', color: string, label: string): Series => {
    const pts: [number, number][] = [];
    const tl = p?.timeline ?? [];
    for (let i = 0, j = 0; i < tl.length; i++) {
      while (j < i && tl[i]!.t - tl[j]!.t > 5) j++;
      const dt = tl[i]!.t - tl[j]!.t;
      if (dt >= 2) pts.push([tl[i]!.t, (tl[i]![key] - tl[j]![key]) / dt]);
    }
    return { label, color, points: pts };
  };
  const sat = phases.saturation;
  const tEnd = sat?.timeline.at(-1)?.t ?? 1;
  const binned = (p: PhaseResult | undefined, q: number, color: string, label: string): Series => {
    const bins = new Map<number, number[]>();
    const span = Math.max(0, ...(p?.latencyPoints ?? []).map(([t]) => t));
    const width = Math.max(0.25, Math.min(5, span / 20));
    for (const [t, l] of p?.latencyPoints ?? []) {
      const k = Math.floor(t / width) * width;
      bins.set(k, [...(bins.get(k) ?? []), l]);
    }
    const points = [...bins.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([k, v]): [number, number] => [
        k + 2.5,
        percentile(
          v.sort((a, b) => a - b),
          q
        ),
      ]);
    return { label, color, points };
  };
  return chartSvg(
    `ledger-bridge bench ${report.startedAt} — ${report.settings.banks} banks, ${report.settings.blockTime} s blocks, ${report.gasLimit.toLocaleString('en')} gas`,
    [
      {
        title: 'Saturation: throughput (5 s window)',
        unit: 'records/s',
        series: [
          rate(sat, 'projectedAll', '#1f77b4', 'projected at every bank'),
          rate(sat, 'onChain', '#2ca02c', 'included on chain'),
          {
            label: `capacity ${Math.round(report.capacityRecordsPerSec)}/s`,
            color: '#d62728',
            dashed: true,
            points: [
              [0, report.capacityRecordsPerSec],
              [tEnd, report.capacityRecordsPerSec],
            ],
          },
          rate(phases.naive, 'projectedAll', '#9467bd', 'naive: projected'),
        ],
      },
      {
        title: 'Saturation: latency enqueue → projected at another bank (by enqueue time)',
        unit: 'seconds',
        series: [binned(sat, 50, '#1f77b4', 'p50'), binned(sat, 99, '#ff7f0e', 'p99')],
      },
      {
        title: `Latency run (${report.settings.latencyRate} events/s): latency by enqueue time`,
        unit: 'seconds',
        series: [
          binned(phases.latency, 50, '#1f77b4', 'p50'),
          binned(phases.latency, 99, '#ff7f0e', 'p99'),
          {
            label: `(confirmations+1)×block = ${report.latencyFloorSec} s`,
            color: '#d62728',
            dashed: true,
            points: [
              [0, report.latencyFloorSec],
              [phases.latency?.timeline.at(-1)?.t ?? 1, report.latencyFloorSec],
            ],
          },
        ],
      },
    ]
  );
}

/** The report's verdict on what bounds throughput, from the measured CPU cost. */
export function limits(r: BenchReport): string {
  const c = r.cpu;
  const ms = c.msPerRecord;
  const cores = r.machine.cpus;
  const bound = c.machineBusyPercent >= 85;
  return [
    `During saturation the machine's ${cores} cores were **${c.machineBusyPercent}% busy**. CPU per record (projected at every bank): ` +
      `storage emulators (Azurite: tables) **${ms.storageEmulators} ms**, ` +
      `the ${r.settings.banks} Function App hosts **${ms.functionHosts} ms** (${round(ms.functionHosts / r.settings.banks)} ms each), ` +
      `the bench (publisher, the Service Bus namespaces, Key Vault stand-in, table counter) ${ms.bench} ms, anvil ${ms.chain} ms: **${ms.total} ms in all**.`,
    `At that cost ${cores} cores carry at most ${c.cpuBoundRecordsPerSec} records/s; the run sustained ${r.throughputRecordsPerSec}. ` +
      (bound
        ? `**The run is CPU-bound**: the local stand-ins and the banks' hosts share this machine's cores, where in Azure every bank's Function App and storage account run on their own. `
        : `The machine was not saturated, so CPU is not what bounds this run: look at the pipeline's cadence (timers, in-flight batches) and the chain. `) +
      `The chain's ${round(r.capacityRecordsPerSec, 1)} records/s would need ~${c.coresForCapacity} cores at this cost, ` +
      `~${c.hostCoresForCapacity} of them for ledger-bridge's own hosts (${round(c.hostCoresForCapacity / r.settings.banks, 1)} per bank); the rest is emulation.`,
    untilNinetyPercent(r),
  ]
    .filter(Boolean)
    .join('\n\n');
}

/**
 * Where the time until 90% of the records are projected (the end of the throughput measure) went: the first
 * records on chain, the blocks the 90% took against the fewest that could hold them, and the lag behind the chain.
 */
export function untilNinetyPercent(r: BenchReport): string {
  const sat = r.phases.saturation;
  const blocks = sat?.blocks.perBlock ?? [];
  if (!sat || blocks.length === 0) return '';
  const target = Math.ceil(0.9 * sat.records);
  const since = (t: number | undefined): number => round((t ?? NaN) - sat.firstSentSec, 1);
  const onChainAt = (n: number): number | undefined => sat.timeline.find((p) => p.onChain >= n)?.t;
  const projected = sat.timeline.find((p) => p.projectedAll >= target)?.t;
  let sum = 0;
  const taken = blocks.findIndex((b) => (sum += b.records) >= target) + 1;
  const fullest = Math.max(...blocks.map((b) => b.records));
  const fewest = Math.ceil(target / fullest);
  const inFewest = blocks.slice(0, fewest).reduce((total, b) => total + b.records, 0);
  return (
    `**Until 90% is projected** (the end of the throughput measure): the first records were on chain ${since(onChainAt(1))} s ` +
    `after the first send; record ${target.toLocaleString('en')} came in the phase's block ${taken}, where ${fewest} blocks ` +
    `as full as its fullest (${fullest} records) would have held it (its first ${fewest} held ${inFewest.toLocaleString('en')}); ` +
    `it was on chain at ${since(onChainAt(target))} s and projected at every bank at ${since(projected)} s ` +
    `(the confirmations alone take ${round(r.settings.confirmations * r.measuredBlockTimeSec, 1)} s).`
  );
}

export function markdown(r: BenchReport, files: { json: string; png: string }): string {
  const t = r.targets;
  const row = (k: string): string => `| ${k} | ${t[k]!.target} | ${t[k]!.measured} | ${t[k]!.met ? 'yes' : '**no**'} |`;
  const phase = (name: string): string => {
    const p = r.phases[name];
    if (!p) return `| ${name} | not run | | | | | | |`;
    return `| ${name} | ${p.events} | ${p.records}${p.skipped ? ` (+${p.skipped} skipped)` : ''} | ${p.seconds} | ${p.throughputRecordsPerSec} | ${p.window.fromSec}–${p.window.toSec} s | ${p.projectionRecordsPerSec} | ${p.chainRecordsPerSec} | ${p.latencyAnotherBank.p50} / ${p.latencyAnotherBank.p95} / ${p.latencyAnotherBank.p99} | ${p.latencyEveryBank.p99} | ${p.blocks.txs} | ${p.signCalls} |${p.complete ? '' : ' incomplete'}`;
  };
  const sat = r.phases.saturation;
  const cpu = sat
    ? Object.entries(sat.cpuSeconds)
        .map(([k, v]) => `${k} ${Math.round((100 * v) / sat.seconds)}%`)
        .join(', ')
    : '';
  const perRecord = (counts: Record<string, number> | undefined, digits = 2): string =>
    sat && counts
      ? Object.entries(counts)
          .sort((a, b) => b[1] - a[1])
          .map(([k, v]) => `${k} ${round(v / Math.max(1, sat.records), digits)}`)
          .join(', ')
      : '';
  const byTable = perRecord(sat?.tables?.byTable);
  const requestsByTable = perRecord(sat?.tables?.requestsByTable);
  return `# ledger-bridge benchmark — ${r.startedAt}

${r.settings.banks} banks, ${r.settings.blockTime} s blocks, ${r.gasLimit.toLocaleString('en')} gas per block, ${r.settings.confirmations} confirmations, the pool ordered ${r.settings.txOrder === 'fifo' ? 'by arrival (as geth orders equal tips)' : "by max fee per gas (anvil's default, and how Besu breaks equal tips)"}, Key Vault latency ${r.settings.kvLatencyMs} ms per request; ${r.settings.events} events at saturation, ${r.settings.naiveEvents} in the naive run, ${r.settings.latencyRate} events/s for ${r.settings.latencySeconds} s in the latency run.
Machine: ${r.machine.cpus} × ${r.machine.cpuModel}, ${r.machine.memoryGiB} GiB, Node ${r.machine.node}. Submitter defaults: ${r.settings.submitDefaults}.

## Summary

| metric | target | measured | met |
| --- | --- | --- | --- |
${Object.keys(t).map(row).join('\n')}

| quantity | value |
| --- | --- |
| chain capacity (gas limit / gas per new record / measured block time) | ${round(r.capacityRecordsPerSec, 1)} records/s |
| gas limit · measured block time | ${r.gasLimit.toLocaleString('en')} · ${r.measuredBlockTimeSec} s |
| gas per new record · per update · per transaction (calibration receipts) | ${r.gasPerNewRecord} · ${r.gasPerUpdate} · ${r.gasPerTransaction} |
| gas per record through the pipeline (saturation receipts) | ${r.pipelineGasPerRecord ?? 'n/a'} |
| blocks' gas used / gas limit at saturation (its first and last block left out) | ${sat ? `${round(sat.blocks.fill * 100, 1)}% over ${sat.blocks.perBlock.length} blocks, ${sat.blocks.txs} transactions (gas used / gas limit of the transactions: ${round(sat.blocks.usedOfLimit * 100, 1)}%)` : 'n/a'} |
| sustained throughput, projected at every bank | ${r.throughputRecordsPerSec} records/s (${round(r.fractionOfCapacity * 100, 1)}% of capacity) |
| naive throughput (one transaction and signature per event) | ${r.naiveThroughputRecordsPerSec ?? 'not run'} records/s |
| batched / naive | ${r.batchedOverNaive ?? 'n/a'}× |
| latency run p50 / p95 / p99 (enqueue → projected at another bank) | ${r.latencyP50Sec} / ${r.latencyP95Sec} / ${r.latencyP99Sec} s (floor (confirmations + 1) × block time = ${r.latencyFloorSec} s) |
| saturation latency p50 / p95 / p99 | ${r.saturationLatencyP50Sec} / ${r.saturationLatencyP95Sec} / ${r.saturationLatencyP99Sec} s |
| Key Vault sign calls per record (saturation) | ${r.signCallsPerRecord} |
| table operations per record at one bank (saturation; requests incl. batches) | ${r.tableOperationsPerRecord ?? 'n/a'} (${r.tableRequestsPerRecord ?? 'n/a'} requests) |
| peak RSS of a Function App host process (VmHWM) | ${r.peakRssMiB} MiB |

## Phases

| phase | events | records | seconds | end to end (records/s) | 10–90% window | projection stage (records/s) | chain inclusion (records/s) | latency p50 / p95 / p99 (s) | p99 at every bank (s) | txs | sign calls |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
${['latency', 'saturation', 'naive'].map(phase).join('\n')}

${mixedSection(r)}## What limits throughput here

${limits(r)}

## How it is measured

- **Capacity**: the block gas limit is read from the chain; gas per new record and per update come from the receipts of a calibration batch (50 and 150 new records, then 150 updates, on a throwaway registry on the same chain: the slope between the two new batches is the gas per record, the intercept the gas per transaction). The block time is measured from block timestamps, from block 1 to the saturation run's last block (timestamps are whole seconds: the saturation's ~20 blocks alone would measure a 2 s block time only to ±3%). Capacity = gas limit / gas per new record / block time.
- **Throughput**: the bench polls every 250 ms the chain's CreditRegistry logs (which block holds each event) and every bank's watcher checkpoint (\`WatcherState\`, written after a chunk is projected). A record is projected at a bank when that bank wrote the first checkpoint the polls saw covering its block (the row's \`updatedAt\`: never early; late only if a poll missed an earlier write that covered it). **Sustained end-to-end throughput** = 90% of the phase's records / (time at which 90% are projected at every bank (min checkpoint) − first send): ramp-up included, the last 10% (stragglers) left out; the events are all published at once, faster than the chain takes them. Stage rates over the **10%–90% window** are reported too: the projection stage (projected at every bank) and chain inclusion (records in blocks); the projection stage can run ahead of the chain while it works off a backlog, so its rate is not the throughput.
- **Latency**: from the moment the bench sends the event to the bank's queue to the moment another bank's checkpoint covered the event's block (as for throughput); "every bank" is the last bank.
- **Sign calls**: the Key Vault stand-in's counter, divided by the records of the phase.
- **Table operations**: a counting HTTP proxy in front of ${r.settings.banks > 0 ? 'BANK-A' : ''}'s table endpoint (the Function App's AzureWebJobsStorage tables go through it; its queue does not): single requests plus every operation inside entity-group transactions, divided by the phase's records (BANK-A ingests a third of them and projects all of them). Operations per table: ${byTable || 'n/a'}; requests per table: ${requestsByTable || 'n/a'}; bytes the app read back per record, per table: ${perRecord(sat?.tables?.bytesReadByTable, 0) || 'n/a'}; bytes it sent per record: ${perRecord(sat?.tables?.bytesSentByTable, 0) || 'n/a'}.
- **CPU during saturation** (share of one core, from /proc: user + system time of each process over the phase): ${cpu}. The machine's busy share is from /proc/stat (all processes). CPU per record = a part's CPU seconds over the phase / the phase's records.
- **Memory**: VmHWM of each host process from /proc.

Files: ${files.json}, ${files.png}
`;
}

/** The `--mixed` comparison, when it ran: what holding partial batches while blocks are full does to each side. */
function mixedSection(r: BenchReport): string {
  const runs = Object.values(r.phases).filter((p) => p.name.startsWith('mixed'));
  if (runs.length === 0) return '';
  const last = r.settings.banks - 1;
  const rows = runs.map((p) => {
    const busyDone = Math.max(...p.doneByBankSec.slice(0, last));
    const trickler = p.latencyByBank[last]!;
    // A short run (--quick) spans too few blocks for a 10–90% window or a fill.
    const orNa = (value: number, shown = `${value}`): string => (Number.isFinite(value) ? shown : 'n/a');
    return `| ${p.name} | ${orNa(p.chainRecordsPerSec)} | ${orNa(p.blocks.fill, `${round(p.blocks.fill * 100, 1)}%`)} | ${busyDone} | ${trickler.p50} / ${trickler.p99} |${p.complete ? '' : ' incomplete'}`;
  });
  return `## Mixed load (--mixed)

Every bank but the last publishes ${Math.floor(r.settings.events / r.settings.banks)} events at once; the last trickles ${r.settings.mixedRate} events/s meanwhile. Each row ran on a stack of its own.

| run | chain inclusion 10–90% (records/s) | blocks' gas used / gas limit | busy banks' records all projected (s from first send) | trickling bank's latency p50 / p99 (s) |
| --- | --- | --- | --- | --- |
${rows.join('\n')}

`;
}
