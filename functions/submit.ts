import { app, type InvocationContext } from '@azure/functions';
import { getConfig } from '../shared/config';
import { getRuntime } from '../shared/runtime';
import { createKeyVaultSigner, type KeyVaultSigner } from '../shared/signing/key-vault-signer';
import { Batches } from '../shared/storage/batches';
import { Outbox } from '../shared/storage/outbox';
import { runSubmit } from '../shared/submit/submitter';

let signer: KeyVaultSigner | undefined;

/** Every second (twice per 2 s block): settle in-flight batches, then batch pending outbox records into signed transactions. */
export async function submit(_timer: unknown, context: InvocationContext): Promise<void> {
  const runtime = getRuntime();
  signer ??= createKeyVaultSigner(runtime.config, runtime.credential, runtime.telemetry);
  await runSubmit({
    config: runtime.config,
    outbox: new Outbox(runtime.tables),
    batches: new Batches(runtime.tables),
    chain: runtime.chain,
    signer,
    telemetry: runtime.telemetry,
    log: (message) => context.log(message),
  });
}

app.timer('submit', { schedule: getConfig().submit.schedule, handler: submit });
