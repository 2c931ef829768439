import { app, type InvocationContext } from '@azure/functions';
import { getConfig } from '../shared/config';
import { getRuntime } from '../shared/runtime';
import { Batches } from '../shared/storage/batches';
import { Outbox } from '../shared/storage/outbox';
import { runSubmit } from '../shared/submit/submitter';

/** Every second (twice per 2 s block): reconcile in-flight batches with the chain, then batch pending records. */
export async function submit(_timer: unknown, context: InvocationContext): Promise<void> {
  const runtime = getRuntime();
  await runSubmit({
    config: runtime.config,
    outbox: new Outbox(runtime.tables),
    batches: new Batches(runtime.tables),
    chain: runtime.chain,
    signer: runtime.signer,
    telemetry: runtime.telemetry,
    log: (message) => context.log(message),
  });
}

app.timer('submit', { schedule: getConfig().submit.schedule, handler: submit });
