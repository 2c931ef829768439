import { app, type InvocationContext } from '@azure/functions';
import { getConfig } from '../shared/config';
import { getServices } from '../shared/services';

/** Every second (twice per 2 s block): reconcile in-flight batches with the chain, then batch pending records. */
export async function submit(_timer: unknown, context: InvocationContext): Promise<void> {
  await getServices().submit((message) => context.log(message));
}

app.timer('submit', { schedule: getConfig().submit.schedule, handler: submit });
