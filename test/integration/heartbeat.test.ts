import { randomUUID } from 'node:crypto';
import { JsonRpcProvider, Wallet } from 'ethers';
import { startAnvil, type Anvil } from '../../local/stack/anvil';
import { startAppInsightsStandIn, type AppInsightsStandIn, type TelemetryRecord } from '../../local/stack/appinsights';
import { startAzurite, type Azurite } from '../../local/stack/azurite';
import { deployConsortium } from '../../local/stack/consortium';
import { generateLocalTls, trustCertificate } from '../../local/stack/tls';
import { connectRegistry, readMembers } from '../../shared/chain/registry';
import { CREDIT_UPDATES_QUEUE } from '../../shared/domain/credit-update';
import { ServiceBusDeadLetterCounter } from '../../shared/ops/dead-letters';
import { startNamespace, type LocalServiceBusNamespace } from '../../local/servicebus/namespace';
import { ServiceBusClient } from '@azure/service-bus';
import { randomBytes } from 'node:crypto';
import { HeartbeatService, type BeatResult } from '../../shared/ops/heartbeat';
import type { BeatSample } from '../../shared/ops/model';
import { OpsStore } from '../../shared/ops/ops-store';
import { EVENTS, METRICS, availabilityName } from '../../shared/ops/telemetry-names';
import { Outbox } from '../../shared/storage/outbox';
import { TableStore } from '../../shared/storage/tables';
import { createTelemetry, type Telemetry } from '../../shared/telemetry';

/**
 * The heartbeat against real parts: three anvil "validators" (1 s interval mining), Azurite for TABLES.ops and
 * the dead-letter queue, and the Application Insights stand-in fed by the real SDK.
 */
