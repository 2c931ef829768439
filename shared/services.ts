import { Chain } from './chain/provider';
import { connectRegistry, readMembers } from './chain/registry';
import { getConfig, type Config } from './config';
import type { RawSubject } from './domain/credit-update';
import { subjectRef } from './domain/pseudonymize';
import { azureCredential, localStackCredential } from './identity';
import { ingestMessages, type IngestMessage, type IngestResult } from './ingest/ingest';
import { createKeyVaultSigner } from './keyvault/key-vault-signer';
import { loadPseudonymizationKey } from './keyvault/pseudonymization-key';
import { deadLetterCounterFor } from './ops/dead-letters';
import { HeartbeatService } from './ops/heartbeat';
import { OpsStore } from './ops/ops-store';
import { buildHistory, buildStatus, type HistoryReport, type StatusReport } from './ops/status';
import { CreditRecordReader } from './read/read-model';
import { Batches } from './storage/batches';
import { Outbox } from './storage/outbox';
import { Rejections } from './storage/rejections';
import { TableStore } from './storage/tables';
import { readWriteSideHealth } from './submit/reconcile';
import { runSubmit, type SubmitReport } from './submit/submitter';
import { createTelemetry, type Telemetry } from './telemetry';
import { UrgentWork } from './urgent-work';
import { readWatcherStatus } from './watch/state';
import { Watcher, watchSettingsOf } from './watch/watcher';

/**
 * The composition root: every service the Function App runs, built once per process from the validated config.
 * Nothing else in the app constructs a client or a service; each function in functions/ parses its trigger,
 * calls one of these and maps the result.
 */
export interface Services {
  config: Config;
  telemetry: Telemetry;
  /** Credit-update messages, each accepted, a duplicate or rejected for good (a throw: "deliver them again"). */
  ingest(messages: IngestMessage[]): Promise<IngestResult[]>;
  /** One submit run: reconcile in-flight batches with the chain, then batch pending records. */
  submit(log: (line: string) => void): Promise<SubmitReport>;
  /** Projects confirmed blocks (it keeps its learnt log range between runs). */
  watcher: Watcher;
  /** Probes the validators and the pipeline (it keeps a small header cache between beats). */
  heartbeat: HeartbeatService;
  reader: CreditRecordReader;
  /** The lookup's pseudonymizer: the same consortium key and rule as ingest. */
  pseudonymize(subject: RawSubject): Promise<string>;
  status(nowMs: number): Promise<StatusReport>;
  statusHistory(nowMs: number): Promise<HistoryReport>;
}

export function createServices(config: Config): Services {
  const credential =
    config.environment === 'local' ? localStackCredential : azureCredential(config.managedIdentityClientId);
  const tables = new TableStore(config.storage, credential);
  const chain = new Chain({ rpcUrls: config.chain.rpcUrls, chainId: config.chain.chainId });
  const telemetry = createTelemetry({
    connectionString: config.appInsightsConnectionString,
    roleName: `ledger-bridge-${config.bankId.toLowerCase()}`,
    // Entra ID ingestion in Azure; the local stand-in takes the connection string alone.
    credential: config.environment === 'azure' ? credential : undefined,
  });
  const signer = createKeyVaultSigner(config, credential, telemetry);
  const outbox = new Outbox(tables);
  const batches = new Batches(tables);
  const rejections = new Rejections(tables);
  const ops = new OpsStore(tables);
  const pseudonymizationKey = (): Promise<Buffer> => loadPseudonymizationKey(config, credential);
  // One per process: ingest's outbox writes wait for the submit runs' commits here.
  const urgent = new UrgentWork();
  const ingestDeps = { config, outbox, rejections, telemetry, pseudonymizationKey, urgent };

  const heartbeat = new HeartbeatService({
    bankId: config.bankId,
    validatorRpcUrls: config.heartbeat.validatorRpcUrls,
    probeTimeoutMs: config.heartbeat.probeTimeoutMs,
    chainId: config.chain.chainId,
    blockTimeSeconds: config.chain.blockTimeSeconds,
    alerts: config.alerts,
    store: ops,
    telemetry,
    pipeline: {
      backlog: () => outbox.backlog(),
      deadLetters: deadLetterCounterFor(config, credential),
      rejections: (sinceMs) => rejections.countSince(new Date(sinceMs)),
      conflicts: (sinceMs) => rejections.countSince(new Date(sinceMs), 'conflict'),
      writeSide: async () => readWriteSideHealth({ chain, batches }, (await signer.getAddress()).toLowerCase()),
      projection: async () => {
        const status = await readWatcherStatus(tables);
        return status && { block: status.checkpointBlock, blockTime: status.checkpointTime };
      },
    },
    members: async () =>
      (await chain.read((provider) => readMembers(connectRegistry(config.chain.registryAddress, provider)))).length,
    log: (line) => console.warn(line),
  });

  return {
    config,
    telemetry,
    ingest: (messages) => ingestMessages(ingestDeps, messages),
    submit: (log) => runSubmit({ config, outbox, batches, chain, signer, telemetry, log, urgent }),
    watcher: new Watcher({ tables, chain, telemetry }, watchSettingsOf(config)),
    heartbeat,
    reader: new CreditRecordReader(tables, chain, config.chain.registryAddress),
    pseudonymize: async (subject) => subjectRef(await pseudonymizationKey(), subject),
    status: (nowMs) => buildStatus(ops, config.bankId, nowMs),
    statusHistory: (nowMs) => buildHistory(ops, config.bankId, nowMs),
  };
}

let services: Services | undefined;

/** The process-wide services, built on first use. */
export function getServices(): Services {
  services ??= createServices(getConfig());
  return services;
}
