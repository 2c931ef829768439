import { connectRegistry, readMembers } from '../chain/registry';
import type { Runtime } from '../runtime';
import { Batches } from '../storage/batches';
import { Outbox } from '../storage/outbox';
import { readWriteSideHealth } from '../submit/reconcile';
import { Rejections } from '../storage/rejections';
import { readWatcherStatus } from '../watch/state';
import { deadLetterCounterFor } from './dead-letters';
import { HeartbeatService } from './heartbeat';
import { OpsStore } from './ops-store';

/** The heartbeat with the app's real clients, built once per process (it keeps a small header cache). */
export function createHeartbeat(runtime: Runtime): HeartbeatService {
  const { config } = runtime;
  const outbox = new Outbox(runtime.tables);
  const batches = new Batches(runtime.tables);
  const rejections = new Rejections(runtime.tables);
  const registry = (runner: Parameters<typeof connectRegistry>[1]) =>
    connectRegistry(config.chain.registryAddress, runner);
  return new HeartbeatService({
    bankId: config.bankId,
    validatorRpcUrls: config.heartbeat.validatorRpcUrls,
    probeTimeoutMs: config.heartbeat.probeTimeoutMs,
    chainId: config.chain.chainId,
    blockTimeSeconds: config.chain.blockTimeSeconds,
    alerts: config.alerts,
    store: new OpsStore(runtime.tables),
    telemetry: runtime.telemetry,
    pipeline: {
      backlog: () => outbox.backlog(),
      deadLetters: deadLetterCounterFor(config, runtime.credential),
      rejections: (sinceMs) => rejections.countSince(new Date(sinceMs)),
      writeSide: async () =>
        readWriteSideHealth({ chain: runtime.chain, batches }, (await runtime.signer.getAddress()).toLowerCase()),
      projection: async () => {
        const status = await readWatcherStatus(runtime.tables);
        return status && { block: status.checkpointBlock, blockTime: status.checkpointTime };
      },
    },
    members: async () => (await runtime.chain.read((provider) => readMembers(registry(provider)))).length,
    log: (line) => console.warn(line),
  });
}

let heartbeat: HeartbeatService | undefined;

export function getHeartbeat(runtime: Runtime): HeartbeatService {
  heartbeat ??= createHeartbeat(runtime);
  return heartbeat;
}

export const opsStore = (runtime: Runtime): OpsStore => new OpsStore(runtime.tables);