describe('heartbeat (3 anvil validators, Azurite, App Insights stand-in)', () => {
  const validators: Anvil[] = [];
  let azurite: Azurite;
  let serviceBus: LocalServiceBusNamespace;
  let appInsights: AppInsightsStandIn;
  let telemetry: Telemetry;
  let tables: TableStore;
  let members: () => Promise<number>;
  const name = (anvil: Anvil): string => anvil.rpcUrl.replace('http://', '');
  const callsPerBeat: string[] = [];

  const service = (): HeartbeatService =>
    new HeartbeatService({
      bankId: 'BANK-A',
      validatorRpcUrls: validators.map((v) => v.rpcUrl),
      probeTimeoutMs: 2000,
      chainId: 31337,
      blockTimeSeconds: 1,
      alerts: {
        validatorSilentBeats: 2,
        blockAgeFactor: 3,
        blockTimeFactor: 2,
        outboxOldestAgeSeconds: 60,
        deadLetters: 1,
        batchStuckBlocks: 30,
        unconfirmedAgeSeconds: 300,
      },
      store: new OpsStore(tables),
      telemetry,
      pipeline: {
        backlog: () => new Outbox(tables).backlog(),
        deadLetters: new ServiceBusDeadLetterCounter(
          () => new ServiceBusClient(serviceBus.connectionString),
          CREDIT_UPDATES_QUEUE
        ),
      },
      members,
    });
  const record = (label: string, result: BeatResult): BeatResult => {
    callsPerBeat.push(
      `${label}: ${Object.entries(result.rpcCalls)
        .map(([v, n]) => `${v}=${n}`)
        .join(' ')} chain=${result.chainRpcCalls}`
    );
    return result;
  };
  const rpc = (anvil: Anvil, method: string, params: unknown[]) => {
    const provider = new JsonRpcProvider(anvil.rpcUrl, undefined, { staticNetwork: true });
    return provider.send(method, params).finally(() => provider.destroy());
  };

  beforeAll(async () => {
    const tls = await generateLocalTls(`heartbeat test ${randomUUID()}`);
    trustCertificate(tls.certPem);
    [azurite, appInsights, serviceBus] = await Promise.all([
      startAzurite(),
      startAppInsightsStandIn({ tls }),
      startNamespace({
        queues: [{ name: CREDIT_UPDATES_QUEUE }],
        sharedAccessKeyName: 'RootManageSharedAccessKey',
        sharedAccessKey: randomBytes(32).toString('base64'),
      }),
    ]);
    for (let i = 0; i < 3; i++) validators.push(await startAnvil({ blockTimeSeconds: 1 }));
    tables = new TableStore({ connectionString: azurite.accounts[0]!.connectionString });
    telemetry = createTelemetry({ connectionString: appInsights.connectionString, roleName: 'ledger-bridge-bank-a' });
    const consortium = await deployConsortium(validators[0]!.rpcUrl, [
      { address: Wallet.createRandom().address, bankId: 'BANK-A' },
      { address: Wallet.createRandom().address, bankId: 'BANK-B' },
    ]);
    members = async () => {
      const provider = new JsonRpcProvider(validators[0]!.rpcUrl, undefined, { staticNetwork: true });
      try {
        return (await readMembers(connectRegistry(consortium.registryAddress, provider))).length;
      } finally {
        provider.destroy();
      }
    };
  });

  afterAll(async () => {
    console.log(`RPC calls per validator per beat:\n  ${callsPerBeat.join('\n  ')}`);
    await Promise.all([...validators.map((v) => v.stop()), azurite?.stop(), appInsights?.stop(), serviceBus?.stop()]);
  });

  it('probes every validator; method-not-found is remembered across restarts, so later beats make fewer calls', async () => {
    const first = record('beat 1 (first contact)', await service().beat());
    expect(first.sample.validators.map((v) => v.status)).toEqual(['up', 'up', 'up']);
    for (const v of first.sample.validators) {
      expect(v.clientVersion).toMatch(/^anvil\//);
      expect(v.syncing).toBe(false);
      expect(v.head).toBeGreaterThan(0);
      expect(v.peers).toBeUndefined(); // anvil has no net_peerCount
      expect(v.message).toBeUndefined(); // missing methods are not problems
    }
    expect(first.sample.chain).toMatchObject({ consensusSource: 'miners', members: 2 });
    expect(first.sample.chain.avgBlockTimeSeconds).toBeGreaterThan(0);
    expect(first.sample.pipeline).toMatchObject({ outboxDepth: 0, deadLetters: 0, rejections: null });

    // A new service instance, as after a restart or on another instance: the memory comes from TABLES.ops.
    const second = record('beat 2 (new instance)', await service().beat());
    for (const v of validators) expect(second.rpcCalls[name(v)]).toBeLessThan(first.rpcCalls[name(v)]!);
    expect(second.events).toEqual([]);
    const unsupported = (await new OpsStore(tables).validatorStates()).values().next().value!.unsupported;
    expect(Object.keys(unsupported)).toEqual(
      expect.arrayContaining(['net_peerCount', 'qbft_getValidatorsByBlockNumber', 'clique_status'])
    );
  });

  it('reports a stopped validator down within one beat and up again after a restart on the same port', async () => {
    const heartbeat = service();
    const victim = validators[2]!;
    const port = Number(new URL(victim.rpcUrl).port);
    await victim.stop();
    const down = record('beat 3 (one stopped)', await heartbeat.beat());
    const node = down.sample.validators.find((v) => v.name === name(victim))!;
    expect(node.status).toBe('down');
    expect(node.message).toMatch(/ECONNREFUSED/);
    expect(down.sample.validators.filter((v) => v.status === 'up')).toHaveLength(2);
    expect(down.events).toEqual([
      { name: EVENTS.validatorDown, properties: { validator: name(victim), reason: node.message } },
    ]);

    validators[2] = await startAnvil({ port, blockTimeSeconds: 1 });
    const up = record('beat 4 (restarted)', await heartbeat.beat());
    expect(up.sample.validators.map((v) => v.status)).toEqual(['up', 'up', 'up']);
    expect(up.events.map((e) => e.name)).toEqual([EVENTS.validatorUp]);
    expect(up.events[0]!.properties.validator).toBe(name(victim));

    const availability = await appInsights.waitFor(
      (r) => r.type === 'availability' && r.name === availabilityName(name(victim)) && r.success === false,
      5000
    );
    expect(availability[0]!.runLocation).toBe('BANK-A');
    expect(availability[0]!.message).toMatch(/ECONNREFUSED/);
    await appInsights.waitFor((r) => r.type === 'event' && r.name === EVENTS.validatorUp, 5000);
  });

  it('fires ChainStalled when no validator produces blocks, and resolves it when blocks resume', async () => {
    const heartbeat = service();
    await Promise.all(validators.map((v) => rpc(v, 'evm_setIntervalMining', [0])));
    await new Promise((resolve) => setTimeout(resolve, 4500)); // > blockAgeFactor (3) × block time (1 s)
    const stalled = record('beat 5 (stalled)', await heartbeat.beat());
    expect(stalled.sample.chain.blockAgeSeconds).toBeGreaterThan(3);
    expect(stalled.transitions.map((t) => `${t.kind} ${t.alert.rule}`)).toContain('fired ChainStalled');
    expect(stalled.events.map((e) => e.name)).toEqual(expect.arrayContaining([EVENTS.alertFired, EVENTS.chainStalled]));

    await Promise.all(validators.map((v) => rpc(v, 'evm_setIntervalMining', [1])));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const resumed = record('beat 6 (resumed)', await heartbeat.beat());
    expect(resumed.transitions.map((t) => `${t.kind} ${t.alert.rule}`)).toContain('resolved ChainStalled');
    expect(resumed.events.map((e) => e.name)).toEqual(expect.arrayContaining([EVENTS.chainResumed]));
  }, 30_000);

  it('counts dead letters in the Service Bus dead-letter queue, every beat, and alerts at the threshold', async () => {
    const client = new ServiceBusClient(serviceBus.connectionString);
    await client.createSender(CREDIT_UPDATES_QUEUE).sendMessages({ body: 'x', messageId: 'm1' });
    const receiver = client.createReceiver(CREDIT_UPDATES_QUEUE);
    const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 5_000 });
    await receiver.deadLetterMessage(message!, {
      deadLetterReason: 'MaxDeliveryCountExceeded',
      deadLetterErrorDescription: 'test',
    });
    await client.close();
    const heartbeat = service();
    const result = record('beat 7', await heartbeat.beat());
    expect(result.sample.pipeline.deadLetters).toBe(1);
    // The next beat counts again from the start (the SDK's peek cursor would otherwise skip what it saw).
    expect((await heartbeat.beat()).sample.pipeline.deadLetters).toBe(1);
    expect(result.transitions.map((t) => `${t.kind} ${t.alert.rule} ${t.alert.subject}`)).toContain(
      `fired DeadLetters ${CREDIT_UPDATES_QUEUE}`
    );
  });

  it('prunes samples older than the retention, across hour partitions, and keeps the rest', async () => {
    // In 2020: far below the beats the other tests store, which stay.
    const store = new OpsStore(tables);
    const at = (time: string): BeatSample => ({
      t: `2020-01-01T${time}.000Z`,
      validators: [],
      chain: {},
      pipeline: { rejections: 0, projectionLagBlocks: 0, projectionLagSeconds: 0 },
    });
    for (const time of ['00:10:00', '00:50:00', '01:05:00', '01:20:00']) await store.addSample(at(time));
    const cutoff = Date.parse('2020-01-01T01:10:00.000Z');

    expect(await store.pruneSamples(cutoff)).toBe(3);
    const left = await store.samples(Date.parse('2020-01-01T00:00:00.000Z'), Date.parse('2020-01-01T02:00:00.000Z'));
    expect(left.map((sample) => sample.t)).toEqual(['2020-01-01T01:20:00.000Z']);
    expect(await store.pruneSamples(cutoff)).toBe(0);
  });

  it('sends telemetry with the documented names', async () => {
    const arrived = (type: TelemetryRecord['type'], metricName: string) =>
      appInsights.waitFor((r) => r.type === type && r.name === metricName, 5000);
    for (const metric of [
      METRICS.validatorHead,
      METRICS.validatorLag,
      METRICS.validatorBlockAge,
      METRICS.validatorLatency,
      METRICS.chainAvgBlockTime,
      METRICS.chainTxPerMinute,
      METRICS.members,
      METRICS.outboxDepth,
      METRICS.deadLetters,
    ])
      await arrived('metric', metric);
    const heads = appInsights.envelopes({ type: 'metric', name: METRICS.validatorHead });
    expect(new Set(heads.map((r) => r.properties.validator))).toEqual(new Set(validators.map(name)));
    for (const event of [EVENTS.validatorDown, EVENTS.validatorUp, EVENTS.chainStalled, EVENTS.chainResumed])
      await arrived('event', event);
    const [fired] = await appInsights.waitFor(
      (r) => r.type === 'event' && r.name === EVENTS.alertFired && r.properties.rule === 'ChainStalled',
      5000
    );
    expect(fired!.properties).toMatchObject({ subject: 'chain', threshold: '3', bankId: 'BANK-A' });
    expect(appInsights.unexpectedRequests()).toEqual([]);
  });
});
